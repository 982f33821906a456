"""The 3x4 matrix keypad, scanned through the RPi.GPIO API in its own thread.

Keys are positions 1..12, row-major (docs/architecture.md, "Keys"):
``pos = row * 3 + col + 1``. Each scan drives one row LOW at a time (the others
HIGH) and reads the three column inputs, which have pull-ups: a pressed key
pulls its column LOW while its row is driven. A set of pressed keys only
counts once it has stayed the same for ``debounce_ms`` (contact bounce never
lasts that long); a press is reported when the stable set goes from nothing to
exactly one key. Two or more keys at once (including a matrix "ghost" that a
third key makes appear) report nothing until every key is released again, so
a palm on the pad or a rolled press never types a digit.

Idle, the pad costs nothing: every row is driven LOW and the thread sleeps until a
column input falls (``add_event_detect(col, FALLING)``: an interrupt on the Pi, through
RPi.GPIO's edge thread, or rpi-lgpio's on a Pi 5), because any key then pulls its column
LOW. Woken, it scans at ``scan_hz`` with the usual debounce until every key is up again,
then re-arms. A GPIO driver without edge detection falls back to scanning all the time
(``irq=False``), which is also the reference the idle-CPU benchmark compares against.

The same class runs on the Pi (``import RPi.GPIO as gpio``) and in the
simulator (``myna_drivers.gpio_sim.SimGPIO``), unchanged.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterable

log = logging.getLogger("myna.keypad")


class MatrixKeypad:
    def __init__(self, gpio: Any, rows: Iterable[int], cols: Iterable[int], on_key: Callable[[int], None],
                 scan_hz: int = 200, debounce_ms: int = 20, start: bool = True, irq: bool = True) -> None:
        self.gpio = gpio
        self.rows = tuple(int(r) for r in rows)
        self.cols = tuple(int(c) for c in cols)
        if len(self.cols) != 3 or len(self.rows) != 4:
            raise ValueError(f"the keypad is a 3x4 matrix: need 4 row pins and 3 column pins "
                             f"(got rows={self.rows}, cols={self.cols})")
        if len(set(self.rows + self.cols)) != 7:
            raise ValueError(f"keypad pins must all differ (rows={self.rows}, cols={self.cols})")
        self.on_key = on_key
        self.period = 1.0 / max(1, int(scan_hz))
        self.debounce = max(0, int(debounce_ms)) / 1000.0
        self._stable: frozenset[int] = frozenset()
        self._candidate: frozenset[int] = frozenset()
        self._candidate_since = 0.0
        self._blocked = False  # a multi-key chord is held: wait for all keys up
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by a falling column edge (or close)
        self.irq = bool(irq) and hasattr(gpio, "add_event_detect")
        self.wakeups = 0  # times an edge woke the idle scanner (diagnostics, tests)
        self._setup()
        self._thread = threading.Thread(target=self._run, name="keypad", daemon=True)
        if start:
            self._thread.start()

    # ------------------------------------------------------------ GPIO

    def _setup(self) -> None:
        g = self.gpio
        if hasattr(g, "setwarnings"):
            g.setwarnings(False)
        g.setmode(g.BCM)
        for r in self.rows:
            g.setup(r, g.OUT)
            g.output(r, g.HIGH)
        for c in self.cols:
            g.setup(c, g.IN, pull_up_down=g.PUD_UP)
        if self.irq:
            for c in self.cols:
                g.add_event_detect(c, g.FALLING, callback=self._edge)

    def _edge(self, channel: int) -> None:
        """RPi.GPIO's edge thread (or the sim bus thread): only wake the scanner."""
        self._wake.set()

    def _arm(self) -> bool:
        """Drive every row LOW, so that any key pulls its column LOW and the falling edge wakes
        the thread. True if a key is down already (pressed between the last scan and now)."""
        g = self.gpio
        for r in self.rows:
            g.output(r, g.LOW)
        return any(g.input(c) == g.LOW for c in self.cols)

    def _disarm(self) -> None:
        g = self.gpio
        for r in self.rows:
            g.output(r, g.HIGH)

    def idle(self) -> bool:
        """No key down, none being debounced, no chord waiting for release: nothing to scan for."""
        return not self._stable and not self._candidate and not self._blocked

    def scan(self) -> frozenset[int]:
        """One pass over the matrix: the positions that read pressed now."""
        g = self.gpio
        pressed = set()
        for ri, r in enumerate(self.rows):
            g.output(r, g.LOW)
            try:
                for ci, c in enumerate(self.cols):
                    if g.input(c) == g.LOW:
                        pressed.add(ri * 3 + ci + 1)
            finally:
                g.output(r, g.HIGH)
        return frozenset(pressed)

    # ------------------------------------------------------------ debounce

    def step(self, raw: frozenset[int], now: float) -> int | None:
        """Feed one scan result; returns the position to report, if any (pure logic, testable)."""
        if raw != self._candidate:
            late = self._late_press(now)
            self._candidate = raw
            self._candidate_since = now
            if late is not None:
                return late
        if raw == self._stable or now - self._candidate_since < self.debounce:
            return None
        previous, self._stable = self._stable, raw
        if not raw:
            self._blocked = False
            return None
        if len(raw) > 1:
            self._blocked = True
            return None
        if not previous and not self._blocked:
            return next(iter(raw))
        return None

    def _late_press(self, now: float) -> int | None:
        """A single key seen down once, and found changed only ``debounce`` or more later.

        When the machine is busy (the face engine or the OCR on every core) this thread can
        miss its scans for longer than a short press lasts: it saw the key down once and, at
        its next scan, up again. Contact bounce never lasts the debounce time, so a key seen
        down with that long before the next look was held: count it, rather than lose a
        patient's key. A key seen down for less (a bounce) still does not count.
        """
        c = self._candidate
        if len(c) == 1 and not self._stable and not self._blocked and now - self._candidate_since >= self.debounce:
            self._stable = c  # its release then follows the usual path
            return next(iter(c))
        return None

    def _run(self) -> None:
        from myna_drivers.priority import prefer_this_thread

        prefer_this_thread("the keypad scanner")
        next_t = time.monotonic()
        while not self._stop.is_set():
            if self.irq and self.idle():
                self._sleep_until_a_key()
                if self._stop.is_set():
                    break
                next_t = time.monotonic()
            try:
                pos = self.step(self.scan(), time.monotonic())
            except Exception:  # a GPIO hiccup must not end scanning for good
                log.exception("keypad scan failed")
                pos = None
            if pos is not None:
                try:
                    self.on_key(pos)
                except Exception:
                    log.exception("keypad handler failed for key %s", pos)
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay < 0:
                next_t = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def _sleep_until_a_key(self) -> None:
        try:
            self._wake.clear()
            if not self._arm():
                self._wake.wait()
                self.wakeups += 1
            self._disarm()
        except Exception:  # a GPIO hiccup: scan (and poll) rather than go deaf
            log.exception("keypad: arming the key interrupt failed; scanning instead")
            self._stop.wait(self.period)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        try:
            self.gpio.cleanup(list(self.rows + self.cols))
        except Exception:
            log.exception("keypad GPIO cleanup failed")
