"""Buzzer and LED: short sound patterns and a status light.

Both classes offer ``indicate(buzzer, led)`` and ``close()`` (the ``Indicators``
interface of ``myna_drivers.devices``, which chooses between them). Values come
from ``mynad.core.events.Indicate``:
buzzer ``"key" | "ok" | "error" | "remind"`` (``None`` = leave as is),
led ``"on" | "off" | "blink"`` (``None`` = leave as is).

* real: RPi.GPIO (imported lazily). The buzzer is a passive piezo driven by
  software PWM on ``buzzer_pin``, so each pattern can have its own pitch;
  the LED is a plain output on ``led_pin``. One worker thread plays patterns
  (a new pattern replaces the one playing) and blinks the LED, so ``indicate``
  never blocks the event loop.
* sim: each call becomes a sim bus message, ``{"dev":"buzzer","pattern":...}``
  and ``{"dev":"led","state":...}``, for hw-sim's timeline.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger("myna.indicators")

# pattern -> steps of (frequency Hz or 0 for silence, seconds)
PATTERNS: dict[str, tuple[tuple[int, float], ...]] = {
    "key": ((2000, 0.04),),
    "ok": ((1568, 0.12), (0, 0.05), (2093, 0.25)),  # rising two-note "ピッピー"
    "error": ((440, 0.18), (0, 0.08), (440, 0.18), (0, 0.08), (440, 0.35)),  # low, repeated
    "remind": ((1760, 0.1), (0, 0.1), (1760, 0.1), (0, 0.1), (1760, 0.1), (0, 0.4)) * 2,
}
LED_STATES = ("on", "off", "blink")
BLINK_HALF_PERIOD_S = 0.5


class GpioIndicators:
    def __init__(self, cfg: Any, gpio: Any = None) -> None:
        if gpio is None:
            import RPi.GPIO as gpio  # lazy: only on the Pi
        self.gpio = gpio
        self.buzzer_pin = int(cfg.buzzer_pin)
        self.led_pin = int(cfg.led_pin)
        g = gpio
        if hasattr(g, "setwarnings"):
            g.setwarnings(False)
        g.setmode(g.BCM)
        g.setup(self.buzzer_pin, g.OUT, initial=g.LOW)
        g.setup(self.led_pin, g.OUT, initial=g.LOW)
        self._pwm = g.PWM(self.buzzer_pin, 2000)
        self._pwm.start(0)
        self._cond = threading.Condition()
        self._pattern: list[tuple[int, float]] | None = None
        self._led: str | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="indicators", daemon=True)
        self._thread.start()

    def indicate(self, buzzer: str | None = None, led: str | None = None) -> None:
        with self._cond:
            if buzzer is not None:
                steps = PATTERNS.get(buzzer)
                if steps is None:
                    log.warning("unknown buzzer pattern %r", buzzer)
                else:
                    self._pattern = list(steps)
            if led is not None:
                if led not in LED_STATES:
                    log.warning("unknown LED state %r", led)
                else:
                    self._led = led
            self._cond.notify()

    def _tone(self, freq: int) -> None:
        if freq > 0:
            self._pwm.ChangeFrequency(freq)
            self._pwm.ChangeDutyCycle(50)
        else:
            self._pwm.ChangeDutyCycle(0)

    def _run(self) -> None:
        steps: list[tuple[int, float]] = []
        step_end = 0.0
        sounding = False
        blinking = False
        led_on = False
        next_blink = 0.0
        while True:
            with self._cond:
                if self._stop:
                    break
                if self._pattern is not None:
                    steps, self._pattern = self._pattern, None
                    step_end = 0.0
                led, self._led = self._led, None
            now = time.monotonic()
            if led is not None:
                blinking = led == "blink"
                led_on = led != "off"
                self.gpio.output(self.led_pin, self.gpio.HIGH if led_on else self.gpio.LOW)
                next_blink = now + BLINK_HALF_PERIOD_S
            if now >= step_end:
                if steps:
                    freq, dur = steps.pop(0)
                    self._tone(freq)
                    sounding = freq > 0
                    step_end = now + dur
                elif sounding:
                    self._tone(0)
                    sounding = False
            if blinking and now >= next_blink:
                led_on = not led_on
                self.gpio.output(self.led_pin, self.gpio.HIGH if led_on else self.gpio.LOW)
                next_blink = now + BLINK_HALF_PERIOD_S
            waits = []
            if steps or sounding:
                waits.append(step_end - now)
            if blinking:
                waits.append(next_blink - now)
            with self._cond:
                if self._stop:
                    break
                if self._pattern is None and self._led is None:
                    self._cond.wait(max(0.0, min(waits)) if waits else None)
        try:
            self._tone(0)
        except Exception:
            pass

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=1.0)
        try:
            self._pwm.stop()
            self.gpio.output(self.led_pin, self.gpio.LOW)
        finally:
            self.gpio.cleanup([self.buzzer_pin, self.led_pin])


class SimIndicators:
    def __init__(self, bus_path: str) -> None:
        self.bus = None
        if bus_path:
            from myna_drivers.simbus import SimBus

            self.bus = SimBus.shared(bus_path)

    def indicate(self, buzzer: str | None = None, led: str | None = None) -> None:
        if buzzer is not None:
            log.debug("buzzer %s", buzzer)
            if self.bus is not None:
                self.bus.send("buzzer", pattern=buzzer)
        if led is not None:
            log.debug("led %s", led)
            if self.bus is not None:
                self.bus.send("led", state=led)

    def close(self) -> None:
        pass
