"""The model manifest (``manifest.toml``): which model files are accepted, their hashes, and the threshold.

Read with :mod:`tomllib`; written by hand in a small, fixed layout (no TOML writer is a
dependency of the daemon), then read back with :mod:`tomllib` before it replaces the file.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from myna_models.errors import ModelError

DEFAULT_MANIFEST = Path(__file__).with_name("manifest.toml")
ROLES = ("detector", "recognizer", "antispoof")
MAX_MODEL_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class ModelEntry:
    role: str
    file: str
    sha256: str
    size: int
    preference: int = 0               # lower is preferred among recognizers
    threshold: float | None = None    # per-model threshold (alternative recognizers)
    threshold_calibrated: bool = False


@dataclass
class Manifest:
    path: Path
    data: dict[str, Any]
    models: list[ModelEntry]

    def entry(self, file: str) -> ModelEntry:
        for m in self.models:
            if m.file == file:
                return m
        raise ModelError(f"model {file!r} is not listed in the manifest {self.path}")

    def by_role(self, role: str) -> list[ModelEntry]:
        return sorted((m for m in self.models if m.role == role), key=lambda m: m.preference)

    @property
    def threshold_section(self) -> dict[str, Any]:
        return dict(self.data.get("threshold") or {})

    def threshold_for(self, file: str) -> tuple[float, bool]:
        """(threshold, calibrated) for a recognizer file."""
        t = self.threshold_section
        if t.get("recognizer") == file and "value" in t:
            return float(t["value"]), bool(t.get("calibrated", False))
        e = self.entry(file)
        if e.threshold is None:
            raise ModelError(f"the manifest {self.path} has no threshold for {file}")
        return float(e.threshold), e.threshold_calibrated


def load_manifest(path: Path | str | None = None) -> Manifest:
    p = Path(path) if path is not None else DEFAULT_MANIFEST
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model manifest {p} is missing") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ModelError(f"model manifest {p} is unreadable: {e}") from None
    models = []
    for i, m in enumerate(data.get("model") or []):
        try:
            entry = ModelEntry(
                role=str(m["role"]), file=str(m["file"]), sha256=str(m["sha256"]).lower(), size=int(m["size"]),
                preference=int(m.get("preference", 0)),
                threshold=float(m["threshold"]) if "threshold" in m else None,
                threshold_calibrated=bool(m.get("threshold_calibrated", False)))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"model manifest {p}: model entry {i + 1} is incomplete ({e})") from None
        if entry.role not in ROLES:
            raise ModelError(f"model manifest {p}: {entry.file} has an unknown role {entry.role!r}")
        if len(entry.sha256) != 64 or any(c not in "0123456789abcdef" for c in entry.sha256):
            raise ModelError(f"model manifest {p}: {entry.file} has a malformed sha256")
        if Path(entry.file).name != entry.file:
            raise ModelError(f"model manifest {p}: {entry.file!r} must be a plain file name")
        models.append(entry)
    if not any(m.role == "detector" for m in models) or not any(m.role == "recognizer" for m in models):
        raise ModelError(f"model manifest {p} must list a detector and at least one recognizer")
    return Manifest(p, data, models)


def read_verified(models_dir: Path | str, entry: ModelEntry) -> bytes:
    """The model's bytes, after checking size and sha256; ModelError naming the file otherwise.

    The bytes that were hashed are the bytes handed to onnxruntime, so the file
    cannot change between the check and the load.
    """
    path = Path(models_dir) / entry.file
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ModelError(f"model file {path} is missing") from None
    except OSError as e:
        raise ModelError(f"model file {path} cannot be read: {e.strerror or e}") from None
    if size != entry.size or size > MAX_MODEL_BYTES:
        raise ModelError(f"model file {path} has the wrong size ({size} bytes, expected {entry.size}): "
                         "it is damaged or not the expected model")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(f"model file {path} cannot be read: {e.strerror or e}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise ModelError(f"model file {path} does not match its sha256 in the manifest "
                         f"(got {digest}, expected {entry.sha256}): it has been modified or replaced")
    return data


def file_sha256(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- writing

def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot write {v} to TOML")
        return repr(v)
    if isinstance(v, str):
        out = ['"']
        for ch in v:
            if ch == '"':
                out.append('\\"')
            elif ch == "\\":
                out.append("\\\\")
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append("\\t")
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise ValueError(f"cannot write {type(v).__name__} to TOML")


def _key(k: str) -> str:
    if k and all(c.isascii() and (c.isalnum() or c in "-_") for c in k):
        return k
    return _value(k)


def dumps(data: dict[str, Any], header: str = "") -> str:
    """TOML for a dict of scalars, tables of scalars and arrays of tables of scalars."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and not _is_aot(v)}
    for k, v in scalars.items():
        lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in data.items():
        if _is_aot(v):
            for item in v:
                lines += ["", f"[[{_key(k)}]]"] + [f"{_key(a)} = {_value(b)}" for a, b in item.items()]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{_key(k)}]"] + [f"{_key(a)} = {_value(b)}" for a, b in v.items()]
    text = "\n".join(lines).lstrip("\n") + "\n"
    if tomllib.loads(text) != _plain(data):  # never write something that reads back differently
        raise ValueError("manifest serialisation does not round-trip")
    return text


def _is_aot(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


HEADER = """myna-reader face model manifest (package data of myna_models).
Every model file is checked against its size and sha256 before it is loaded; a mismatch stops the daemon.
[threshold] is the shipped default (public reference); site calibrations live in the state dir, not here.
Edit the rest by hand only with new, verified hashes."""


def atomic_write_text(path: Path | str, text: str, prefix: str = ".tmp-") -> None:
    """Replace ``path`` with ``text`` so that a power cut leaves the old file or the new one,
    never half of either: write a temp file beside it, fsync, rename over."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=p.suffix, dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_manifest(data: dict[str, Any], path: Path | str) -> None:
    """Atomically replace ``path`` with ``data`` in TOML."""
    atomic_write_text(path, dumps(data, HEADER), prefix=".manifest-")


def update_threshold(path: Path | str, recognizer: str, values: dict[str, Any]) -> dict[str, Any]:
    """Record a calibrated threshold for ``recognizer``.

    The preferred recognizer's threshold lives in ``[threshold]``; any other listed
    recognizer gets ``threshold`` / ``threshold_calibrated`` / ``threshold_date`` in its own entry.
    Returns the data written.
    """
    man = load_manifest(path)
    man.entry(recognizer)  # must be listed
    data = _plain(man.data)
    primary = data.get("threshold", {}).get("recognizer")
    if primary is None:
        primary = man.by_role("recognizer")[0].file
    if recognizer == primary:
        section: dict[str, Any] = {"recognizer": recognizer}
        section.update(values)
        section["calibrated"] = True
        data["threshold"] = section
    else:
        for m in data["model"]:
            if m["file"] == recognizer:
                m["threshold"] = float(values["value"])
                m["threshold_calibrated"] = True
                if "date" in values:
                    m["threshold_date"] = values["date"]
                if "calibrated_on" in values:
                    m["threshold_calibrated_on"] = values["calibrated_on"]
    write_manifest(data, path)
    return data
