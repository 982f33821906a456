"""The one device factory: all-or-nothing opening, mirror-image closing, and no
simulated device on a reader that was not started for the simulator."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from mynad.config import DaemonConfig, parse_config
from myna_drivers import devices as D


class Part:
    """A stand-in device that records its life on a shared list."""

    def __init__(self, name: str, life: list[str]) -> None:
        self.name, self.life = name, life
        life.append(f"open {name}")

    def close(self) -> None:
        self.life.append(f"close {self.name}")

    def stop(self) -> None:
        self.life.append(f"stop {self.name}")


def real_config() -> DaemonConfig:
    return parse_config({"card_face": {"backend": "real"}})


@pytest.fixture
def life(monkeypatch) -> list[str]:
    log: list[str] = []
    monkeypatch.setattr(D, "_display", lambda cfg, bus: Part("display", log))
    monkeypatch.setattr(D, "_indicators", lambda cfg, bus: Part("indicators", log))
    monkeypatch.setattr(D, "_keypad", lambda cfg, bus, on_key: Part("keypad", log))
    monkeypatch.setattr(D, "_camera", lambda cfg, bus: Part("camera", log))
    monkeypatch.setattr(D, "_card_face", lambda cfg, bus: Part("card_face", log))
    return log


def test_devices_close_in_the_reverse_order_of_opening(life):
    devs = D.open_devices(real_config(), on_key=lambda pos: None)
    devs.close()
    assert life == ["open display", "open indicators", "open keypad", "open camera", "open card_face",
                    "close card_face", "stop camera", "close keypad", "close indicators", "close display"]
    devs.close()  # twice is harmless
    assert len(life) == 10


def test_a_failed_start_closes_what_was_opened(life, monkeypatch):
    def broken(cfg, bus):
        raise OSError("no camera on /dev/video0")

    monkeypatch.setattr(D, "_camera", broken)
    with pytest.raises(D.DeviceError) as info:
        D.open_devices(real_config(), on_key=lambda pos: None)
    assert info.value.message == "camera: no camera on /dev/video0"
    assert life == ["open display", "open indicators", "open keypad",
                    "close keypad", "close indicators", "close display"]


def test_simulated_backends_are_refused_on_a_reader(life):
    cfg = parse_config({"display": {"backend": "sim"}, "keypad": {"backend": "sim"}, "sim": {"bus": "/tmp/x"}})
    with pytest.raises(D.DeviceError) as info:
        D.open_devices(cfg, on_key=lambda pos: None)
    assert "[display], [keypad]" in info.value.message and "--simulator" in info.value.message
    assert life == []  # nothing was opened
    devs = D.open_devices(cfg, on_key=lambda pos: None, simulator=True)
    devs.close()


def test_a_real_card_face_camera_without_picamera2_is_a_plain_error():
    """Off a Pi there is no picamera2: the error says what to install or configure."""
    cfg = dataclasses.replace(parse_config({}), card_face=parse_config({"card_face": {"backend": "real"}}).card_face)
    with pytest.raises(Exception) as info:
        D._card_face(cfg, "")
    assert "picamera2" in str(info.value) and "[card_face]" in str(info.value)


def test_check_config_refuses_sim_backends_without_simulator(tmp_path):
    path = tmp_path / "mynad.toml"
    path.write_text('[display]\nbackend = "sim"\n[sim]\nbus = "/tmp/x"\n', encoding="utf-8")
    run = lambda *extra: subprocess.run([sys.executable, "-m", "mynad.main", "--config", str(path), "--check-config",
                                         *extra], capture_output=True, text=True, timeout=60)
    refused = run()
    assert refused.returncode == 78 and "[display]" in refused.stderr and "Traceback" not in refused.stderr
    assert run("--simulator").returncode == 0
