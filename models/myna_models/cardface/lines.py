"""Where the needed text lines are on a rectified card, found inside known search bands.

The reader knows the card's layout only to a few millimetres (card generations differ, and
rectification is not exact), so it does not cut fixed boxes: inside each band it marks ink
(pixels well darker than the band's paper), finds the text rows by a row profile, keeps rows
tall enough to be the field's type size, and trims each to the ink columns. Tight crops keep
the recogniser's input narrow, which is what its run time scales with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from myna_models.cardface.geometry import to_gray

PX_PER_MM = 10.0  # rectified card resolution: a 3 mm line is ~30 px, near the recogniser's 48 px input

# (x0, y0, x1, y1) mm. The date band holds 生年月日 then the 「…まで有効」 line on both card
# generations; the code band is under the photo (16-digit serial, then the 4-digit code).
DATE_BAND = (9.0, 21.0, 58.0, 37.5)
CODE_BAND = (58.5, 36.8, 84.5, 48.0)
MIN_LINE_MM = 1.9  # the date and code lines' ink is 2.2-3.0 mm tall; labels and the serial are smaller
WORD_GAP_MM = 2.6  # a wider blank ends the field (e.g. before 「性別」)


@dataclass(frozen=True)
class Line:
    crop: np.ndarray  # grey uint8, paper levelled
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the band's pixels


def _mm(v: float) -> int:
    return int(round(v * PX_PER_MM))


def paper_level(gray: np.ndarray, block: int = 12) -> np.ndarray:
    """The local paper brightness: the brightest pixel of each block, smoothed back to full size.

    Text strokes are thinner than a block, so each block's maximum is paper; under a glare spot
    or the tray light's fall-off the paper level changes across the band and this follows it.
    """
    h, w = gray.shape
    hb, wb = -(-h // block), -(-w // block)
    pad = np.pad(gray, ((0, hb * block - h), (0, wb * block - w)), mode="edge")
    m = pad.reshape(hb, block, wb, block).max(axis=(1, 3))
    up = Image.fromarray(m.astype(np.float32), "F").resize((wb * block, hb * block), Image.Resampling.BILINEAR)
    return np.asarray(up)[:h, :w]


def _ink(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ink mask, paper level): ink is well darker than the paper around it."""
    paper = paper_level(gray)
    contrast = paper - gray
    strong = np.percentile(contrast, 99.5)
    if strong < 20:
        return np.zeros(gray.shape, bool), paper
    return contrast > max(12.0, 0.4 * strong), paper


def _runs(profile: np.ndarray, min_gap: int) -> list[tuple[int, int]]:
    on = np.flatnonzero(profile)
    if on.size == 0:
        return []
    runs, start, prev = [], int(on[0]), int(on[0])
    for i in on[1:]:
        if i - prev > min_gap:
            runs.append((start, prev + 1))
            start = int(i)
        prev = int(i)
    runs.append((start, prev + 1))
    return runs


def find_lines(band_bgr: np.ndarray) -> list[Line]:
    """Text lines of field size in a rectified band, top to bottom, each cut at the first wide blank."""
    gray = to_gray(band_bgr)
    ink, paper = _ink(gray)
    # the recogniser sees the band with its paper levelled (glare and light fall-off divided out)
    flat = np.clip(gray / np.maximum(paper, 1.0) * 235.0, 0, 255).astype(np.uint8)
    rows = ink.mean(axis=1) > 0.01
    out = []
    for ra, rb in _runs(rows, min_gap=2):
        if rb - ra < MIN_LINE_MM * PX_PER_MM:
            continue
        cols = ink[ra:rb].sum(axis=0) > 0
        segs = _runs(cols, min_gap=int(WORD_GAP_MM * PX_PER_MM))
        if not segs:
            continue
        ca, cb = segs[0]
        h = rb - ra
        pad_y, pad_x = max(3, h // 4), max(4, h // 2)
        bx0, by0 = max(0, ca - pad_x), max(0, ra - pad_y)
        bx1, by1 = min(band_bgr.shape[1], cb + pad_x), min(band_bgr.shape[0], rb + pad_y)
        out.append(Line(flat[by0:by1, bx0:bx1], (bx0, by0, bx1, by1)))
    return out
