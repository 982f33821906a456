"""The daemon's TOML configuration: typed, bounded, and strict about unknown keys.

A clinic technician edits this file by hand, so every mistake must produce one
plain sentence naming the section and key, never a traceback (Klipper's config
getters are the model). Relative paths are resolved against the file's folder.
"""

from __future__ import annotations

import dataclasses
import re
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
    # Control socket (docs/security.md): members of control_group may connect and read the
    # status; only root and members of staff_group may change anything (visual check).
    staff_group: str = "myna-staff"
    control_group: str = "myna-tech"


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
    # DC/RST lines: "cdev" (our GPIO character-device driver) or "rpigpio" (luma's default,
    # rpi-lgpio on Raspberry Pi OS, whose threads wake even when idle); docs/pi-hardware.md
    gpio: str = "cdev"
    rotate: int = 0
    contrast: int = 255
    out_dir: Path = Path("screens")  # sim: where PNGs go
    keep_files: int = 0  # sim: keep only the newest N PNGs (0 = all; long soaks bound the folder)
    page_s: float = 3.0  # seconds per page when a screen has several
    # Large text (docs/languages.md): the default for every visit; a patient switches it for
    # their visit with key 11 (language menu), then 12. Pages then wait for key 9, or turn
    # every large_page_s seconds when that is more than 0.
    large_text: bool = False
    large_page_s: float = 0.0


@dataclass(frozen=True)
class KeypadSection:
    backend: str = "real"  # real | sim
    rows: tuple[int, ...] = (5, 6, 13, 19)
    cols: tuple[int, ...] = (12, 16, 20)
    scan_hz: int = 200
    debounce_ms: int = 20
    # sleep until a key pulls a column low (GPIO edge interrupt); false: scan all the time
    # (only for a GPIO driver without edge detection)
    irq: bool = True
    # the RPi.GPIO API from: "cdev" (myna_drivers.gpio_cdev, libgpiod v2: the edge thread sleeps
    # in the kernel) or "rpigpio" (the system's RPi.GPIO, rpi-lgpio, whose edge thread polls)
    gpio: str = "cdev"


@dataclass(frozen=True)
class IndicatorSection:
    backend: str = "real"  # real | sim
    buzzer_pin: int = 18
    led_pin: int = 23
    gpio: str = "cdev"  # as [keypad] gpio


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
    # The password is never in this file: a 0600/0640 file owned by root or the daemon's
    # user, or the systemd credential "mqtt-password" (docs/security.md).
    mqtt_password_file: Path | None = None
    mqtt_tls_ca: Path | None = None    # set: TLS, broker certificate and host name verified
    mqtt_tls_cert: Path | None = None  # client certificate (PEM) for brokers that require one
    mqtt_tls_key: Path | None = None   # its private key (PEM, unencrypted, 0600)
    # The reader's 32-byte host-link key (64 hex digits), 0600, owned by the daemon's user;
    # `mynactl host-key generate|import`. Every frame is authenticated with it (docs/host-protocol.md).
    key_file: Path = Path("/etc/myna-reader/host.key")


@dataclass(frozen=True)
class StaffSection:
    # The password itself is set with `mynactl staff-password set` and stored (scrypt) in
    # <state_dir>/staff-password, never here (mynad/staffauth.py). These are the lockout:
    max_wrong: int = 5          # wrong entries in a row before the staff check is locked
    lock_s: float = 60.0        # the first lock; each further one doubles ...
    lock_max_s: float = 3600.0  # ... up to this


@dataclass(frozen=True)
class VoiceSection:
    """Spoken prompts and chimes on the speaker (docs/voice.md)."""

    backend: str = "none"  # none (no speaker) | alsa (aplay on `device`) | sim (a WAV per prompt)
    enabled: bool = True   # false: silent, as if backend = "none"
    volume: int = 70       # 0..100, a decibel scale (0 = silent, 1 = -40 dB, 100 = full scale)
    device: str = "default"  # ALSA PCM name for aplay -D (`aplay -L` lists them)
    out_dir: Path | None = None    # sim: where WAVs go; unset = <display out_dir>/../voice
    keep_files: int = 0            # sim: keep only the newest N WAVs (0 = all)
    cache_dir: Path | None = None  # synthesized prompts; unset = <state_dir>/voice-cache


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
    voice: VoiceSection = field(default_factory=VoiceSection)
    sim: SimSection = field(default_factory=SimSection)


_SECTIONS: dict[str, type] = {
    "reader": ReaderSection, "flow": FlowConfig, "card": CardSection, "display": DisplaySection,
    "keypad": KeypadSection, "indicators": IndicatorSection, "camera": CameraSection,
    "card_face": CardFaceSection,
    "face": FaceSection, "host": HostSection, "staff": StaffSection, "voice": VoiceSection,
    "sim": SimSection,
}
_CHOICES = {
    ("display", "backend"): ("real", "sim"), ("keypad", "backend"): ("real", "sim"),
    ("indicators", "backend"): ("real", "sim"), ("camera", "backend"): ("real", "sim"),
    ("host", "transport"): ("serial", "mqtt"), ("card_face", "backend"): ("none", "real", "sim"),
    ("reader", "log_level"): ("debug", "info", "warning", "error"),
    ("display", "rotate"): (0, 1, 2, 3), ("voice", "backend"): ("none", "alsa", "sim"),
    ("keypad", "gpio"): ("cdev", "rpigpio"), ("indicators", "gpio"): ("cdev", "rpigpio"),
    ("display", "gpio"): ("cdev", "rpigpio"),
}
# Keys that used to exist and must not silently keep a secret in the config file.
_REMOVED = {
    ("staff", "password_sha256"): "the staff password is no longer kept in the config (a plain SHA-256 of "
                                  "a few digits is reversed at once): delete password_sha256 and password_salt "
                                  "from [staff] and set the password with `mynactl staff-password set`",
    ("staff", "password_salt"): "the staff password is no longer kept in the config: delete password_sha256 "
                                "and password_salt from [staff] and set the password with "
                                "`mynactl staff-password set`",
    ("host", "mqtt_password"): "the MQTT password must not be written in the config: put it in a file readable "
                               "only by root and the daemon (chmod 0600) and name it in mqtt_password_file, "
                               "or give it to the unit as the systemd credential mqtt-password",
}
# Numeric bounds (inclusive). Keys ending in _s not listed here are timeouts: > 0 and at most an hour.
_GPIO = (0, 27)  # the Pi's BCM GPIO numbers on the 40-pin header
_BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("card", "apdu_timeout_s"): (0.1, 60), ("card", "code_b_reserve"): (0, 9),
    ("display", "width"): (1, 4096), ("display", "height"): (1, 4096), ("display", "spi_port"): (0, 6),
    ("display", "spi_device"): (0, 3), ("display", "gpio_dc"): _GPIO, ("display", "gpio_rst"): _GPIO,
    ("display", "contrast"): (0, 255), ("display", "page_s"): (0.5, 60),
    ("display", "large_page_s"): (0, 120),
    ("keypad", "rows"): _GPIO, ("keypad", "cols"): _GPIO, ("keypad", "scan_hz"): (10, 2000),
    ("keypad", "debounce_ms"): (1, 200),
    ("indicators", "buzzer_pin"): _GPIO, ("indicators", "led_pin"): _GPIO,
    ("camera", "width"): (16, 4096), ("camera", "height"): (16, 4096), ("camera", "fps"): (1, 120),
    ("card_face", "camera_num"): (0, 7), ("card_face", "width"): (16, 8192), ("card_face", "height"): (16, 8192),
    ("card_face", "captures"): (1, 20), ("card_face", "min_confidence"): (0, 1), ("card_face", "threads"): (1, 16),
    ("face", "threads"): (1, 16), ("face", "time_limit_s"): (1, 300), ("face", "frames_needed"): (1, 30),
    ("host", "mqtt_port"): (1, 65535),
    ("staff", "max_wrong"): (1, 100), ("staff", "lock_s"): (1, 86400), ("staff", "lock_max_s"): (1, 7 * 86400),
    ("flow", "face_attempts"): (1, 10), ("flow", "throttle_max_wrong"): (1, 100),
    ("flow", "staff_password_length"): (4, 12), ("flow", "checkup_min_age"): (0, 120),
    ("flow", "throttle_window_s"): (1, 86400), ("flow", "throttle_block_s"): (1, 86400),
    ("flow", "saving_notice_s"): (0.1, 60), ("voice", "volume"): (0, 100),
}
_TIMEOUT_BOUNDS = (0.001, 3600)
# The rates a UART (and the USB gadget's ACM emulation) actually offer; 7 or 115201 is a typo.
STANDARD_BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
_READER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


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
    except (ValueError, RecursionError):  # tomllib: an integer of over 4300 digits, or nesting past the stack
        raise ConfigError(f"config file {path} is not usable TOML: a number is too long or lists are "
                          f"nested too deep") from None
    return parse_config(raw, base=path.parent, path=path)


def _refuse_huge_integers(raw: dict[str, Any]) -> None:
    """TOML integers are 64-bit, but tomllib returns any size (``0x`` and 5000 hex digits);
    such a number breaks float() (OverflowError) and repr() (over 4300 digits: ValueError)
    in the messages below, so it is refused here, once, naming its key."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), raw)]
    while stack:
        keys, value = stack.pop()
        if isinstance(value, dict):
            stack += [(keys + (str(k),), v) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(keys, v) for v in value]
        elif isinstance(value, int) and not -2**63 <= value < 2**63:
            where = f"[{keys[0]}] {'.'.join(keys[1:])}" if len(keys) > 1 else ".".join(keys)
            raise ConfigError(f"{where} is a number outside the 64-bit range TOML allows")


def parse_config(raw: dict[str, Any], base: Path = Path("."), path: Path | None = None) -> DaemonConfig:
    _refuse_huge_integers(raw)
    unknown = set(raw) - set(_SECTIONS)
    if unknown:
        raise ConfigError(f"unknown section(s) [{'], ['.join(sorted(unknown))}]; known: {', '.join(_SECTIONS)}")
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        values = raw.get(name, {})
        if not isinstance(values, dict):
            raise ConfigError(f"[{name}] must be a table")
        sections[name] = _build(name, cls, values, base)
    cfg = DaemonConfig(path=path, **sections)
    problems = config_problems(cfg)
    if problems:
        raise ConfigError("\n".join(problems))
    return cfg


def _build(section: str, cls: type, values: dict[str, Any], base: Path) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if (section, key) in _REMOVED:
            raise ConfigError(f"[{section}] {key}: {_REMOVED[section, key]}")
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
        raise ConfigError(f"{where} must be one of {', '.join(map(str, choices))} (got {value!r})")
    if "Path" in kind:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a path string")
        if "\x00" in value:
            raise ConfigError(f"{where} must not contain a NUL character")
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
        return _bounded(section, key, float(value))
    if isinstance(default, int) or kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number (got {value!r})")
        if value < 0:
            raise ConfigError(f"{where} must not be negative (got {value!r})")
        return _bounded(section, key, value)
    if isinstance(default, tuple) or kind.startswith("tuple"):
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list (got {value!r})")
        if (section, key) in _BOUNDS:
            for item in value:
                if isinstance(item, bool) or not isinstance(item, int):
                    raise ConfigError(f"{where} must be a list of whole numbers (got {item!r})")
                _bounded(section, key, item)
        return tuple(value)
    if isinstance(default, str) or kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string (got {value!r})")
        return value
    return value


def _bounded(section: str, key: str, value: float) -> Any:
    """Refuse a number outside the key's range with one sentence naming the range."""
    lo, hi = _BOUNDS.get((section, key)) or (_TIMEOUT_BOUNDS if key.endswith("_s") else (None, None))
    if lo is None or hi is None:
        return value
    if not lo <= value <= hi:
        if (lo, hi) == _TIMEOUT_BOUNDS:
            raise ConfigError(f"[{section}] {key} is a time in seconds: it must be more than 0 and at most "
                              f"{hi:g} (got {value!r})")
        raise ConfigError(f"[{section}] {key} must be between {lo:g} and {hi:g} (got {value!r})")
    return value


def config_problems(cfg: DaemonConfig) -> list[str]:
    """Checks that need more than one key, or the files a key names; one sentence per problem.

    Files are checked only when they will be used (the MQTT ones when transport is mqtt),
    so switching a reader to serial does not require deleting the MQTT lines.
    """
    problems: list[str] = []
    if not _READER_ID.fullmatch(cfg.reader.id):
        problems.append(f"[reader] id must be 1 to 64 letters, digits, '.', '_' or '-' (it is part of the MQTT "
                        f"topics, where '/', '+' and '#' would reach other readers' topics; got {cfg.reader.id!r})")
    for key in ("staff_group", "control_group"):
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", getattr(cfg.reader, key)):
            problems.append(f"[reader] {key} must be a Unix group name (got {getattr(cfg.reader, key)!r})")
    host = cfg.host
    if host.baud not in STANDARD_BAUDS:
        problems.append(f"[host] baud must be a standard rate: {', '.join(map(str, STANDARD_BAUDS))} "
                        f"(got {host.baud})")
    if cfg.staff.lock_max_s < cfg.staff.lock_s:
        problems.append(f"[staff] lock_max_s ({cfg.staff.lock_max_s:g}) must not be shorter than lock_s "
                        f"({cfg.staff.lock_s:g})")
    if host.transport == "mqtt":
        if not host.mqtt_host:
            problems.append("[host] mqtt_host must name the broker when transport = \"mqtt\"")
        if (host.mqtt_tls_cert is None) != (host.mqtt_tls_key is None):
            problems.append("[host] mqtt_tls_cert and mqtt_tls_key go together: set both (client certificate "
                            "and its key) or neither")
        if host.mqtt_tls_cert is not None and host.mqtt_tls_ca is None:
            problems.append("[host] mqtt_tls_cert needs mqtt_tls_ca: a client certificate is only sent over TLS, "
                            "and TLS needs the CA that signed the broker's certificate")
        for key in ("mqtt_tls_ca", "mqtt_tls_cert", "mqtt_tls_key", "mqtt_password_file"):
            path = getattr(host, key)
            if path is not None and not path.is_file():
                problems.append(f"[host] {key}: {path} does not exist or is not a file")
        if host.mqtt_password_file is not None and host.mqtt_password_file.is_file():
            from myna_drivers.mqtt_link import secret_file_problem

            problem = secret_file_problem(host.mqtt_password_file)
            if problem:
                problems.append(f"[host] mqtt_password_file: {problem}")
        if host.mqtt_tls_key is not None and host.mqtt_tls_key.is_file():
            from myna_drivers.mqtt_link import secret_file_problem

            problem = secret_file_problem(host.mqtt_tls_key)
            if problem:
                problems.append(f"[host] mqtt_tls_key: {problem}")
    return problems
