"""A simulated RPi.GPIO for the keypad matrix, driven by hw-sim over the sim bus.

``SimGPIO`` implements the subset of the RPi.GPIO module that
``myna_drivers.keypad.MatrixKeypad`` uses, and models the keypad's wiring:
pressing key ``pos`` connects row wire ``(pos-1)//3`` with column wire
``(pos-1)%3``. Column inputs have pull-ups, so a column reads LOW exactly when
it is connected (through pressed keys, possibly several, as in a real matrix
without diodes, which is what makes ghost keys) to a row that is driven LOW.
hw-sim publishes ``{"dev": "keypad", "pressed": [pos, ...]}`` with the keys
held down now; the daemon's real MatrixKeypad scans this model unchanged.

A press with ``"hold_s"`` (and ``"gap_s"``) is a finger: the keys go down for ``hold_s``
seconds of this process's time and come up by themselves, then nothing for ``gap_s``;
presses that arrive meanwhile wait their turn. This keeps the physics honest when the
daemon is starved: the sim bus delivers messages through a thread of the daemon's own
process, and a press and its release queued behind a busy CPU would otherwise reach the
pins microseconds apart, a key no real finger can press. A real key stays down 80 ms
whatever the CPU is doing; so does this one.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Iterable

from myna_drivers.gpio_api import (BCM, BOARD, BOTH, FALLING, HIGH, IN, LOW, OUT, PUD_DOWN, PUD_OFF, PUD_UP,
                                   RISING)


class SimGPIO:
    BCM, BOARD, OUT, IN, LOW, HIGH = BCM, BOARD, OUT, IN, LOW, HIGH
    PUD_OFF, PUD_DOWN, PUD_UP = PUD_OFF, PUD_DOWN, PUD_UP
    RISING, FALLING, BOTH = RISING, FALLING, BOTH

    def __init__(self, bus_path: str, rows: Iterable[int], cols: Iterable[int]) -> None:
        self.rows = tuple(rows)
        self.cols = tuple(cols)
        self.mode: int | None = None
        self._lock = threading.Lock()
        self._dir: dict[int, int] = {}
        self._pull: dict[int, int] = {}
        self._out: dict[int, int] = {}
        self._pressed: frozenset[int] = frozenset()
        self.cleaned: list[Any] = []
        # edge detection: channel -> (edge, callback), and the level each was last seen at
        self._detect: dict[int, tuple[int, Callable[[int], None] | None]] = {}
        self._level: dict[int, int] = {}
        self._finger: queue.Queue[tuple[frozenset[int], float, float]] | None = None
        if bus_path:
            from myna_drivers.simbus import SimBus

            SimBus.shared(bus_path).subscribe("keypad", self.on_message)

    # ------------------------------------------------------------ sim side

    def on_message(self, msg: dict[str, Any]) -> None:
        """Sim bus handler: ``{"pressed": [pos, ...]}`` is the set held down now."""
        pressed = msg.get("pressed") or []
        keys = [int(p) for p in pressed if isinstance(p, int) or str(p).isdigit()]
        hold = msg.get("hold_s")
        if isinstance(hold, (int, float)) and hold > 0:
            gap = msg.get("gap_s")
            self.press_for(keys, float(hold), float(gap) if isinstance(gap, (int, float)) and gap > 0 else 0.0)
        else:
            self.set_pressed(keys)

    def press_for(self, positions: Iterable[int], hold_s: float, gap_s: float = 0.0) -> None:
        """A finger: these keys down for ``hold_s`` s, then up, then ``gap_s`` s before the next
        queued press (played in order by one thread, in real time)."""
        if self._finger is None:
            self._finger = queue.Queue()
            threading.Thread(target=self._play_finger, name="sim-finger", daemon=True).start()
        self._finger.put((frozenset(positions), hold_s, gap_s))

    def _play_finger(self) -> None:
        assert self._finger is not None
        while True:
            keys, hold_s, gap_s = self._finger.get()
            self.set_pressed(keys)
            time.sleep(hold_s)
            self.set_pressed(())
            if gap_s:
                time.sleep(gap_s)

    def set_pressed(self, positions: Iterable[int]) -> None:
        with self._lock:
            self._pressed = frozenset(p for p in positions if 1 <= p <= 3 * len(self.rows))
        self._fire_edges()

    # ------------------------------------------------------------ RPi.GPIO API

    def setwarnings(self, flag: bool) -> None:
        pass

    def setmode(self, mode: int) -> None:
        self.mode = mode

    def getmode(self) -> int | None:
        return self.mode

    def setup(self, channel: int | Iterable[int], direction: int, pull_up_down: int = PUD_OFF,
              initial: int | None = None) -> None:
        if self.mode is None:
            raise RuntimeError("Please set pin numbering mode using GPIO.setmode(GPIO.BOARD) or GPIO.setmode(GPIO.BCM)")
        for ch in _channels(channel):
            with self._lock:
                self._dir[ch] = direction
                self._pull[ch] = pull_up_down
                if direction == OUT:
                    self._out[ch] = HIGH if initial == HIGH else LOW
                else:
                    self._out.pop(ch, None)

    def output(self, channel: int | Iterable[int], value: int | bool) -> None:
        for ch in _channels(channel):
            with self._lock:
                if self._dir.get(ch) != OUT:
                    raise RuntimeError(f"The GPIO channel {ch} has not been set up as an OUTPUT")
                self._out[ch] = HIGH if value else LOW
        self._fire_edges()

    def input(self, channel: int) -> int:
        with self._lock:
            if self._dir.get(channel) is None:
                raise RuntimeError(f"You must setup() GPIO channel {channel} first")
            if self._dir[channel] == OUT:
                return self._out[channel]
            return LOW if self._pulled_low(channel) else self._idle_level(channel)

    def add_event_detect(self, channel: int, edge: int, callback: Callable[[int], None] | None = None,
                         bouncetime: int | None = None) -> None:
        with self._lock:
            if self._dir.get(channel) != IN:
                raise RuntimeError("You must setup() the GPIO channel as an input first")
            if channel in self._detect:
                raise RuntimeError("Conflicting edge detection already enabled for this GPIO channel")
            self._detect[channel] = (edge, callback)
            self._level[channel] = self._read(channel)

    def remove_event_detect(self, channel: int) -> None:
        with self._lock:
            self._detect.pop(channel, None)
            self._level.pop(channel, None)

    def _fire_edges(self) -> None:
        """Call the callbacks of inputs whose level changed the way they watch (outside the lock,
        like RPi.GPIO's edge thread, which never holds the caller's locks)."""
        calls = []
        with self._lock:
            for ch, (edge, cb) in self._detect.items():
                new, old = self._read(ch), self._level.get(ch)
                self._level[ch] = new
                if old is None or new == old or cb is None:
                    continue
                if edge == BOTH or (edge == FALLING and new == LOW) or (edge == RISING and new == HIGH):
                    calls.append((cb, ch))
        for cb, ch in calls:
            cb(ch)

    def _read(self, channel: int) -> int:
        if self._dir.get(channel) == OUT:
            return self._out.get(channel, LOW)
        return LOW if self._pulled_low(channel) else self._idle_level(channel)

    def cleanup(self, channel: int | Iterable[int] | None = None) -> None:
        with self._lock:
            chans = list(self._dir) if channel is None else list(_channels(channel))
            for ch in chans:
                self._detect.pop(ch, None)
                self._level.pop(ch, None)
                self._dir.pop(ch, None)
                self._pull.pop(ch, None)
                self._out.pop(ch, None)
            self.cleaned.append(None if channel is None else tuple(chans))
            if not self._dir:
                self.mode = None

    # ------------------------------------------------------------ wiring model

    def _idle_level(self, pin: int) -> int:
        return LOW if self._pull.get(pin) == PUD_DOWN else HIGH

    def _pulled_low(self, pin: int) -> bool:
        """Is ``pin`` connected, through pressed keys, to a row output driven LOW?"""
        wires = {("c", i) for i, c in enumerate(self.cols) if c == pin} | \
                {("r", i) for i, r in enumerate(self.rows) if r == pin}
        if not wires:
            return False
        edges = [((p - 1) // 3, (p - 1) % 3) for p in self._pressed]
        seen, todo = set(wires), list(wires)
        while todo:
            kind, i = todo.pop()
            for r, c in edges:
                if c >= len(self.cols) or r >= len(self.rows):
                    continue
                nxt = ("r", r) if (kind == "c" and c == i) else ("c", c) if (kind == "r" and r == i) else None
                if nxt is not None and nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        for kind, i in seen:
            if kind == "r":
                pin_r = self.rows[i]
                if self._dir.get(pin_r) == OUT and self._out.get(pin_r) == LOW:
                    return True
        return False


def _channels(channel: int | Iterable[int]) -> Iterable[int]:
    if isinstance(channel, (list, tuple, set, frozenset)):
        return list(channel)
    return [channel]  # type: ignore[list-item]
