"""Fixtures for the host-link tests: a test PKI, pty pairs, and a real mosquitto broker."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory):
    """A real mosquitto on 127.0.0.1:<free port>; yields (host, port)."""
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if exe is None:
        pytest.fail("mosquitto is not installed (apt-get install mosquitto)")
    d = tmp_path_factory.mktemp("mosquitto")
    port = _free_port()
    conf = d / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n")
    # started as root it drops to user mosquitto, which must be able to read the config
    for p in (d, d.parent, conf):
        os.chmod(p, os.stat(p).st_mode | 0o755 if p.is_dir() else 0o644)
    log = open(d / "mosquitto.log", "wb")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                pytest.fail(f"mosquitto did not start: {(d / 'mosquitto.log').read_text(errors='replace')}")
            time.sleep(0.02)
    yield "127.0.0.1", port
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
