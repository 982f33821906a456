"""A real mosquitto with TLS, client certificates, a password file and the documented ACL.

Everything is made here: a CA (and a second, unrelated CA for the "wrong CA" case), a
broker certificate for 127.0.0.1/localhost, a second listener whose certificate names
another host (for the host-name check), client certificates for the reader and the host,
a mosquitto password file (mosquitto_passwd) and the ACL from docs/security.md.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mynasim.services import Mosquitto, ServiceError, free_port

READER = "sec-reader-01"
OTHER_READER = "sec-reader-02"
HOST_USER = "myna-host"
PASSWORDS = {READER: "reader-pass-7f3a", OTHER_READER: "other-pass-91c2", HOST_USER: "host-pass-55d0"}

DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def documented_acl() -> str:
    """The ACL block of docs/security.md (after the ``<!-- acl -->`` marker): the test broker
    runs with what the documentation tells an installer to use."""
    text = DOCS.read_text(encoding="utf-8")
    block = text.split("<!-- acl -->", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    assert f"user {HOST_USER}" in block
    return block




def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class CA:
    def __init__(self, cn: str) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                    critical=True)
                     .sign(self.key, hashes.SHA256()))

    def issue(self, cn: str, *, server_names: list[str] = (), client: bool = False):
        now = dt.datetime.now(dt.timezone.utc)
        key = ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client
                                                   else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        if server_names:
            sans = []
            for n in server_names:
                try:
                    sans.append(x509.IPAddress(ipaddress.ip_address(n)))
                except ValueError:
                    sans.append(x509.DNSName(n))
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, b.sign(self.key, hashes.SHA256())

    def write(self, folder: Path, stem: str, key, cert, key_mode: int = 0o600) -> tuple[Path, Path]:
        c, k = folder / f"{stem}.crt", folder / f"{stem}.key"
        c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        k.write_bytes(_pem_key(key))
        c.chmod(0o644)
        k.chmod(key_mode)
        return c, k


@dataclass
class TlsBroker:
    host: str
    port: int          # TLS, certificate for 127.0.0.1/localhost, client certificate required
    wrong_name_port: int  # TLS, certificate for broker.invalid only
    folder: Path
    ca: Path
    wrong_ca: Path
    certs: dict[str, tuple[Path, Path]]  # user -> (certificate, key)
    log: Path

    def password_file(self, user: str, mode: int = 0o600) -> Path:
        f = self.folder / f"{user}.password"
        f.write_text(PASSWORDS[user] + "\n")
        f.chmod(mode)
        return f

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="session")
def tls_broker():
    passwd = shutil.which("mosquitto_passwd")
    if passwd is None:
        pytest.fail("mosquitto is not installed (apt-get install mosquitto mosquitto-clients)")
    # started as root mosquitto drops to user mosquitto: every file it reads must be reachable
    folder = Path(tempfile.mkdtemp(prefix="myna-tls-", dir="/tmp"))
    folder.chmod(0o755)
    ca, wrong = CA("Myna Test Broker CA"), CA("Some Other CA")
    ca_path = folder / "ca.crt"
    ca_path.write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    wrong_path = folder / "wrong-ca.crt"
    wrong_path.write_bytes(wrong.cert.public_bytes(serialization.Encoding.PEM))
    for p in (ca_path, wrong_path):
        p.chmod(0o644)
    server = ca.write(folder, "server", *ca.issue("broker", server_names=["127.0.0.1", "localhost"]), key_mode=0o644)
    other = ca.write(folder, "server2", *ca.issue("broker.invalid", server_names=["broker.invalid"]), key_mode=0o644)
    certs = {u: ca.write(folder, u, *ca.issue(u, client=True)) for u in PASSWORDS}
    pwfile = folder / "passwd"
    for i, (user, password) in enumerate(PASSWORDS.items()):
        subprocess.run([passwd, *(["-c"] if i == 0 else []), "-b", str(pwfile), user, password], check=True,
                       capture_output=True)
    pwfile.chmod(0o644)
    acl = folder / "acl"
    acl.write_text(documented_acl())
    acl.chmod(0o644)
    port, port2 = free_port(), free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(f"""\
per_listener_settings false
allow_anonymous false
password_file {pwfile}
acl_file {acl}
persistence false
set_tcp_nodelay true
log_dest stderr
log_type all

listener {port} 127.0.0.1
cafile {ca_path}
certfile {server[0]}
keyfile {server[1]}
require_certificate true
tls_version tlsv1.2

listener {port2} 127.0.0.1
cafile {ca_path}
certfile {other[0]}
keyfile {other[1]}
require_certificate true
""")
    conf.chmod(0o644)
    log_path = folder / "mosquitto.log"
    try:
        broker = Mosquitto(conf, (port, port2), log_path).start()
    except ServiceError as e:
        pytest.fail(str(e))
    # client keys: 0600 as the reader keeps them (the test runs as root, so it can read them)
    yield TlsBroker("127.0.0.1", port, port2, folder, ca_path, wrong_path, certs, log_path)
    broker.stop()
    shutil.rmtree(folder, ignore_errors=True)
