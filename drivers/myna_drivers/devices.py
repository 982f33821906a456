"""The reader's devices, declared once, opened from the config in one place.

Every device the daemon drives has an interface here (``Display``, ``Indicators``,
``Keys``, ``Camera``, ``CardFaceCamera``) and two implementations: the real part on
the Pi and the simulated one that hw-sim talks to. :func:`open_devices` is the only
place that chooses between them (``backend = "real" | "sim"`` per config section,
as gpiozero's pin factories and luma's devices do), so:

* opening is all or nothing: when one device fails, the ones already opened are
  closed again in reverse order before the error leaves, and the error names the
  device in plain words (:class:`DeviceError`);
* closing is the mirror of opening (:meth:`Devices.close`, reverse order, every
  device closed even when one of them fails to close);
* simulated backends are refused unless the caller says this run is for the
  simulator (``mynad --simulator``): an appliance whose config was copied from a
  test rig must not come up showing its screens to a PNG folder.

The card reader is not here: it has no simulated driver (the daemon always speaks
PC/SC to the real pcscd; hw-sim puts a virtual card behind it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

log = logging.getLogger("myna.devices")


class Display(Protocol):
    def show(self, image: Any, screen_id: str, text: str, params: dict) -> None: ...
    def close(self) -> None: ...


class Indicators(Protocol):
    def indicate(self, buzzer: str | None = None, led: str | None = None) -> None: ...
    def close(self) -> None: ...


class Keys(Protocol):
    """Calls its ``on_key(position)`` from its own thread for each debounced press."""

    def close(self) -> None: ...


class Camera(Protocol):
    """The patient camera: streams only while a face attempt runs."""

    def start(self) -> None: ...
    def read(self) -> Any: ...  # myna_drivers.camera.Frame
    def stop(self) -> None: ...


class CardFaceCamera(Protocol):
    def capture(self) -> np.ndarray: ...
    def close(self) -> None: ...


class Voice(Protocol):
    """The speaker (myna_drivers.voice): plays clips from its own thread, never blocks."""

    def say(self, clip: Any, *, screen: str = "", lang: str = "", text: str = "", cut: bool = True) -> None: ...
    def cut_prompt(self) -> None: ...
    def chime(self, pattern: str) -> None: ...
    def close(self) -> None: ...


class DeviceError(Exception):
    """A device could not be opened; ``part`` names it, the message says why."""

    def __init__(self, part: str, message: str) -> None:
        self.part = part
        self.message = f"{part}: {message}"
        super().__init__(self.message)


@dataclass
class Devices:
    display: Display | None = None
    indicators: Indicators | None = None
    keys: Keys | None = None
    camera: Camera | None = None
    card_face: CardFaceCamera | None = None
    voice: Voice | None = None
    _closers: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def close(self) -> None:
        """Close every opened device, last opened first; a failing close is logged, not fatal."""
        while self._closers:
            part, close = self._closers.pop()
            try:
                close()
            except Exception:
                log.exception("closing the %s failed", part)


SECTIONS = ("display", "indicators", "keypad", "camera", "card_face", "voice")


def sim_sections(cfg: Any) -> list[str]:
    """The config sections whose backend is the simulator's."""
    return [s for s in SECTIONS if getattr(getattr(cfg, s, None), "backend", "real") == "sim"]


def open_devices(cfg: Any, *, on_key: Callable[[int], None], simulator: bool = False) -> Devices:
    """Open every configured device, or none of them.

    ``cfg`` is the daemon config (duck-typed: sections ``display``, ``indicators``,
    ``keypad``, ``camera``, ``card_face`` and ``sim``). ``on_key`` is called from the
    keypad's thread with the key position.
    """
    sims = sim_sections(cfg)
    if sims and not simulator:
        names = ", ".join(f"[{s}]" for s in sims)
        raise DeviceError("devices", f"{names} use the simulator's backend (\"sim\"), but mynad was not started "
                                     "for the simulator: set backend = \"real\" on a reader, or start mynad "
                                     "with --simulator under mynasim")
    bus = getattr(getattr(cfg, "sim", None), "bus", "") or ""
    if sims and not bus:
        raise DeviceError("devices", "simulated devices need [sim] bus, the simulator's socket")
    devices = Devices()
    steps: list[tuple[str, str, Callable[[], Any]]] = [
        ("display", "display", lambda: _display(cfg, bus)),
        ("buzzer and LED", "indicators", lambda: _indicators(cfg, bus)),
        ("keypad", "keys", lambda: _keypad(cfg, bus, on_key)),
        ("camera", "camera", lambda: _camera(cfg, bus)),
        ("card-face camera", "card_face", lambda: _card_face(cfg, bus)),
        ("speaker", "voice", lambda: _voice(cfg, bus)),
    ]
    try:
        for part, attr, opener in steps:
            try:
                dev = opener()
            except DeviceError:
                raise
            except Exception as e:
                text = getattr(e, "message", None) or str(e) or type(e).__name__
                raise DeviceError(part, text) from e
            setattr(devices, attr, dev)
            if dev is not None:
                # the patient camera streams only during a face attempt: stopping it is its close
                devices._closers.append((part, dev.stop if attr == "camera" else dev.close))
    except BaseException:
        devices.close()
        raise
    log.info("devices open: %s", ", ".join(f"{s}={getattr(getattr(cfg, s, None), 'backend', '-')}"
                                          for s in SECTIONS))
    return devices


def _display(cfg: Any, bus: str) -> Display:
    from myna_drivers.display import OledDisplay, SimDisplay

    d = cfg.display
    if d.backend == "sim":
        return SimDisplay(d, bus)
    gpio = _real_gpio(d)
    return _or_release(gpio, lambda: OledDisplay(d, gpio=gpio))


def _indicators(cfg: Any, bus: str) -> Indicators:
    from myna_drivers.indicators import GpioIndicators, SimIndicators

    i = cfg.indicators
    if i.backend == "sim":
        return SimIndicators(bus)
    gpio = _real_gpio(i)
    return _or_release(gpio, lambda: GpioIndicators(i, gpio=gpio))


def _real_gpio(section: Any) -> Any:
    """The RPi.GPIO API for a real device: ``gpio = "cdev"`` (default) is our driver over the
    GPIO character device, whose edge thread sleeps in the kernel; ``"rpigpio"`` the system's
    RPi.GPIO module (rpi-lgpio on Raspberry Pi OS, whose edge thread polls). docs/pi-hardware.md."""
    if getattr(section, "gpio", "cdev") == "rpigpio":
        import RPi.GPIO  # lazy: only on the Pi (typed by types-RPi.GPIO)

        return RPi.GPIO
    from myna_drivers.gpio_cdev import CdevGPIO

    return CdevGPIO()


def _or_release(gpio: Any, make: Callable[[], Any]) -> Any:
    """``make()``, or, when it fails half-way, release the lines a per-device CdevGPIO already
    holds (the RPi.GPIO module is shared, so it is left alone)."""
    from types import ModuleType

    try:
        return make()
    except BaseException:
        if not isinstance(gpio, ModuleType):
            try:
                gpio.cleanup()
            except Exception:
                log.exception("releasing the GPIO lines after a failed open failed")
        raise


def _keypad(cfg: Any, bus: str, on_key: Callable[[int], None]) -> Keys:
    from myna_drivers.keypad import MatrixKeypad

    k = cfg.keypad
    if k.backend == "sim":
        from myna_drivers.gpio_sim import SimGPIO

        gpio: Any = SimGPIO(bus, rows=k.rows, cols=k.cols)
    else:
        gpio = _real_gpio(k)
    return _or_release(gpio, lambda: MatrixKeypad(gpio, k.rows, k.cols, on_key=on_key, scan_hz=k.scan_hz,
                                                  debounce_ms=k.debounce_ms, irq=k.irq))


def _camera(cfg: Any, bus: str) -> Camera:
    c = cfg.camera
    size = (c.width, c.height)
    if c.backend == "sim":
        from myna_drivers.camera_sim import SimCamera

        return SimCamera(bus, size, c.fps)
    from myna_drivers.camera import PiCamera

    return PiCamera(size, c.fps)


def _card_face(cfg: Any, bus: str) -> CardFaceCamera | None:
    c = getattr(cfg, "card_face", None)
    if c is None or c.backend == "none":
        return None
    from myna_drivers.cardface_camera import PiStillCamera, SimCardFaceCamera

    cam: Any = SimCardFaceCamera(bus) if c.backend == "sim" else PiStillCamera(c.camera_num, (c.width, c.height))
    cam.open()
    return cam


def _voice(cfg: Any, bus: str) -> Voice | None:
    """``[voice] backend = none | alsa | sim``; ``enabled = false`` opens nothing (a config
    without the section, or an older one, has no speaker)."""
    v = getattr(cfg, "voice", None)
    if v is None or v.backend == "none" or not v.enabled:
        return None
    from myna_drivers.voice import AlsaVoice, SimVoice

    if v.backend == "sim":
        out = v.out_dir if v.out_dir is not None else cfg.display.out_dir.parent / "voice"
        return SimVoice(out, bus, volume=v.volume, keep_files=int(getattr(v, "keep_files", 0)))
    return AlsaVoice(v.device, volume=v.volume)
