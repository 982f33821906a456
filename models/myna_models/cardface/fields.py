"""Parse and validate the three printed fields that make 照合番号B (pure: no I/O, no models).

Every check here is about not submitting a wrong code: the card locks its 券面事項入力補助AP
after a few wrong 照合番号B attempts, so a doubtful read must be refused, never guessed.

* Full-width forms are folded to ASCII (０-９ become 0-9) and digits are then matched with
  the explicit class ``[0-9]`` only: ``str.isdigit()`` and ``\\d`` accept other scripts'
  digits (e.g. ``'٣'``, ``'²'``) that would pass a "digits" check and break the code.
* 生年月日 is 和暦 (Japanese nationals) or 西暦 (foreign residents, next-generation card) and
  ends in 生; it must be a real date inside its era (昭和64年 is 1-7 January, 平成31年 ends
  30 April, 令和 starts 1 May 2019, 平成元年 starts 8 January 1989, 昭和元年 is 25-31 December
  1926) and between 1900 and today.
* The validity line must say 「…まで有効」; its year must lie between last year and eleven
  years ahead. For a 和暦 card (a Japanese national) the date is the holder's birthday, so
  the month and day must equal the birth date's (29 Feb: 28 Feb or 1 Mar in a common year):
  a misread birth day would have to be misread the same way twice to get through.
* The セキュリティコード is exactly four ASCII digits.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

# first day of each era, and how to turn its year into 西暦
ERAS = {
    "明治": (dt.date(1868, 1, 25), 1867),
    "大正": (dt.date(1912, 7, 30), 1911),
    "昭和": (dt.date(1926, 12, 25), 1925),
    "平成": (dt.date(1989, 1, 8), 1988),
    "令和": (dt.date(2019, 5, 1), 2018),
}
_ERA_ORDER = ["明治", "大正", "昭和", "平成", "令和"]
MIN_BIRTH_YEAR = 1900

_BIRTH_WAREKI = re.compile(r"(明治|大正|昭和|平成|令和)(元|[0-9]{1,2})年([0-9]{1,2})月([0-9]{1,2})日生")
_BIRTH_SEIREKI = re.compile(r"(?<![0-9])([0-9]{4})年([0-9]{1,2})月([0-9]{1,2})日生")
_VALIDITY = re.compile(r"(?<![0-9])([0-9]{4})年([0-9]{1,2})月([0-9]{1,2})日(まで有効|まで|有効)")
_CODE = re.compile(r"[0-9]{4}")


class FieldError(ValueError):
    """A field that was read but is not acceptable; ``str(e)`` is a plain sentence."""


@dataclass(frozen=True)
class Birth:
    date: dt.date
    wareki: bool  # printed in a Japanese era (a Japanese national's card)
    span: tuple[int, int]  # characters of the normalised text that made the match


@dataclass(frozen=True)
class Validity:
    date: dt.date
    span: tuple[int, int]  # the date's characters (not the まで有効 that follows)


# Full-width ASCII forms (０-９, Ａ-Ｚ, ...) and the ideographic space map to ASCII; nothing else
# is folded. NFKC would also turn '²', '①' or '⑴' into digits, which no card prints.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def normalise(text: str) -> tuple[str, list[int]]:
    """Full-width forms to ASCII, blanks dropped; also the index in ``text`` of each output character."""
    out, where = [], []
    for i, ch in enumerate(text.translate(_FULLWIDTH)):
        if not ch.isspace():
            out.append(ch)
            where.append(i)
    return "".join(out), where


def era_of(d: dt.date) -> str:
    for name in reversed(_ERA_ORDER):
        if d >= ERAS[name][0]:
            return name
    raise FieldError("the birth date is before the 明治 era")


def wareki_date(era: str, year: int, month: int, day: int) -> dt.date:
    """The 西暦 date of an era date, refusing dates outside the era (e.g. 昭和64年2月1日)."""
    if era not in ERAS:
        raise FieldError(f"unknown era {era}")
    if year < 1:
        raise FieldError("an era year starts at 元年 (1)")
    start, offset = ERAS[era]
    try:
        d = dt.date(offset + year, month, day)
    except ValueError:
        raise FieldError("the birth date is not a real calendar date") from None
    if d < start:
        raise FieldError(f"the birth date is before the {era} era began")
    nxt = _ERA_ORDER.index(era) + 1
    if nxt < len(_ERA_ORDER) and d >= ERAS[_ERA_ORDER[nxt]][0]:
        raise FieldError(f"the birth date is after the {era} era ended")
    return d


def parse_birth(text: str, today: dt.date) -> Birth:
    t, _ = normalise(text)
    m = _BIRTH_WAREKI.search(t)
    if m:
        year = 1 if m.group(2) == "元" else int(m.group(2))
        d = wareki_date(m.group(1), year, int(m.group(3)), int(m.group(4)))
        wareki = True
    else:
        m = _BIRTH_SEIREKI.search(t)
        if not m:
            raise FieldError("no birth date ending in 生 was read")
        try:
            d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            raise FieldError("the birth date is not a real calendar date") from None
        wareki = False
    if d.year < MIN_BIRTH_YEAR or d > today:
        raise FieldError("the birth date is outside the plausible range")
    return Birth(d, wareki, m.span())


def parse_validity(text: str, today: dt.date) -> Validity:
    t, _ = normalise(text)
    m = _VALIDITY.search(t)
    if not m:
        raise FieldError("no validity date ending in まで有効 was read")
    try:
        d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise FieldError("the validity date is not a real calendar date") from None
    if not today.year - 1 <= d.year <= today.year + 11:
        raise FieldError("the card's validity year is outside the plausible range")
    return Validity(d, (m.start(), m.end(3) + 1))  # the date up to 日: what the code is made of


def parse_code(text: str) -> str:
    t, _ = normalise(text)
    if not _CODE.fullmatch(t):
        raise FieldError("the security code is not exactly four digits")
    return t


def check_consistent(birth: Birth, validity: Validity) -> None:
    """Cross-check the two dates (see the module docstring)."""
    if validity.date.year <= birth.date.year:
        raise FieldError("the card's validity ends before the holder was born")
    if not birth.wareki:
        return  # foreign residents: the card runs to the end of the period of stay, any day
    b, v = birth.date, validity.date
    ok = (v.month, v.day) == (b.month, b.day)
    if (b.month, b.day) == (2, 29):
        ok = ok or (v.month, v.day) in ((2, 28), (3, 1))
    if not ok:
        raise FieldError("the validity date is not the holder's birthday, so one of the dates was misread")


def era_yymmdd(d: dt.date) -> str:
    """Birth date as era YYMMDD, the first six digits of 照合番号B."""
    era = era_of(d)
    return f"{d.year - ERAS[era][1]:02d}{d.month:02d}{d.day:02d}"


def code_b(birth: dt.date, expiry_year: int, security_code: str) -> str:
    """照合番号B: era YYMMDD + expiry year (4) + security code (4) = 14 ASCII digits."""
    out = f"{era_yymmdd(birth)}{expiry_year:04d}{security_code}"
    if not re.fullmatch(r"[0-9]{14}", out):
        raise FieldError("照合番号B is not 14 digits")
    return out
