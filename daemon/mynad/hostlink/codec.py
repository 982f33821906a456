"""Host-link frame codec: pure bytes in, frames out. No I/O, no clock, no randomness.

Wire format, frame version 2 (all integers big-endian)::

    +------+------+-----+------+-----+--------+--------------+---------+------+-------+
    | 0xFE | 0xFF | ver | type | seq | length | payload      | counter | tag  | crc16 |
    |  1   |  1   |  1  |  1   |  2  |   2    | length bytes |    8    |  16  |   2   |
    +------+------+-----+------+-----+--------+--------------+---------+------+-------+
                                                              └─ auth trailer ─┘

* ``counter`` and ``tag`` are the authentication trailer (``mynad.hostlink.auth``): the
  sender's frame counter and a truncated HMAC-SHA256 over ver, type, seq, length, counter
  and payload. The codec only carries them; ``auth`` makes and checks them.
* ``crc16`` is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final
  XOR; check value 0x29B1 for b"123456789") over ``ver`` .. end of ``tag``. The CRC
  catches line noise (cheap, before any HMAC is computed); the tag catches forgery.
* ``payload`` is JSON encoded as **7-bit ASCII** (non-ASCII characters escaped as
  ``\\uXXXX``), which is valid UTF-8. Because of this, the sync bytes 0xFE 0xFF and any
  byte >= 0x80 can never occur inside a payload; the decoder uses that to reject a
  false header at once instead of waiting for a long bogus length to arrive. (The
  trailer is binary, but it is fixed-size and covered by the CRC.)
* Version 1 (no trailer, no authentication) is no longer spoken: such frames are dropped
  and counted as ``R_UNAUTHENTICATED``.

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
VERSION = 2
UNAUTHENTICATED_VERSION = 1  # the old frame format without an auth trailer: refused
HEADER = struct.Struct(">2sBBHH")  # sync, version, type, seq, length
HEADER_LEN = HEADER.size  # 8
COUNTER = struct.Struct(">Q")
COUNTER_LEN = COUNTER.size  # 8
TAG_LEN = 16  # truncated HMAC-SHA256 (see auth.py for why 128 bits)
AUTH_LEN = COUNTER_LEN + TAG_LEN  # 24
CRC_LEN = 2
OVERHEAD = HEADER_LEN + AUTH_LEN + CRC_LEN  # 34
MAX_COUNTER = 2**64 - 1
MAX_PAYLOAD = 65535  # the length field is 16 bits


class FrameType(enum.IntEnum):
    DATA = 1  # a message (JSON object with "id"); must be acknowledged
    ACK = 2  # {"id": ...}: the message was received (and is kept or was a duplicate)
    NAK = 3  # {"id": ..., "reason": ...}: the message was received but refused for good
    HELLO = 4  # a hello message: sent on every (re)connection and as keep-alive


MAX_DEPTH = 16  # JSON nesting a payload may have; protocol messages need 3


class CodecError(ValueError):
    """A frame cannot be encoded (payload too long, not ASCII, bad field)."""


class PayloadError(ValueError):
    """A received payload is not usable JSON: not UTF-8, not JSON, or nested deeper than MAX_DEPTH.

    The only error ``Frame.json`` raises, whatever the bytes; a receiver answers it with a
    NAK and goes on with the next frame.
    """


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE."""
    return binascii.crc_hqx(data, crc)


NO_TAG = bytes(TAG_LEN)


@dataclass(frozen=True)
class Frame:
    """One frame. ``counter``/``tag`` are zero until ``auth.Sealer.seal`` fills them in."""

    type: FrameType
    seq: int
    payload: bytes = b""
    version: int = VERSION
    counter: int = 0
    tag: bytes = NO_TAG

    @classmethod
    def of(cls, type_: FrameType, seq: int, obj: Any) -> "Frame":
        """A frame whose payload is ``obj`` as compact ASCII JSON."""
        return cls(FrameType(type_), seq & 0xFFFF, dumps(obj))

    def json(self) -> Any:
        """The payload parsed as JSON; raises PayloadError if it is not JSON or nested too deep.

        Python's parser recurses once per nesting level, so a hostile payload of 30 000
        brackets would raise RecursionError; that is turned into PayloadError here, and the
        depth of what did parse is checked (without recursion) against MAX_DEPTH.
        """
        try:
            obj = json.loads(self.payload.decode("utf-8"))
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            kind = "nested too deep" if isinstance(e, RecursionError) else "not JSON"
            raise PayloadError(f"the payload is {kind}") from None
        if _depth_over(obj, MAX_DEPTH):
            raise PayloadError(f"the payload is nested deeper than {MAX_DEPTH} levels")
        return obj


def _depth_over(obj: Any, limit: int) -> bool:
    """True if ``obj`` has containers nested more than ``limit`` deep (iterative, no recursion)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, dict):
            x = x.values()
        elif not isinstance(x, list):
            continue
        if d > limit:
            return True
        stack.extend((y, d + 1) for y in x if isinstance(y, (dict, list)))
    return False


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), sort_keys=False).encode("ascii")


def encode(frame: Frame) -> bytes:
    if not 0 <= frame.seq <= 0xFFFF:
        raise CodecError(f"sequence number {frame.seq} does not fit in 16 bits")
    if not 0 <= frame.version <= 0xFF:
        raise CodecError(f"version {frame.version} does not fit in 8 bits")
    if not 0 <= frame.counter <= MAX_COUNTER:
        raise CodecError(f"counter {frame.counter} does not fit in 64 bits")
    if len(frame.tag) != TAG_LEN:
        raise CodecError(f"the authentication tag must be {TAG_LEN} bytes (got {len(frame.tag)})")
    n = len(frame.payload)
    if n > MAX_PAYLOAD:
        raise CodecError(f"payload of {n} bytes is longer than the {MAX_PAYLOAD}-byte limit")
    if not frame.payload.isascii():
        raise CodecError("payload must be 7-bit ASCII JSON (escape non-ASCII characters)")
    head = HEADER.pack(SYNC, frame.version, int(frame.type), frame.seq, n)
    body = head[2:] + frame.payload + COUNTER.pack(frame.counter) + frame.tag
    return SYNC + body + crc16(body).to_bytes(2, "big")


# Plain reasons for dropped bytes / frames (keys of Decoder.dropped).
R_GARBAGE = "bytes outside any frame"
R_VERSION = "frame of an unsupported protocol version"
R_UNAUTHENTICATED = "unauthenticated frame (old format version 1)"
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
        # Payload bytes of the frame candidate at the front of _buf already found to be ASCII,
        # so that each byte is checked once however the frame is chunked (linear, not n²).
        self._ascii_ok = 0
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
        del self._buf[:n]  # O(1) amortised: CPython's bytearray moves its start on a front delete
        self._ascii_ok = 0
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
                self._drop(1, R_UNAUTHENTICATED if ver == UNAUTHENTICATED_VERSION else R_VERSION)
                continue
            if typ not in _VALID_TYPES:
                self._drop(1, R_TYPE)
                continue
            if n > self.max_payload:
                self._drop(1, R_LENGTH)
                continue
            # check only the payload bytes that arrived since the last feed
            start = HEADER_LEN + self._ascii_ok
            stop = min(len(buf), HEADER_LEN + n)
            if stop > start:
                if not buf[start:stop].isascii():
                    self._drop(1, R_NOT_ASCII)
                    continue
                self._ascii_ok = stop - HEADER_LEN
            end = HEADER_LEN + n + AUTH_LEN + CRC_LEN
            if len(buf) < end:
                return out
            got = int.from_bytes(buf[end - 2:end], "big")
            body = bytes(buf[2:end - 2])  # the one copy of a complete frame
            if crc16(body) != got:
                self._drop(1, R_CRC)
                continue
            p0 = HEADER_LEN - 2
            (counter,) = COUNTER.unpack_from(body, p0 + n)
            out.append(Frame(FrameType(typ), seq, body[p0:p0 + n], ver, counter, body[p0 + n + COUNTER_LEN:]))
            self.frames += 1
            del buf[:end]
            self._ascii_ok = 0

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
        self._ascii_ok = 0
