"""What a screen says aloud: its message and its keys, never a secret. Pure.

The spoken prompt is built from the same structured words the panel draws
(``mynad.ui.texts.content``), so voice and screen cannot drift apart, but from a
*sanitized copy* of the screen, so a secret cannot reach the speaker even if a
future wording puts one into a line:

* the shuffled pad (``layout``) is emptied: on the PIN and staff-password screens
  the prompt is the instruction and the two fixed corner keys, named by place
  ("左下のキー"), never by a number, so no digit of the layout and no key number
  that could be mistaken for one is spoken;
* the count of digits typed (``entered``) is dropped: a voice that changed with each
  digit would announce the PIN's length and rhythm to the room;
* the patient's name (``name``, from the host) is dropped. The panel shows it to the
  person standing at the reader; a loudspeaker tells the whole waiting room, and a
  name with a health-insurance context is personal information (APPI) that the
  patient did not choose to announce. The screen keeps it.
* 照合番号B never appears on any screen, so it cannot be spoken.

Language: ``spoken_text(screen, lang)`` speaks the texts of ``lang`` when the text
catalogue offers that language (``content(screen, lang)``), else Japanese. Tagalog
has no offline voice (docs/voice.md), so its prompts are spoken from the English
texts (English is an official language of the Philippines); ``speech_lang`` says
which voice reads a prompt.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from typing import Any

from mynad.ui.screens import Screen

# Centre column, third row: free on every screen without the digit pad (1..7 are the language
# menu's, 9 pages large text, 10/11/12 are back / language / next), and found by touch just below
# 5, the key with the tactile dot (ITU-T E.161).
REPEAT_KEY = 8
LANG_KEY = 11
# Voices by base language (the catalogue's "zh_Hans" speaks with the "zh" voice).
LANGS = ("ja", "en", "zh", "ko", "vi", "pt", "tl")
# Languages without an offline voice, and the catalogue language whose texts are spoken instead.
SPOKEN_INSTEAD = {"tl": "en"}

# Params never spoken, whatever the wording: see the module docstring.
WITHHELD = ("name", "layout", "entered")

_KEY = {
    "ja": "{n}番、{label}", "en": "Key {n}: {label}", "zh": "{n}号键：{label}", "ko": "{n}번 키: {label}",
    "vi": "Phím {n}: {label}", "pt": "Tecla {n}: {label}",
}
# The PIN pad's fixed corners (positions 10 and 12), by place: the digits around them move.
_CORNERS = {
    "ja": ("左下のキーで{label}", "右下のキーで{label}"),
    "en": ("Bottom left key: {label}", "Bottom right key: {label}"),
    "zh": ("左下角的键：{label}", "右下角的键：{label}"),
    "ko": ("왼쪽 아래 키: {label}", "오른쪽 아래 키: {label}"),
    "vi": ("Phím góc dưới bên trái: {label}", "Phím góc dưới bên phải: {label}"),
    "pt": ("Tecla do canto inferior esquerdo: {label}", "Tecla do canto inferior direito: {label}"),
}
# "1/3" on the panel is a counter; read aloud it must say so.
_FRACTION = {
    "ja": (r"(\d+)/(\d+)回目", r"\2回中\1回目"), "en": (r"(\d+)/(\d+)", r"\1 of \2"),
    "zh": (r"(\d+)/(\d+)", r"第\1项，共\2项"), "ko": (r"(\d+)/(\d+)", r"\2개 중 \1번째"),
    "vi": (r"(\d+)/(\d+)", r"\1 trên \2"), "pt": (r"(\d+)/(\d+)", r"\1 de \2"),
}
_JA_COUNTER = (r"(\d+)/(\d+)", r"\2件中\1件目")
_CODE = re.compile(r"(?<!\d)(0\d\d)(?!\d)")  # reader error codes (001, 006): read digit by digit
_DROP = str.maketrans("", "", "●○")


def base_lang(lang: str) -> str:
    """"zh_Hans" -> "zh", "pt_BR" -> "pt": the key of the voice tables."""
    return str(lang or "ja").replace("-", "_").split("_")[0].lower()


def speech_lang(lang: str) -> str:
    """The catalogue language whose words are spoken for a visit in ``lang`` (Tagalog: English)."""
    b = base_lang(lang)
    if b not in LANGS:
        return "ja"
    return SPOKEN_INSTEAD.get(b, lang)


def is_pad_screen(screen: Screen) -> bool:
    """Screens that show the shuffled digit pad (PIN, staff password)."""
    if screen.id == "pin_entry":
        return True
    return screen.id == "visual_check" and (screen.params or {}).get("stage") not in ("confirm", "locked", "not_set")


def safe_screen(screen: Screen) -> Screen:
    """``screen`` without anything the speaker must not say (pad layout, digits typed, name)."""
    params = {k: v for k, v in dict(screen.params or {}).items() if k not in WITHHELD}
    if screen.id in ("pin_entry", "visual_check"):
        params["layout"] = ()
        params["entered"] = 0
    return dataclasses.replace(screen, params=params)


def spoken_text(screen: Screen, lang: str = "ja") -> tuple[str, str]:
    """(text, voice) for ``screen`` in a visit held in ``lang``, as one string: what the
    tests and the logs look at. ``voice`` is the base language of the first part."""
    parts = spoken_parts(screen, lang)
    return " ".join(t for t, _ in parts), parts[0][1]


def spoken_parts(screen: Screen, lang: str = "ja") -> list[tuple[str, str]]:
    """The prompt of ``screen`` as (text, voice) parts, each read by the voice of its language.

    One part, except on the language menu, where each language's name is said by its own
    voice ("Key 2: English" in English, "4번 키: 한국어" in Korean) so that a patient who
    does not understand the current language still hears their own; the menu's other keys
    follow in the current language. The voice is the base language ("zh", never "zh_Hans")
    and is Japanese when the text catalogue could not give ``lang``.
    """
    from mynad.ui import texts

    safe = safe_screen(screen)
    c, got = _content(texts, safe, speech_lang(lang))
    voice = base_lang(got)
    if screen.id == "language":
        out: list[tuple[str, str]] = []
        codes = [getattr(x, "code", "") for x in getattr(texts, "LANGUAGES", ())]
        for n, label in c.choices:
            code = codes[n - 1] if 0 < n <= len(codes) else got
            v = base_lang(speech_lang(code))
            out.append((_speakable([_KEY.get(v, _KEY["en"]).format(n=n, label=label)], v), v))
        rest = dataclasses.replace(c, choices=(), lines=tuple(c.lines))
        tail = _words(rest, screen, voice, texts)
        if tail:
            out.append((_speakable(tail, voice), voice))
        return _merged(out) or [("", voice)]
    return [(_speakable(_words(c, screen, voice, texts), voice), voice)]


def _merged(parts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for text, v in parts:
        if out and out[-1][1] == v:
            out[-1] = (out[-1][0] + ("" if v in ("ja", "zh") else " ") + text, v)
        else:
            out.append((text, v))
    return out


def _words(c: Any, screen: Screen, got: str, texts: Any) -> list[str]:
    parts: list[str] = list(c.lines)
    if c.tries:
        parts.append(c.tries)
    if c.tag:
        parts.append(c.tag)
    parts += list(c.note)
    key_form = _KEY.get(got, _KEY["en"])
    for n, label in c.choices:
        parts.append(key_form.format(n=n, label=label))
    if c.pad is not None or is_pad_screen(screen):
        left, right = _CORNERS.get(got, _CORNERS["en"])
        if c.neg:
            parts.append(left.format(label=c.neg))
        if c.pos:
            parts.append(right.format(label=c.pos))
    else:
        if c.neg:
            parts.append(key_form.format(n=texts.NEG_KEY, label=c.neg))
        if getattr(c, "mid", None):
            parts.append(key_form.format(n=getattr(texts, "LANG_KEY", LANG_KEY), label=c.mid))
        if c.pos:
            parts.append(key_form.format(n=texts.POS_KEY, label=c.pos))
    return parts


def _speakable(parts: list[str], lang: str) -> str:
    out: list[str] = []
    for p in parts:
        p = p.translate(_DROP).strip()
        if not p:
            continue
        pattern, repl = _FRACTION.get(lang, _FRACTION["en"])
        p = re.sub(pattern, repl, p)
        if lang == "ja":
            p = re.sub(*_JA_COUNTER, p)
        p = _CODE.sub(lambda m: " ".join(m.group(1)), p)
        out.append(p)
    if lang in ("ja", "zh"):
        return "".join(p if p[-1] in "。！？!?" else p + "。" for p in out)
    return " ".join(p if p[-1] in ".!?" else p + "." for p in out)


def _content(texts: Any, screen: Screen, lang: str) -> tuple[Any, str]:
    """``texts.content`` in ``lang`` when the catalogue takes a language, else Japanese."""
    if base_lang(lang) != "ja" and _takes_lang(texts.content):
        try:
            return texts.content(screen, lang), lang
        except (KeyError, ValueError, LookupError, RuntimeError):
            pass  # a language the catalogue does not have (or not built): the Japanese prompt and voice
    return texts.content(screen), "ja"


@functools.lru_cache(maxsize=4)
def _takes_lang(fn: Any) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "lang" in params or len(params) >= 2
