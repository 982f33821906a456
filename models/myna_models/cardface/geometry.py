"""Find the card in the tray camera's frame and rectify it (numpy + Pillow only, no OpenCV).

The tray is a known scene: a dark matte floor, the card much brighter than it, lying the
right way round with a few degrees of play. So a global (Otsu) threshold on a 4x reduced
frame separates card from floor, the largest bright blob is the card, and its four sides
are then measured precisely on the full frame: along each side, the strongest brightness
step across the edge is located, and a straight line is fitted to those points with the
outliers (glare on the floor, a finger, the rounded corners) dropped. The four lines meet at
the corners of the card's rectangle, which gives the homography to a flat, canonical card.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

CARD_W_MM = 85.60  # ISO/IEC 7810 ID-1
CARD_H_MM = 53.98
REDUCE = 8  # the blob is searched on a frame subsampled this many times (160x120 for 1280x960)


class NoCard(Exception):
    """No card-shaped bright rectangle in the frame; ``str(e)`` is a plain sentence."""


@dataclass(frozen=True)
class CardQuad:
    corners: np.ndarray  # 4x2 frame pixels, TL TR BR BL
    contrast: float  # mean card grey minus mean floor grey (0..255)


def to_gray(bgr: np.ndarray) -> np.ndarray:
    if bgr.ndim == 2:
        return bgr.astype(np.float32)
    b, g, r = bgr[..., 0].astype(np.float32), bgr[..., 1].astype(np.float32), bgr[..., 2].astype(np.float32)
    return 0.114 * b + 0.587 * g + 0.299 * r


def _otsu(values: np.ndarray) -> float:
    hist, edges = np.histogram(values, bins=64, range=(0.0, 256.0))
    p = hist.astype(np.float64) / max(1, hist.sum())
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centers)
    mt = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - m0) ** 2 / (w0 * (1 - w0))
    between[~np.isfinite(between)] = 0
    return float(centers[int(np.argmax(between))])


def _largest_blob(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected blob of a boolean mask, by union-find over row runs (fast in Python)."""
    parent: list[int] = []
    runs: list[tuple[int, int, int]] = []  # (row, start, end)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    prev: list[int] = []
    for y in range(mask.shape[0]):
        row = mask[y].astype(np.int8)
        d = np.diff(np.concatenate(([0], row, [0])))
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        cur = []
        j = 0
        for s, e in zip(starts, ends):
            idx = len(runs)
            runs.append((y, int(s), int(e)))
            parent.append(idx)
            cur.append(idx)
            while j < len(prev) and runs[prev[j]][2] <= s:
                j += 1
            k = j
            while k < len(prev) and runs[prev[k]][1] < e:
                a, b = find(idx), find(prev[k])
                if a != b:
                    parent[a] = b
                k += 1
        prev = cur
    if not runs:
        return np.zeros_like(mask)
    sizes: dict[int, int] = {}
    for i, (_, x0, x1) in enumerate(runs):
        r = find(i)
        sizes[r] = sizes.get(r, 0) + x1 - x0
    best = max(sizes, key=sizes.__getitem__)
    out = np.zeros_like(mask)
    for i, (y, x0, x1) in enumerate(runs):
        if find(i) == best:
            out[y, x0:x1] = True
    return out


def _fit_line(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Total-least-squares line (point, unit direction) with two rounds of outlier rejection."""
    keep = np.ones(len(pts), bool)
    for _ in range(3):
        if keep.sum() < 8:
            return None
        p = pts[keep]
        c = p.mean(axis=0)
        _, _, vt = np.linalg.svd(p - c, full_matrices=False)
        d = vt[0]
        n = np.array([-d[1], d[0]])
        res = np.abs((pts - c) @ n)
        keep = res < max(1.5, 2.5 * np.median(res[keep]))
    return c, d


def _intersect(l1, l2) -> np.ndarray:
    (p1, d1), (p2, d2) = l1, l2
    a = np.array([d1, -d2]).T
    t = np.linalg.solve(a, p2 - p1)
    return p1 + t[0] * d1


def find_card(bgr: np.ndarray) -> CardQuad:
    """The card's corners in the frame, or ``NoCard`` with the reason."""
    if bgr.ndim not in (2, 3) or bgr.shape[0] < 120 or bgr.shape[1] < 160:
        raise NoCard("the camera frame is too small to hold a card")
    h, w = bgr.shape[:2]
    small = to_gray(bgr[REDUCE // 2::REDUCE, REDUCE // 2::REDUCE])
    t = _otsu(small)
    mask = small > t
    fg, bg = small[mask], small[~mask]
    if fg.size == 0 or bg.size == 0 or fg.mean() - bg.mean() < 25:
        raise NoCard("nothing stands out from the tray: no card is lying in it")
    blob = _largest_blob(mask)
    area = blob.sum() / blob.size
    if not 0.15 <= area <= 0.92:
        raise NoCard("no card-sized object in the tray")
    ys, xs = np.nonzero(blob)
    pts = np.stack([xs, ys], axis=1).astype(np.float64)
    s, dxy = pts.sum(axis=1), pts[:, 0] - pts[:, 1]
    coarse = np.array([pts[np.argmin(s)], pts[np.argmax(dxy)], pts[np.argmax(s)], pts[np.argmin(dxy)]])
    coarse = coarse * REDUCE + REDUCE // 2
    corners = coarse
    # pass 1: a wide search from the blob's extreme points (off by the rounded corners), taking
    # the outermost strong step so that print near the edge is not mistaken for it; pass 2: a
    # narrow search around the fitted sides, taking the strongest step
    for radius, outermost in ((34, True), (6, False)):
        lines = [_refine_side(bgr, corners[i], corners[(i + 1) % 4], radius, outermost) for i in range(4)]
        if any(line is None for line in lines):
            raise NoCard("the card's edges cannot be traced (glare or something on the card)")
        corners = np.array([_intersect(lines[(i + 3) % 4], lines[i]) for i in range(4)])
    _check_shape(corners, w, h)
    return CardQuad(corners=corners, contrast=float(fg.mean() - bg.mean()))


def _refine_side(bgr: np.ndarray, a: np.ndarray, b: np.ndarray, radius: int, outermost: bool):
    """Fit the straight edge near a->b (clockwise, so the card lies to the right of a->b).

    Brightness is sampled along normals at 48 points between 15 % and 85 % of the side (the
    rounded corners stay out), and on each normal the bright-to-dark step is located.
    """
    d = b - a
    length = float(np.hypot(*d))
    if length < 40:
        return None
    d = d / length
    n = np.array([d[1], -d[0]])  # points out of the card for a clockwise quad (image y runs down)
    ts = np.linspace(0.15, 0.85, 48) * length
    offs = np.arange(-radius, radius + 1, dtype=np.float64)
    base = a[None, :] + ts[:, None] * d[None, :]
    sx = base[:, None, 0] + offs[None, :] * n[0]
    sy = base[:, None, 1] + offs[None, :] * n[1]
    h, w = bgr.shape[:2]
    xi = np.clip(np.rint(sx).astype(int), 0, w - 1)
    yi = np.clip(np.rint(sy).astype(int), 0, h - 1)
    prof = to_gray(bgr[yi, xi])  # grey only where sampled: the full frame is never converted
    prof = (prof[:, :-2] + prof[:, 1:-1] + prof[:, 2:]) / 3.0
    step = prof[:, :-1] - prof[:, 1:]  # inside (bright) -> outside (dark): positive
    peak = step.max(axis=1)
    if outermost:
        strong = step >= 0.6 * peak[:, None]
        k = step.shape[1] - 1 - np.argmax(strong[:, ::-1], axis=1)
    else:
        k = np.argmax(step, axis=1)
    strength = step[np.arange(len(k)), k]
    good = strength > 6.0
    if good.sum() < 12:
        return None
    off = offs[1:-1][k] + 0.5
    pts = base + off[:, None] * n[None, :]
    return _fit_line(pts[good])


def _check_shape(c: np.ndarray, w: int, h: int) -> None:
    sides = [float(np.hypot(*(c[(i + 1) % 4] - c[i]))) for i in range(4)]
    long_, short = (sides[0] + sides[2]) / 2, (sides[1] + sides[3]) / 2
    if short <= 0 or not 1.40 <= long_ / short <= 1.78:
        raise NoCard("the bright object in the tray does not have a card's shape")
    if abs(sides[0] - sides[2]) > 0.15 * long_ or abs(sides[1] - sides[3]) > 0.15 * short:
        raise NoCard("the card is seen too obliquely to be read")
    if (c[:, 0] < -5).any() or (c[:, 0] > w + 5).any() or (c[:, 1] < -5).any() or (c[:, 1] > h + 5).any():
        raise NoCard("the card is not wholly in the camera's view")


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 H with dst ~ H @ src from four point pairs (h33 = 1)."""
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y]); b.append(u)
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y]); b.append(v)
    h = np.linalg.solve(np.array(a, np.float64), np.array(b, np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def rectify(bgr: np.ndarray, quad: CardQuad, px_per_mm: float,
            box_mm: tuple[float, float, float, float] = (0.0, 0.0, CARD_W_MM, CARD_H_MM)) -> np.ndarray:
    """A part of the card (``box_mm`` = x0, y0, x1, y1 from its top-left corner) as a flat BGR image.

    Only the needed parts are warped (bilinear): the reader rectifies its two search bands,
    about a quarter of the card, not the whole card.
    """
    cw, ch = int(round(CARD_W_MM * px_per_mm)), int(round(CARD_H_MM * px_per_mm))
    dst = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], np.float64)
    h = homography(dst, quad.corners)  # card pixel -> frame pixel, as PIL's PERSPECTIVE expects
    x0, y0 = box_mm[0] * px_per_mm, box_mm[1] * px_per_mm
    h = h @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    size = (int(round((box_mm[2] - box_mm[0]) * px_per_mm)), int(round((box_mm[3] - box_mm[1]) * px_per_mm)))
    coeffs = tuple((h.flatten() / h[2, 2])[:8])
    img = Image.fromarray(bgr)  # channel order does not matter to the warp: stays BGR
    out = img.transform(size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    return np.asarray(out)
