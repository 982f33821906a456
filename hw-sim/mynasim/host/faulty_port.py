"""A port wrapper that puts line faults on any host-link port (serial or MQTT).

The daemon's link engine knows nothing of faults; the simulator wraps the virtual host's
port in ``FaultyPort`` and turns its knobs:

* ``deaf(seconds | None)``: everything read is thrown away (no ACK, no answer: the host looks
  dead to the reader while its line stays up). ``None``: until ``hear()``.
* ``corrupt_next(n)``: a byte is flipped in each of the next ``n`` writes, so the frame's CRC
  no longer matches at the reader (line noise).
* ``drop(hold_s)``: the line is closed now, and ``open()`` waits until ``hold_s`` seconds have
  passed before it opens again (a cable pulled and plugged back).
* ``tap``: a callable that sees every chunk written, byte for byte (a line analyser; tests use
  it to capture authenticated frames and replay them).

Thread-safety: the knobs are plain attributes set from the port's own loop (the virtual host
calls them through its loop), and deadlines use ``time.monotonic``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any, Callable

R_DEAF = "bytes read while the simulated host was deaf"


class FaultyPort:
    def __init__(self, inner: Any, *, tap: Callable[[bytes], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.stream = inner.stream
        self.tap = tap
        self._clock = clock
        self._deaf_until: float | None = None
        self._corrupt = 0
        self._held_until = 0.0
        self.faults: Counter[str] = Counter()  # what the simulator did (not line errors)

    # ------------------------------------------------------------ knobs

    def deaf(self, seconds: float | None = None) -> None:
        self._deaf_until = float("inf") if seconds is None else self._clock() + seconds

    def hear(self) -> None:
        self._deaf_until = None

    def is_deaf(self) -> bool:
        if self._deaf_until is None:
            return False
        if self._clock() >= self._deaf_until:
            self._deaf_until = None
            return False
        return True

    def corrupt_next(self, n: int = 1) -> None:
        self._corrupt += n

    def drop(self, hold_s: float = 1.0) -> None:
        """Close the line now; it cannot be opened again for ``hold_s`` seconds."""
        self._held_until = self._clock() + hold_s
        self.faults["dropped"] += 1
        asyncio.ensure_future(self.inner.close())

    # ------------------------------------------------------------ port interface

    @property
    def describe(self) -> str:
        return self.inner.describe

    @property
    def dropped(self) -> Counter[str]:
        """The inner port's drop counts (the engine shows them in status)."""
        return getattr(self.inner, "dropped", None) or Counter()

    async def open(self) -> None:
        hold = self._held_until - self._clock()
        if hold > 0:
            await asyncio.sleep(hold)
        await self.inner.open()

    async def read(self) -> bytes:
        while True:
            data = await self.inner.read()
            if not self.is_deaf():
                return data
            self.faults[R_DEAF] += len(data)

    async def write(self, data: bytes) -> None:
        if self._corrupt > 0:
            self._corrupt -= 1
            b = bytearray(data)
            b[len(b) // 2] ^= 0x5A  # one flipped byte: the CRC no longer matches
            data = bytes(b)
            self.faults["corrupted"] += 1
        if self.tap is not None:
            self.tap(data)
        await self.inner.write(data)

    async def close(self) -> None:
        await self.inner.close()
