"""The card-face camera of the reader's tray: where the card lies and how the picture degrades.

The camera looks straight down into a matte dark-grey tray; the card lies printed side up,
roughly centred and the right way round (the tray's guides allow a few millimetres of play
and a few degrees of twist). ``Variation`` holds everything that changes from one placement
to the next, and ``random_variation(rng)`` draws one from ranges wide enough that the reader
must reject some frames rather than misread them: a tilted card (perspective), defocus blur,
a glare spot from the tray light, dim light with sensor noise, a clear plastic sleeve
(lower contrast plus a reflected streak), and the softness of a compressed video frame.
Everything is seeded through a ``numpy.random.Generator``; nothing here touches the disk
except reading the profile's photo.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from mynasim.card.profiles import Profile
from mynasim.cardface.face import draw_card
from mynasim.cardface.layout import CARD_H_MM, CARD_W_MM

FRAME_W, FRAME_H = 1280, 960
TRAY_GREY = 52  # matte tray floor under the tray light at full gain


@dataclass(frozen=True)
class Variation:
    """One placement of the card and one set of imaging conditions (pixels of the camera frame)."""

    px_per_mm: float = 10.0  # card scale in the frame (camera height)
    dx: float = 0.0  # card centre offset from the frame centre
    dy: float = 0.0
    angle_deg: float = 0.0  # twist in the tray
    tilt_x: float = 0.0  # keystone: relative size change across the card (card not flat / camera tilt)
    tilt_y: float = 0.0
    blur_sigma: float = 0.0  # defocus, Gaussian sigma in frame pixels
    glare: tuple[float, float, float, float] | None = None  # x, y (frame fraction), radius (px), strength 0..1
    light: float = 1.0  # overall illumination gain
    light_gradient: float = 0.0  # left-to-right fall-off of the tray light
    noise_sigma: float = 1.5  # sensor noise (grey levels at the output)
    sleeve: float = 0.0  # clear sleeve: contrast lost 0..1 (0 = no sleeve)
    sleeve_streak: float = 0.0  # brightness of the reflected streak on the sleeve
    jpeg_quality: int = 92  # video-frame compression


def random_variation(rng: np.random.Generator) -> Variation:
    """A placement drawn from the ranges the tray and its light allow (and a little beyond)."""
    glare = None
    if rng.random() < 0.35:
        glare = (float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8)), float(rng.uniform(40, 160)),
                 float(rng.uniform(0.3, 1.0)))
    sleeve = float(rng.uniform(0.1, 0.45)) if rng.random() < 0.3 else 0.0
    return Variation(
        px_per_mm=float(rng.uniform(8.8, 11.5)),
        dx=float(rng.uniform(-70, 70)),
        dy=float(rng.uniform(-50, 50)),
        angle_deg=float(rng.uniform(-8, 8)),
        tilt_x=float(rng.uniform(-0.05, 0.05)),
        tilt_y=float(rng.uniform(-0.05, 0.05)),
        blur_sigma=float(rng.choice([0.0, rng.uniform(0.3, 1.2), rng.uniform(1.2, 2.6)], p=[0.35, 0.45, 0.2])),
        glare=glare,
        light=float(rng.choice([rng.uniform(0.75, 1.1), rng.uniform(0.3, 0.75)], p=[0.7, 0.3])),
        light_gradient=float(rng.uniform(0.0, 0.35)),
        noise_sigma=float(rng.uniform(1.0, 9.0)),
        sleeve=sleeve,
        sleeve_streak=float(rng.uniform(0.1, 0.5)) if sleeve else 0.0,
        jpeg_quality=int(rng.integers(35, 96)),
    )


def card_corners(v: Variation) -> np.ndarray:
    """Frame coordinates (4x2, TL TR BR BL) of the card corners for a placement."""
    w, h = CARD_W_MM * v.px_per_mm, CARD_H_MM * v.px_per_mm
    base = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]], np.float64)
    # keystone: one side of the card a little larger than the other
    sx = 1.0 + v.tilt_x * np.sign(base[:, 1])  # top/bottom edges differ in length
    sy = 1.0 + v.tilt_y * np.sign(base[:, 0])  # left/right edges differ in length
    base = base * np.stack([sx, sy], axis=1)
    a = np.deg2rad(v.angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return base @ rot.T + np.array([FRAME_W / 2 + v.dx, FRAME_H / 2 + v.dy])


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 H with dst ~ H @ src for four point pairs (direct linear solve, h33 = 1)."""
    a, b = [], []
    for (x, y), (u, w) in zip(src, dst):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y]); b.append(u)
        a.append([0, 0, 0, x, y, 1, -w * x, -w * y]); b.append(w)
    h = np.linalg.solve(np.array(a, np.float64), np.array(b, np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def _tray(rng: np.random.Generator, v: Variation) -> np.ndarray:
    """The empty tray floor (float RGB): matte grey, the guide rails at the edges, a little texture."""
    yy, xx = np.mgrid[0:FRAME_H, 0:FRAME_W].astype(np.float32)
    floor = TRAY_GREY + 6.0 * np.sin(xx / 300.0 + yy / 410.0) + rng.normal(0, 2.0, (FRAME_H, FRAME_W))
    img = np.repeat(floor[..., None], 3, axis=2) * np.array([1.0, 1.0, 1.04], np.float32)
    rail = 34
    img[:rail] = img[-rail:] = 30.0
    img[:, :rail] = img[:, -rail:] = 30.0
    return img


def _light(img: np.ndarray, v: Variation, rng: np.random.Generator) -> np.ndarray:
    xx = np.linspace(0.0, 1.0, FRAME_W, dtype=np.float32)[None, :, None]
    img = img * (v.light * (1.0 - v.light_gradient * xx))
    if v.sleeve > 0:
        # a clear sleeve scatters light: the picture loses contrast towards a hazy grey and
        # shows the reflection of the tray light as a soft diagonal streak
        img = img * (1.0 - v.sleeve) + v.sleeve * 170.0 * v.light
        yy, xg = np.mgrid[0:FRAME_H, 0:FRAME_W].astype(np.float32)
        c = rng.uniform(0.2, 0.8) * (FRAME_W + FRAME_H)
        streak = np.exp(-(((xg + yy) - c) ** 2) / (2 * 90.0**2))
        img = img + (v.sleeve_streak * 120.0 * streak)[..., None]
    if v.glare is not None:
        gx, gy, r, s = v.glare
        yy, xg = np.mgrid[0:FRAME_H, 0:FRAME_W].astype(np.float32)
        spot = np.exp(-((xg - gx * FRAME_W) ** 2 + (yy - gy * FRAME_H) ** 2) / (2 * r * r))
        img = img + (s * 255.0 * spot)[..., None]
    return img


def _camera(img: np.ndarray, v: Variation, rng: np.random.Generator) -> np.ndarray:
    """Optics and sensor: blur, noise, 8-bit clipping, then the frame's compression."""
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    if v.blur_sigma > 0.05:
        out = out.filter(ImageFilter.GaussianBlur(v.blur_sigma))
    arr = np.asarray(out).astype(np.float32) + rng.normal(0, v.noise_sigma, (FRAME_H, FRAME_W, 1))
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=int(v.jpeg_quality))
    buf.seek(0)
    with Image.open(buf) as jpg:
        rgb = np.asarray(jpg.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])  # BGR like every camera frame in the project


def render_card_face(profile: Profile, variation: Variation | None, rng: np.random.Generator) -> np.ndarray:
    """The tray camera's frame (BGR uint8, 1280x960) with ``profile``'s card lying in the tray.

    ``variation=None`` is a clean, centred, well-lit placement. ``rng`` drives the noise and the
    tray texture, so (profile, variation, seed) always gives the same frame.
    """
    v = variation or Variation()
    card = draw_card(profile)
    cw, ch = card.size
    dst = card_corners(v)
    src = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], np.float64)
    h_inv = homography(dst, src)  # frame -> card, what PIL's PERSPECTIVE wants
    coeffs = tuple((h_inv.flatten() / h_inv[2, 2])[:8])
    warped = card.transform((FRAME_W, FRAME_H), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    wa = np.asarray(warped).astype(np.float32)
    alpha = wa[..., 3:4] / 255.0
    img = _tray(rng, v)
    # the card casts a faint shadow on the tray floor
    shadow = np.asarray(Image.fromarray((alpha[..., 0] * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(6)),
                        np.float32)[..., None] / 255.0
    shadow = np.roll(np.roll(shadow, 5, axis=0), 4, axis=1)
    img = img * (1.0 - 0.45 * shadow)
    img = img * (1.0 - alpha) + wa[..., :3] * alpha
    img = _light(img, v, rng)
    return _camera(img, v, rng)


def empty_tray(rng: np.random.Generator, variation: Variation | None = None) -> np.ndarray:
    """The camera's frame with nothing in the tray (same light and sensor model)."""
    v = variation or random_variation(rng)
    return _camera(_light(_tray(rng, v), v, rng), v, rng)
