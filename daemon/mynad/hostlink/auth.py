"""Authentication of host-link frames: pure (no I/O, no clock, no randomness).

Why: anyone who can publish on the MQTT topics or sits on the serial line could otherwise
arm 目視確認, pre-seed a ``visit.challenge`` or forge a qualification. Every frame in both
directions (DATA, ACK, NAK, HELLO) therefore carries a sender **counter** and a **tag**:

    tag = HMAC-SHA256(K_dir, "MYNA-HL" | ver | type | seq | length | counter | payload)[:16]

* ``K`` is the reader's 32-byte host key (``mynactl host-key``), installed at both ends.
  It is never used directly: each direction has its own key, derived with a label,
  ``K_dir = HMAC-SHA256(K, "myna host link v2 " + sender role)``. A frame the reader sent,
  reflected back to the reader, is checked with the other direction's key and refused;
  the same holds for the host.
* The tag is truncated to 128 bits (RFC 2104 §5 and NIST SP 800-107 allow truncation; the
  limit is the attacker's chance per forged frame, 2**-128, and every failure is counted and
  can be seen in ``status``). It saves 16 bytes per frame on a 115 200-baud line.
* ``counter`` is a 64-bit number, strictly increasing per sender and per key. The receiver
  keeps the highest counter it accepted (``peer_hwm``) and refuses any frame whose counter is
  not above it: a captured frame replayed byte for byte is refused. A retransmitted DATA is
  sealed again with a new counter, so retries are never mistaken for replays.
* The tag is checked before the counter, in constant time, so a stranger can neither move
  the high-water mark nor learn anything from the refusal.

Persistence (``counters.py``, done by the engine) makes the counters survive restarts:
the sender reserves counters in blocks written ahead (``SendCounter``), so a crash can
skip counters but never reuse one; the receiver's high-water mark is written before a
DATA frame is acted on. All counters are kept per key (``key_id``), so a new key starts a
new counter space: re-keying is the way to recover a peer that lost its state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import struct

from mynad.hostlink.codec import COUNTER, HEADER, TAG_LEN, Frame

KEY_LEN = 32
ROLES = ("reader", "host")
BLOCK = 1024  # counters reserved per write-ahead (one fsync per BLOCK frames sent)
COUNTER_LIMIT = 2**63 - 1  # SQLite stores signed 64-bit integers; a µs clock reaches 2**51 in 2041
_MAC_PREFIX = b"MYNA-HL"
_HEADER_FIELDS = struct.Struct(">BBHH")  # ver, type, seq, length (as in codec.HEADER after SYNC)
assert HEADER.size - 2 == _HEADER_FIELDS.size

# Plain reasons for refused frames (keys of ``status()["auth_refused"]``).
R_BAD_TAG = "bad authentication tag (unknown sender, wrong key, forged or reflected frame)"
R_REPLAY = "counter not above the last one accepted (replayed or stale frame)"


class AuthError(ValueError):
    """A key or counter cannot be used; the text says why (never the key itself)."""


def check_key(key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_LEN:
        raise AuthError(f"a host key is {KEY_LEN} bytes")
    return bytes(key)


def parse_key_text(data: bytes) -> bytes:
    """The key from a key file's contents: 64 hexadecimal digits, surrounding whitespace allowed."""
    text = data.strip()
    if len(text) != 2 * KEY_LEN:
        raise AuthError(f"it does not hold a {KEY_LEN}-byte key ({2 * KEY_LEN} hexadecimal digits on one line)")
    try:
        return bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise AuthError(f"it does not hold a {KEY_LEN}-byte key (found characters that are not "
                        f"hexadecimal digits)") from None


def format_key_text(key: bytes) -> bytes:
    return check_key(key).hex().encode("ascii") + b"\n"


def fingerprint(key: bytes) -> str:
    """A short, non-secret name of a key ("3f2a-9c1b-7d10-e4a8") that both ends can show and compare.

    A hash with its own label, so it reveals nothing usable about the key or its direction keys.
    """
    h = hashlib.sha256(b"myna host key fingerprint\x00" + check_key(key)).hexdigest()[:16]
    return "-".join(h[i:i + 4] for i in range(0, 16, 4))


def direction_key(key: bytes, sender: str) -> bytes:
    if sender not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)} (got {sender!r})")
    return hmac.new(check_key(key), b"myna host link v2 " + sender.encode("ascii"), hashlib.sha256).digest()


def peer_of(role: str) -> str:
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
    return ROLES[1 - ROLES.index(role)]


def compute_tag(dkey: bytes, frame: Frame) -> bytes:
    mac = hmac.new(dkey, _MAC_PREFIX, hashlib.sha256)
    mac.update(_HEADER_FIELDS.pack(frame.version, int(frame.type), frame.seq, len(frame.payload)))
    mac.update(COUNTER.pack(frame.counter))
    mac.update(frame.payload)
    return mac.digest()[:TAG_LEN]


class SendCounter:
    """The sender's counter with write-ahead reservation.

    ``limit`` is what is on disk: every counter ever used is below it. Before the counter
    reaches ``limit``, a new limit (``reservation_needed()``) must be written and
    ``reserved()`` called; ``take()`` refuses otherwise. A crash between reservation and
    use only skips counters. ``floor`` (the engine passes the Unix time in µs) lets a sender
    whose state was lost, but whose clock is right, resume above its old counters.
    """

    def __init__(self, limit: int, floor: int = 0, block: int = BLOCK) -> None:
        if not 0 <= limit <= COUNTER_LIMIT or block < 1:
            raise AuthError("stored send counter out of range")
        self.limit = limit
        self.block = block
        self.next = max(limit, min(max(floor, 0), COUNTER_LIMIT - block), 1)

    def reservation_needed(self) -> int | None:
        """The limit to write ahead before the next ``take()``, or None if still covered."""
        if self.next < self.limit:
            return None
        if self.next + self.block > COUNTER_LIMIT:
            raise AuthError("the send counter is exhausted for this key; generate a new host key")
        return self.next + self.block

    def reserved(self, limit: int) -> None:
        """``limit`` is now durable."""
        self.limit = max(self.limit, limit)

    def take(self) -> int:
        if self.next >= self.limit:
            raise AuthError("no counter reserved: write the reservation before sealing")
        c = self.next
        self.next += 1
        return c


class LinkAuth:
    """Seals what one end sends and checks what it receives.

    ``role`` is this end ("reader" or "host"); ``send_limit``/``peer_hwm`` come from the
    counter store for ``key_id`` (the fingerprint of the key). Holds the two direction keys,
    never the key itself.
    """

    def __init__(self, key: bytes, role: str, *, send_limit: int = 0, peer_hwm: int = 0, floor: int = 0,
                 block: int = BLOCK) -> None:
        self.role = role
        self.key_id = fingerprint(key)
        self._send_key = direction_key(key, role)
        self._recv_key = direction_key(key, peer_of(role))
        self.send = SendCounter(send_limit, floor, block)
        self.peer_hwm = peer_hwm

    def __repr__(self) -> str:  # never show key material
        return f"LinkAuth(role={self.role!r}, key_id={self.key_id!r}, next={self.send.next}, peer_hwm={self.peer_hwm})"

    def seal(self, frame: Frame) -> Frame:
        """``frame`` with the next counter and its tag (the counter must be reserved)."""
        f = dataclasses.replace(frame, counter=self.send.take())
        return dataclasses.replace(f, tag=compute_tag(self._send_key, f))

    def check(self, frame: Frame) -> str | None:
        """None if the peer sent this frame and it is new; else the reason to refuse it."""
        if not hmac.compare_digest(compute_tag(self._recv_key, frame), frame.tag):
            return R_BAD_TAG
        if frame.counter <= self.peer_hwm:
            return R_REPLAY
        return None

    def accept(self, frame: Frame) -> None:
        """The frame passed ``check`` and is acted on: nothing with a counter up to its own is accepted again."""
        self.peer_hwm = max(self.peer_hwm, frame.counter)


__all__ = ["AuthError", "BLOCK", "KEY_LEN", "LinkAuth", "R_BAD_TAG", "R_REPLAY", "SendCounter", "check_key",
           "compute_tag", "direction_key", "fingerprint", "format_key_text", "parse_key_text", "peer_of"]
