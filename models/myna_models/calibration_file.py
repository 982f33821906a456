"""The site calibration file (``<state_dir>/face-calibration.toml``): the threshold this reader uses.

Why a separate file and not the manifest: the manifest is package data (inside
site-packages once installed), so a reinstall or upgrade would silently put the
shipped default back; the state directory survives both. The manifest keeps the
model hashes and the shipped default (the public reference threshold).

The file is bound to one recognizer by its sha256: a calibration measured with
another model file says nothing about this one, so it is ignored with a warning
(the engine falls back to the manifest's default). A file that is present but
cannot be trusted as written (unreadable, bad TOML, missing or out-of-range values,
a threshold below the default without a bound that supports it) stops the engine
with a :class:`ModelError`: a technician put it there and must hear that it is wrong.

Only :mod:`tomllib` and the manifest's TOML writer: the daemon imports this at start.
"""

from __future__ import annotations

import logging
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from myna_models.errors import ModelError
from myna_models.manifest import atomic_write_text, dumps

log = logging.getLogger("myna.face.calibration")

CALIBRATION_FILE = "face-calibration.toml"
SCHEMA = 1
HEADER = """myna-reader face threshold calibration of THIS reader (written by `mynactl face-calibrate`).
The face engine uses [calibration].threshold when recognizer_sha256 is the sha256 of the recognizer it
loads; otherwise it uses the default threshold of the model manifest. Do not edit by hand: re-run the tool."""


@dataclass(frozen=True)
class Calibration:
    path: Path
    recognizer: str
    recognizer_sha256: str
    threshold: float
    rule: str
    bound_met: bool
    fmr_upper: float | None
    date: str


def read_calibration(path: Path | str, recognizer: str, recognizer_sha256: str,
                     default_threshold: float) -> Calibration | None:
    """The calibration in ``path`` for this recognizer, or None (no file, or made for another recognizer).

    ModelError (one plain sentence naming the file) when the file exists but is malformed.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"face calibration file {p} cannot be read ({getattr(e, 'strerror', None) or e})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ModelError(f"face calibration file {p} is not valid TOML ({e}); re-run mynactl face-calibrate "
                         "or delete it to use the default threshold") from None
    return parse_calibration(data, p, recognizer, recognizer_sha256, default_threshold)


def parse_calibration(data: dict[str, Any], p: Path, recognizer: str, recognizer_sha256: str,
                      default_threshold: float) -> Calibration | None:
    """Validation of an already parsed file (pure; see :func:`read_calibration`)."""
    def bad(why: str) -> ModelError:
        return ModelError(f"face calibration file {p} is malformed: {why}; re-run mynactl face-calibrate "
                          "or delete it to use the default threshold")

    if data.get("schema") != SCHEMA:
        raise bad(f"schema is {data.get('schema')!r}, expected {SCHEMA}")
    cal = data.get("calibration")
    if not isinstance(cal, dict):
        raise bad("the [calibration] table is missing")
    sha = cal.get("recognizer_sha256")
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower()):
        raise bad("recognizer_sha256 is not a sha256")
    t = cal.get("threshold")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 0.0 < t < 1.0:
        raise bad(f"threshold {t!r} is not a number between 0 and 1")
    bound_met = cal.get("bound_met")
    if not isinstance(bound_met, bool):
        raise bad("bound_met must be true or false")
    fmr_upper = cal.get("fmr_upper")
    if fmr_upper is not None and (isinstance(fmr_upper, bool) or not isinstance(fmr_upper, (int, float))
                                  or not 0.0 <= fmr_upper <= 1.0):
        raise bad(f"fmr_upper {fmr_upper!r} is not a rate")
    if sha.lower() != recognizer_sha256.lower():
        log.warning("face calibration %s was made for another recognizer (sha256 %s…, %s), not %s (%s…): "
                    "ignored, using the default threshold %.3f", p, sha[:12], cal.get("recognizer", "?"),
                    recognizer, recognizer_sha256[:12], default_threshold)
        return None
    if float(t) < default_threshold and not bound_met:
        raise bad(f"threshold {float(t):.3f} is below the default {default_threshold:.3f} although its FMR bound "
                  "was not met")
    return Calibration(p, str(cal.get("recognizer", recognizer)), sha.lower(), float(t), str(cal.get("rule", "")),
                       bound_met, None if fmr_upper is None else float(fmr_upper), str(cal.get("date", "")))


def write_calibration(path: Path | str, data: dict[str, Any]) -> None:
    """Atomically replace ``path`` (created with its folder if needed) with ``data`` in TOML."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p, dumps(data, HEADER), prefix=".face-calibration-")
