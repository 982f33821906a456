"""Test helpers: a host key, and the far end's sealing and checking of frames without a link."""

from __future__ import annotations

from typing import Any

from mynad.hostlink import auth, codec
from mynad.hostlink.codec import Frame, FrameType
from mynad.hostlink.keyfile import generate_key, write_key

KEY = bytes(range(32))  # the tests' host key (never a real one)


class Peer:
    """Seals frames as ``role`` would (with ``key``), and checks frames sent to it."""

    def __init__(self, role: str = "host", key: bytes = KEY, floor: int = 1) -> None:
        self.auth = auth.LinkAuth(key, role, floor=floor)

    def seal(self, frame: Frame) -> Frame:
        need = self.auth.send.reservation_needed()
        if need is not None:
            self.auth.send.reserved(need)
        return self.auth.seal(frame)

    def frame(self, type_: FrameType, seq: int, obj: Any) -> bytes:
        return codec.encode(self.seal(Frame.of(type_, seq, obj)))

    def data(self, msg: dict[str, Any], seq: int = 7) -> bytes:
        return self.frame(FrameType.DATA, seq, msg)

    def data_raw(self, payload: bytes, seq: int = 1) -> bytes:
        return codec.encode(self.seal(Frame(FrameType.DATA, seq, payload)))


def key_file(folder, key: bytes | None = None):
    """A 0600 key file in ``folder`` (a fresh random key unless given); returns its path."""
    path = folder / "host.key"
    write_key(path, key if key is not None else generate_key(), replace=True)
    return path
