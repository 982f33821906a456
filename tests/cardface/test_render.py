"""The simulator's card-face renderer: texts, determinism, and the frame it hands over."""

from __future__ import annotations

import datetime as dt

import numpy as np

from mynasim.cardface import (FRAME_H, FRAME_W, Variation, birth_text, empty_tray, random_variation,
                              render_card_face, validity_date, validity_text)

from .conftest import as_kind


def test_printed_texts():
    assert birth_text(dt.date(1981, 5, 12), "japanese") == "昭和56年 5月12日生"
    assert birth_text(dt.date(1989, 1, 8), "japanese") == "平成元年 1月 8日生"
    assert birth_text(dt.date(2019, 5, 1), "japanese") == "令和元年 5月 1日生"
    assert birth_text(dt.date(1990, 1, 1), "foreign") == "1990年 1月 1日生"
    assert birth_text(dt.date(1990, 1, 1), "next_gen") == "1990年 1月 1日生"
    assert validity_text(dt.date(2031, 5, 12)) == "2031年 5月12日まで有効"


def test_validity_falls_on_the_birthday_for_japanese_cards(profiles):
    p = profiles["taro"]
    assert validity_date(p, "japanese") == dt.date(p.card_expiry_year, 5, 12)
    assert validity_date(p, "foreign").year == p.card_expiry_year


def test_frame_is_bgr_and_deterministic(profiles):
    p = as_kind(profiles["hanako"], "next_gen")
    a = render_card_face(p, random_variation(np.random.default_rng(3)), np.random.default_rng(4))
    b = render_card_face(p, random_variation(np.random.default_rng(3)), np.random.default_rng(4))
    assert a.shape == (FRAME_H, FRAME_W, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    # the card is much brighter than the tray floor around it
    assert a[FRAME_H // 2 - 50: FRAME_H // 2 + 50, 200:300].mean() > 3 * a[:60, 60:200].mean()


def test_empty_tray_has_no_card():
    img = empty_tray(np.random.default_rng(1), Variation())
    assert img.shape == (FRAME_H, FRAME_W, 3) and img.mean() < 80
