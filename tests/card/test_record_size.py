"""Record sizes the card claims in its TLV header (issue 10: a 32-64 KiB record raised ValueError).

READ BINARY carries a 15-bit offset, so the reader can address 32 KiB of an EF. A
record header claiming more is a broken or hostile card: it must become a typed
``BadResponse`` after the first READ, never a bare ``ValueError`` from building an
APDU with an offset that does not fit. A record up to that reach is read whole.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mynad.card import apdu as A
from mynad.card.errors import BadResponse, CardError
from mynad.card.session import MynaCard

CODE_B = b"12345678901234"


def tlv(tag: int, value: bytes) -> bytes:
    """DER-style TLV with the long length form the card uses for big items."""
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return tag.to_bytes((tag.bit_length() + 7) // 8, "big") + length + value


class ScriptedFaceAP:
    """A card whose card-surface EF holds ``content``; every other command succeeds.

    READ BINARY answers like a real card (up to Le bytes from the offset); an offset
    past the end answers 6B00. Reads are recorded as (offset, Le).
    """

    def __init__(self, content: bytes) -> None:
        self.content = content
        self.reads: list[tuple[int, int]] = []

    def transmit(self, apdu, timeout=None):
        apdu = bytes(apdu)
        if apdu[1] == 0xB0:
            offset, le = (apdu[2] << 8) | apdu[3], apdu[4] or 256
            self.reads.append((offset, le))
            if offset >= len(self.content):
                return b"", 0x6B00
            return self.content[offset: offset + le], 0x9000
        return b"", 0x9000  # SELECT, VERIFY and the counter query all succeed


def record_claiming(total: int) -> bytes:
    """A card-surface EF of ``total`` bytes whose header says so (a photo item, then filler)."""
    value_len = total - 5  # FF20 + 82/83 length form
    form = b"\x82" + value_len.to_bytes(2, "big") if value_len <= 0xFFFF else b"\x83" + value_len.to_bytes(3, "big")
    head = b"\xFF\x20" + form
    return (head + b"\xDF\x27\x82\x00\x10" + b"\x00" * 16).ljust(total, b"\x00")


@pytest.mark.parametrize("total", [0x8001, 0x8100, 0xC000, 0xFFFF, 0x10004, 0x20000])
def test_record_claiming_more_than_read_binary_reaches_is_a_bad_response(total):
    card = ScriptedFaceAP(record_claiming(total))
    with pytest.raises(BadResponse) as info:
        MynaCard(card).face_photo(bytearray(CODE_B))
    assert "claims" in info.value.message and info.value.reason == "bad_response"
    assert card.reads == [(0, 256)]  # refused on the header: no further command sent


def test_record_of_exactly_32_kib_is_read_whole():
    photo = bytes(range(256)) * ((A.READ_REACH - 10) // 256) + b"\x5A" * ((A.READ_REACH - 10) % 256)
    content = tlv(0xFF20, tlv(0xDF27, photo))
    assert len(content) == A.READ_REACH == 0x8000
    card = ScriptedFaceAP(content)
    assert MynaCard(card).face_photo(bytearray(CODE_B)) == photo
    assert max(off for off, _ in card.reads) <= A.MAX_OFFSET
    assert sum(n for _, n in card.reads) == len(content)  # never more than the record asked for


def test_basic4_record_claiming_64_kib_is_a_bad_response():
    """The text AP's record goes through the same reader: same refusal, never ValueError."""
    from mynad.core.secret import PinBuffer

    pin = PinBuffer()
    for d in "1234":
        pin.push(int(d))
    card = ScriptedFaceAP(record_claiming(0xFFFF))
    with pytest.raises(BadResponse):
        MynaCard(card).basic4(pin)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(length_form=st.sampled_from([b"\x81", b"\x82", b"\x83", b"\x84", b"\x80", b""]),
       length=st.one_of(st.integers(0x7F00, 0x10100), st.integers(0, 0xFFFFFF)), prefix=st.binary(max_size=6),
       served=st.one_of(st.just(0x10200), st.integers(0, 0x10200)))
def test_any_claimed_size_is_read_or_refused_with_a_card_error(length_form, length, prefix, served):
    """Whatever the header claims and however much the card really serves: the photo, or a CardError."""
    n = {b"\x81": 1, b"\x82": 2, b"\x83": 3, b"\x84": 4}.get(length_form, 0)
    encoded = length_form + (length % (1 << (8 * n))).to_bytes(n, "big") if n else bytes([length & 0x7F])
    head = prefix + b"\xFF\x20" + encoded + b"\xDF\x27\x02\xAB\xCD"
    card = ScriptedFaceAP(head.ljust(served, b"\x00")[:max(served, 4)])
    try:
        MynaCard(card).face_photo(bytearray(CODE_B))
    except CardError:
        pass
    assert all(off <= A.MAX_OFFSET for off, _ in card.reads)
