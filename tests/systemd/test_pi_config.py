"""What the one-command install puts on a Raspberry Pi besides the release: the config for real
hardware (config/mynad.toml) and the USB serial gadget for the host link (systemd/myna-usb-gadget
and its unit).

The gadget script is run for real against scratch folders that stand in for configfs, the USB
device controller list and the boot partition (its --configfs/--udc-dir/--root options exist for
this), so the idempotence an installer relies on is checked, not assumed. No Pi, no rig: < 2 s.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from mynad.config import _SECTIONS, load_config
from mynad.main import main as mynad_main

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "mynad.toml"
GADGET = REPO / "systemd" / "myna-usb-gadget"
GADGET_UNIT = REPO / "systemd" / "myna-usb-gadget.service"

# BCM GPIOs that the reader's buses own on the 40-pin header: ID EEPROM (0, 1), I2C1 with its
# fixed 1.8k pull-ups (2, 3), the console UART (14, 15), SPI0 with both chip selects (7-11).
RESERVED_GPIO = {0: "ID EEPROM", 1: "ID EEPROM", 2: "I2C SDA", 3: "I2C SCL", 14: "UART TXD", 15: "UART RXD",
                 7: "SPI0 CE1", 8: "SPI0 CE0", 9: "SPI0 MISO", 10: "SPI0 MOSI", 11: "SPI0 SCLK"}


# --------------------------------------------------------------------------- config/mynad.toml


def test_pi_config_passes_check_config(capsys):
    assert mynad_main(["--config", str(CONFIG), "--check-config"]) == 0
    assert capsys.readouterr().out.strip() == f"{CONFIG}: OK"


def test_pi_config_is_for_real_hardware_and_the_installed_layout():
    cfg = load_config(CONFIG)
    for section in ("display", "keypad", "indicators", "camera", "card_face"):
        assert getattr(cfg, section).backend == "real", section
    assert cfg.sim.bus == ""
    assert cfg.host.transport == "serial" and cfg.host.serial_path == "/dev/ttyGS0"
    assert cfg.reader.state_dir == Path("/var/lib/myna-reader")
    assert cfg.reader.runtime_dir == Path("/run/myna-reader")
    assert cfg.face.models_dir == Path("/opt/myna-reader/current/models")
    assert cfg.face.manifest is None  # the installed package's own manifest: same release as the models
    assert cfg.host.key_file == Path("/etc/myna-reader/host.key")
    assert cfg.card_face.camera_num != 0  # 0 is the patient camera
    assert cfg.keypad.irq


def test_pi_config_pins_are_distinct_and_clear_of_the_buses():
    cfg = load_config(CONFIG)
    pins = {f"keypad row {p}": p for p in cfg.keypad.rows}
    pins.update({f"keypad col {p}": p for p in cfg.keypad.cols})
    pins.update({"OLED DC": cfg.display.gpio_dc, "OLED RST": cfg.display.gpio_rst,
                 "buzzer": cfg.indicators.buzzer_pin, "LED": cfg.indicators.led_pin})
    assert len(set(pins.values())) == len(pins), pins
    clashes = {name: RESERVED_GPIO[p] for name, p in pins.items() if p in RESERVED_GPIO}
    assert clashes == {}
    assert (cfg.display.spi_port, cfg.display.spi_device) == (0, 0)  # /dev/spidev0.0, CE0 = GPIO8


def test_pi_config_writes_every_key_with_a_comment():
    """Every option of every section is in the file (set, or named in a comment where TOML has no
    'unset'), and every block of settings has a comment above it that explains it."""
    text = CONFIG.read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    assert set(raw) == set(_SECTIONS), "one table per config section"
    blocks = re.split(r"(?m)^\[(\w+)\]\s*$", text)
    section_text = {blocks[i]: blocks[i + 1] for i in range(1, len(blocks), 2)}
    for name, cls in _SECTIONS.items():
        body = section_text[name]
        for f in dataclasses.fields(cls):
            if f.name in raw[name]:
                continue
            assert re.search(rf"(?m)^#.*\b{re.escape(f.name)}\b", body), f"[{name}] {f.name} is neither set nor explained"
        previous = "#"
        for line in body.splitlines():
            line = line.strip()
            if re.match(r"[a-z_]+\s*=", line):
                assert previous.startswith("#") or re.match(r"[a-z_]+\s*=", previous), \
                    f"[{name}] {line!r} has no comment above its block"
            if line:
                previous = line


# --------------------------------------------------------------------------- USB serial gadget


@pytest.fixture
def scratch(tmp_path):
    """A Pi's boot partition, configfs and UDC list, as plain folders."""
    root = tmp_path / "root"
    (root / "boot/firmware").mkdir(parents=True)
    (root / "dev").mkdir()
    boot = root / "boot/firmware/config.txt"
    # Bookworm's stock file ends with [all]; a filter section and a commented-out overlay must not
    # count as the settings being there.
    boot.write_text("[cm4]\notg_mode=1\n[all]\n# dtoverlay=dwc2\n#dtparam=spi=on\ndtparam=audio=on\n")
    (tmp_path / "configfs").mkdir()
    (tmp_path / "udc").mkdir()
    return tmp_path


def gadget(scratch: Path, *args: str) -> subprocess.CompletedProcess[str]:
    opts = ["--root", str(scratch / "root"), "--configfs", str(scratch / "configfs"),
            "--udc-dir", str(scratch / "udc"), "--wait", "0"]
    return subprocess.run([str(GADGET), *args, *opts], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, LC_ALL="C.UTF-8"))


def test_gadget_script_is_posix_sh_and_executable():
    assert GADGET.stat().st_mode & stat.S_IXUSR
    assert GADGET.read_text().startswith("#!/bin/sh\n")
    r = subprocess.run(["sh", "-n", str(GADGET)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    if shutil.which("dash"):
        r = subprocess.run(["dash", "-n", str(GADGET)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_gadget_usage_errors_exit_2(scratch):
    assert gadget(scratch).returncode == 2
    r = gadget(scratch, "launch")
    assert r.returncode == 2 and "unknown argument: launch" in r.stderr


def test_configure_boot_adds_what_is_missing_once(scratch):
    boot = scratch / "root/boot/firmware/config.txt"
    before = boot.read_text()
    r = gadget(scratch, "configure-boot")
    assert r.returncode == 0, r.stderr
    assert "reboot needed" in r.stdout
    after = boot.read_text()
    assert after.startswith(before)  # nothing of the site's file is changed, only appended
    added = after[len(before):].splitlines()
    assert added[-4:] == ["[all]", "dtparam=spi=on", "dtoverlay=dwc2,dr_mode=peripheral", "enable_uart=1"]
    assert not list(boot.parent.glob("*.myna-tmp"))

    r = gadget(scratch, "configure-boot")  # the installer runs again (an update, a retry)
    assert r.returncode == 0 and boot.read_text() == after
    assert r.stdout.count("already set") == 3


def test_configure_boot_keeps_settings_the_site_has(scratch):
    boot = scratch / "root/boot/firmware/config.txt"
    boot.write_text("[all]\ndtparam=i2c_arm=on,spi=on\ndtoverlay=dwc2\n")
    r = gadget(scratch, "configure-boot")
    assert r.returncode == 0
    assert boot.read_text() == "[all]\ndtparam=i2c_arm=on,spi=on\ndtoverlay=dwc2\n\n" \
        "# myna-reader: OLED on SPI0, USB-C as a USB device (host link /dev/ttyGS0), console UART\n" \
        "[all]\nenable_uart=1\n"


def test_settings_for_other_boards_do_not_count(scratch):
    """Bookworm's stock config.txt turns dwc2 on in host mode for a CM5 only; a filter section's
    lines are not this reader's settings, and a host-mode overlay is not the gadget's."""
    boot = scratch / "root/boot/firmware/config.txt"
    boot.write_text("[cm5]\ndtoverlay=dwc2,dr_mode=host\n[pi4]\nenable_uart=1\n[all]\ndtparam=spi=on\n")
    r = gadget(scratch, "configure-boot")
    assert r.returncode == 0
    assert boot.read_text().endswith("[all]\ndtoverlay=dwc2,dr_mode=peripheral\nenable_uart=1\n")
    assert "dtparam=spi=on already set" in r.stdout


def test_configure_boot_refuses_a_machine_without_a_boot_config(scratch):
    (scratch / "root/boot/firmware/config.txt").unlink()
    r = gadget(scratch, "configure-boot")
    assert r.returncode == 1 and "no boot config" in r.stderr


def test_setup_without_a_controller_fails_with_a_sentence(scratch):
    gadget(scratch, "configure-boot")
    r = gadget(scratch, "setup")
    assert r.returncode == 1
    assert "no USB device controller" in r.stderr and "reboot" in r.stderr


def test_setup_is_idempotent_check_passes_stop_removes(scratch):
    gadget(scratch, "configure-boot")
    (scratch / "udc/fe980000.usb").mkdir()  # the Pi 4's dwc2 controller, as /sys/class/udc lists it
    r = gadget(scratch, "setup")
    assert r.returncode == 0, r.stderr
    g = scratch / "configfs/myna"
    assert (g / "UDC").read_text() == "fe980000.usb\n"
    assert (g / "idVendor").read_text() == "0x1d6b\n"
    assert (g / "bDeviceClass").read_text() == "0xef\n"  # IAD: Windows binds usbser without an .inf
    assert (g / "strings/0x409/serialnumber").read_text().strip()
    link = g / "configs/c.1/acm.usb0"
    assert link.is_symlink() and link.resolve() == (g / "functions/acm.usb0").resolve()
    snapshot = {p: p.read_text() for p in g.rglob("*") if p.is_file()}

    r = gadget(scratch, "setup")  # a second start (systemctl restart) changes nothing
    assert r.returncode == 0 and "already bound" in r.stdout
    assert {p: p.read_text() for p in g.rglob("*") if p.is_file()} == snapshot

    tty = scratch / "root/dev/ttyGS0"
    try:
        os.mknod(tty, 0o660 | stat.S_IFCHR, os.makedev(244, 0))  # what the kernel then creates
    except (PermissionError, OSError):
        pytest.skip("cannot create a character device here (not root)")
    r = gadget(scratch, "--check")
    assert r.returncode == 0, r.stdout
    assert r.stdout.count("ok ") == 7 and "FAIL" not in r.stdout

    r = gadget(scratch, "stop")
    assert r.returncode == 0 and not g.exists()
    r = gadget(scratch, "check")
    assert r.returncode == 1 and "gadget myna is not set up" in r.stdout


def test_check_names_what_to_do(scratch):
    r = gadget(scratch, "check")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert all(ln.startswith(("ok ", "FAIL ")) for ln in lines), lines
    assert any("configure-boot" in ln for ln in lines)


def test_gadget_unit_settings():
    text = GADGET_UNIT.read_text(encoding="utf-8")
    s: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            k, v = line.split("=", 1)
            s.setdefault(k, []).append(v)
    assert s["Type"] == ["oneshot"] and s["RemainAfterExit"] == ["yes"]
    assert s["ExecStart"] == ["/opt/myna-reader/bin/myna-usb-gadget setup"]
    assert s["ExecStop"] == ["/opt/myna-reader/bin/myna-usb-gadget stop"]
    assert "mynad.service" in s["Before"][0]  # ttyGS0 exists before mynad opens it ...
    assert "Requires" not in s and "RequiredBy" not in s  # ... but mynad does not depend on it
    assert s["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_gadget_unit_verifies_silently(tmp_path):
    text = GADGET_UNIT.read_text(encoding="utf-8").replace("/opt/myna-reader/bin/myna-usb-gadget", str(GADGET))
    unit = tmp_path / "myna-usb-gadget.service"
    unit.write_text(text, encoding="utf-8")
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, SYSTEMD_COLORS="0", SYSTEMD_PAGER="", LC_ALL="C.UTF-8"))
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", r.stderr + r.stdout


# --------------------------------------------------------------------------- Pi packages


def test_pi_extra_holds_no_module_that_apt_provides():
    """RPi.GPIO (as rpi-lgpio), spidev and picamera2 come from Raspberry Pi OS (docs/deploy.md):
    PyPI has no aarch64 wheel of them, and a pip-installed RPi.GPIO 0.7.1 would shadow rpi-lgpio
    in the venv (and does not run on a Pi 5)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    pi = [re.split(r"[=<>~!; ]", d, maxsplit=1)[0].lower() for d in pyproject["project"]["optional-dependencies"]["pi"]]
    assert not {"rpi.gpio", "rpi-gpio", "rpi-lgpio", "lgpio", "picamera2", "spidev"} & set(pi), pi
    assert "simplejpeg" in pi  # the numpy-2 build that lets apt's picamera2 import beside our numpy
