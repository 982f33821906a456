"""The daemon's TOML configuration: typed, bounded, and strict about unknown keys.

A clinic technician edits this file by hand, so every mistake must produce one
plain sentence naming the section and key, never a traceback (Klipper's config
getters are the model). Relative paths are resolved against the file's folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mynad.core.config import FlowConfig


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


@dataclass(frozen=True)
class ReaderSection:
    id: str = "reader-01"
    state_dir: Path = Path("/var/lib/myna-reader")
    runtime_dir: Path = Path("/run/myna-reader")  # the control socket for mynactl
    log_level: str = "info"
    institution: str = ""


@dataclass(frozen=True)
class CardSection:
    reader: str = ""  # PC/SC reader name prefix; "" = the first reader
    apdu_timeout_s: float = 5.0
    # 照合番号B (opens the chip photo) locks the card face AP after 10 wrong tries, and
    # the lock is lifted only at the city office. The reader never submits a code
    # when the card has this many tries left or fewer: those tries are left for the
    # municipality's own terminal and for the patient's next visit elsewhere.
    code_b_reserve: int = 3


@dataclass(frozen=True)
class DisplaySection:
    backend: str = "real"  # real | sim
    width: int = 256
    height: int = 64
    spi_port: int = 0
    spi_device: int = 0
    gpio_dc: int = 24
    gpio_rst: int = 25
    rotate: int = 0
    contrast: int = 255
    out_dir: Path = Path("screens")  # sim: where PNGs go
    page_s: float = 3.0  # seconds per page when a screen has several


@dataclass(frozen=True)
class KeypadSection:
    backend: str = "real"  # real | sim
    rows: tuple[int, ...] = (5, 6, 13, 19)
    cols: tuple[int, ...] = (12, 16, 20)
    scan_hz: int = 200
    debounce_ms: int = 20


@dataclass(frozen=True)
class IndicatorSection:
    backend: str = "real"  # real | sim
    buzzer_pin: int = 18
    led_pin: int = 23


@dataclass(frozen=True)
class CameraSection:
    backend: str = "real"  # real | sim
    width: int = 640
    height: int = 480
    fps: int = 15


@dataclass(frozen=True)
class CardFaceSection:
    """The camera that reads 照合番号B off the printed card face in the tray."""

    backend: str = "none"  # none (this unit has no card-face camera) | real | sim
    camera_num: int = 1    # picamera2 camera index (0 is the patient camera)
    width: int = 1280
    height: int = 960
    # Captures tried per card while it settles in the tray (a hand still over it, glare).
    captures: int = 3
    # Reads below this confidence are never submitted to the card (docs/card-face.md:
    # chosen on held-out renders so that no wrong code was submitted).
    min_confidence: float = 0.0  # 0 = the reader's calibrated default
    threads: int = 1


@dataclass(frozen=True)
class FaceSection:
    enabled: bool = True
    models_dir: Path = Path("/var/lib/myna-reader/models")
    manifest: Path | None = None
    threads: int = 2
    time_limit_s: float = 10.0
    frames_needed: int = 3
    liveness: bool = True
    # The passive presentation-attack model (MiniFASNet) on every accepted frame
    # (docs/antispoof.md). Off only to measure what it costs.
    pad: bool = True


@dataclass(frozen=True)
class HostSection:
    transport: str = "serial"  # serial | mqtt
    serial_path: str = "/dev/ttyGS0"
    baud: int = 115200
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str = ""
    mqtt_password: str = ""
    mqtt_tls_ca: str = ""


@dataclass(frozen=True)
class StaffSection:
    # sha256 of "<salt>:<password>"; the password itself is never stored.
    password_sha256: str = ""
    password_salt: str = ""

    def check(self, password: bytes | bytearray) -> bool:
        if not self.password_sha256:
            return False
        digest = hashlib.sha256(self.password_salt.encode() + b":" + bytes(password)).hexdigest()
        return hmac.compare_digest(digest, self.password_sha256)


@dataclass(frozen=True)
class SimSection:
    bus: str = ""  # Unix socket of hw-sim's sim bus ("" = not simulated)


@dataclass(frozen=True)
class DaemonConfig:
    path: Path | None = None
    reader: ReaderSection = field(default_factory=ReaderSection)
    flow: FlowConfig = field(default_factory=FlowConfig)
    card: CardSection = field(default_factory=CardSection)
    display: DisplaySection = field(default_factory=DisplaySection)
    keypad: KeypadSection = field(default_factory=KeypadSection)
    indicators: IndicatorSection = field(default_factory=IndicatorSection)
    camera: CameraSection = field(default_factory=CameraSection)
    card_face: CardFaceSection = field(default_factory=CardFaceSection)
    face: FaceSection = field(default_factory=FaceSection)
    host: HostSection = field(default_factory=HostSection)
    staff: StaffSection = field(default_factory=StaffSection)
    sim: SimSection = field(default_factory=SimSection)


_SECTIONS: dict[str, type] = {
    "reader": ReaderSection, "flow": FlowConfig, "card": CardSection, "display": DisplaySection,
    "keypad": KeypadSection, "indicators": IndicatorSection, "camera": CameraSection,
    "card_face": CardFaceSection,
    "face": FaceSection, "host": HostSection, "staff": StaffSection, "sim": SimSection,
}
_CHOICES = {
    ("display", "backend"): ("real", "sim"), ("keypad", "backend"): ("real", "sim"),
    ("indicators", "backend"): ("real", "sim"), ("camera", "backend"): ("real", "sim"),
    ("host", "transport"): ("serial", "mqtt"), ("card_face", "backend"): ("none", "real", "sim"),
    ("reader", "log_level"): ("debug", "info", "warning", "error"),
}


def load_config(path: str | Path) -> DaemonConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    return parse_config(raw, base=path.parent, path=path)


def parse_config(raw: dict[str, Any], base: Path = Path("."), path: Path | None = None) -> DaemonConfig:
    unknown = set(raw) - set(_SECTIONS)
    if unknown:
        raise ConfigError(f"unknown section(s) [{'], ['.join(sorted(unknown))}]; known: {', '.join(_SECTIONS)}")
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        values = raw.get(name, {})
        if not isinstance(values, dict):
            raise ConfigError(f"[{name}] must be a table")
        sections[name] = _build(name, cls, values, base)
    return DaemonConfig(path=path, **sections)


def _build(section: str, cls: type, values: dict[str, Any], base: Path) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"[{section}] has no option {key!r}; options: {', '.join(fields)}")
        kwargs[key] = _convert(section, key, fields[key], value, base)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"[{section}]: {e}") from None


def _convert(section: str, key: str, f: dataclasses.Field, value: Any, base: Path) -> Any:
    where = f"[{section}] {key}"
    default = f.default if f.default is not dataclasses.MISSING else None
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    choices = _CHOICES.get((section, key))
    if choices is not None and value not in choices:
        raise ConfigError(f"{where} must be one of {', '.join(choices)} (got {value!r})")
    if "Path" in kind:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a path string")
        p = Path(value)
        return p if p.is_absolute() else (base / p).resolve()
    if isinstance(default, bool) or kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false (got {value!r})")
        return value
    if isinstance(default, float) or kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number (got {value!r})")
        if value < 0:
            raise ConfigError(f"{where} must not be negative (got {value!r})")
        return float(value)
    if isinstance(default, int) or kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number (got {value!r})")
        if value < 0:
            raise ConfigError(f"{where} must not be negative (got {value!r})")
        return value
    if isinstance(default, tuple) or kind.startswith("tuple"):
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list (got {value!r})")
        return tuple(value)
    if isinstance(default, str) or kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string (got {value!r})")
        return value
    return value
