"""The patient's language: which languages the reader speaks and their message catalogues.

Japanese is the source language: every text in :mod:`mynad.ui.texts` (and the patient
texts of :mod:`mynad.core.codes`) is written in Japanese, marked for extraction, and used
as the gettext msgid. The other languages are GNU gettext catalogues under
``mynad/locale/<lang>/LC_MESSAGES/mynad.po``, written and checked with Babel
(``python -m mynad.ui.catalogs``, docs/languages.md).

At run time only the compiled ``.mo`` files are read, with the standard library's
:mod:`gettext`: no Babel on the device, nothing parsed or compiled at start, and a
catalogue is a few kilobytes loaded once. The ``.mo`` files are built from the ``.po``
files before release (``python -m mynad.ui.catalogs compile``) and shipped as package
data; ``tests/ui/test_i18n.py`` fails when one is missing or differs from its ``.po``.

The language holds for one visit: the patient chooses it on the first screen after the
card is read and the reader returns to Japanese when the card is removed (docs/languages.md).
"""

from __future__ import annotations

import gettext as _gettext
import threading
from dataclasses import dataclass
from importlib import resources

DOMAIN = "mynad"
DEFAULT_LANG = "ja"


@dataclass(frozen=True)
class Language:
    code: str  # catalogue folder and the value carried by the flow (SetDisplay.lang)
    name: str  # its own name, shown on the language menu whatever the current language
    locale: str  # the gettext/CLDR locale written in the catalogue header
    font_face: str  # which Noto Sans CJK face draws it: "JP" | "SC" | "KR"


# Menu order (keys 1..7): Japanese first, then the largest foreign-resident groups.
LANGUAGES: tuple[Language, ...] = (
    Language("ja", "日本語", "ja", "JP"),
    Language("en", "English", "en", "JP"),
    Language("zh_Hans", "中文(简体)", "zh_Hans", "SC"),
    Language("ko", "한국어", "ko", "KR"),
    Language("vi", "Tiếng Việt", "vi", "JP"),
    Language("pt", "Português", "pt_BR", "JP"),  # Brazilian Portuguese: most residents are Brazilian
    Language("tl", "Tagalog", "tl", "JP"),
)
LANG_CODES: tuple[str, ...] = tuple(lang.code for lang in LANGUAGES)
TRANSLATED: tuple[str, ...] = tuple(c for c in LANG_CODES if c != DEFAULT_LANG)
_BY_CODE = {lang.code: lang for lang in LANGUAGES}


class CatalogueMissing(RuntimeError):
    """A language's compiled catalogue (.mo) is not installed; the message says how to build it."""


def N_(message: str) -> str:  # noqa: N802 - the gettext convention Babel's extractor looks for
    """Mark a Japanese text for extraction without translating it here: tables of texts are
    built at import time, before any language is known; they are translated when shown."""
    return message


def language(code: str) -> Language:
    try:
        return _BY_CODE[code]
    except KeyError:
        raise ValueError(f"unknown language {code!r}; known: {', '.join(LANG_CODES)}") from None


def normalise(code: object) -> str:
    """``code`` if the reader has it, else Japanese (a screen is never refused for its language)."""
    return code if isinstance(code, str) and code in _BY_CODE else DEFAULT_LANG


_lock = threading.Lock()
_cache: dict[str, _gettext.NullTranslations] = {}


def mo_path(code: str):
    """Where the compiled catalogue of ``code`` is installed (a Traversable in the package)."""
    return resources.files("mynad") / "locale" / code / "LC_MESSAGES" / f"{DOMAIN}.mo"


def translations(code: str) -> _gettext.NullTranslations:
    """The catalogue of ``code`` (loaded once; thread-safe). Japanese needs none: the msgid is the text."""
    code = normalise(code)
    with _lock:
        t = _cache.get(code)
        if t is not None:
            return t
        if code == DEFAULT_LANG:
            t = _gettext.NullTranslations()
        else:
            path = mo_path(code)
            try:
                with path.open("rb") as fp:
                    t = _gettext.GNUTranslations(fp)
            except FileNotFoundError:
                raise CatalogueMissing(
                    f"the {language(code).name} catalogue {path} is missing; build it with "
                    f"`python -m mynad.ui.catalogs compile` (docs/languages.md)") from None
            except OSError as e:  # a truncated or corrupt .mo
                raise CatalogueMissing(f"the {language(code).name} catalogue {path} cannot be read: {e}") from None
        _cache[code] = t
        return t


def gettext(message: str, lang: str = DEFAULT_LANG) -> str:
    """``message`` (Japanese) in ``lang``; the Japanese text itself when it has no translation."""
    if not message:
        return message
    return translations(lang).gettext(message)


def load_all() -> None:
    """Load every catalogue now, so a missing one is a start-up error, not a blank screen mid-visit."""
    for code in LANG_CODES:
        translations(code)
