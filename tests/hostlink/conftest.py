"""Fixtures for the host-link tests: a test PKI, pty pairs, and a real mosquitto broker."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from mynasim.services import Mosquitto, ServiceError, free_port


class CardPKI:
    """A CA and one card (key + certificate with a given serial)."""

    def __init__(self, serial: int = 1234567890123, not_after_days: int = 365) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        self.ca_key = rsa.generate_private_key(65537, 2048)
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test JPKI CA")])
        self.ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
                   .public_key(self.ca_key.public_key()).serial_number(1)
                   .not_valid_before(now - dt.timedelta(days=3650)).not_valid_after(now + dt.timedelta(days=3650))
                   .sign(self.ca_key, hashes.SHA256()))
        self.serial = serial
        self.key, self.cert = self.issue(serial, not_after_days)

    def issue(self, serial: int, not_after_days: int, signer=None):
        now = dt.datetime.now(dt.timezone.utc)
        key = rsa.generate_private_key(65537, 2048)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "card")]))
                .issuer_name(self.ca.subject).public_key(key.public_key()).serial_number(serial)
                .not_valid_before(now - dt.timedelta(days=1000))
                .not_valid_after(now + dt.timedelta(days=not_after_days))
                .sign(signer or self.ca_key, hashes.SHA256()))
        return key, cert


@pytest.fixture(scope="session")
def pki() -> CardPKI:
    return CardPKI()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory):
    """A real mosquitto on 127.0.0.1:<free port>; yields (host, port)."""
    d = tmp_path_factory.mktemp("mosquitto")
    port = free_port()
    conf = d / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n")
    # started as root it drops to user mosquitto, which must be able to read the config
    for p in (d, d.parent, conf):
        os.chmod(p, os.stat(p).st_mode | 0o755 if p.is_dir() else 0o644)
    try:
        broker = Mosquitto(conf, (port,), d / "mosquitto.log").start()
    except ServiceError as e:
        pytest.fail(str(e))
    yield "127.0.0.1", port
    broker.stop()
