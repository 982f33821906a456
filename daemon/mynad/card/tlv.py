"""The little BER-TLV the card's files need: DER headers and the FF20 / DFxx records.

The card-surface and text applications wrap their items in ``FF 20 L { DF21 … DF2A }``;
newer cards may prepend bytes, so items are found by tag, never by fixed offset
(docs/sources.md §S6). Malformed input raises ``ValueError`` for the caller to turn
into a ``BadResponse``.
"""

from __future__ import annotations


def read_header(buf: bytes, pos: int = 0) -> tuple[int, int, int]:
    """(tag, length, offset of the value) of the TLV at ``pos``."""
    if pos >= len(buf):
        raise ValueError("TLV: no data")
    tag = buf[pos]
    pos += 1
    if tag & 0x1F == 0x1F:  # multi-byte tag
        while True:
            if pos >= len(buf):
                raise ValueError("TLV: truncated tag")
            b = buf[pos]
            tag = (tag << 8) | b
            pos += 1
            if not b & 0x80:
                break
            if tag > 0xFFFFFF:
                raise ValueError("TLV: tag too long")
    if pos >= len(buf):
        raise ValueError("TLV: truncated length")
    first = buf[pos]
    pos += 1
    if first < 0x80:
        length = first
    elif first in (0x81, 0x82, 0x83):
        n = first & 0x7F
        if pos + n > len(buf):
            raise ValueError("TLV: truncated length")
        length = int.from_bytes(buf[pos: pos + n], "big")
        pos += n
    else:
        raise ValueError(f"TLV: unsupported length form {first:02X}")
    return tag, length, pos


def total_length(buf: bytes, pos: int = 0) -> int:
    """Bytes taken by the TLV starting at ``pos`` (header + value)."""
    _, length, value_at = read_header(buf, pos)
    return value_at - pos + length


def children(buf: bytes, start: int = 0, end: int | None = None) -> dict[int, bytes]:
    """Tag -> value of each TLV between ``start`` and ``end`` (first occurrence wins)."""
    end = len(buf) if end is None else end
    out: dict[int, bytes] = {}
    pos = start
    while pos < end:
        if buf[pos] == 0x00 or (buf[pos] == 0xFF and (pos + 1 == end or buf[pos + 1] == 0xFF)):
            pos += 1  # filler between or after items (ISO 7816-4 allows 00 and FF)
            continue
        tag, length, value_at = read_header(buf, pos)
        if value_at + length > end:
            raise ValueError(f"TLV: item {tag:X} runs past the end")
        out.setdefault(tag, bytes(buf[value_at: value_at + length]))
        pos = value_at + length
    return out


def find_record(buf: bytes, tag: int = 0xFF20) -> dict[int, bytes]:
    """The items of the ``tag`` record, which may follow a few bytes of prefix."""
    want = tag.to_bytes(2, "big")
    at = bytes(buf).find(want)
    if at < 0 or at > 8:
        raise ValueError(f"TLV: record {tag:X} not found")
    _, length, value_at = read_header(buf, at)
    if value_at + length > len(buf):
        raise ValueError(f"TLV: record {tag:X} truncated")
    return children(buf, value_at, value_at + length)
