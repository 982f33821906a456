"""The RPi.GPIO API over the Linux GPIO character device (libgpiod v2), for an idle that costs nothing.

Why not RPi.GPIO itself: on Raspberry Pi OS the RPi.GPIO module is rpi-lgpio, a shim over lgpio.
Once edge detection is on, lgpio's alert thread calls ``ppoll`` with a 0.5 ms timeout in a loop:
about 2000 wake-ups a second whether a key is pressed or not, which alone is several times the
idle budget of the reader (< 0.5 % of a core). Here the edge thread sleeps in ``epoll_wait`` with
no timeout on the line requests' file descriptors: the kernel wakes it when a column edge is
queued, and at no other time. Shutdown writes to an eventfd in the same epoll set.

``CdevGPIO`` offers exactly the part of RPi.GPIO that ``keypad.MatrixKeypad`` and
``indicators.GpioIndicators`` use (the model is ``gpio_sim.SimGPIO``): ``setwarnings``,
``setmode(BCM)``, ``getmode``, ``setup`` (channel or channels, ``IN``/``OUT``, ``pull_up_down``,
``initial``), ``output``, ``input``, ``add_event_detect(channel, edge, callback, bouncetime)``,
``remove_event_detect``, ``cleanup`` and ``PWM`` (software, for the passive buzzer). One gpiod
line request per channel, on the chip of the 40-pin header, found by its label (the chip's
number changes between Pi models and kernels; its label does not), where a line's offset is
its BCM number.

Differences from RPi.GPIO, on purpose:

* ``bouncetime`` becomes the kernel's debounce period for the line (the edge is reported once
  the level has been stable that long), not RPi.GPIO's "ignore edges for N ms after one";
* ``add_event_detect`` needs a callback (there is no ``event_detected()`` polling here);
* ``setmode(BOARD)`` is refused: the drivers use BCM numbers, and a line offset is one.

Errors are :class:`GpioError` (a ``RuntimeError``, as RPi.GPIO's are) with one plain sentence:
no chip, permission denied, line busy (naming who holds it), wrong use.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import select
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterable

log = logging.getLogger("myna.gpio")

from myna_drivers.gpio_api import (BCM, BOARD, BOTH, FALLING, HIGH, IN, LOW, OUT, PUD_DOWN, PUD_OFF, PUD_UP,
                                   RISING)

# Labels of the gpiochip that drives the 40-pin header: Pi 5 (RP1), Pi 4 (BCM2711), Pi 3 and
# earlier / Zero (BCM2835). On each, line offset N is BCM GPIO N.
HEADER_CHIP_LABELS = ("pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835")
CONSUMER = "myna-reader"


class GpioError(RuntimeError):
    """The GPIO backend cannot do what was asked; ``message`` says why in one sentence."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class GpioChipNotFound(GpioError):
    """No GPIO character device with the 40-pin header's label (not a Pi, or no gpiochip)."""


class GpioPermissionDenied(GpioError):
    """The chip exists but this user may not open it (not in the ``gpio`` group)."""


class GpioLineBusy(GpioError):
    """Another process (or another driver in this one) holds the line."""


class GpioUsageError(GpioError):
    """The API was used in a way RPi.GPIO refuses too (output on an input, no setmode, ...)."""


def _load_gpiod() -> Any:
    try:
        import gpiod
    except ImportError:
        raise GpioError("the gpiod package (libgpiod v2 bindings) is not installed: install the reader "
                        "with its [pi] extra, or set [keypad] gpio = \"rpigpio\"") from None
    return gpiod


def find_header_chip(api: Any = None, dev_dir: str = "/dev") -> str:
    """The path of the gpiochip whose label is the 40-pin header's.

    Found by label, never by number: the header is gpiochip0 on a Pi 4 and on a Pi 5 with a
    recent kernel, gpiochip4 on a Pi 5 with an older one.
    """
    api = api if api is not None else _load_gpiod()
    denied: list[str] = []
    seen: list[str] = []
    for path in sorted(glob.glob(os.path.join(dev_dir, "gpiochip*")), key=_chip_number):
        if not api.is_gpiochip_device(path):
            continue
        try:
            with api.Chip(path) as chip:
                label = chip.get_info().label
        except PermissionError:
            denied.append(path)
            continue
        except OSError as e:
            log.debug("cannot read the label of %s: %s", path, e)
            continue
        seen.append(f"{os.path.basename(path)} ({label})")
        if label in HEADER_CHIP_LABELS:
            return str(path)
    if denied:
        raise GpioPermissionDenied(f"cannot open {', '.join(denied)}: permission denied; the service user "
                                   f"must be in the gpio group")
    found = ", ".join(seen) if seen else "none"
    raise GpioChipNotFound(f"no GPIO chip of the Raspberry Pi's 40-pin header (label "
                           f"{' or '.join(HEADER_CHIP_LABELS)}) in {dev_dir}; found: {found}")


def _chip_number(path: str) -> tuple[int, str]:
    tail = os.path.basename(path)[len("gpiochip"):]
    return (int(tail), "") if tail.isdigit() else (1 << 30, tail)


@dataclass
class _Line:
    """One requested channel: its gpiod request and what RPi.GPIO would remember of it."""

    request: Any
    direction: int
    pull: int
    edge: int | None = None
    callback: Callable[[int], None] | None = None
    bouncetime: int | None = None
    pwm: "SoftPWM | None" = None


class CdevGPIO:
    """RPi.GPIO's API (the drivers' subset) on one gpiochip through libgpiod v2.

    ``chip`` is a device path; by default the header's chip is found by label. ``api`` is the
    ``gpiod`` module (tests pass a fake of its surface). Every call on a chip or line request is
    made under one lock (libgpiod objects need external synchronisation); the edge thread waits
    outside it.
    """

    BCM, BOARD, OUT, IN, LOW, HIGH = BCM, BOARD, OUT, IN, LOW, HIGH
    PUD_OFF, PUD_DOWN, PUD_UP = PUD_OFF, PUD_DOWN, PUD_UP
    RISING, FALLING, BOTH = RISING, FALLING, BOTH

    def __init__(self, chip: str | None = None, *, consumer: str = CONSUMER, api: Any = None,
                 dev_dir: str = "/dev") -> None:
        self._api = api if api is not None else _load_gpiod()
        self.chip_path = chip if chip is not None else find_header_chip(self._api, dev_dir)
        self.consumer = consumer
        self.mode: int | None = None
        self._lock = threading.RLock()
        self._lines: dict[int, _Line] = {}
        self._chip: Any = None
        self._num_lines = 0
        self._edges: EdgeThread | None = None
        self._open_chip()  # fail now, with a plain sentence, rather than at the first setup()

    # ------------------------------------------------------------ chip

    def _open_chip(self) -> Any:
        if self._chip is None:
            try:
                chip = self._api.Chip(self.chip_path)
            except PermissionError:
                raise GpioPermissionDenied(f"cannot open {self.chip_path}: permission denied; the service user "
                                           f"must be in the gpio group") from None
            except FileNotFoundError:
                raise GpioChipNotFound(f"{self.chip_path} does not exist") from None
            except OSError as e:
                raise GpioError(f"cannot open {self.chip_path}: {e.strerror or e}") from None
            try:
                self._num_lines = int(chip.get_info().num_lines)
            except BaseException:
                chip.close()
                raise
            self._chip = chip
        return self._chip

    def _close_chip_if_unused(self) -> "EdgeThread | None":
        """With no line left, close the chip and hand back the edge thread for the caller to
        stop once it has let go of the lock (the thread may be waiting for it to read events)."""
        if self._lines:
            return None
        edges, self._edges = self._edges, None
        if self._chip is not None:
            chip, self._chip = self._chip, None
            chip.close()
        self.mode = None
        return edges

    @property
    def edge_thread(self) -> "EdgeThread | None":
        """The thread that waits for edges (None until the first ``add_event_detect``)."""
        return self._edges

    # ------------------------------------------------------------ RPi.GPIO API

    def setwarnings(self, flag: bool) -> None:
        """Accepted for compatibility; this backend has no "channel already in use" warnings:
        a line held by someone else is an error (:class:`GpioLineBusy`)."""

    def setmode(self, mode: int) -> None:
        if mode != BCM:
            raise GpioUsageError("only BCM numbering is supported by the gpiochip backend (the line "
                                 "offset is the BCM GPIO number)")
        if self.mode is not None and self.mode != mode:
            raise GpioUsageError("A different mode has already been set!")
        self.mode = mode

    def getmode(self) -> int | None:
        return self.mode

    def setup(self, channel: int | Iterable[int], direction: int, pull_up_down: int = PUD_OFF,
              initial: int | None = None) -> None:
        if self.mode is None:
            raise GpioUsageError("Please set pin numbering mode using GPIO.setmode(GPIO.BCM)")
        if direction not in (IN, OUT):
            raise GpioUsageError(f"direction must be GPIO.IN or GPIO.OUT (got {direction!r})")
        if pull_up_down not in (PUD_OFF, PUD_UP, PUD_DOWN):
            raise GpioUsageError(f"pull_up_down must be GPIO.PUD_OFF, PUD_UP or PUD_DOWN (got {pull_up_down!r})")
        if direction == OUT and pull_up_down != PUD_OFF:
            raise GpioUsageError("pull_up_down parameter is not valid for outputs")
        for ch in _channels(channel):
            self._stop_pwm(ch)
            with self._lock:
                self._setup_one(ch, direction, pull_up_down, initial)

    def _stop_pwm(self, ch: int) -> None:
        """Stop the channel's PWM, if any, without holding the lock (its thread writes under it)."""
        with self._lock:
            line = self._lines.get(ch)
            pwm = line.pwm if line is not None else None
            if line is not None:
                line.pwm = None
        if pwm is not None:
            pwm.stop()

    def _setup_one(self, ch: int, direction: int, pull: int, initial: int | None) -> None:
        chip = self._open_chip()
        if not 0 <= ch < self._num_lines:
            raise GpioUsageError(f"GPIO {ch} does not exist on {self.chip_path} ({self._num_lines} lines)")
        settings = self._settings(direction, pull, HIGH if initial else LOW)
        line = self._lines.get(ch)
        if line is not None:  # set up again: reconfigure the line we hold
            if line.edge is not None:
                self._remove_edge(ch, line)
            line.request.reconfigure_lines({ch: settings})
            line.direction, line.pull = direction, pull
            return
        try:
            request = chip.request_lines({ch: settings}, consumer=self.consumer)
        except OSError as e:
            raise self._request_error(ch, e) from None
        self._lines[ch] = _Line(request, direction, pull)

    def _request_error(self, ch: int, e: OSError) -> GpioError:
        if e.errno == errno.EBUSY:
            holder = ""
            try:
                holder = self._chip.get_line_info(ch).consumer or ""
            except Exception:
                pass
            by = f" by {holder!r}" if holder else ""
            return GpioLineBusy(f"GPIO {ch} on {self.chip_path} is already in use{by}: another program or "
                                f"device-tree overlay holds it")
        if e.errno in (errno.EACCES, errno.EPERM):
            return GpioPermissionDenied(f"not allowed to request GPIO {ch} on {self.chip_path}: the service "
                                        f"user must be in the gpio group")
        return GpioError(f"cannot request GPIO {ch} on {self.chip_path}: {e.strerror or e}")

    def _settings(self, direction: int, pull: int, value: int, edge: int | None = None,
                  bouncetime: int | None = None) -> Any:
        g = self._api
        bias = {PUD_OFF: g.line.Bias.DISABLED, PUD_UP: g.line.Bias.PULL_UP, PUD_DOWN: g.line.Bias.PULL_DOWN}
        edges = {None: g.line.Edge.NONE, RISING: g.line.Edge.RISING, FALLING: g.line.Edge.FALLING,
                 BOTH: g.line.Edge.BOTH}
        if direction == OUT:
            return g.LineSettings(direction=g.line.Direction.OUTPUT,
                                  output_value=g.line.Value.ACTIVE if value else g.line.Value.INACTIVE)
        return g.LineSettings(direction=g.line.Direction.INPUT, bias=bias[pull], edge_detection=edges[edge],
                              debounce_period=timedelta(milliseconds=bouncetime or 0))

    def _line(self, ch: int) -> _Line:
        line = self._lines.get(ch)
        if line is None:
            raise GpioUsageError(f"You must setup() GPIO channel {ch} first")
        return line

    def output(self, channel: int | Iterable[int], value: int | bool | Iterable[int | bool]) -> None:
        chans = list(_channels(channel))
        values = list(value) if isinstance(value, (list, tuple)) else [value] * len(chans)
        if len(values) != len(chans):
            raise GpioUsageError("Number of channels != number of values")
        g = self._api
        with self._lock:
            for ch, v in zip(chans, values):
                line = self._line(ch)
                if line.direction != OUT:
                    raise GpioUsageError(f"The GPIO channel {ch} has not been set up as an OUTPUT")
                line.request.set_value(ch, g.line.Value.ACTIVE if v else g.line.Value.INACTIVE)

    def input(self, channel: int) -> int:
        with self._lock:
            value = self._line(channel).request.get_value(channel)
        return HIGH if value == self._api.line.Value.ACTIVE else LOW

    def add_event_detect(self, channel: int, edge: int, callback: Callable[[int], None] | None = None,
                         bouncetime: int | None = None) -> None:
        if edge not in (RISING, FALLING, BOTH):
            raise GpioUsageError("The edge must be set to RISING, FALLING or BOTH")
        if callback is None:
            raise GpioUsageError("add_event_detect needs a callback: the gpiochip backend has no event_detected()")
        if bouncetime is not None and bouncetime < 0:
            raise GpioUsageError("Bouncetime must be greater than 0")
        with self._lock:
            line = self._line(channel)
            if line.direction != IN:
                raise GpioUsageError(f"You must setup() the GPIO channel {channel} as an input first")
            if line.edge is not None:
                raise GpioUsageError("Conflicting edge detection already enabled for this GPIO channel")
            try:
                line.request.reconfigure_lines({channel: self._settings(IN, line.pull, LOW, edge, bouncetime)})
            except OSError as e:
                if e.errno == errno.ENXIO:
                    raise GpioError(f"GPIO {channel} on {self.chip_path} cannot detect edges (no interrupt)") from None
                raise GpioError(f"Failed to add edge detection on GPIO {channel}: {e.strerror or e}") from None
            line.edge, line.callback, line.bouncetime = edge, callback, bouncetime
            if self._edges is None:
                self._edges = EdgeThread(self)
            self._edges.watch(line.request.fd, channel)

    def remove_event_detect(self, channel: int) -> None:
        with self._lock:
            line = self._lines.get(channel)
            if line is not None and line.edge is not None:
                self._remove_edge(channel, line)

    def _remove_edge(self, ch: int, line: _Line) -> None:
        if self._edges is not None:
            self._edges.unwatch(line.request.fd)
        line.request.reconfigure_lines({ch: self._settings(IN, line.pull, LOW)})
        while line.request.wait_edge_events(0):  # events queued before the change: not for anyone now
            line.request.read_edge_events()
        line.edge = line.callback = line.bouncetime = None

    def cleanup(self, channel: int | Iterable[int] | None = None) -> None:
        """Release the channels (all when None), as inputs without pull like RPi.GPIO leaves them.
        When no channel is left the edge thread ends and the chip is closed."""
        with self._lock:
            chans = list(self._lines) if channel is None else list(_channels(channel))
        for ch in chans:
            self._stop_pwm(ch)
        with self._lock:
            for ch in chans:
                line = self._lines.pop(ch, None)
                if line is None:
                    continue
                try:
                    if line.edge is not None:
                        self._remove_edge(ch, line)
                    line.request.reconfigure_lines({ch: self._settings(IN, PUD_OFF, LOW)})
                except Exception:
                    log.exception("GPIO %s: could not leave it as an input", ch)
                finally:
                    line.request.release()
            edges = self._close_chip_if_unused()
        if edges is not None:
            edges.stop()

    def close(self) -> None:
        """Release everything (``cleanup()``)."""
        self.cleanup()

    def PWM(self, channel: int, frequency: float) -> "SoftPWM":  # noqa: N802 (RPi.GPIO's name)
        with self._lock:
            line = self._line(channel)
            if line.direction != OUT:
                raise GpioUsageError(f"You must setup() the GPIO channel {channel} as an output first")
            if line.pwm is not None:
                raise GpioUsageError("A PWM object already exists for this GPIO channel")
            line.pwm = SoftPWM(self, channel, frequency)
            return line.pwm

    # ------------------------------------------------------------ for the edge thread and PWM

    def _set_level(self, channel: int, level: bool) -> None:
        g = self._api
        with self._lock:
            line = self._lines.get(channel)
            if line is not None:
                line.request.set_value(channel, g.line.Value.ACTIVE if level else g.line.Value.INACTIVE)

    def _take_events(self, fd: int) -> tuple[int, Callable[[int], None], int] | None:
        """Read what the kernel queued on request ``fd``: (channel, callback, number of edges).

        Under the lock, and only if the fd is still watched and still has events: a concurrent
        ``remove_event_detect`` may have drained it, and a read on an empty request blocks.
        """
        with self._lock:
            for ch, line in self._lines.items():
                if line.edge is not None and line.callback is not None and line.request.fd == fd:
                    if not line.request.wait_edge_events(0):
                        return None
                    return ch, line.callback, len(line.request.read_edge_events())
        return None


class EdgeThread:
    """The one thread that waits for edges: blocked in ``epoll_wait`` with no timeout.

    It watches the line requests' fds and an eventfd used only to stop it. Each wake-up has a
    reason (edges queued by the kernel, or the stop); ``wakeups`` counts them, ``edges`` the
    edges handed to callbacks, so a test (or a technician) can see that idle costs nothing.
    """

    def __init__(self, owner: CdevGPIO) -> None:
        self._owner = owner
        self._epoll = select.epoll()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._epoll.register(self._wake, select.EPOLLIN)
        self._stopping = False
        self.wakeups = 0
        self.edges = 0
        self.native_id: int | None = None
        self.parked = threading.Event()  # set each time it is about to block (tests wait on it)
        self._thread = threading.Thread(target=self._run, name="gpio-edges", daemon=True)
        self._thread.start()

    def watch(self, fd: int, channel: int) -> None:
        self._epoll.register(fd, select.EPOLLIN)  # safe while the thread waits in epoll_wait

    def unwatch(self, fd: int) -> None:
        try:
            self._epoll.unregister(fd)
        except (KeyError, FileNotFoundError, ValueError, OSError):
            pass

    def _run(self) -> None:
        from myna_drivers.priority import prefer_this_thread

        self.native_id = threading.get_native_id()
        # the edge is what wakes the keypad scanner: a starved edge thread delays every key
        prefer_this_thread("the GPIO edge thread")
        while True:
            self.parked.set()
            try:
                ready = self._epoll.poll()  # timeout -1: sleeps in the kernel until an edge or stop
            except ValueError:  # epoll closed under us: stop() raced a late wake
                return
            self.parked.clear()
            self.wakeups += 1
            for fd, _mask in ready:
                if fd == self._wake:
                    try:
                        os.eventfd_read(self._wake)
                    except BlockingIOError:
                        pass
                    continue
                try:
                    taken = self._owner._take_events(fd)
                except Exception:
                    log.exception("reading GPIO edge events failed")
                    continue
                if taken is None:
                    continue
                channel, callback, n = taken
                self.edges += n
                for _ in range(n):  # RPi.GPIO calls back once per edge
                    try:
                        callback(channel)
                    except Exception:
                        log.exception("GPIO %s edge callback failed", channel)
            if self._stopping:
                return

    def stop(self) -> None:
        """Wake the thread through the eventfd, wait for it, close the epoll set."""
        self._stopping = True
        os.eventfd_write(self._wake, 1)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                log.error("the GPIO edge thread did not stop")
                return
        self._epoll.close()
        os.close(self._wake)

    def is_alive(self) -> bool:
        return self._thread.is_alive()


class SoftPWM:
    """RPi.GPIO's ``PWM`` object, in software, for the passive buzzer.

    While the duty cycle is strictly between 0 and 100 a thread toggles the line; at 0 or 100
    (and after ``stop()``) it holds the level and waits on a condition without a timeout, so a
    silent buzzer costs no wake-ups. Pitch is as good as Python's timed waits (tens of µs of
    jitter on a Pi): fine for a beep, not for music.
    """

    def __init__(self, owner: CdevGPIO, channel: int, frequency: float) -> None:
        if frequency <= 0:
            raise GpioUsageError("frequency must be greater than 0.0")
        self._owner = owner
        self.channel = channel
        self._freq = float(frequency)
        self._duty = 0.0
        self._cond = threading.Condition()
        self._running = False
        self._closed = False
        self.toggles = 0  # level changes written (diagnostics, tests)
        self._thread: threading.Thread | None = None

    def start(self, duty_cycle: float) -> None:
        self._check_duty(duty_cycle)
        with self._cond:
            self._duty = float(duty_cycle)
            if self._running:
                self._cond.notify()
                return
            self._running = True
        self._thread = threading.Thread(target=self._run, name=f"pwm-{self.channel}", daemon=True)
        self._thread.start()

    def ChangeDutyCycle(self, duty_cycle: float) -> None:  # noqa: N802 (RPi.GPIO's name)
        self._check_duty(duty_cycle)
        with self._cond:
            self._duty = float(duty_cycle)
            self._cond.notify()

    def ChangeFrequency(self, frequency: float) -> None:  # noqa: N802 (RPi.GPIO's name)
        if frequency <= 0:
            raise GpioUsageError("frequency must be greater than 0.0")
        with self._cond:
            self._freq = float(frequency)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=2.0)
        self._thread = None

    @staticmethod
    def _check_duty(duty: float) -> None:
        if not 0.0 <= duty <= 100.0:
            raise GpioUsageError("dutycycle must have a value from 0.0 to 100.0")

    @property
    def sounding(self) -> bool:
        with self._cond:
            return self._running and 0.0 < self._duty < 100.0

    def _run(self) -> None:
        """Toggle or hold the line. The line is written with the condition released: a writer
        takes the GPIO lock, and ``setup``/``cleanup`` stop PWMs without holding it."""
        level: bool | None = None
        while True:
            with self._cond:
                if not self._running:
                    break
                duty, freq = self._duty, self._freq
                if duty <= 0.0 or duty >= 100.0:
                    want, length = duty >= 100.0, None
                    if level == want:
                        self._cond.wait()  # no timeout: a held level (a silent buzzer) costs nothing
                        continue
                else:
                    want = not level  # None (just started) -> high first
                    period = 1.0 / freq
                    length = period * (duty / 100.0 if want else 1.0 - duty / 100.0)
            self._write(want)
            level = want
            if length is None:
                continue
            end = time.monotonic() + length
            with self._cond:
                while self._running and duty == self._duty and freq == self._freq:
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
        if level:
            self._write(False)  # stopped: silent, line LOW

    def _write(self, level: bool) -> None:
        try:
            self._owner._set_level(self.channel, level)
            self.toggles += 1
        except Exception:
            log.exception("PWM on GPIO %s: writing the line failed", self.channel)


def _channels(channel: int | Iterable[int]) -> list[int]:
    if isinstance(channel, (list, tuple, set, frozenset)):
        return [int(c) for c in channel]
    return [int(channel)]  # type: ignore[arg-type]
