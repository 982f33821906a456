"""CdevGPIO, the RPi.GPIO API over the GPIO character device (myna_drivers.gpio_cdev).

There is no /dev/gpiochip off a Pi (and no gpio-sim module here), so the adapter runs against
``FakeGpiod``: the part of libgpiod v2's Python API that it uses, with the kernel's semantics
(one holder per line, EBUSY otherwise; edges queued per request and its fd readable while any
are queued; ``reconfigure_lines`` resetting lines it is not given; a read on an empty request
would block, which the fake turns into a test failure). The data types (LineSettings, Value,
Direction, Bias, Edge, EdgeEvent, ChipInfo) are gpiod's own. Behind the lines is a 3x4 keypad
matrix with the Pi's pull-ups, so the real MatrixKeypad can be driven on top.

Every wait is for an event or a condition (with a generous timeout that only fails a hang).
"""

from __future__ import annotations

import errno
import os
import platform
import queue
import select
import threading
from collections import deque
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest

gpiod = pytest.importorskip("gpiod")  # pinned in [pi] and [test]: its types are the fake's

from myna_drivers.gpio_cdev import (  # noqa: E402
    BCM, BOARD, BOTH, FALLING, HIGH, IN, LOW, OUT, PUD_DOWN, PUD_OFF, PUD_UP, RISING,
    CdevGPIO, GpioChipNotFound, GpioLineBusy, GpioPermissionDenied, GpioUsageError, find_header_chip,
)
from myna_drivers.indicators import GpioIndicators  # noqa: E402
from myna_drivers.keypad import MatrixKeypad  # noqa: E402
from mynad.config import ConfigError, IndicatorSection, parse_config  # noqa: E402

Value, Direction, Bias, Edge = gpiod.line.Value, gpiod.line.Direction, gpiod.line.Bias, gpiod.line.Edge
ROWS = (5, 6, 13, 19)
COLS = (12, 16, 20)
WAIT = 5.0  # only a hang reaches this


# --------------------------------------------------------------------------- the fake kernel + gpiod


class Board:
    """The lines of one chip and what is wired to them: a 3x4 key matrix on ROWS x COLS.

    A column input reads LOW when a pressed key joins it to a row driven LOW, else its bias
    decides (pull-up HIGH, pull-down or none LOW). Any change re-evaluates every input, and an
    input whose level changed the way its request watches queues an edge event, as the kernel.
    """

    def __init__(self, num_lines: int = 54) -> None:
        self.num_lines = num_lines
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified on every line write / key change
        self.holder: dict[int, tuple[str, Any]] = {}  # offset -> (consumer, FakeRequest or None)
        self.settings: dict[int, Any] = {}
        self.out: dict[int, bool] = {}
        self.level: dict[int, bool] = {}
        self.pressed: frozenset[int] = frozenset()
        self.writes: dict[int, list[bool]] = {}
        self.seqno = 0

    def press(self, *positions: int) -> None:
        with self.lock:
            self.pressed = frozenset(positions)
            self._update()

    def _input_level(self, off: int) -> bool:
        if off in COLS:
            ci = COLS.index(off)
            for p in self.pressed:
                r, c = ROWS[(p - 1) // 3], (p - 1) % 3
                if c == ci and self._is_output(r) and not self.out.get(r, False):
                    return False
        return self.settings[off].bias == Bias.PULL_UP

    def _is_output(self, off: int) -> bool:
        s = self.settings.get(off)
        return s is not None and s.direction == Direction.OUTPUT

    def read(self, off: int) -> bool:
        return self.out.get(off, False) if self._is_output(off) else self._input_level(off)

    def _update(self) -> None:
        for off, s in list(self.settings.items()):
            if s.direction != Direction.INPUT:
                continue
            new, old = self._input_level(off), self.level.get(off)
            self.level[off] = new
            if old is None or new == old or s.edge_detection == Edge.NONE:
                continue
            if s.edge_detection == Edge.BOTH or (s.edge_detection == Edge.RISING) == new:
                req = self.holder[off][1]
                self.seqno += 1
                kind = (gpiod.EdgeEvent.Type.RISING_EDGE if new else gpiod.EdgeEvent.Type.FALLING_EDGE).value
                req._queue(gpiod.EdgeEvent(kind, 0, off, self.seqno, self.seqno))
        self.changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, WAIT), f"timed out waiting for {what}"


class FakeRequest:
    """gpiod.LineRequest: an eventfd stands in for the request's fd (readable while events wait)."""

    def __init__(self, board: Board, offsets: list[int]) -> None:
        self.board, self.offsets = board, offsets
        self._events: deque[Any] = deque()
        self._fd: int | None = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self.reads = 0

    def _check(self) -> None:
        if self._fd is None:
            raise gpiod.RequestReleasedError()

    def _queue(self, ev: Any) -> None:
        if not self._events:
            os.eventfd_write(self._fd, 1)
        self._events.append(ev)

    @property
    def fd(self) -> int:
        self._check()
        return self._fd  # type: ignore[return-value]

    def fileno(self) -> int:
        return self.fd

    def get_value(self, off: int) -> Any:
        self._check()
        with self.board.lock:
            return Value.ACTIVE if self.board.read(off) else Value.INACTIVE

    def set_value(self, off: int, value: Any) -> None:
        self._check()
        with self.board.lock:
            if not self.board._is_output(off):
                raise PermissionError(errno.EPERM, "Operation not permitted")  # the kernel's answer
            self.board.out[off] = value == Value.ACTIVE
            self.board.writes.setdefault(off, []).append(value == Value.ACTIVE)
            self.board._update()

    def reconfigure_lines(self, config: dict) -> None:
        self._check()
        with self.board.lock:
            given = {off: s for off, s in config.items()}
            for off in self.offsets:  # libgpiod: a line not given gets default settings
                self.board._apply(off, given.get(off) or gpiod.LineSettings())
            self.board._update()

    def wait_edge_events(self, timeout: float | timedelta | None = None) -> bool:
        self._check()
        if isinstance(timeout, timedelta):
            timeout = timeout.total_seconds()
        p = select.poll()
        p.register(self._fd, select.POLLIN)
        return bool(p.poll(None if timeout is None else int(timeout * 1000)))

    def read_edge_events(self, max_events: int | None = None) -> list[Any]:
        self._check()
        with self.board.lock:
            assert self._events, "read_edge_events on a request with no event queued would block forever"
            n = len(self._events) if max_events is None else min(max_events, len(self._events))
            out = [self._events.popleft() for _ in range(n)]
            if not self._events:
                os.eventfd_read(self._fd)
            self.reads += 1
            return out

    def release(self) -> None:
        if self._fd is None:
            return
        with self.board.lock:
            for off in self.offsets:
                self.board.holder.pop(off, None)
            os.close(self._fd)
            self._fd = None


class FakeChip:
    def __init__(self, gp: "FakeGpiod", path: str) -> None:
        if path in gp.denied:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        if path not in gp.chips:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        self.gp, self.path, self.label = gp, path, gp.chips[path]
        self.open = True
        gp.open_chips.append(self)

    def __enter__(self) -> "FakeChip":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _check(self) -> None:
        if not self.open:
            raise gpiod.ChipClosedError()

    def close(self) -> None:
        self.open = False

    def get_info(self) -> Any:
        self._check()
        return gpiod.ChipInfo(os.path.basename(self.path), self.label, self.gp.board.num_lines)

    def get_line_info(self, off: int) -> Any:
        self._check()
        held = self.gp.board.holder.get(off)
        return SimpleNamespace(offset=off, used=held is not None, consumer=held[0] if held else "")

    def request_lines(self, config: dict, consumer: str | None = None, event_buffer_size: int | None = None,
                      output_values: dict | None = None) -> FakeRequest:
        self._check()
        b = self.gp.board
        with b.lock:
            offs = [off for off in config]
            for off in offs:
                if not 0 <= off < b.num_lines:
                    raise ValueError(f"invalid offset {off}")
                if off in b.holder:
                    raise OSError(errno.EBUSY, "Device or resource busy")
            req = FakeRequest(b, offs)
            for off in offs:
                b.holder[off] = (consumer or "?", req)
                b._apply(off, config[off] or gpiod.LineSettings())
            b._update()
            self.gp.requests.append(req)
            return req


def _apply(self: Board, off: int, s: Any) -> None:
    old = self.settings.get(off)
    if s.direction == Direction.AS_IS and old is not None:
        s = gpiod.LineSettings(**{**s.__dict__, "direction": old.direction})
    if s.bias == Bias.AS_IS and old is not None:
        s = gpiod.LineSettings(**{**s.__dict__, "bias": old.bias})
    self.settings[off] = s
    if s.direction == Direction.OUTPUT:
        self.out[off] = s.output_value == Value.ACTIVE
    else:
        self.level[off] = self._input_level(off)  # edge detection starts from the current level


Board._apply = _apply  # type: ignore[attr-defined]


class FakeGpiod:
    """The module: ``Chip``, ``is_gpiochip_device``, ``LineSettings``, ``line`` (gpiod's own types)."""

    def __init__(self, chips: dict[str, str] | None = None, denied: tuple[str, ...] = ()) -> None:
        self.board = Board()
        self.chips = chips if chips is not None else {"/dev/gpiochip0": "pinctrl-bcm2711"}
        self.denied = set(denied)
        self.open_chips: list[FakeChip] = []
        self.requests: list[FakeRequest] = []
        self.line = gpiod.line
        self.LineSettings = gpiod.LineSettings

    def Chip(self, path: str) -> FakeChip:  # noqa: N802
        return FakeChip(self, path)

    def is_gpiochip_device(self, path: str) -> bool:
        return path in self.chips or path in self.denied


def blocked_in_epoll_without_timeout(tid: int) -> bool | None:
    """Is thread ``tid`` inside epoll_wait/epoll_pwait with an infinite timeout right now?
    (None: the kernel does not show this process's syscalls here.)"""
    numbers = {"x86_64": {232: 3, 281: 3}, "aarch64": {22: 3}}.get(platform.machine())
    try:
        fields = Path(f"/proc/self/task/{tid}/syscall").read_text().split()
    except OSError:
        return None
    if numbers is None or not fields or not fields[0].isdigit():
        return None if numbers is None else False
    nr = int(fields[0])
    if nr not in numbers:
        return False
    return int(fields[1 + numbers[nr]], 16) & 0xFFFFFFFF == 0xFFFFFFFF  # timeout -1


def wait_until_blocked(gpio: CdevGPIO) -> int:
    """Wait until the edge thread sits in epoll_wait(-1); returns its wake-up count then."""
    edges = gpio.edge_thread
    assert edges is not None
    done = threading.Event()
    for _ in range(20000):  # each pass waits on the thread's own "about to block" event
        assert edges.parked.wait(WAIT), "the edge thread never went back to waiting"
        state = blocked_in_epoll_without_timeout(edges.native_id or 0)
        if state is None:
            pytest.skip("/proc/<tid>/syscall is not readable here")
        if state:
            return edges.wakeups
        done.wait(0.0005)  # between "parked" and the syscall itself: let it get there
    raise AssertionError("the edge thread is not blocked in epoll_wait with no timeout")


@pytest.fixture()
def fake() -> FakeGpiod:
    return FakeGpiod()


@pytest.fixture()
def gpio(fake: FakeGpiod):
    g = CdevGPIO("/dev/gpiochip0", api=fake)
    yield g
    g.cleanup()


# --------------------------------------------------------------------------- finding the chip


def _devdir(tmp_path: Path, names: list[str]) -> str:
    for n in names:
        (tmp_path / n).touch()
    return str(tmp_path)


def test_the_header_chip_is_found_by_its_label_not_its_number(tmp_path):
    d = _devdir(tmp_path, ["gpiochip0", "gpiochip4", "gpiochip10", "gpiochip11"])
    # a Pi 5 on an older kernel: the SoC's own chips first, RP1 (the header) as gpiochip4
    fake = FakeGpiod({f"{d}/gpiochip0": "gpio-brcmstb@107d508500", f"{d}/gpiochip10": "gpio-brcmstb@107d517c00",
                      f"{d}/gpiochip11": "7c000000.gpio", f"{d}/gpiochip4": "pinctrl-rp1"})
    assert find_header_chip(fake, d) == f"{d}/gpiochip4"
    g = CdevGPIO(api=fake, dev_dir=d)
    assert g.chip_path == f"{d}/gpiochip4"
    g.cleanup()
    fake4 = FakeGpiod({f"{d}/gpiochip0": "pinctrl-bcm2711", f"{d}/gpiochip4": "raspberrypi-exp-gpio"})
    assert find_header_chip(fake4, d) == f"{d}/gpiochip0"  # a Pi 4


def test_no_header_chip_is_one_plain_sentence(tmp_path):
    d = _devdir(tmp_path, ["gpiochip0"])
    with pytest.raises(GpioChipNotFound) as e:
        CdevGPIO(api=FakeGpiod({f"{d}/gpiochip0": "gpio-mockup-A"}), dev_dir=d)
    assert "40-pin header" in e.value.message and "gpiochip0 (gpio-mockup-A)" in e.value.message
    with pytest.raises(GpioChipNotFound, match="found: none"):
        find_header_chip(FakeGpiod({}), str(tmp_path / "empty"))


def test_a_chip_it_may_not_open_says_which_group(tmp_path):
    d = _devdir(tmp_path, ["gpiochip0"])
    with pytest.raises(GpioPermissionDenied, match="gpio group"):
        find_header_chip(FakeGpiod({}, denied=(f"{d}/gpiochip0",)), d)
    with pytest.raises(GpioPermissionDenied, match="gpio group"):
        CdevGPIO(f"{d}/gpiochip0", api=FakeGpiod({}, denied=(f"{d}/gpiochip0",)))


def test_a_busy_line_names_its_holder(fake, gpio):
    other = FakeChip(fake, "/dev/gpiochip0").request_lines({18: None}, consumer="pwm-overlay")
    gpio.setmode(BCM)
    with pytest.raises(GpioLineBusy) as e:
        gpio.setup(18, OUT)
    assert "GPIO 18" in e.value.message and "'pwm-overlay'" in e.value.message
    assert isinstance(e.value, RuntimeError)  # as RPi.GPIO's errors are
    other.release()
    gpio.setup(18, OUT)


# --------------------------------------------------------------------------- the RPi.GPIO API


def test_setup_output_input_follow_rpi_gpio(fake, gpio):
    b = fake.board
    with pytest.raises(GpioUsageError, match="setmode"):
        gpio.setup(5, OUT)
    with pytest.raises(GpioUsageError, match="BCM"):
        gpio.setmode(BOARD)
    gpio.setwarnings(False)
    gpio.setmode(BCM)
    assert gpio.getmode() == BCM
    gpio.setup([5, 6], OUT, initial=HIGH)
    assert b.settings[5].direction == Direction.OUTPUT and b.out[5] and b.out[6]
    assert b.holder[5][0] == "myna-reader"
    gpio.output(5, LOW)
    gpio.output([5, 6], [HIGH, LOW])
    assert (b.out[5], b.out[6]) == (True, False)
    assert gpio.input(5) == HIGH  # an output reads back its level
    gpio.setup(12, IN, pull_up_down=PUD_UP)
    gpio.setup(16, IN, pull_up_down=PUD_DOWN)
    gpio.setup(20, IN)
    assert [b.settings[c].bias for c in COLS] == [Bias.PULL_UP, Bias.PULL_DOWN, Bias.DISABLED]
    assert (gpio.input(12), gpio.input(16)) == (HIGH, LOW)
    with pytest.raises(GpioUsageError, match="OUTPUT"):
        gpio.output(12, HIGH)
    with pytest.raises(GpioUsageError, match="setup"):
        gpio.input(21)
    with pytest.raises(GpioUsageError, match="not valid for outputs"):
        gpio.setup(21, OUT, pull_up_down=PUD_UP)
    with pytest.raises(GpioUsageError, match="does not exist"):
        gpio.setup(99, IN)
    gpio.setup(5, IN, pull_up_down=PUD_UP)  # set up again: the same request, reconfigured
    assert b.settings[5].direction == Direction.INPUT and len([r for r in fake.requests if 5 in r.offsets]) == 1


def test_edges_call_back_once_each_and_bouncetime_is_the_kernel_debounce(fake, gpio):
    b = fake.board
    gpio.setmode(BCM)
    gpio.setup(ROWS, OUT, initial=LOW)
    gpio.setup(COLS, IN, pull_up_down=PUD_UP)
    got: queue.Queue[int] = queue.Queue()
    gpio.add_event_detect(12, FALLING, callback=got.put, bouncetime=5)
    gpio.add_event_detect(16, BOTH, callback=got.put)
    assert b.settings[12].edge_detection == Edge.FALLING
    assert b.settings[12].debounce_period == timedelta(milliseconds=5)
    assert b.settings[12].bias == Bias.PULL_UP  # edge detection keeps the pull
    with pytest.raises(GpioUsageError, match="Conflicting"):
        gpio.add_event_detect(12, RISING, callback=got.put)
    with pytest.raises(GpioUsageError, match="input"):
        gpio.add_event_detect(5, FALLING, callback=got.put)
    b.press(1)  # row 5 (LOW) joins column 12: a falling edge
    assert got.get(timeout=WAIT) == 12
    b.press()  # rising on 12: not watched
    b.press(2)  # column 16 falls
    assert got.get(timeout=WAIT) == 16
    b.press()
    assert got.get(timeout=WAIT) == 16  # BOTH: its rise too
    assert got.empty()
    gpio.remove_event_detect(12)
    assert b.settings[12].edge_detection == Edge.NONE and b.settings[12].bias == Bias.PULL_UP
    b.press(1)  # no longer watched: nothing queued, no callback
    b.press(2)
    assert got.get(timeout=WAIT) == 16  # the thread is alive and 12 said nothing before this
    assert got.empty()


def test_the_idle_edge_thread_sleeps_in_the_kernel_without_a_timeout(fake, gpio):
    b = fake.board
    gpio.setmode(BCM)
    gpio.setup(ROWS, OUT, initial=LOW)
    gpio.setup(COLS, IN, pull_up_down=PUD_UP)
    got: queue.Queue[int] = queue.Queue()
    for c in COLS:
        gpio.add_event_detect(c, FALLING, callback=got.put)
    edges = gpio.edge_thread
    assert edges is not None
    before = wait_until_blocked(gpio)
    # GPIO traffic that makes no watched edge wakes nobody
    for _ in range(200):
        gpio.output(ROWS, HIGH)
        gpio.output(ROWS, LOW)
        assert gpio.input(12) == HIGH
    assert wait_until_blocked(gpio) == before
    b.press(5)  # row 6 / column 16
    assert got.get(timeout=WAIT) == 16
    after = wait_until_blocked(gpio)
    assert after - before == 1 and edges.edges == 1  # one edge, one wake-up, and asleep again


def test_cleanup_wakes_the_edge_thread_releases_every_line_and_closes_the_chip(fake, gpio):
    gpio.setmode(BCM)
    gpio.setup(COLS, IN, pull_up_down=PUD_UP)
    gpio.setup(23, OUT, initial=HIGH)
    gpio.add_event_detect(12, FALLING, callback=lambda ch: None)
    edges = gpio.edge_thread
    assert edges is not None
    wait_until_blocked(gpio)
    fds = [r.fd for r in fake.requests]
    gpio.cleanup([23])  # some channels: the rest stay held, the thread keeps waiting
    assert 23 not in fake.board.holder and fake.board.settings[23].direction == Direction.INPUT
    assert edges.is_alive() and gpio.getmode() == BCM
    gpio.cleanup()
    assert not edges.is_alive() and gpio.edge_thread is None
    assert fake.board.holder == {} and not any(c.open for c in fake.open_chips)
    assert gpio.getmode() is None
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)
    gpio.setmode(BCM)  # usable again: the chip reopens on the next setup
    gpio.setup(12, IN, pull_up_down=PUD_UP)
    assert fake.board.holder[12][0] == "myna-reader"


def test_cleanup_with_an_edge_in_flight_does_not_wait_on_the_edge_thread(fake, gpio, caplog):
    """Releasing the rows while a key is held makes a column rise during cleanup itself: the edge
    thread wakes and wants the lock that cleanup holds; it must be stopped after the lock is let go."""
    gpio.setmode(BCM)
    gpio.setup(ROWS, OUT, initial=LOW)
    gpio.setup(COLS, IN, pull_up_down=PUD_UP)
    got: queue.Queue[int] = queue.Queue()
    gpio.add_event_detect(16, BOTH, callback=got.put)
    fake.board.press(2)
    assert got.get(timeout=WAIT) == 16
    edges = gpio.edge_thread
    assert edges is not None
    gpio.cleanup()
    assert not edges.is_alive()
    assert not [r for r in caplog.records if "did not stop" in r.getMessage()]


def test_a_failing_callback_does_not_end_the_edge_thread(fake, gpio):
    gpio.setmode(BCM)
    gpio.setup(ROWS, OUT, initial=LOW)
    gpio.setup(COLS, IN, pull_up_down=PUD_UP)
    got: queue.Queue[int] = queue.Queue()

    def bad(ch: int) -> None:
        raise RuntimeError("handler bug")

    gpio.add_event_detect(12, FALLING, callback=bad)
    gpio.add_event_detect(16, FALLING, callback=got.put)
    fake.board.press(1)
    fake.board.press(1, 2)
    assert got.get(timeout=WAIT) == 16


def test_pwm_toggles_while_sounding_and_holds_still_when_silent(fake, gpio):
    b = fake.board
    gpio.setmode(BCM)
    gpio.setup(18, OUT, initial=LOW)
    pwm = gpio.PWM(18, 2000)
    with pytest.raises(GpioUsageError, match="already exists"):
        gpio.PWM(18, 1000)
    pwm.start(0)
    assert not pwm.sounding
    pwm.ChangeFrequency(1000)
    pwm.ChangeDutyCycle(50)
    b.wait_for(lambda: len(b.writes.get(18, [])) >= 20, "the buzzer line to toggle")
    w = b.writes[18]
    assert any(w) and not all(w)
    pwm.ChangeDutyCycle(0)
    b.wait_for(lambda: not b.out[18], "the buzzer line to fall silent")
    assert not pwm.sounding
    pwm.stop()
    assert not b.out[18]
    with pytest.raises(GpioUsageError):
        pwm.ChangeDutyCycle(101)


# --------------------------------------------------------------------------- the real drivers on top


def test_keypad_on_cdev_wakes_on_a_column_edge_reports_once_and_sleeps_again(fake):
    b = fake.board
    gpio = CdevGPIO("/dev/gpiochip0", api=fake)
    keys: queue.Queue[int] = queue.Queue()
    kp = MatrixKeypad(gpio, ROWS, COLS, on_key=keys.put)
    try:
        assert [b.settings[c].edge_detection for c in COLS] == [Edge.FALLING] * 3
        armed = lambda: all(not b.out[r] for r in ROWS)  # noqa: E731 (every row LOW: waiting for a key)
        b.wait_for(armed, "the keypad to arm")
        asleep = wait_until_blocked(gpio)
        assert kp.wakeups == 0
        b.press(8)  # row 13, column 16
        assert keys.get(timeout=WAIT) == 8
        assert kp.wakeups == 1
        b.press()
        b.wait_for(lambda: armed() and kp.idle(), "the keypad to re-arm after the release")
        woke = wait_until_blocked(gpio)
        assert woke > asleep  # it woke for the press (and the scans' own column edges)...
        assert keys.empty()  # ...and the key was reported once
        # idle again: with no key down nothing makes an edge, and the thread stays asleep
        b.wait_for(lambda: armed() and kp.idle(), "the keypad to stay armed")
        assert wait_until_blocked(gpio) == woke
        b.press(12)
        assert keys.get(timeout=WAIT) == 12
        b.press()
        b.wait_for(lambda: armed() and kp.idle(), "the keypad to re-arm")
    finally:
        kp.close()
    assert fake.board.holder == {} and gpio.edge_thread is None  # close() released the lines


def test_gpio_indicators_on_cdev_sound_light_and_release(fake):
    b = fake.board
    gpio = CdevGPIO("/dev/gpiochip0", api=fake)
    ind = GpioIndicators(IndicatorSection(backend="real", buzzer_pin=18, led_pin=23), gpio=gpio)
    ind.indicate(buzzer="key", led="on")
    b.wait_for(lambda: b.out.get(23, False), "the LED to light")
    b.wait_for(lambda: len(b.writes.get(18, [])) >= 4, "the buzzer to sound")
    ind.close()
    assert b.holder == {} and not any(c.open for c in fake.open_chips)


# --------------------------------------------------------------------------- config and device choice


def test_config_chooses_the_gpio_backend():
    assert parse_config({}).keypad.gpio == "cdev" and parse_config({}).indicators.gpio == "cdev"
    cfg = parse_config({"keypad": {"gpio": "rpigpio"}, "indicators": {"gpio": "rpigpio"}})
    assert cfg.keypad.gpio == "rpigpio" and cfg.indicators.gpio == "rpigpio"
    with pytest.raises(ConfigError, match=r"\[keypad\] gpio must be one of cdev, rpigpio \(got 'lgpio'\)"):
        parse_config({"keypad": {"gpio": "lgpio"}})


def test_a_real_keypad_without_a_gpiochip_fails_with_a_plain_sentence():
    if any(Path("/dev").glob("gpiochip*")):
        pytest.skip("this machine has GPIO chips")
    from myna_drivers.devices import _keypad

    with pytest.raises(GpioChipNotFound, match="40-pin header"):
        _keypad(parse_config({}), "", on_key=lambda p: None)
