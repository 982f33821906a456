"""Parsing and validation of the three fields of 照合番号B (pure, no model)."""

from __future__ import annotations

import datetime as dt

import pytest

from myna_models.cardface import fields as F
from myna_models.cardface.reader import CardFaceRead, CardFaceReader
from myna_models.cardface.recognizer import LineText

TODAY = dt.date(2026, 12, 2)


@pytest.mark.parametrize("text, expected", [
    ("昭和56年 5月12日生", dt.date(1981, 5, 12)),
    ("平成元年 1月 8日生", dt.date(1989, 1, 8)),
    ("昭和64年 1月 7日生", dt.date(1989, 1, 7)),
    ("平成31年 4月30日生", dt.date(2019, 4, 30)),
    ("令和元年 5月 1日生", dt.date(2019, 5, 1)),
    ("昭和元年12月25日生", dt.date(1926, 12, 25)),
    ("１９９０年　１月　１日生", dt.date(1990, 1, 1)),
    ("昭和５６年 ５月１２日生 性別 男", dt.date(1981, 5, 12)),
])
def test_birth_dates_that_parse(text, expected):
    assert F.parse_birth(text, TODAY).date == expected


@pytest.mark.parametrize("text", [
    "昭和64年 1月 8日生",   # 昭和 ended on 7 January 1989
    "平成31年 5月 1日生",   # 平成 ended on 30 April 2019
    "令和元年 4月30日生",   # 令和 began on 1 May 2019
    "平成元年 1月 7日生",   # 平成 began on 8 January 1989
    "昭和元年12月24日生",   # 昭和 began on 25 December 1926
    "平成 2年 2月30日生",   # no such day
    "昭和 0年 5月12日生",   # there is no year 0
    "1899年 5月12日生",     # before the plausible range
    "2027年 1月 1日生",     # after today
    "昭和56年 5月12日",     # no 生: not the birth date line
    "昭和5６年 5月1٢日生",  # a non-ASCII digit that isdigit() would accept
])
def test_birth_dates_refused(text):
    with pytest.raises(F.FieldError):
        F.parse_birth(text, TODAY)


def test_validity_year_range():
    assert F.parse_validity("2031年 5月12日まで有効", TODAY).date.year == 2031
    assert F.parse_validity("２０２５年１２月３１日まで有効", TODAY).date.year == 2025  # last year is accepted
    for text in ("2024年 5月12日まで有効", "2038年 5月12日まで有効", "2031年13月12日まで有効", "2031年 5月12日"):
        with pytest.raises(F.FieldError):
            F.parse_validity(text, TODAY)


@pytest.mark.parametrize("text, code", [("1234", "1234"), ("１２３４", "1234"), (" 0070 ", "0070")])
def test_security_code_accepted(text, code):
    assert F.parse_code(text) == code


@pytest.mark.parametrize("text", ["123", "12345", "12a4", "²234", "١٢٣٤", "①②③④", ""])
def test_security_code_refused(text):
    with pytest.raises(F.FieldError):
        F.parse_code(text)


def test_validity_must_fall_on_the_birthday_for_a_wareki_card():
    birth = F.parse_birth("昭和56年 5月12日生", TODAY)
    F.check_consistent(birth, F.parse_validity("2031年 5月12日まで有効", TODAY))
    with pytest.raises(F.FieldError):
        F.check_consistent(birth, F.parse_validity("2031年 5月13日まで有効", TODAY))
    leap = F.parse_birth("平成 8年 2月29日生", TODAY)
    F.check_consistent(leap, F.parse_validity("2031年 2月28日まで有効", TODAY))
    # a foreign resident's card runs to the end of the period of stay: any day
    F.check_consistent(F.parse_birth("1990年 1月 1日生", TODAY), F.parse_validity("2029年 8月 3日まで有効", TODAY))


def test_code_b_matches_the_profiles(profiles):
    for p in profiles.values():
        assert F.code_b(p.birth_date, p.card_expiry_year, p.security_code) == p.code_b()
    assert F.code_b(dt.date(1989, 1, 8), 2030, "0001") == "01010820300001"


def _line(text: str, prob: float = 0.99) -> LineText:
    return LineText(text, tuple(prob for _ in text))


@pytest.fixture(scope="module")
def bare_reader():
    """A reader without a model: ``interpret`` is pure and needs none."""
    r = CardFaceReader.__new__(CardFaceReader)
    r.threshold = 0.8
    return r


def test_interpret_ok_and_code_b(bare_reader):
    r = bare_reader.interpret(_line("昭和56年 5月12日生"), _line("2031年 5月12日まで有効"), _line("1234"), TODAY)
    assert r.ok and r.code_b() == "56051220311234"
    assert r.confidence == pytest.approx(0.99)


def test_low_confidence_is_not_ok(bare_reader):
    weak = LineText("1234", (0.99, 0.99, 0.55, 0.99))
    r = bare_reader.interpret(_line("昭和56年 5月12日生"), _line("2031年 5月12日まで有効"), weak, TODAY)
    assert not r.ok and r.reason and r.confidence == pytest.approx(0.55)
    with pytest.raises(ValueError):
        r.code_b()


def test_low_confidence_outside_the_fields_does_not_count(bare_reader):
    # 「有効」 is required but is not part of the code; 性別 after the birth date is ignored
    validity = LineText("2031年5月12日まで有効", tuple([0.99] * 12 + [0.6, 0.6]))
    birth = LineText("昭和56年5月12日生性別男", tuple([0.99] * 11 + [0.3, 0.3, 0.3]))
    assert bare_reader.interpret(birth, validity, _line("1234"), TODAY).ok


def test_bad_field_gives_a_sentence(bare_reader):
    r = bare_reader.interpret(_line("昭和64年 2月 1日生"), _line("2031年 2月 1日まで有効"), _line("1234"), TODAY)
    assert not r.ok and "era" in r.reason and r.reason.endswith("again")


def test_repr_hides_the_values():
    r = CardFaceRead(ok=True, confidence=0.97, birth_date=dt.date(1981, 5, 12), expiry_year=2031, security_code="1234")
    text = repr(r) + str(r)
    for secret in ("1981", "2031", "1234", "56051220311234"):
        assert secret not in text
