"""Host-link frame codec: pure bytes in, frames out. No I/O, no clock, no randomness.

Wire format (all integers big-endian)::

    +------+------+-----+------+-------+--------+-------------------+-------+
    | 0xFE | 0xFF | ver | type | seq   | length | payload           | crc16 |
    |  1   |  1   |  1  |  1   | 2     | 2      | length bytes      | 2     |
    +------+------+-----+------+-------+--------+-------------------+-------+

* ``crc16`` is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final
  XOR; check value 0x29B1 for b"123456789") over ``ver`` .. end of ``payload``.
* ``payload`` is JSON encoded as **7-bit ASCII** (non-ASCII characters escaped as
  ``\\uXXXX``), which is valid UTF-8. Because of this, the sync bytes 0xFE 0xFF and any
  byte >= 0x80 can never occur inside a payload; the decoder uses that to reject a
  false header at once instead of waiting for a long bogus length to arrive.

The decoder is in the style of Klipper's msgproto: it scans for SYNC, checks the header,
waits for more bytes if the frame is incomplete, and on any inconsistency drops the
first sync byte and scans again, counting what it dropped and why.
"""

from __future__ import annotations

import binascii
import enum
import json
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Any

SYNC = b"\xfe\xff"
VERSION = 1
HEADER = struct.Struct(">2sBBHH")  # sync, version, type, seq, length
HEADER_LEN = HEADER.size  # 8
CRC_LEN = 2
OVERHEAD = HEADER_LEN + CRC_LEN
MAX_PAYLOAD = 65535  # the length field is 16 bits


class FrameType(enum.IntEnum):
    DATA = 1  # a message (JSON object with "id"); must be acknowledged
    ACK = 2  # {"id": ...}: the message was received (and is kept or was a duplicate)
    NAK = 3  # {"id": ..., "reason": ...}: the message was received but refused for good
    HELLO = 4  # a hello message: sent on every (re)connection and as keep-alive


class CodecError(ValueError):
    """A frame cannot be encoded (payload too long, not ASCII, bad field)."""


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE."""
    return binascii.crc_hqx(data, crc)


@dataclass(frozen=True)
class Frame:
    type: FrameType
    seq: int
    payload: bytes = b""
    version: int = VERSION

    @classmethod
    def of(cls, type_: FrameType, seq: int, obj: Any) -> "Frame":
        """A frame whose payload is ``obj`` as compact ASCII JSON."""
        return cls(FrameType(type_), seq & 0xFFFF, dumps(obj))

    def json(self) -> Any:
        """The payload parsed as JSON; raises ValueError if it is not JSON."""
        return json.loads(self.payload.decode("utf-8"))


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), sort_keys=False).encode("ascii")


def encode(frame: Frame) -> bytes:
    if not 0 <= frame.seq <= 0xFFFF:
        raise CodecError(f"sequence number {frame.seq} does not fit in 16 bits")
    if not 0 <= frame.version <= 0xFF:
        raise CodecError(f"version {frame.version} does not fit in 8 bits")
    n = len(frame.payload)
    if n > MAX_PAYLOAD:
        raise CodecError(f"payload of {n} bytes is longer than the {MAX_PAYLOAD}-byte limit")
    if not frame.payload.isascii():
        raise CodecError("payload must be 7-bit ASCII JSON (escape non-ASCII characters)")
    head = HEADER.pack(SYNC, frame.version, int(frame.type), frame.seq, n)
    body = head[2:] + frame.payload
    return head + frame.payload + crc16(body).to_bytes(2, "big")


# Plain reasons for dropped bytes / frames (keys of Decoder.dropped).
R_GARBAGE = "bytes outside any frame"
R_VERSION = "frame of an unsupported protocol version"
R_TYPE = "frame of an unknown type"
R_LENGTH = "frame longer than the limit"
R_NOT_ASCII = "false frame start (non-ASCII byte where the payload should be)"
R_CRC = "frame with a wrong CRC (corrupted on the line)"
R_TRUNCATED = "frame cut short (the rest never arrived)"
R_OVERFLOW = "receive buffer overflow"

_VALID_TYPES = frozenset(int(t) for t in FrameType)


class Decoder:
    """Feed it bytes as they arrive; it returns every complete, valid frame.

    ``dropped`` counts events by reason, ``dropped_bytes`` counts discarded bytes.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD, versions: frozenset[int] = frozenset({VERSION})) -> None:
        self.max_payload = min(max_payload, MAX_PAYLOAD)
        self.versions = versions
        self._buf = bytearray()
        self.dropped: Counter[str] = Counter()
        self.dropped_bytes = 0
        self.frames = 0

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)

    def _drop(self, n: int, reason: str) -> None:
        if n <= 0:
            return
        del self._buf[:n]
        self.dropped[reason] += 1
        self.dropped_bytes += n

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        buf = self._buf
        while True:
            i = buf.find(SYNC)
            if i < 0:
                # keep a trailing first sync byte: the second may come in the next chunk
                keep = 1 if buf.endswith(SYNC[:1]) else 0
                self._drop(len(buf) - keep, R_GARBAGE)
                return out
            if i:
                self._drop(i, R_GARBAGE)
            if len(buf) < HEADER_LEN:
                return out
            _, ver, typ, seq, n = HEADER.unpack_from(buf, 0)
            if ver not in self.versions:
                self._drop(1, R_VERSION)
                continue
            if typ not in _VALID_TYPES:
                self._drop(1, R_TYPE)
                continue
            if n > self.max_payload:
                self._drop(1, R_LENGTH)
                continue
            avail = buf[HEADER_LEN:HEADER_LEN + n]
            if not bytes(avail).isascii():
                self._drop(1, R_NOT_ASCII)
                continue
            end = HEADER_LEN + n + CRC_LEN
            if len(buf) < end:
                return out
            got = int.from_bytes(buf[end - 2:end], "big")
            if crc16(bytes(buf[2:end - 2])) != got:
                self._drop(1, R_CRC)
                continue
            out.append(Frame(FrameType(typ), seq, bytes(buf[HEADER_LEN:HEADER_LEN + n]), ver))
            self.frames += 1
            del buf[:end]

    def flush(self) -> list[Frame]:
        """Give up on an incomplete frame (end of stream, or the line went quiet).

        Drops one byte at a time and rescans, so a valid frame hidden behind a false
        header is still returned.
        """
        out: list[Frame] = []
        while self._buf:
            self._drop(1, R_TRUNCATED)
            out += self.feed(b"")
        return out

    def reset(self) -> None:
        if self._buf:
            self._drop(len(self._buf), R_TRUNCATED)
