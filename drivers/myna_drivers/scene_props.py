"""Props for the simulated camera: a surgical mask, sunglasses, and backlight.

The reader's quality gate must tell a patient *what* stops the match (「マスクを外してください」,
not "no match" after the time limit), so the simulator has to be able to show those
causes. Each prop is drawn onto the person's portrait crop before the camera sim builds
the turned-head variants, so a mask or glasses turn with the head like the face under
them; backlight also brightens the wall behind the person (:func:`backlight_background`).

Props are drawn on the source photo, before the camera sim crops and scales it. Where
they go (:func:`geometry_for`): the scene's ``face_landmarks`` (five points in source-photo
pixels, with ``face_box``) when given, which follows a tilted or turned face exactly; else
the ``face_box`` with the landmark proportions YuNet finds on the sample photos (eyes at
0.49, nose tip at 0.76, mouth corners at 0.96 box widths below the box top, eyes 0.46 box
widths apart); else a face centred in a 3:4 portrait, the camera sim's own assumption.

Only numpy and Pillow. Drawing is done once per scene, never per frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

log = logging.getLogger("myna.camera.sim")

PROPS = ("mask", "sunglasses", "backlight")
SUPERSAMPLE = 3                      # drawn at up to 3x, then downsampled: smooth edges like a real lens
MAX_LAYER_SIDE = 3000                # ...but never a drawing layer larger than this (big source photos)
MASK_COLOUR = (178, 204, 226)        # the common light-blue surgical mask (RGB)
LENS_COLOUR = (22, 24, 28)
# Backlight: a window behind the patient. The camera exposes for the bright scene, so the
# face comes out at ~40 % of its normal level while the wall is near clipping.
BACKLIGHT_FACE_GAIN = 0.40
BACKLIGHT_WALL_LEVEL = 246


@dataclass(frozen=True)
class FaceGeometry:
    """Five landmarks (x, y) in the image being drawn on: right eye, left eye, nose, right and left mouth corner
    (the subject's right is image-left, as in YuNet)."""

    right_eye: tuple[float, float]
    left_eye: tuple[float, float]
    nose: tuple[float, float]
    mouth_right: tuple[float, float]
    mouth_left: tuple[float, float]

    @classmethod
    def from_landmarks(cls, lm) -> "FaceGeometry":
        p = np.asarray(lm, dtype=np.float64).reshape(5, 2)
        re, le, nose, mr, ml = ((float(x), float(y)) for x, y in p)
        return cls(re, le, nose, mr, ml)

    @classmethod
    def from_box(cls, x: float, y: float, face_w: float) -> "FaceGeometry":
        """From a YuNet-like face box (top-left x, y and width), with the sample photos' mean proportions."""
        cx = x + face_w / 2
        eye_y, nose_y, mouth_y = y + 0.49 * face_w, y + 0.76 * face_w, y + 0.96 * face_w
        return cls((cx - 0.23 * face_w, eye_y), (cx + 0.23 * face_w, eye_y), (cx, nose_y),
                   (cx - 0.20 * face_w, mouth_y), (cx + 0.20 * face_w, mouth_y))

    @property
    def eye_distance(self) -> float:
        return float(np.hypot(self.left_eye[0] - self.right_eye[0], self.left_eye[1] - self.right_eye[1]))

    def frame(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(origin at the eye midpoint, unit vector along the eyes, unit vector down the face)."""
        re, le = np.asarray(self.right_eye), np.asarray(self.left_eye)
        u = (le - re) / max(self.eye_distance, 1e-6)
        return (re + le) / 2, u, np.array([-u[1], u[0]])


def geometry_for(scene: dict, shape: tuple[int, ...]) -> FaceGeometry:
    """Where the face is in the source photo of ``shape`` (see the module docstring for the order)."""
    box = scene.get("face_box")
    lm = scene.get("face_landmarks")
    if box and lm is not None and np.asarray(lm, dtype=np.float64).size == 10:
        return FaceGeometry.from_landmarks(lm)
    if box:
        x, y, w, _ = (float(v) for v in box)
        return FaceGeometry.from_box(x, y, w)
    h, w = shape[:2]
    cw = min(w, h * 3 / 4)
    fw = 0.6 * cw
    return FaceGeometry.from_box(w / 2 - fw / 2, h / 2 - 0.45 * 1.35 * fw, fw)


def _scale(size: tuple[int, int]) -> int:
    return max(1, min(SUPERSAMPLE, MAX_LAYER_SIDE // max(size)))


def _layer(size: tuple[int, int]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    k = _scale(size)
    img = Image.new("RGBA", (size[0] * k, size[1] * k), (0, 0, 0, 0))
    return img, ImageDraw.Draw(img)


def _composite(rgb: np.ndarray, layer: Image.Image) -> np.ndarray:
    h, w = rgb.shape[:2]
    small = np.asarray(layer.resize((w, h), Image.Resampling.LANCZOS)).astype(np.float32)
    a = small[:, :, 3:4] / 255.0
    out = rgb.astype(np.float32) * (1 - a) + small[:, :, :3] * a
    return out.clip(0, 255).astype(np.uint8)


def _pts(origin: np.ndarray, u: np.ndarray, v: np.ndarray, d: float, coords, k: int) -> list[tuple[float, float]]:
    """Points given in eye-distance units (along the eyes, down the face), scaled by k for the drawing layer."""
    points = [origin + d * (a * u + b * v) for a, b in coords]
    return [(float(x) * k, float(y) * k) for x, y in points]


def draw_mask(rgb: np.ndarray, geo: FaceGeometry, colour: tuple[int, int, int] = MASK_COLOUR) -> np.ndarray:
    """A pleated surgical mask from the nose bridge to under the chin, cheek to cheek, with ear loops."""
    o, u, v = geo.frame()
    d = geo.eye_distance
    nose_down = float(np.dot(np.asarray(geo.nose) - o, v)) / d          # ~0.6 eye distances
    mouth_down = float(np.dot((np.asarray(geo.mouth_right) + geo.mouth_left) / 2 - o, v)) / d
    top = 0.55 * nose_down                                              # over the nose bridge
    bottom = mouth_down + 0.75                                          # under the chin
    outline = [(-1.08, top + 0.22), (-0.5, top + 0.04), (0.0, top), (0.5, top + 0.04), (1.08, top + 0.22),
               (1.02, bottom - 0.45), (0.75, bottom - 0.12), (0.0, bottom), (-0.75, bottom - 0.12),
               (-1.02, bottom - 0.45)]
    size = (rgb.shape[1], rgb.shape[0])
    k = _scale(size)

    def P(coords):
        return _pts(o, u, v, d, coords, k)

    layer, draw = _layer(size)
    draw.polygon(P(outline), fill=(*colour, 255))
    # shading: the mask bulges over nose and chin, darker towards its sides
    shade, sd = _layer(size)
    for side in (-1, 1):
        sd.polygon(P([(side * 0.72, top + 0.12), (side * 1.08, top + 0.22),
                                     (side * 1.02, bottom - 0.45), (side * 0.7, bottom - 0.1)]),
                   fill=(0, 0, 0, 40))
    pleat = tuple(int(c * 0.82) for c in colour)
    span = bottom - top
    for frac in (0.3, 0.5, 0.7):  # not ``k``: P() and the widths below use the layer scale k
        y = top + frac * span
        draw.line(P([(-1.0, y + 0.05), (0.0, y), (1.0, y + 0.05)]), fill=(*pleat, 255),
                  width=max(1, int(0.025 * d * k)))
    loop = (235, 235, 235, 255)
    for side in (-1, 1):
        draw.line(P([(side * 1.08, top + 0.22), (side * 1.2, 0.1)]), fill=loop,
                  width=max(1, int(0.03 * d * k)))
        draw.line(P([(side * 1.02, bottom - 0.45), (side * 1.2, 0.3)]), fill=loop,
                  width=max(1, int(0.03 * d * k)))
    out = _composite(rgb, layer)
    return _composite(out, shade)


def draw_sunglasses(rgb: np.ndarray, geo: FaceGeometry) -> np.ndarray:
    """Dark lenses over both eyes with a frame, a bridge and a faint reflection."""
    o, u, v = geo.frame()
    d = geo.eye_distance
    size = (rgb.shape[1], rgb.shape[0])
    k = _scale(size)

    def P(coords):
        return _pts(o, u, v, d, coords, k)

    layer, draw = _layer(size)
    frame_w = max(1, int(0.05 * d * k))
    for side in (-0.5, 0.5):
        lens = [(side + 0.42 * np.cos(a), 0.03 + 0.28 * np.sin(a) * (1.15 if np.sin(a) > 0 else 1.0))
                for a in np.linspace(0, 2 * np.pi, 40, endpoint=False)]
        pts = P(lens)
        draw.polygon(pts, fill=(*LENS_COLOUR, 250), outline=(10, 10, 10, 255), width=frame_w)
        glint = P([(side - 0.2, -0.12), (side - 0.05, -0.16)])
        draw.line(glint, fill=(120, 125, 135, 160), width=max(1, int(0.04 * d * k)))
    draw.line(P([(-0.15, -0.06), (0.0, -0.1), (0.15, -0.06)]), fill=(10, 10, 10, 255), width=frame_w)
    for side in (-1, 1):
        draw.line(P([(side * 0.92, -0.05), (side * 1.12, -0.02)]), fill=(10, 10, 10, 255),
                  width=frame_w)
    return _composite(rgb, layer)


def backlight_person(rgb: np.ndarray, gain: float = BACKLIGHT_FACE_GAIN) -> np.ndarray:
    """The person exposed for a bright window behind them: darker, flatter, a faint rim of light."""
    x = rgb.astype(np.float32) / 255.0
    dark = (x ** 1.15) * gain                                # shadows sink a little more than highlights
    img = Image.fromarray((dark * 255).clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))
    return np.asarray(img)


def backlight_background(bg: np.ndarray, level: int = BACKLIGHT_WALL_LEVEL) -> np.ndarray:
    """The wall behind the patient as a bright window: near clipping, a little brighter at the top."""
    h = bg.shape[0]
    ramp = np.linspace(1.03, 0.95, h, dtype=np.float32)[:, None, None]
    base = bg.astype(np.float32) / max(float(bg.mean()), 1.0)
    return (level * ramp * (0.85 + 0.15 * base)).clip(0, 255).astype(np.uint8)


def apply_props(rgb: np.ndarray, props: Iterable[str], geo: FaceGeometry) -> np.ndarray:
    """The person crop with ``props`` applied (unknown names are logged and skipped)."""
    out = np.ascontiguousarray(rgb[:, :, :3])
    names = [str(p) for p in props]
    for name in names:
        if name not in PROPS:
            log.warning("camera sim: unknown prop %r (known: %s)", name, ", ".join(PROPS))
    if "sunglasses" in names:
        out = draw_sunglasses(out, geo)
    if "mask" in names:
        out = draw_mask(out, geo)
    if "backlight" in names:
        out = backlight_person(out)
    return out


def props_of(scene: dict) -> list[str]:
    """The scene's ``props`` list (a single string is accepted too)."""
    p = scene.get("props") or []
    return [p] if isinstance(p, str) else [str(x) for x in p]
