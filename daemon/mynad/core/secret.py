"""The PIN buffer: the only place a PIN digit ever lives, and only until VERIFY.

Why a class and not a ``str``: Python strings are immutable and interned copies
linger in memory; a ``bytearray`` can be overwritten in place. The class also
refuses every way a value usually leaks (``repr``, ``str``, pickling, equality),
so a PIN cannot reach a log line, an exception message or a state dump by accident.
"""

from __future__ import annotations

PIN_LENGTH = 4


class PinBuffer:
    __slots__ = ("_buf", "_len")

    def __init__(self, capacity: int = PIN_LENGTH) -> None:
        self._buf = bytearray(capacity)
        self._len = 0

    def __len__(self) -> int:
        return self._len

    @property
    def full(self) -> bool:
        return self._len == len(self._buf)

    def push(self, digit: int) -> None:
        if not 0 <= digit <= 9:
            raise ValueError("not a digit")
        if self.full:
            raise ValueError("PIN buffer full")
        self._buf[self._len] = 0x30 + digit
        self._len += 1

    def pop(self) -> None:
        if self._len:
            self._len -= 1
            self._buf[self._len] = 0

    def wipe(self) -> None:
        for i in range(len(self._buf)):
            self._buf[i] = 0
        self._len = 0

    def take_ascii(self) -> bytearray:
        """Copy out the ASCII digits for the VERIFY APDU and wipe this buffer.

        The caller owns the returned bytearray and must overwrite it after use.
        """
        with memoryview(self._buf) as view:  # a slice of the bytearray itself would be a second copy
            out = bytearray(view[: self._len])
        self.wipe()
        return out

    def __repr__(self) -> str:
        return f"<PinBuffer {self._len} digit(s), hidden>"

    __str__ = __repr__

    def __reduce__(self):  # pickling would copy the digits
        raise TypeError("a PIN buffer cannot be pickled")

    def __eq__(self, other: object) -> bool:  # no comparisons that could be timed or logged
        return other is self

    __hash__ = object.__hash__


def wipe(buf: bytearray) -> None:
    """Overwrite a bytearray that held secret bytes."""
    for i in range(len(buf)):
        buf[i] = 0
