"""Rendered card faces through the real reader (PP-OCRv5 rec on onnxruntime)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mynasim.cardface import Variation, card_corners, empty_tray, random_variation, render_card_face

from .conftest import as_kind

pytestmark = pytest.mark.models


@pytest.mark.parametrize("kind", ["japanese", "foreign", "next_gen"])
@pytest.mark.parametrize("key", ["hanako", "elder"])  # 平成 and 昭和 births
def test_clean_card_reads_the_right_code(reader, profiles, kind, key):
    p = as_kind(profiles[key], kind)
    r = reader.read(render_card_face(p, None, np.random.default_rng(0)))
    assert r.ok, r.reason
    assert r.code_b() == p.code_b()
    assert (r.birth_date, r.expiry_year, r.security_code) == (p.birth_date, p.card_expiry_year, p.security_code)
    assert 0.0 < r.confidence <= 1.0


def test_twisted_dim_sleeved_card(reader, profiles):
    v = Variation(px_per_mm=9.2, dx=40, dy=-30, angle_deg=6.5, tilt_x=0.03, blur_sigma=0.8, light=0.55,
                  noise_sigma=5.0, sleeve=0.25, sleeve_streak=0.2, jpeg_quality=60)
    p = profiles["hanako"]
    r = reader.read(render_card_face(p, v, np.random.default_rng(2)))
    assert r.ok, r.reason
    assert r.code_b() == p.code_b()


def _blank_card() -> np.ndarray:
    rng = np.random.default_rng(5)
    img = Image.fromarray(empty_tray(rng, Variation())[:, :, ::-1].copy())
    ImageDraw.Draw(img).polygon([tuple(c) for c in card_corners(Variation())], fill=(238, 236, 232))
    return np.asarray(img)[:, :, ::-1].copy()


@pytest.mark.parametrize("make", [
    lambda: empty_tray(np.random.default_rng(1), Variation()),
    _blank_card,
    lambda: np.random.default_rng(3).integers(0, 256, (960, 1280, 3), dtype=np.uint8),
    lambda: np.zeros((960, 1280, 3), np.uint8),
    lambda: np.zeros((20, 30, 3), np.uint8),
    lambda: np.zeros((960, 1280, 3), np.float32),
], ids=["empty-tray", "blank-card", "noise", "black", "tiny", "float"])
def test_unreadable_images_are_refused_with_a_reason(reader, make):
    r = reader.read(make())
    assert not r.ok
    assert isinstance(r.reason, str) and len(r.reason) > 15 and "\n" not in r.reason  # one plain sentence
    with pytest.raises(ValueError):
        r.code_b()


def test_seeded_batch_has_no_wrong_submit(reader, profiles):
    """40 random placements over all profiles and kinds: every ok read carries the right code."""
    keys = list(profiles)
    kinds = ("japanese", "foreign", "next_gen")
    ok = wrong = 0
    for i in range(40):
        p = dataclasses.replace(profiles[keys[i % len(keys)]], card_kind=kinds[i % 3])
        rng = np.random.default_rng([77, i])
        r = reader.read(render_card_face(p, random_variation(rng), rng))
        if r.ok:
            ok += 1
            wrong += r.code_b() != p.code_b()
    assert wrong == 0
    assert ok >= 28  # the bench measures ~85-90 % on such batches; far fewer means the reader broke
