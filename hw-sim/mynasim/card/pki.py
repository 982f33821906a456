"""A test JPKI: one self-signed CA and one user-authentication certificate per profile.

Everything is cached as PEM in ``state_dir/pki`` so simulator restarts reuse the same
keys and serials. The auth certificate carries no personal data (real 利用者証明用
certificates do not either): the subject CN is the serial in hex.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mynasim.card.profiles import Profile, load_profiles

ORG = "JPKI test CA (mynasim)"
JST = dt.timezone(dt.timedelta(hours=9))


def serial_for(profile_key: str) -> int:
    """Deterministic certificate serial of a profile's auth certificate (positive 63-bit)."""
    return int.from_bytes(hashlib.sha256(profile_key.encode()).digest()[:8], "big") >> 1 or 1


def _validity(profile: Profile) -> tuple[dt.datetime, dt.datetime]:
    """00:00:00 JST on not_before .. 23:59:59 JST on not_after, as UTC."""
    nb = dt.datetime.combine(profile.cert_not_before, dt.time(0, 0, 0), JST).astimezone(dt.timezone.utc)
    na = dt.datetime.combine(profile.cert_not_after, dt.time(23, 59, 59), JST).astimezone(dt.timezone.utc)
    return nb, na


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class PKIStateError(RuntimeError):
    """A cached PEM in ``state_dir/pki`` is not what this test JPKI writes (an RSA key)."""


def _load_rsa_key(path: Path) -> rsa.RSAPrivateKey:
    """The cached RSA private key at ``path``; JPKI keys are RSA, anything else is a stale file."""
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PKIStateError(f"{path} holds a {type(key).__name__}, not an RSA key: delete it to regenerate")
    return key


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class TestPKI:
    __test__ = False  # not a pytest class

    def __init__(self, state_dir: Path | str, profiles: dict[str, Profile] | None = None) -> None:
        self.dir = Path(state_dir) / "pki"
        self._profiles = profiles
        self._lock = threading.RLock()
        self._ca: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None
        self._issued: dict[str, tuple[x509.Certificate, rsa.RSAPrivateKey]] = {}

    # ------------------------------------------------------------------ CA

    def _load_ca(self) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        with self._lock:
            if self._ca is not None:
                return self._ca
            self.dir.mkdir(parents=True, exist_ok=True)
            cert_path, key_path = self.dir / "ca.cert.pem", self.dir / "ca.key.pem"
            if cert_path.exists() and key_path.exists():
                key = _load_rsa_key(key_path)
                cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            else:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                name = x509.Name([
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "JPKI for user authentication"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "mynasim JPKI test CA"),
                ])
                now = dt.datetime.now(dt.timezone.utc)
                ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
                cert = (
                    x509.CertificateBuilder()
                    .subject_name(name).issuer_name(name)
                    .public_key(key.public_key())
                    .serial_number(1)
                    .not_valid_before(now - dt.timedelta(days=3650))
                    .not_valid_after(now + dt.timedelta(days=3650 * 3))
                    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                    .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                                 key_encipherment=False, data_encipherment=False,
                                                 key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                 encipher_only=False, decipher_only=False), critical=True)
                    .add_extension(ski, critical=False)
                    .sign(key, hashes.SHA256())
                )
                _write_atomic(key_path, _key_pem(key))
                _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM))
            self._ca = (cert, key)
            return cert, key

    @property
    def ca_certificate(self) -> x509.Certificate:
        return self._load_ca()[0]

    @property
    def ca_key(self) -> rsa.RSAPrivateKey:
        return self._load_ca()[1]

    # ------------------------------------------------------------------ issue

    def issue(self, profile: Profile) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """The profile's auth certificate and private key (created once, cached in state_dir)."""
        with self._lock:
            nb, na = _validity(profile)
            hit = self._issued.get(profile.key)
            if hit is not None and hit[0].not_valid_after_utc == na and hit[0].not_valid_before_utc == nb:
                return hit
            ca_cert, ca_key = self._load_ca()
            self.dir.mkdir(parents=True, exist_ok=True)
            key_path = self.dir / f"{profile.key}.key.pem"
            cert_path = self.dir / f"{profile.key}.cert.pem"
            if key_path.exists():
                key = _load_rsa_key(key_path)
            else:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                _write_atomic(key_path, _key_pem(key))
            cert = None
            if cert_path.exists():
                c = x509.load_pem_x509_certificate(cert_path.read_bytes())
                # reuse only if it still matches (relative validity moves with the calendar)
                c_key = c.public_key()
                if (c.not_valid_after_utc == na and c.not_valid_before_utc == nb
                        and isinstance(c_key, rsa.RSAPublicKey)
                        and c_key.public_numbers() == key.public_key().public_numbers()
                        and c.issuer == ca_cert.subject):
                    cert = c
            if cert is None:
                cert = self._build(profile, key, ca_cert, ca_key, nb, na)
                _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM))
            self._issued[profile.key] = (cert, key)
            return cert, key

    @staticmethod
    def _build(profile: Profile, key: rsa.RSAPrivateKey, ca_cert: x509.Certificate,
               ca_key: rsa.RSAPrivateKey, nb: dt.datetime, na: dt.datetime) -> x509.Certificate:
        serial = serial_for(profile.key)
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "JPKI for user authentication"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{serial:016X}"),
        ])
        return (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(nb).not_valid_after(na)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256())
        )

    # ------------------------------------------------------------------ lookup

    def profiles(self) -> dict[str, Profile]:
        if self._profiles is None:
            self._profiles = load_profiles()
        return self._profiles

    def profile_for_serial(self, serial: int) -> str | None:
        for key in self.profiles():
            if serial_for(key) == serial:
                return key
        return None
