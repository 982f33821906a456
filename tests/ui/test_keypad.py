"""The real MatrixKeypad scanning the simulated GPIO matrix."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time

import pytest

from myna_drivers.gpio_sim import SimGPIO
from myna_drivers.keypad import MatrixKeypad

ROWS = (5, 6, 13, 19)
COLS = (12, 16, 20)


class Keys:
    def __init__(self) -> None:
        self.got: list[int] = []
        self.event = threading.Event()

    def __call__(self, pos: int) -> None:
        self.got.append(pos)
        self.event.set()


def settle(s: float = 0.1) -> None:
    time.sleep(s)


def test_scan_maps_every_position_row_major():
    gpio = SimGPIO("", ROWS, COLS)
    kp = MatrixKeypad(gpio, ROWS, COLS, on_key=lambda p: None, start=False)
    assert kp.scan() == frozenset()
    for pos in range(1, 13):
        gpio.set_pressed([pos])
        assert kp.scan() == {pos}
    gpio.set_pressed([])
    kp.close()


def test_ghost_key_appears_electrically_and_is_ignored():
    gpio = SimGPIO("", ROWS, COLS)
    kp = MatrixKeypad(gpio, ROWS, COLS, on_key=lambda p: None, start=False)
    gpio.set_pressed([1, 2, 4])  # three corners of a rectangle: 5 reads pressed too
    assert kp.scan() == {1, 2, 4, 5}
    kp.close()


def test_debounce_logic_is_pure_and_exact():
    gpio = SimGPIO("", ROWS, COLS)
    kp = MatrixKeypad(gpio, ROWS, COLS, on_key=lambda p: None, debounce_ms=20, start=False)
    f = frozenset
    out = []
    t = 0.0
    # bounce: 5 flickers every 3 ms (shorter than the debounce), then holds
    for i in range(6):
        out.append(kp.step(f({5}) if i % 2 == 0 else f(), t))
        t += 0.003
    for _ in range(10):
        out.append(kp.step(f({5}), t))
        t += 0.005
    # release with bounce, then a chord (two keys), then release, then a clean press
    for i in range(4):
        out.append(kp.step(f() if i % 2 == 0 else f({5}), t))
        t += 0.003
    for _ in range(10):
        out.append(kp.step(f(), t))
        t += 0.005
    for _ in range(10):
        out.append(kp.step(f({1, 3}), t))
        t += 0.005
    for _ in range(10):  # one key of the chord released: still no press until all are up
        out.append(kp.step(f({1}), t))
        t += 0.005
    for _ in range(10):
        out.append(kp.step(f(), t))
        t += 0.005
    for _ in range(10):
        out.append(kp.step(f({12}), t))
        t += 0.005
    assert [x for x in out if x is not None] == [5, 12]


def test_a_press_seen_once_by_a_starved_scanner_still_counts():
    """Under load the scan thread may look only once during a whole press (issue: a key lost while
    the card photo was embedded). Seen down once and up again a debounce time or more later: one
    press. Seen down for less than that: a bounce, nothing."""
    gpio = SimGPIO("", ROWS, COLS)
    kp = MatrixKeypad(gpio, ROWS, COLS, on_key=lambda p: None, debounce_ms=20, start=False)
    f = frozenset
    assert kp.step(f(), 0.0) is None
    assert kp.step(f({7}), 0.010) is None      # the only scan during the press...
    assert kp.step(f(), 0.130) == 7            # ...the next one comes 120 ms later: the key was held
    assert [kp.step(f(), 0.130 + i * 0.005) for i in range(1, 8)] == [None] * 7
    assert kp.step(f({4}), 0.200) is None
    assert kp.step(f(), 0.210) is None         # 10 ms: shorter than any press, a bounce
    assert [kp.step(f(), 0.210 + i * 0.005) for i in range(1, 8)] == [None] * 7
    assert kp.step(f({1, 2}), 0.300) is None   # two keys seen once: never a digit
    assert kp.step(f(), 0.450) is None


def test_each_key_once_through_the_thread():
    gpio = SimGPIO("", ROWS, COLS)
    keys = Keys()
    kp = MatrixKeypad(gpio, ROWS, COLS, on_key=keys, scan_hz=400, debounce_ms=20)
    try:
        for pos in range(1, 13):
            gpio.on_message({"dev": "keypad", "pressed": [pos]})
            settle(0.08)
            gpio.on_message({"dev": "keypad", "pressed": []})
            settle(0.08)
        assert keys.got == list(range(1, 13))
    finally:
        kp.close()
    assert gpio.cleaned and set(gpio.cleaned[-1]) == set(ROWS + COLS)
    assert not kp._thread.is_alive()


def test_presses_that_reach_a_starved_daemon_together_are_still_pressed_for_their_time():
    """The lost key of a CI run (test_languages, 2026-12-02): with every core busy embedding the
    card photo, the sim bus thread delivered a press and its release back to back, so the key
    was down for microseconds and no scan saw it. A press now carries its hold time and the key
    model holds it down that long itself: two presses and releases queued behind a busy CPU
    still give both keys, in order."""
    gpio = SimGPIO("", ROWS, COLS)
    keys = Keys()
    kp = MatrixKeypad(gpio, ROWS, COLS, on_key=keys, scan_hz=400, debounce_ms=20)
    try:
        for pos in (2, 7):  # delivered at once, as a starved bus thread hands them over
            gpio.on_message({"dev": "keypad", "pressed": [pos], "hold_s": 0.08, "gap_s": 0.08})
        deadline = time.monotonic() + 10
        while len(keys.got) < 2 and time.monotonic() < deadline:
            keys.event.wait(0.1)
            keys.event.clear()
        assert keys.got == [2, 7]
    finally:
        kp.close()


def test_bounce_shorter_than_debounce_gives_one_press():
    gpio = SimGPIO("", ROWS, COLS)
    keys = Keys()
    kp = MatrixKeypad(gpio, ROWS, COLS, on_key=keys, scan_hz=500, debounce_ms=30)
    try:
        for i in range(8):  # contact chatter, 2 ms per state, 16 ms in all
            gpio.set_pressed([7] if i % 2 == 0 else [])
            time.sleep(0.002)
        gpio.set_pressed([7])
        settle(0.12)
        for i in range(8):
            gpio.set_pressed([] if i % 2 == 0 else [7])
            time.sleep(0.002)
        gpio.set_pressed([])
        settle(0.12)
        assert keys.got == [7]
        gpio.set_pressed([1, 5])  # two at once: nothing
        settle(0.12)
        gpio.set_pressed([])
        settle(0.12)
        assert keys.got == [7]
    finally:
        kp.close()


def test_bad_pin_config_is_refused():
    gpio = SimGPIO("", ROWS, COLS)
    with pytest.raises(ValueError):
        MatrixKeypad(gpio, ROWS[:3], COLS, on_key=lambda p: None, start=False)
    with pytest.raises(ValueError):
        MatrixKeypad(gpio, (5, 6, 13, 12), COLS, on_key=lambda p: None, start=False)


def test_over_a_real_sim_bus_socket():
    """hw-sim's message on a Unix socket reaches the keypad through SimBus."""
    path = os.path.join(tempfile.mkdtemp(prefix="mynakp"), "bus.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    conns: list[socket.socket] = []

    def accept():
        conn, _ = server.accept()
        conns.append(conn)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    gpio = SimGPIO(path, ROWS, COLS)
    keys = Keys()
    kp = MatrixKeypad(gpio, ROWS, COLS, on_key=keys, scan_hz=400, debounce_ms=20)
    try:
        t.join(5)
        assert conns, "SimBus did not connect"
        conn = conns[0]
        for pressed in ([9], [], [11], []):
            conn.sendall((json.dumps({"dev": "keypad", "pressed": pressed}) + "\n").encode())
            settle(0.1)
        assert keys.got == [9, 11]
    finally:
        kp.close()
        from myna_drivers.simbus import SimBus

        SimBus.shared(path).close()  # our side first: a reset from the far side kills SimBus's thread
        time.sleep(0.1)
        for c in conns:
            c.close()
        server.close()


class ArmWatch(SimGPIO):
    """The simulated GPIO, noting when the scanner drives every row LOW and sleeps (armed)."""

    def __init__(self) -> None:
        super().__init__("", ROWS, COLS)
        self.armed = threading.Event()
        self.inputs = 0

    def output(self, channel, value) -> None:
        super().output(channel, value)
        with self._lock:
            all_low = all(self._out.get(r) == 0 for r in ROWS)
        if all_low:
            self.armed.set()
        else:
            self.armed.clear()

    def input(self, channel):
        self.inputs += 1
        return super().input(channel)


def test_idle_pad_sleeps_until_a_column_falls_then_scans_and_sleeps_again():
    """Issue #12: the idle daemon spent 3.6 % of a core scanning a pad nobody touched.
    Idle, the rows are driven LOW and the thread waits for a falling column edge."""
    gpio = ArmWatch()
    keys = Keys()
    kp = MatrixKeypad(gpio, ROWS, COLS, on_key=keys, debounce_ms=20)
    try:
        assert kp.irq
        assert gpio.armed.wait(10)  # idle: armed, not scanning
        inputs = gpio.inputs
        for pos in (5, 12, 1):
            keys.event.clear()
            gpio.set_pressed([pos])  # the falling edge wakes the scanner
            assert keys.event.wait(10)
            gpio.armed.clear()
            gpio.set_pressed([])
            assert gpio.armed.wait(10)  # released and debounced: asleep again
        assert keys.got == [5, 12, 1]
        assert kp.wakeups == 3 and gpio.inputs > inputs
    finally:
        kp.close()


def test_a_key_already_down_when_arming_is_not_missed():
    gpio = SimGPIO("", ROWS, COLS)
    keys = Keys()
    gpio.set_pressed([7])  # held before the scanner ever armed
    kp = MatrixKeypad(gpio, ROWS, COLS, on_key=keys, debounce_ms=20)
    try:
        assert keys.event.wait(10) and keys.got == [7]
    finally:
        kp.close()


def test_polling_mode_for_gpio_without_edge_detection():
    kp = MatrixKeypad(SimGPIO("", ROWS, COLS), ROWS, COLS, on_key=lambda p: None, start=False, irq=False)
    assert not kp.irq
    kp.close()
