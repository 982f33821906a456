"""Display and indicator drivers, sim and real (against fakes)."""

from __future__ import annotations

import time
from pathlib import Path

from PIL import Image

from mynad.config import DisplaySection, IndicatorSection
from mynad.ui.render import render
from mynad.ui.screens import Screen
from mynad.ui.texts import screen_text
from myna_drivers.display import SimDisplay
from myna_drivers.indicators import PATTERNS, GpioIndicators, SimIndicators


class FakeBus:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    def send(self, dev: str, **fields) -> bool:
        self.sent.append((dev, fields))
        return True


def test_sim_display_writes_numbered_pngs_and_announces(tmp_path: Path):
    cfg = DisplaySection(backend="sim", out_dir=tmp_path / "screens")
    disp = SimDisplay(cfg, "")
    disp.bus = FakeBus()
    for sid, params in (("idle", {"mode": "auto"}), ("reading", {})):
        s = Screen(sid, params)
        disp.show(render(s)[0], sid, screen_text(s), params)
    disp.close()
    files = sorted(p.name for p in (tmp_path / "screens").iterdir())
    assert files == ["0001-idle.png", "0002-reading.png"]
    img = Image.open(tmp_path / "screens" / "0001-idle.png")
    assert img.size == (256 * 3, 64 * 3)
    assert img.convert("L").getextrema()[1] > 200  # text is there
    dev, fields = disp.bus.sent[0]
    assert dev == "display" and fields["screen"] == "idle" and fields["png"].endswith("0001-idle.png")
    assert "マイナ保険証を置いてください" in fields["text"] and fields["params"] == {"mode": "auto"}
    # a restarted daemon continues the numbering
    disp2 = SimDisplay(cfg, "")
    disp2.show(render(Screen("reading"))[0], "reading", "", {})
    assert (tmp_path / "screens" / "0003-reading.png").exists()


class FakePWM:
    def __init__(self, log, pin, freq):
        self.log, self.pin = log, pin
        log.append(("pwm", pin, freq))

    def start(self, duty):
        self.log.append(("start", duty))

    def ChangeFrequency(self, f):
        self.log.append(("freq", f))

    def ChangeDutyCycle(self, d):
        self.log.append(("duty", d))

    def stop(self):
        self.log.append(("stop",))


class FakeGPIO:
    BCM, OUT, IN, LOW, HIGH = 11, 0, 1, 0, 1

    def __init__(self):
        self.log: list = []

    def setwarnings(self, f):
        pass

    def setmode(self, m):
        self.log.append(("mode", m))

    def setup(self, pin, d, initial=None, pull_up_down=None):
        self.log.append(("setup", pin, d))

    def output(self, pin, v):
        self.log.append(("out", pin, v))

    def PWM(self, pin, freq):
        return FakePWM(self.log, pin, freq)

    def cleanup(self, pins=None):
        self.log.append(("cleanup", tuple(pins or ())))


def test_gpio_indicators_play_patterns_and_blink():
    g = FakeGPIO()
    ind = GpioIndicators(IndicatorSection(backend="real", buzzer_pin=18, led_pin=23), gpio=g)
    ind.indicate(buzzer="ok", led="blink")
    time.sleep(1.3)
    ind.indicate(buzzer=None, led="off")
    time.sleep(0.1)
    ind.close()
    freqs = [e[1] for e in g.log if e[0] == "freq"]
    assert freqs[:2] == [f for f, _ in PATTERNS["ok"] if f][:2]
    led = [e[2] for e in g.log if e[0] == "out" and e[1] == 23]
    assert led[0] == 1 and 0 in led and led.count(1) >= 2  # on, toggled, on again
    assert led[-1] == 0
    assert ("cleanup", (18, 23)) in g.log


def test_sim_indicators_send_bus_messages():
    ind = SimIndicators("")
    ind.bus = FakeBus()
    ind.indicate(buzzer="remind", led="blink")
    ind.indicate(led="off")
    ind.close()
    assert ind.bus.sent == [("buzzer", {"pattern": "remind"}), ("led", {"state": "blink"}), ("led", {"state": "off"})]
