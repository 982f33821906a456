"""Fonts for the panel, one face per language, found among the Debian font packages and cached.

The reader's screen is a 256x64 greyscale OLED read by elderly patients, so body
text is drawn at 14 px (ideographs 14 px tall) and nothing is ever smaller than
12 px; large-text mode draws at 22 px (docs/languages.md).

Noto Sans CJK (Debian ``fonts-noto-cjk``, one .ttc per weight) draws every language
of the reader: its faces are JP (index 0), KR (1), SC (2), TC (3), HK (4), and each face
also carries Latin with every Vietnamese and Portuguese diacritic, hangul, kana and both
Han forms. Han characters look different by region (直, 骨, 次), so the face follows the
language: SC for 中文(简体), KR for 한국어, JP for Japanese and for the Latin-script
languages (a Japanese name on an English screen keeps its Japanese glyph forms, and no
second font or glyph fallback is needed). Its hinting keeps kanji strokes apart at 14 px.

IPA Gothic (``fonts-ipafont-gothic``) and Takao are fallbacks for Japanese, English,
Portuguese and Tagalog only (they lack hangul, simplified Han and Vietnamese).
``MYNA_FONT`` / ``MYNA_FONT_BOLD`` override the search for every language (a path to a
.ttf/.otf/.ttc that covers them all), e.g. for a vendor font on the device.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from PIL import ImageFont

from mynad.ui.i18n import DEFAULT_LANG, language

BODY_PX = 14  # body text: ideographs 14 px tall on a 16 px line pitch
SMALL_PX = 12  # key labels that need to squeeze; the smallest size ever drawn
LARGE_PX = 16  # the masked PIN dots
LARGE_BODY_PX = 22  # large-text mode: two rows of 32 px
MIN_PX = 12
# Vietnamese stacks two marks above a vowel (ế, ở) and one below (ệ): at 14 px a line of it
# spans 18 px and cannot keep inside a 16 px row, at 13 px it spans 16 px.
_BODY_PX_BY_LANG = {"vi": 13}


def body_px(lang: str = DEFAULT_LANG) -> int:
    """Body text size for ``lang`` on the 16 px row pitch."""
    return _BODY_PX_BY_LANG.get(lang, BODY_PX)

_NOTO_DIR = "/usr/share/fonts/opentype/noto"
# face -> index in Debian's NotoSansCJK-{Regular,Bold}.ttc
_TTC_INDEX = {"JP": 0, "KR": 1, "SC": 2, "TC": 3, "HK": 4}
_JP_FALLBACKS = (
    ("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf", 0),
    ("/usr/share/fonts/truetype/fonts-japanese-gothic.ttf", 0),
    ("/usr/share/fonts/truetype/takao-gothic/TakaoGothic.ttf", 0),
    ("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf", 0),
)
# Languages the Japanese-only fallbacks can draw (Latin-1 and kana/kanji).
_FALLBACK_LANGS = frozenset({"ja", "en", "pt", "tl"})


class FontMissing(RuntimeError):
    """No font for a language is installed; the message says which package to install."""


_lock = threading.Lock()
_cache: dict[tuple[bool, int, str], ImageFont.FreeTypeFont] = {}
_paths: dict[tuple[bool, str], tuple[str, int]] = {}


def _candidates(bold: bool, lang: str) -> list[tuple[str, int]]:
    face = language(lang).font_face
    weight = "Bold" if bold else "Regular"
    out: list[tuple[str, int]] = []
    env = os.environ.get("MYNA_FONT_BOLD" if bold else "MYNA_FONT")
    if env:
        if not Path(env).is_file():
            raise FontMissing(f"{'MYNA_FONT_BOLD' if bold else 'MYNA_FONT'}={env} is not a font file")
        out.append((env, 0))
    out.append((f"{_NOTO_DIR}/NotoSansCJK-{weight}.ttc", _TTC_INDEX[face]))
    out.append((f"{_NOTO_DIR}/NotoSansCJK{face.lower()}-{weight}.otf", 0))  # older Debian layout
    if bold:  # no bold of our own: the regular face (Noto's regular weight, then the fallbacks)
        out += _candidates(False, lang)
    elif lang in _FALLBACK_LANGS:
        out += list(_JP_FALLBACKS)
    return out


def _find(bold: bool, lang: str) -> tuple[str, int]:
    key = (bold, lang)
    if key in _paths:
        return _paths[key]
    for path, index in _candidates(bold, lang):
        if Path(path).is_file():
            _paths[key] = (path, index)
            return path, index
    raise FontMissing(
        f"no font found for the display in {language(lang).name}; install one with "
        "`apt-get install fonts-noto-cjk`, or set MYNA_FONT to a .ttf/.otf/.ttc file that covers it"
    )


def font(size: int = BODY_PX, bold: bool = False, lang: str = DEFAULT_LANG) -> ImageFont.FreeTypeFont:
    """The font for ``lang`` at ``size`` px (cached; thread-safe)."""
    if size < MIN_PX:
        raise ValueError(f"font size {size} px is below the {MIN_PX} px minimum for this reader")
    key = (bold, size, lang)
    with _lock:
        f = _cache.get(key)
        if f is None:
            path, index = _find(bold, lang)
            try:
                f = ImageFont.truetype(path, size, index=index)
            except OSError as e:
                raise FontMissing(f"cannot load font {path}: {e}") from e
            _cache[key] = f
        return f


def font_path(bold: bool = False, lang: str = DEFAULT_LANG) -> str:
    return _find(bold, lang)[0]


def font_file(bold: bool = False, lang: str = DEFAULT_LANG) -> tuple[str, int]:
    """(path, face index) drawing ``lang`` (tests check its character coverage)."""
    return _find(bold, lang)
