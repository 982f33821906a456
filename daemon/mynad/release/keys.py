"""Release signing keys: Ed25519, stored as PEM files.

Why Ed25519 and PEM: one small, fixed-size signature (64 bytes) over the bundle's manifest,
no parameters to get wrong, and both halves are readable by stock tools
(``openssl pkey -in release.key -text``) as well as by ``cryptography`` 38, the version
Debian 12 ships as python3-cryptography (this module also runs under it at first install).

The private key never lives in the repository: it is made once with ``generate_keypair``
(``scripts/build-release --generate-key PATH``) on the release machine and kept there (or on
a token); only ``*.pub`` files are installed on readers, under
``/etc/myna-reader/release-keys/``. Tests make a throw-away pair in a temp dir.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = ["KeyFileError", "generate_keypair", "load_private_key", "load_public_key", "load_public_keys",
           "fingerprint", "PUBLIC_SUFFIX"]

PUBLIC_SUFFIX = ".pub"
MAX_KEY_FILE = 16 * 1024   # a PEM Ed25519 key is ~120 bytes; anything big is not a key file


class KeyFileError(Exception):
    """A key file is missing, unreadable or not an Ed25519 key; str() is one plain sentence."""


def generate_keypair(private_path: Path | str, public_path: Path | str, *, password: bytes | None = None) -> str:
    """Write a new Ed25519 pair; return the public key's fingerprint.

    The private key is created with O_EXCL and mode 0600: an existing key is never
    overwritten (losing it means no reader accepts updates signed by a new one until its
    .pub is installed on every reader). ``password`` encrypts the PEM (BestAvailableEncryption).
    """
    private_path, public_path = Path(private_path), Path(public_path)
    key = Ed25519PrivateKey.generate()
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise KeyFileError(f"The key file {private_path} already exists; it is never overwritten.") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    public_path.write_bytes(pub)
    return fingerprint(key.public_key())


def _read_small(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise KeyFileError(f"The {what} {path} does not exist.") from None
    except OSError as e:
        raise KeyFileError(f"The {what} {path} cannot be read ({e.strerror}).") from None
    if len(data) > MAX_KEY_FILE:
        raise KeyFileError(f"The {what} {path} is too large to be a key.")
    return data


def load_private_key(path: Path | str, *, password: bytes | None = None) -> Ed25519PrivateKey:
    """The signing key at ``path`` (PEM PKCS8)."""
    path = Path(path)
    data = _read_small(path, "release signing key")
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError:
        raise KeyFileError(f"The release signing key {path} is encrypted: give its passphrase.") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFileError(f"The release signing key {path} is not a readable PEM key (or the passphrase is wrong).") \
            from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"The release signing key {path} is not an Ed25519 key.")
    return key


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    """One trusted release key (PEM SubjectPublicKeyInfo)."""
    path = Path(path)
    data = _read_small(path, "release key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFileError(f"The release key {path} is not a readable PEM public key.") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"The release key {path} is not an Ed25519 key.")
    return key


def load_public_keys(paths: Path | str | Iterable[Path | str]) -> list[Ed25519PublicKey]:
    """Trusted keys from a directory (every ``*.pub`` in it, sorted) or a list of files.

    An unreadable file is an error, not skipped: a reader that silently trusted fewer keys
    than its technician installed would refuse a good update with a misleading sentence.
    """
    if isinstance(paths, (str, Path)):
        p = Path(paths)
        if p.is_dir():
            files = sorted(q for q in p.iterdir() if q.name.endswith(PUBLIC_SUFFIX))
        else:
            files = [p]
    else:
        files = [Path(q) for q in paths]
    return [load_public_key(f) for f in files]


def fingerprint(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """SHA-256 of the raw 32-byte public key, first 16 hex digits in groups of 4: what a
    technician reads out to compare a reader's trusted key with the release machine's."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    h = hashlib.sha256(raw).hexdigest()[:16]
    return ":".join(h[i:i + 4] for i in range(0, 16, 4))
