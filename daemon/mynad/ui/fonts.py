"""Japanese fonts for the panel, found among the Debian font packages and cached.

The reader's screen is a 256x64 greyscale OLED read by elderly patients, so body
text is drawn at 14 px (ideographs 14 px tall) and nothing is ever smaller than
12 px. Noto Sans CJK JP (Debian ``fonts-noto-cjk``) is preferred: its hinting
keeps kanji strokes apart at these sizes. IPA Gothic (``fonts-ipafont-gothic``)
and Takao are fallbacks. ``MYNA_FONT`` / ``MYNA_FONT_BOLD`` override the search
(a path to a .ttf/.otf/.ttc file), e.g. for a vendor font on the device.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from PIL import ImageFont

BODY_PX = 14  # body text: ideographs 14 px tall on a 16 px line pitch
SMALL_PX = 12  # key labels that need to squeeze; the smallest size ever drawn
LARGE_PX = 16  # the masked PIN dots
MIN_PX = 12

# (path, face index): Noto's .ttc holds JP, KR, SC, TC, HK faces; index 0 is JP.
_REGULAR = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJKjp-Regular.otf", 0),
    ("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf", 0),
    ("/usr/share/fonts/truetype/fonts-japanese-gothic.ttf", 0),
    ("/usr/share/fonts/truetype/takao-gothic/TakaoGothic.ttf", 0),
    ("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf", 0),
)
_BOLD = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJKjp-Bold.otf", 0),
)


class FontMissing(RuntimeError):
    """No Japanese font is installed; the message says which package to install."""


_lock = threading.Lock()
_cache: dict[tuple[bool, int], ImageFont.FreeTypeFont] = {}
_paths: dict[bool, tuple[str, int]] = {}


def _find(bold: bool) -> tuple[str, int]:
    if bold in _paths:
        return _paths[bold]
    env = os.environ.get("MYNA_FONT_BOLD" if bold else "MYNA_FONT")
    candidates: list[tuple[str, int]] = []
    if env:
        if not Path(env).is_file():
            raise FontMissing(f"{'MYNA_FONT_BOLD' if bold else 'MYNA_FONT'}={env} is not a font file")
        candidates.append((env, 0))
    candidates += list(_BOLD if bold else ()) + list(_REGULAR)
    for path, index in candidates:
        if Path(path).is_file():
            _paths[bold] = (path, index)
            return path, index
    raise FontMissing(
        "no Japanese font found for the display; install one with "
        "`apt-get install fonts-noto-cjk` (or fonts-ipafont-gothic), "
        "or set MYNA_FONT to a .ttf/.otf/.ttc file"
    )


def font(size: int = BODY_PX, bold: bool = False) -> ImageFont.FreeTypeFont:
    """The Japanese font at ``size`` px (cached; thread-safe)."""
    if size < MIN_PX:
        raise ValueError(f"font size {size} px is below the {MIN_PX} px minimum for this reader")
    key = (bold, size)
    with _lock:
        f = _cache.get(key)
        if f is None:
            path, index = _find(bold)
            try:
                f = ImageFont.truetype(path, size, index=index)
            except OSError as e:
                raise FontMissing(f"cannot load font {path}: {e}") from e
            _cache[key] = f
        return f


def font_path(bold: bool = False) -> str:
    return _find(bold)[0]
