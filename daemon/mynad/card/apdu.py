"""Command APDUs of the My Number card, exactly in the forms the public drivers use.

Sources (docs/sources.md §S6): OpenSC ``card-jpki.c`` and jpki/myna.
SELECT by AID with P2 ``0C`` (no FCI), EF by 2-byte id, READ BINARY with a 15-bit
offset in P1P2, VERIFY ``00 20 00 80``, and COMPUTE DIGITAL SIGNATURE with CLA ``80``.
Pure functions, no I/O: easy to test byte for byte.
"""

from __future__ import annotations

AID_JPKI = bytes.fromhex("D392F000260100000001")
AID_FACE = bytes.fromhex("D3921000310001010402")  # 券面AP (券面事項確認AP)
AID_TEXT = bytes.fromhex("D3921000310001010408")  # 券面事項入力補助AP

# JPKI AP
EF_TOKEN = 0x0006
EF_CERT_AVAILABILITY = 0x0008
EF_AUTH_CERT = 0x000A
EF_AUTH_KEY = 0x0017
EF_AUTH_PIN = 0x0018
# 券面AP
EF_FACE_CODE_B = 0x0012
EF_FACE_DATA = 0x0002
# 券面事項入力補助AP
EF_TEXT_PIN = 0x0011
EF_TEXT_BASIC4 = 0x0002

MAX_SHORT_LE = 256
MAX_OFFSET = 0x7FFF  # READ BINARY P1P2 with P1 bit 8 clear: a 15-bit offset
READ_REACH = MAX_OFFSET + 1  # bytes of an EF that offsets can address; longer files are unreadable this way
SW_OK = 0x9000


def select_df(aid: bytes) -> bytes:
    return bytes([0x00, 0xA4, 0x04, 0x0C, len(aid)]) + aid


def select_ef(fid: int) -> bytes:
    return bytes([0x00, 0xA4, 0x02, 0x0C, 0x02, fid >> 8, fid & 0xFF])


def read_binary(offset: int, length: int) -> bytes:
    if not 0 <= offset <= MAX_OFFSET:
        raise ValueError(f"READ BINARY offset {offset} out of range")
    if not 1 <= length <= MAX_SHORT_LE:
        raise ValueError(f"READ BINARY length {length} out of range")
    return bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, length & 0xFF])


def verify_query() -> bytes:
    """VERIFY with no data: the retry counter, never spending a try (JICSAP 6.4.9)."""
    return bytes([0x00, 0x20, 0x00, 0x80])


def verify(secret: bytearray) -> bytearray:
    """VERIFY with the PIN as ASCII digits. Returns a bytearray so the caller can wipe it."""
    out = bytearray([0x00, 0x20, 0x00, 0x80, len(secret)])
    out += secret
    return out


def get_response(le: int) -> bytes:
    return bytes([0x00, 0xC0, 0x00, 0x00, le & 0xFF])


def compute_signature(digest_info: bytes) -> bytes:
    """COMPUTE DIGITAL SIGNATURE over a caller-built DigestInfo (P1 00: pad as given)."""
    return bytes([0x80, 0x2A, 0x00, 0x80, len(digest_info)]) + digest_info + b"\x00"


def with_le(apdu: bytes | bytearray, le: int) -> bytes:
    """The same command with Le replaced (the 6Cxx retry)."""
    a = bytes(apdu)
    if len(a) == 4:
        return a + bytes([le & 0xFF])
    if len(a) == 5:
        return a[:4] + bytes([le & 0xFF])
    lc = a[4]
    return a[: 5 + lc] + bytes([le & 0xFF])


def describe(apdu: bytes | bytearray) -> str:
    """A log-safe description: header and length only, never the data (it may be a PIN)."""
    a = bytes(apdu[:4])
    n = max(0, len(apdu) - 5)
    return f"{a.hex(' ').upper()} +{n}B"
