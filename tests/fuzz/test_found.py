"""Inputs the fuzzers found that broke a contract, each kept as a plain regression test.

Every test here failed before its fix (the exception named in its docstring escaped);
docs/fuzzing.md lists them with the fix.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from mynad.card import apdu as A
from mynad.card.channel import CardChannel
from mynad.card.errors import CardError, CertificateInvalid
from mynad.card.session import MynaCard
from mynad.config import ConfigError, load_config
from mynad.hostlink import messages
from tests.fuzz import targets as T

CONFIG = T.ConfigRunner()
OK = b"\x90\x00"


@pytest.mark.parametrize("text, why", [
    ("a = " + "[" * 3000 + "]" * 3000, "RecursionError from tomllib"),
    ("[card]\ncode_b_reserve = 1" + "0" * 5000, "ValueError: int over 4300 digits, from tomllib"),
    ('[reader]\nstate_dir = "state\\u0000dir"', "ValueError: embedded null byte, from Path.resolve"),
    ("[card]\napdu_timeout_s = 1" + "0" * 400, "OverflowError: int too large to convert to float"),
    ("[display]\nrotate = 7", "TypeError: str.join over the integer choices"),
    ("[host]\nmqtt_port = 0x" + "F" * 4000, "ValueError: repr() of an int over 4300 digits"),
    ("[keypad]\nrows = [1, 0x" + "F" * 4000 + "]", "ValueError: repr() of an int over 4300 digits"),
])
def test_config_errors_are_config_errors(text, why):
    CONFIG.path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(CONFIG.path)


def test_a_verify_answered_6cxx_is_not_sent_again():
    """The channel resent any command answered 6Cxx with the corrected Le, a VERIFY too:
    a hostile card got the PIN twice and the patient lost a second try unasked."""
    link = T.ScriptedCard([OK, OK, b"\x63\xc3", b"\x6c\x04", OK, OK])
    card = MynaCard(CardChannel(link))
    with pytest.raises(CardError):
        card.verify_pin(T._pin())
    assert sum(1 for c in link.sent if c[:4] == b"\x00\x20\x00\x80" and len(c) > 4) == 1


def test_6cxx_still_corrects_le_of_a_read():
    link = T.ScriptedCard([b"\x6c\x20", b"x" * 32 + OK])
    data, sw = CardChannel(link).transmit(A.read_binary(0, 0x10))
    assert sw == 0x9000 and len(data) == 32 and link.sent[1][-1] == 0x20


class FileCard:
    """A driver link serving EFs by id (SELECT and READ BINARY only), for crafted files."""

    def __init__(self, files: dict[int, bytes]) -> None:
        self.files, self.current = files, b""

    def exchange(self, apdu, timeout=None):
        apdu = bytes(apdu)
        if apdu[1] == 0xA4:
            if apdu[2] == 0x02:
                self.current = self.files.get(int.from_bytes(apdu[5:7], "big"), b"")
            return OK
        if apdu[1] == 0xB0:
            off, le = int.from_bytes(apdu[2:4], "big"), apdu[4] or 256
            return self.current[off:off + le] + OK
        return b"\x6d\x00"

    def close(self):
        pass


def _cert(not_after: dt.datetime) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "card")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(dt.datetime(2020, 1, 1)).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.DER)


def test_a_certificate_without_expiry_is_a_certificate_error():
    """notAfter 99991231235959Z (RFC 5280: no expiry) has no JST time: OverflowError escaped."""
    card = MynaCard(CardChannel(FileCard({A.EF_AUTH_CERT: _cert(dt.datetime(9999, 12, 31, 23, 59, 59))})))
    with pytest.raises(CertificateInvalid):
        card.auth_certificate()


def test_a_certificate_of_an_unknown_x509_version_is_a_certificate_error():
    """Found by bench/fuzz.py (session, 1e6 run): cryptography's InvalidVersion is not a ValueError."""
    der = _cert(dt.datetime(2031, 3, 31))
    assert der.count(b"\xa0\x03\x02\x01\x02") == 1  # [0] EXPLICIT version v3
    der = der.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x12")
    card = MynaCard(CardChannel(FileCard({A.EF_AUTH_CERT: der})))
    with pytest.raises(CertificateInvalid):
        card.auth_certificate()


def test_an_ordinary_crafted_certificate_is_read():
    card = MynaCard(CardChannel(FileCard({A.EF_AUTH_CERT: _cert(dt.datetime(2031, 3, 31))})))
    assert card.auth_certificate().serial == 7


def test_an_oversized_version_is_not_echoed_whole():
    """validate() put repr(v) into its sentence unclipped: a 60 KB 'v' made a 60 KB log line."""
    msg = {"type": "hello", "v": "x" * 60_000, "id": "a", "ts": "t"}
    why = messages.validate(msg)
    assert why is not None and len(why) <= T.MAX_REASON_CHARS
