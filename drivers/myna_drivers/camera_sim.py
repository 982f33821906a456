"""Simulated camera: frames composed from the scene hw-sim publishes on the sim bus.

hw-sim's rig publishes ``{"dev": "camera", "scene": {"source": path|None, "behaviour": ..., ...}}``
(``Rig.show_face``); this driver keeps the latest scene and renders frames from it at
the configured size and rate (``read`` sleeps to pace, timestamps are
``time.monotonic()``). Only numpy and Pillow; nothing is written to disk.

Behaviours (``scene["behaviour"]``):

``live``   the source photo of a person on a neutral background, framed like a patient
           at the reader (face about a third of the frame wide, a little above the
           centre), with small natural motion (slow drift and breathing scale) and a
           head sway (see below).
``photo``  a printed photo of the same person held up to the camera: white border, hard
           edges, held still with only a slight rigid hand shake; it never turns.
``screen`` the same photo shown on a phone held on a stand: perfectly still.
``none``   (or ``source`` None) an empty background.
``dark``   the live scene in a very dark room.
``far``    the live person standing far away (tiny face).
``two``    two live people: ``source`` and ``scene["other"]`` side by side.
``print_stand`` ``print_wave`` ``print_rotated`` ``print_turned`` ``print_bent`` ``replay``
``slideshow``: presentation attacks with the person's photos (:class:`_Attack`): a print (life
           size, paper white and ink contrast, white border) or a tablet (bezel, pixel matrix
           re-sampled by the camera into moiré, lifted blacks, a thumb, slight defocus) held in
           3-D in front of a pinhole camera, by a hand that drifts and trembles; turned, rotated,
           folded or swiped by an attacker who may follow the screen (``pose``). Sensor noise.
A ``source`` that is a folder is played as a video: its images in name order at
``scene.get("video_fps", 15)``, scaled to fit the frame.

Optional scene keys: ``face_box`` [x, y, w, h] of the face in the source photo (else
the face is assumed to be roughly centred, as in a passport-style photo: the same
assumption the card photo makes), ``scale`` (multiplies the face size), ``sway_deg``
(amplitude, default 20) and ``sway_period_s`` (default 3.0).

How the live person answers the liveness challenge: the daemon does not tell the
camera what the screen asks (a real camera cannot be told either). With ``scene["follow"]``
someone reads the reader's SCREEN and moves: hw-sim's ``mynasim.patient`` publishes pose moves
(``{"dev": "camera_pose", "t0", "dur", "from", "to", ...}``, times on ``time.monotonic()``,
evaluated by :func:`pose_of` with a minimum-jerk profile) and the renderer turns the head (or
the print) accordingly; the moves are what a person does after reading the prompt, with a
human reaction delay. Without ``follow`` the live person keeps swaying left and right (±20°,
3 s period), which the randomised challenge no longer accepts. The turn is rendered
as a yaw of the photo on a head-shaped depth map (an ellipsoid-like profile plus a nose
ridge), so the nose moves sideways more than the eyes, as on a real head. Known limits of
that head: the eye line foreshortens more and the silhouette less realistically than on a
real head, and a photo that is itself turned stays turned ("front" is the photo's pose).

Per-frame cost is small: the yawed face variants (every 2.5°) and the background are
computed once per scene; a frame is a copy of the background plus one alpha blend.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from myna_drivers.camera import Frame
from myna_drivers.scene_props import apply_props, backlight_background, geometry_for, props_of

log = logging.getLogger("myna.camera.sim")

SWAY_DEG = 20.0
SWAY_PERIOD_S = 3.0
YAW_STEP_DEG = 2.5
# A patient following the screen turns up to this far (yawed variants are prepared to it).
POSE_MAX_DEG = 40.0
# face width as a fraction of the frame height for a patient at the reader
LIVE_FACE_FRACTION = 0.42
FAR_FACE_FRACTION = 0.10
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
MAX_VIDEO_FRAMES = 600


# ----------------------------------------------------------------------------- images

def _load_rgb(path: str | Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


def _resize(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((max(1, w), max(1, h)), Image.Resampling.BILINEAR))


def background(size: tuple[int, int], level: int = 128) -> np.ndarray:
    """A neutral wall: a soft vertical gradient with a slight warm tint (RGB)."""
    w, h = size
    ramp = np.linspace(1.06, 0.9, h, dtype=np.float32)[:, None]
    xs = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
    shade = ramp * (1.0 - 0.05 * xs * xs)
    tint = np.array([1.02, 1.0, 0.95], dtype=np.float32)
    bg = (level * shade)[:, :, None] * tint[None, None, :]
    return bg.clip(0, 255).astype(np.uint8)


def portrait_crop(rgb: np.ndarray, face_box: list[float] | None) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A 3:4 head-and-shoulders crop of the photo; returns (crop, (face_cx, face_cy, face_w) in crop px).

    With ``face_box`` the crop is built around it (face = 45% of the crop width); without
    it the face is assumed centred, like the card photo's centre crop.
    """
    h, w = rgb.shape[:2]
    if face_box:
        fx, fy, fw, fh = (float(v) for v in face_box)
        cw = fw / 0.45
        ch = cw * 4 / 3
        cx, cy = fx + fw / 2, fy + fh * 0.45
        x0, y0 = cx - cw / 2, cy - ch * 0.45
        # pad with the edge colour where the crop leaves the photo
        pad = int(max(0, -x0, -y0, x0 + cw - w, y0 + ch - h)) + 2
        src = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge") if pad > 2 else rgb
        off = pad if pad > 2 else 0
        ix0, iy0 = int(round(x0)) + off, int(round(y0)) + off
        crop = src[iy0:iy0 + int(round(ch)), ix0:ix0 + int(round(cw))]
        return crop, (cw / 2, ch * 0.45, fw)
    target = 3 / 4
    if w / h > target:
        nw = int(h * target)
        left = (w - nw) // 2
        crop = rgb[:, left:left + nw]
    else:
        nh = int(w / target)
        top = (h - nh) // 2
        crop = rgb[top:top + nh]
    ch, cw = crop.shape[:2]
    return crop, (cw / 2, ch / 2, cw * 0.6)


def yaw_warp(rgb: np.ndarray, yaw_deg: float, axis_x: float, nose_y: float, face_w: float) -> np.ndarray:
    """Turn the head in ``rgb`` by ``yaw_deg`` (positive: nose moves to image right).

    Each pixel gets a depth z(x, y): a smooth head profile R*exp(-x²/2(0.6R)²) plus a nose
    ridge around (axis_x, nose_y); a yaw moves it to x*cos(a) + (z - R)*sin(a). The map is
    inverted row by row (it stays monotonic for |a| <= 30°) and sampled bilinearly along x.
    """
    if abs(yaw_deg) < 1e-6:
        return rgb.copy()
    h, w = rgb.shape[:2]
    a = math.radians(yaw_deg)
    r = face_w / 2.0
    xs = np.arange(w, dtype=np.float32) - axis_x
    ys = np.arange(h, dtype=np.float32) - nose_y
    head = r * np.exp(-(xs ** 2) / (2 * (0.6 * r) ** 2))                          # (w,)
    ridge_x = np.exp(-(xs ** 2) / (2 * (0.22 * r) ** 2))                          # (w,)
    ridge_y = np.exp(-(ys ** 2) / (2 * (0.45 * r) ** 2))                          # (h,)
    z = head[None, :] + 0.45 * r * ridge_y[:, None] * ridge_x[None, :]            # (h, w)
    fwd = xs[None, :] * math.cos(a) + (z - r) * math.sin(a) + axis_x               # (h, w) output x of each source x
    fwd = np.maximum.accumulate(fwd, axis=1)  # keep each row monotonic (occlusion)
    out_x = np.arange(w, dtype=np.float32)
    src = np.empty((h, w), dtype=np.float32)
    cols = np.arange(w, dtype=np.float32)
    for row in range(h):
        src[row] = np.interp(out_x, fwd[row], cols)
    x0 = np.clip(np.floor(src).astype(np.int32), 0, w - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    f = (src - x0)[:, :, None]
    rows = np.arange(h)[:, None]
    out = rgb[rows, x0].astype(np.float32) * (1 - f) + rgb[rows, x1].astype(np.float32) * f
    return out.clip(0, 255).astype(np.uint8)


def soft_ellipse(w: int, h: int, feather: float = 0.12) -> np.ndarray:
    """Alpha (h, w) float32: 1 inside a head-and-shoulders ellipse, fading to 0 at the edge."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.sqrt(((xx - w / 2) / (w * 0.48)) ** 2 + ((yy - h * 0.5) / (h * 0.52)) ** 2)
    return np.clip((1.0 - d) / feather, 0.0, 1.0).astype(np.float32)


class _Sprite:
    """A patch (RGB uint8) with its alpha, ready to blend: premultiplied once."""

    def __init__(self, rgb: np.ndarray, alpha: np.ndarray) -> None:
        a = (alpha * 256).astype(np.uint16)[:, :, None]
        self.pre = (rgb.astype(np.uint16) * a)
        self.inv = (256 - a)
        self.h, self.w = rgb.shape[:2]

    def blend(self, canvas: np.ndarray, x: int, y: int) -> None:
        H, W = canvas.shape[:2]
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(W, x + self.w), min(H, y + self.h)
        if x1 <= x0 or y1 <= y0:
            return
        sx, sy = x0 - x, y0 - y
        region = canvas[y0:y1, x0:x1]
        pre = self.pre[sy:sy + (y1 - y0), sx:sx + (x1 - x0)]
        inv = self.inv[sy:sy + (y1 - y0), sx:sx + (x1 - x0)]
        region[...] = ((pre + region.astype(np.uint16) * inv) >> 8).astype(np.uint8)


class _Person:
    """One person from a photo, placed with natural motion and turning the head.

    ``fill`` (the live patient alone at the reader): the photo's own surroundings fill the
    whole frame, as a camera sees a person standing in a room; the head turns inside that
    scene. Otherwise the person is a head-and-shoulders cut-out on the wall (two people,
    someone far away) or a printed photo with a white border. A cut-out has edges no real
    scene has, and a presentation-attack model sees them for what they are (a recaptured
    picture), so the live patient is never drawn that way.
    """

    FILL_MARGIN = 8  # px around the frame, room for the natural drift

    def __init__(self, path: str, scene: dict[str, Any], size: tuple[int, int], face_frac: float,
                 centre: tuple[float, float], phase: float, printed: bool = False, fill: bool = False) -> None:
        W, H = size
        rgb = _load_rgb(path)
        if scene.get("props"):  # mask / sunglasses / backlight on the photo, before the head-turn variants
            rgb = apply_props(rgb, props_of(scene), geometry_for(scene, rgb.shape))
        self.phase = phase
        self.amp = float(scene.get("sway_deg", SWAY_DEG))
        self.period = float(scene.get("sway_period_s", SWAY_PERIOD_S))
        self.printed = printed
        self.fill = fill and not printed
        self._warp: tuple[np.ndarray, float, float, float] | None = None
        self.variants: dict[float, Any] = {}
        target_fw = face_frac * H * float(scene.get("scale", 1.0))
        if self.fill:
            self._fill_scene(rgb, scene, size, target_fw, centre)
            return
        crop, (fcx, fcy, fw) = portrait_crop(rgb, scene.get("face_box"))
        k = target_fw / max(fw, 1.0)
        cw, ch = max(8, int(round(crop.shape[1] * k))), max(8, int(round(crop.shape[0] * k)))
        crop = _resize(crop, cw, ch)
        fcx, fcy, fw = fcx * k, fcy * k, fw * k
        # place the face centre at `centre` (fractions of the frame)
        self.x = int(round(centre[0] * W - fcx))
        self.y = int(round(centre[1] * H - fcy))
        if printed:
            border = max(3, cw // 20)
            paper = np.full((ch + 2 * border, cw + 2 * border, 3), 238, np.uint8)
            paper[border:border + ch, border:border + cw] = crop
            self.x -= border
            self.y -= border
            self.variants = {0.0: _Sprite(paper, np.ones(paper.shape[:2], np.float32))}
        else:
            alpha = soft_ellipse(cw, ch)
            reach = max(self.amp, POSE_MAX_DEG if scene.get("follow") else 0.0)
            n = int(round(reach / YAW_STEP_DEG)) if reach > 0 else 0
            for i in range(-n, n + 1):
                deg = i * YAW_STEP_DEG
                self.variants[deg] = _Sprite(yaw_warp(crop, deg, fcx, fcy + 0.12 * fw, fw), alpha)

    def _fill_scene(self, rgb: np.ndarray, scene: dict[str, Any], size: tuple[int, int], target_fw: float,
                    centre: tuple[float, float]) -> None:
        """The head-and-shoulders part of the photo, scaled so the face has the patient's size,
        its surroundings extended to the frame's edges (edge pixels repeated, so no border
        appears; bystanders at the photo's sides stay out), with a margin for drift."""
        W, H = size
        crop, (cx, cy, fw) = portrait_crop(rgb, scene.get("face_box"))
        k = target_fw / max(fw, 1.0)
        img = _resize(crop, max(1, int(round(crop.shape[1] * k))), max(1, int(round(crop.shape[0] * k))))
        cx, cy, fw = cx * k, cy * k, fw * k
        m = self.FILL_MARGIN
        ox = int(round(centre[0] * W - cx)) + m  # where the image's origin lands in the margin window
        oy = int(round(centre[1] * H - cy)) + m
        ww, wh = W + 2 * m, H + 2 * m
        left, top = max(0, ox), max(0, oy)
        right, bottom = max(0, ww - (ox + img.shape[1])), max(0, wh - (oy + img.shape[0]))
        big = np.pad(img, ((top, bottom), (left, right), (0, 0)), mode="edge")
        x0, y0 = left - ox, top - oy
        window = np.ascontiguousarray(big[y0:y0 + wh, x0:x0 + ww])
        self._warp = (window, centre[0] * W + m, centre[1] * H + m + 0.12 * fw, fw)

    def _variant(self, deg: float) -> np.ndarray:
        """The filled scene with the head turned by ``deg`` (computed once per angle in use)."""
        v = self.variants.get(deg)
        if v is None:
            assert self._warp is not None, "only a filled scene (_fill_scene) turns on demand"
            window, axis_x, nose_y, fw = self._warp
            v = self.variants[deg] = yaw_warp(window, deg, axis_x, nose_y, fw)
        return v

    def yaw_at(self, t: float) -> float:
        if self.printed or self.amp <= 0:
            return 0.0
        return self.amp * math.sin(2 * math.pi * t / self.period + self.phase)

    def draw(self, canvas: np.ndarray, t: float, motion: str, yaw: float | None = None) -> None:
        if motion == "live":
            yaw = self.yaw_at(t) if yaw is None else yaw
            key = round(yaw / YAW_STEP_DEG) * YAW_STEP_DEG
            if not self.fill:
                key = min(self.variants, key=lambda d: abs(d - key))
            dx = 5.0 * math.sin(2 * math.pi * t / 4.3 + self.phase) + 1.2 * math.sin(2 * math.pi * t / 0.9)
            dy = 3.0 * math.sin(2 * math.pi * t / 5.1 + 1.0) + 0.8 * math.sin(2 * math.pi * t / 1.3)
        elif motion == "shake":  # a hand holding a printed photo: small rigid tremor, no turn
            key = 0.0
            dx = 1.5 * math.sin(2 * math.pi * t / 0.7) + 0.8 * math.sin(2 * math.pi * t / 1.9)
            dy = 1.2 * math.sin(2 * math.pi * t / 0.83 + 0.5)
        else:  # perfectly still
            key, dx, dy = 0.0, 0.0, 0.0
        if self.fill:
            H, W = canvas.shape[:2]
            m = self.FILL_MARGIN
            x = m - max(-m, min(m, int(round(dx))))
            y = m - max(-m, min(m, int(round(dy))))
            canvas[...] = self._variant(float(max(-POSE_MAX_DEG, min(POSE_MAX_DEG, key))))[y:y + H, x:x + W]
            return
        self.variants[key].blend(canvas, self.x + int(round(dx)), self.y + int(round(dy)))


# ----------------------------------------------------------------------------- poses

def min_jerk(u: float) -> float:
    """Minimum-jerk profile 0..1 (how a hand or a head moves between two poses)."""
    u = min(1.0, max(0.0, u))
    return u * u * u * (10.0 - 15.0 * u + 6.0 * u * u)


def pose_of(move: dict[str, Any] | None, t: float) -> dict[str, Any]:
    """Pose at time ``t`` from one move message: ``{"t0", "dur", "from": {...}, "to": {...}}``
    (angles in degrees, interpolated with :func:`min_jerk`) plus the discrete keys ``play``
    (when a replayed clip was started) and ``slide`` (which photo a slideshow shows, and
    ``slide_t``, since when). ``t`` and ``t0`` are on the same clock (``time.monotonic()``
    between processes, scene time in tests)."""
    if not move:
        return {}
    a, b = move.get("from") or {}, move.get("to") or {}
    dur = float(move.get("dur") or 0.0)
    u = 1.0 if dur <= 0 else min_jerk((t - float(move.get("t0", 0.0))) / dur)
    if t < float(move.get("t0", 0.0)):
        u = 0.0
    pose: dict[str, Any] = {k: float(a.get(k, 0.0)) + (float(b.get(k, 0.0)) - float(a.get(k, 0.0))) * u
                            for k in set(a) | set(b)}
    for k in ("play", "slide"):
        if move.get(k) is not None:
            pose[k] = move[k]
    if move.get("slide_t") is not None and t < float(move["slide_t"]):
        pose["slide"] = move.get("prev_slide") or "front"   # not swiped yet
    return pose


# ----------------------------------------------------------------------------- flat things in 3-D

# Pinhole camera of the reader: 60° horizontal field of view (a typical Pi camera module
# with the wide lens cropped to 4:3).
HFOV_DEG = 60.0
_NOISE_SIGMA = 2.2          # sensor noise, grey levels (a real sensor in indoor light)


def focal_px(width: int) -> float:
    return 0.5 * width / math.tan(math.radians(HFOV_DEG / 2))


def rotation(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Rotation (degrees) in camera coordinates (x right, y down, z away from the camera).

    yaw > 0 moves points that stand out towards the camera to the image right (like the head
    renderer: the patient's left turn); roll > 0 moves points below the centre to the image
    right (the in-plane rotation of a print that fakes a left turn on an uncorrected proxy).
    """
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), math.sin(r), 0], [-math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def _homography_4(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    a = []
    for (x, y), (u, v) in zip(src, dst):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    h = np.linalg.solve(np.asarray(a, np.float64), np.asarray(dst, np.float64).reshape(-1))
    return np.append(h, 1.0).reshape(3, 3)


class _Sheet:
    """A flat (or folded) textured thing held in front of the camera: a print, a phone.

    ``texture`` RGBA uint8; ``mm_per_px`` its physical size; ``anchor`` the texture point
    (px) the pose is about (the face centre). ``fold_deg`` bends it along the vertical line
    through the anchor like a door (a V: both wings go back by half the angle, the fold line
    towards the camera). Each planar piece is one perspective warp (PIL), so the keystone of a
    turned print, the foreshortening of each wing and the re-sampling of a screen's pixel
    grid (moiré) come out of the projection itself. Pieces facing away from the light are
    darker (Lambert, light from the camera side).
    """

    def __init__(self, texture: np.ndarray, mm_per_px: float, anchor: tuple[float, float],
                 fold_deg: float = 0.0) -> None:
        self.tex = Image.fromarray(texture, "RGBA")
        self.mm = float(mm_per_px)
        self.anchor = (float(anchor[0]), float(anchor[1]))
        self.fold = math.radians(fold_deg / 2.0)
        h, w = texture.shape[:2]
        ax = self.anchor[0]
        if self.fold > 0:
            self.pieces = [(0.0, ax), (ax, float(w))]
        else:
            self.pieces = [(0.0, float(w))]
        self.h = float(h)

    def _point(self, u: float, v: float) -> np.ndarray:
        x = (u - self.anchor[0]) * self.mm
        y = (v - self.anchor[1]) * self.mm
        z = abs(x) * math.tan(self.fold)          # wings go away from the camera
        return np.array([x, y, z])

    def draw(self, canvas: np.ndarray, centre_px: tuple[float, float], dist_mm: float,
             yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0, shift_mm: tuple[float, float] = (0, 0),
             focal: float | None = None) -> None:
        H, W = canvas.shape[:2]
        f = focal or focal_px(W)
        cx, cy = W / 2.0, H / 2.0
        # place the anchor so that it projects to centre_px at dist_mm when not moved
        ox = (centre_px[0] - cx) * dist_mm / f + shift_mm[0]
        oy = (centre_px[1] - cy) * dist_mm / f + shift_mm[1]
        rot = rotation(yaw, pitch, roll)
        order = []
        for u0, u1 in self.pieces:
            corners_t = np.array([[u0, 0.0], [u1, 0.0], [u1, self.h], [u0, self.h]])
            pts = np.array([rot @ self._point(u, v) for u, v in corners_t]) + np.array([ox, oy, dist_mm])
            if np.any(pts[:, 2] < 20.0):
                continue
            img = np.c_[f * pts[:, 0] / pts[:, 2] + cx, f * pts[:, 1] / pts[:, 2] + cy]
            normal = np.cross(pts[1] - pts[0], pts[3] - pts[0])
            normal /= max(1e-9, float(np.linalg.norm(normal)))
            shade = 0.55 + 0.45 * abs(float(normal[2]))
            order.append((float(pts[:, 2].mean()), corners_t, img, shade))
        for _, corners_t, img, shade in sorted(order, key=lambda o: -o[0]):   # far piece first
            self._blend_piece(canvas, corners_t, img, shade)

    def _blend_piece(self, canvas, corners_t, img, shade) -> None:
        H, W = canvas.shape[:2]
        x0, y0 = np.floor(img.min(axis=0)).astype(int)
        x1, y1 = np.ceil(img.max(axis=0)).astype(int)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1 + 1), min(H, y1 + 1)
        if x1 <= x0 or y1 <= y0:
            return
        hom = _homography_4(img - np.array([x0, y0]), corners_t)     # output px -> texture px
        coeffs = tuple((hom / hom[2, 2]).reshape(-1)[:8])
        u0, u1 = int(corners_t[0, 0]), int(math.ceil(corners_t[1, 0]))
        tex = self.tex
        if (u0, u1) != (0, tex.width):
            tex = tex.copy()
            mask = np.zeros((tex.height, tex.width), np.uint8)
            mask[:, u0:u1] = 255
            a = np.minimum(np.asarray(tex.getchannel("A")), mask)
            tex.putalpha(Image.fromarray(a))
        out = np.asarray(tex.transform((x1 - x0, y1 - y0), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR))
        alpha = out[:, :, 3:4].astype(np.float32) / 255.0
        rgb = out[:, :, :3].astype(np.float32) * shade
        region = canvas[y0:y1, x0:x1].astype(np.float32)
        canvas[y0:y1, x0:x1] = (rgb * alpha + region * (1 - alpha)).clip(0, 255).astype(np.uint8)


def print_texture(rgb: np.ndarray, face_box: list[float] | None, face_px: float = 220.0
                  ) -> tuple[np.ndarray, tuple[float, float], float]:
    """A photo printed on paper: head-and-shoulders crop with a white border, ink contrast
    (paper white ~235, ink black ~30, slightly desaturated). Returns (RGBA, face centre px,
    face width px)."""
    crop, (fcx, fcy, fw) = portrait_crop(rgb, face_box)
    k = face_px / max(fw, 1.0)
    crop = _resize(crop, int(round(crop.shape[1] * k)), int(round(crop.shape[0] * k)))
    fcx, fcy, fw = fcx * k, fcy * k, fw * k
    grey = crop.mean(axis=2, keepdims=True)
    ink = (0.85 * crop + 0.15 * grey) * (205.0 / 255.0) + 30.0
    border = max(6, crop.shape[1] // 18)
    h, w = crop.shape[:2]
    paper = np.full((h + 2 * border, w + 2 * border, 4), 255, np.uint8)
    paper[:, :, :3] = 236
    paper[border:border + h, border:border + w, :3] = ink.clip(0, 255).astype(np.uint8)
    return paper, (fcx + border, fcy + border), fw


def screen_texture(content: np.ndarray, bezel_px: int = 14, grid: int = 3, contrast: float = 0.78,
                   hand: bool = True) -> np.ndarray:
    """What a phone or tablet screen looks like to a camera: the content at the display's
    own resolution, each display pixel drawn as ``grid`` x ``grid`` texels with a darker
    gap (the pixel matrix; re-sampled by the camera it gives moiré), lifted blacks and lower
    contrast (an LCD in a lit room), a slight blue cast, a black bezel, and a thumb on the
    bezel (the hand holding it). RGBA."""
    c = content.astype(np.float32) * contrast + 255.0 * (1 - contrast) * 0.45
    c *= np.array([0.97, 1.0, 1.06], np.float32)
    c = np.repeat(np.repeat(c, grid, axis=0), grid, axis=1)
    mask = np.ones(grid, np.float32)
    mask[-1] = 0.9
    c *= mask[np.arange(c.shape[0]) % grid][:, None, None]
    c *= mask[np.arange(c.shape[1]) % grid][None, :, None]
    h, w = c.shape[:2]
    b = bezel_px * grid
    tex = np.zeros((h + 2 * b, w + 2 * b, 4), np.uint8)
    tex[:, :, :3] = 18
    tex[:, :, 3] = 255
    tex[b:b + h, b:b + w, :3] = c.clip(0, 255).astype(np.uint8)
    if hand:   # a thumb over the lower left bezel and a little of the screen
        yy, xx = np.mgrid[0:tex.shape[0], 0:tex.shape[1]]
        th = ((xx - 0.12 * tex.shape[1]) / (0.09 * tex.shape[1])) ** 2 + \
             ((yy - 0.93 * tex.shape[0]) / (0.12 * tex.shape[0])) ** 2 <= 1.0
        tex[th, :3] = np.array([196, 150, 126], np.uint8)
    # rounded corners
    r = 3 * b
    yy, xx = np.mgrid[0:r, 0:r]
    outside = (xx - r) ** 2 + (yy - r) ** 2 > r * r
    for sy in (slice(0, r), slice(-r, None)):
        for sx in (slice(0, r), slice(-r, None)):
            o = outside[::1 if sy.start == 0 else -1, ::1 if sx.start == 0 else -1]
            tex[sy, sx, 3][o] = 0
    return tex


class _Screen:
    """The per-frame path of :func:`screen_texture` for a playing video: the bezel, thumb
    and pixel-matrix mask are prepared once; a frame only scales and masks the content."""

    def __init__(self, tex: np.ndarray, content_size: tuple[int, int], bezel_px: int = 14, grid: int = 3,
                 contrast: float = 0.78) -> None:
        self.tex = tex.copy()
        self.grid, self.b = grid, bezel_px * grid
        cw, ch = content_size
        mask = np.ones(grid, np.float32)
        mask[-1] = 0.9
        m = mask[np.arange(ch * grid) % grid][:, None] * mask[np.arange(cw * grid) % grid][None, :]
        tint = np.array([0.97, 1.0, 1.06], np.float32)
        self.mul = (m[:, :, None] * tint[None, None, :] * contrast * 256).astype(np.uint16)
        self.add = (m[:, :, None] * tint[None, None, :] * 255.0 * (1 - contrast) * 0.45).astype(np.uint16)
        region = self.tex[self.b:self.b + ch * grid, self.b:self.b + cw * grid]
        self.keep = region[:, :, 0] != 0   # thumb texels (skin) stay over the picture
        self.keep &= np.all(region[:, :, :3] == np.array([196, 150, 126], np.uint8), axis=2)
        self.write = ~self.keep[:, :, None]

    def show(self, content: np.ndarray) -> np.ndarray:
        g, b = self.grid, self.b
        big = np.repeat(np.repeat(content, g, axis=0), g, axis=1).astype(np.uint16)
        px = ((big * self.mul >> 8) + self.add).clip(0, 255).astype(np.uint8)
        region = self.tex[b:b + px.shape[0], b:b + px.shape[1], :3]
        np.copyto(region, px, where=self.write)
        return self.tex


class _SensorNoise:
    """Additive sensor noise from a precomputed bank (drawing fresh noise per frame costs
    more than the render): a different offset each frame."""

    def __init__(self, size: tuple[int, int], seed: int = 7) -> None:
        W, H = size
        rng = np.random.default_rng(seed)
        self.bank = rng.normal(0, _NOISE_SIGMA, (H + 61, W + 67, 3)).round().astype(np.int16)
        self.size = size

    def add(self, canvas: np.ndarray, t: float) -> np.ndarray:
        W, H = self.size
        k = int(t * 1000.0)
        oy, ox = (k * 7919) % 61, (k * 104729) % 67
        return (canvas.astype(np.int16) + self.bank[oy:oy + H, ox:ox + W]).clip(0, 255).astype(np.uint8)


# How a hand holds a thing: slow drift plus physiological tremor (8-12 Hz, small).
def hand_motion(t: float, phase: float, drift_mm: float = 4.0, tremor_mm: float = 0.5,
                tilt_deg: float = 1.5) -> dict[str, float]:
    w = 2 * math.pi
    return {
        "dx": drift_mm * math.sin(w * t / 3.7 + phase) + tremor_mm * math.sin(w * 9.0 * t + 2 * phase),
        "dy": 0.7 * drift_mm * math.sin(w * t / 4.9 + 1.3 + phase) + tremor_mm * math.sin(w * 10.7 * t),
        "yaw": tilt_deg * math.sin(w * t / 4.1 + phase),
        "pitch": tilt_deg * math.sin(w * t / 5.3 + 0.7 + phase),
        "roll": 0.6 * tilt_deg * math.sin(w * t / 3.1 + 2.1 + phase),
    }


# The clip an attacker replays: the holder filmed turning left, back, right, back, with
# pauses (what one asks a person to do when filming "a head turn"), looped.
REPLAY_CLIP = ((0.0, 0.0), (0.5, 0.0), (1.1, 24.0), (1.9, 24.0), (2.5, 0.0), (3.3, 0.0), (3.9, -24.0),
               (4.7, -24.0), (5.3, 0.0), (6.0, 0.0))


def clip_yaw(t: float, clip=REPLAY_CLIP) -> float:
    """Yaw of the filmed head at clip time t (keyframes with min-jerk between), looped."""
    t = t % clip[-1][0]
    for (t0, y0), (t1, y1) in zip(clip, clip[1:]):
        if t0 <= t <= t1:
            return y0 + (y1 - y0) * min_jerk((t - t0) / max(1e-6, t1 - t0))
    return clip[-1][1]


class _Attack:
    """Presentation attacks: a print or a screen held by someone in front of the reader.

    Behaviours (the attacker's own pose choices come from ``pose`` when someone follows the
    screen, see ``mynasim.patient``; without it they move on their own):

    ``print_stand``   print on a stand, slightly tilted back, nothing moves;
    ``print_wave``    print waved by hand: drifts, tilts and turns ±15° in every axis;
    ``print_rotated`` print rotated in-plane towards the prompted side (``roll``);
    ``print_turned``  flat print turned like a door towards the prompted side (``yaw``);
    ``print_bent``    print folded along the nose (``fold_deg``, default 40) and turned;
    ``replay``        a tablet playing a clip of the holder turning the head, looped, from
                      the scene start; with ``pose["play"]`` the clip starts then (an
                      attacker who presses play on seeing the first prompt);
    ``slideshow``     a tablet showing photos of the holder (``scene["slides"]``: a mapping
                      front/left/right -> photo, or a list), swiped to the prompted one.
    """

    def __init__(self, behaviour: str, source: str, scene: dict[str, Any], size: tuple[int, int]) -> None:
        W, H = size
        self.behaviour = behaviour
        self.scene = scene
        self.size = size
        self.phase = float(scene.get("phase", 0.0))
        self.centre = (0.5 * W, 0.45 * H)
        f = focal_px(W)
        face_img = LIVE_FACE_FRACTION * H * float(scene.get("scale", 1.0))  # face width in the image, px
        self.clip_person: _Person | None = None  # the replayed clip's person (replay only)
        self.slides: dict[str, _Sheet] = {}
        # A tablet is held at 20-35 cm, closer than the fixed-focus camera's sharp range (the
        # patient's face at ~40-50 cm): its picture is slightly defocused (blur sigma, px).
        self.defocus = 0.7 if behaviour in ("replay", "slideshow") else 0.0
        if behaviour.startswith("print"):
            tex, anchor, fw = print_texture(_load_rgb(source), scene.get("face_box"))
            mm = 150.0 / fw                                        # printed at life size (face 150 mm)
            fold = float(scene.get("fold_deg", 40.0)) if behaviour == "print_bent" else 0.0
            self.sheet = _Sheet(tex, mm, anchor, fold)
            self.dist = f * 150.0 / face_img
        elif behaviour == "replay":
            cw, ch = 240, 320                                      # the clip's pixels (portrait video)
            self.grid, self.bezel = 3, 14
            self.clip_size = (cw, ch)
            self.clip_bg = background((cw, ch), level=150)
            clip_face = 0.45                                       # face width / clip height
            self.clip_person = _Person(source, {**scene, "sway_deg": 25.0}, (cw, ch), clip_face, (0.5, 0.45), 0.3)
            tex = screen_texture(np.zeros((ch, cw, 3), np.uint8), bezel_px=self.bezel, grid=self.grid)
            self._screen = _Screen(tex, (cw, ch), bezel_px=self.bezel, grid=self.grid)
            self.tex_rgba = tex
            mm = 150.0 / tex.shape[1]                              # a 150 mm wide tablet screen+bezel
            anchor = ((self.bezel + 0.5 * cw) * self.grid, (self.bezel + 0.45 * ch) * self.grid)
            self.sheet = _Sheet(tex, mm, anchor)
            face_mm = clip_face * ch * self.grid * mm              # the clip's face width on the glass
            self.dist = f * face_mm / (0.8 * face_img)             # held a bit far: the face ~0.8x
        elif behaviour == "slideshow":
            slides = scene.get("slides") or [source]
            if isinstance(slides, (list, tuple)):
                slides = {k: v for k, v in zip(("front", "left", "right"), list(slides) * 3)}
            cw, ch = 240, 320
            for key, path in slides.items():
                crop, (fcx, fcy, fw) = portrait_crop(_load_rgb(path), None)
                k = 0.5 * cw / max(fw, 1.0)
                img = _resize(crop, int(round(crop.shape[1] * k)), int(round(crop.shape[0] * k)))
                canvas = np.full((ch, cw, 3), 20, np.uint8)
                ox, oy = int(cw / 2 - fcx * k), int(0.45 * ch - fcy * k)
                _paste(canvas, img, ox, oy)
                tex = screen_texture(canvas)
                mm = 150.0 / tex.shape[1]
                anchor = ((14 + 0.5 * cw) * 3, (14 + 0.45 * ch) * 3)
                self.slides[key] = _Sheet(tex, mm, anchor)
            first = self.slides.get("front") or next(iter(self.slides.values()))
            self.sheet = first
            face_mm = 0.5 * 240 * 3 * (150.0 / first.tex.width)
            self.dist = f * face_mm / (0.8 * face_img)
        else:
            raise ValueError(f"unknown attack behaviour {behaviour!r}")

    # own motion when nobody follows the screen (the attacker just holds it)
    def _own_pose(self, t: float) -> dict[str, float]:
        b, w = self.behaviour, 2 * math.pi
        if b == "print_wave":
            return {"yaw": 15 * math.sin(w * t / 1.9 + self.phase), "pitch": 10 * math.sin(w * t / 2.3),
                    "roll": 8 * math.sin(w * t / 1.3 + 0.5), "dx": 25 * math.sin(w * t / 2.9),
                    "dy": 12 * math.sin(w * t / 1.7 + 1.0)}
        if b == "print_rotated":
            return {"roll": 20 * math.sin(w * t / 3.0 + self.phase)}
        if b in ("print_turned", "print_bent"):
            return {"yaw": 28 * math.sin(w * t / 3.0 + self.phase)}
        return {}

    def draw(self, canvas: np.ndarray, t: float, pose: dict[str, Any] | None) -> None:
        b = self.behaviour
        if b == "print_stand":
            p = {"pitch": -8.0}
        else:
            # someone follows the screen (the rig or a test runs a Follower): their pose, even
            # before the first prompt; otherwise the attacker just holds it their own way
            p = dict(pose or {}) if self.scene.get("follow") else self._own_pose(t)
            hm = hand_motion(t, self.phase, drift_mm=2.5 if b != "print_wave" else 0.0)
            for k, v in hm.items():
                p[k] = p.get(k, 0.0) + v
        sheet = self.sheet
        if b == "replay":
            start = float(p["play"]) if "play" in p else (None if self.scene.get("follow") else 0.0)
            clip_t = None if start is None else t - start
            self._draw_clip(clip_t)
        elif b == "slideshow":
            sheet = self._slide(p, t)
        sheet.draw(canvas, self.centre, self.dist, yaw=p.get("yaw", 0.0), pitch=p.get("pitch", 0.0),
                   roll=p.get("roll", 0.0), shift_mm=(p.get("dx", 0.0), p.get("dy", 0.0)))

    def _draw_clip(self, clip_t: float | None) -> None:
        """Render the clip's current frame onto the screen texture (the paused first frame
        before play)."""
        cw, ch = self.clip_size
        frame = self.clip_bg.copy()
        yaw = 0.0 if clip_t is None or clip_t < 0 else clip_yaw(clip_t)
        assert self.clip_person is not None, "only a replay attack draws a clip"
        self.clip_person.draw(frame, max(0.0, clip_t or 0.0), "live", yaw=yaw)
        self.sheet.tex = Image.fromarray(self._screen.show(frame), "RGBA")

    def _slide(self, p: dict[str, Any], t: float) -> "_Sheet":
        key = p.get("slide") or "front"
        return self.slides.get(key) or self.sheet


def _paste(canvas: np.ndarray, img: np.ndarray, x: int, y: int) -> None:
    H, W = canvas.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + img.shape[1]), min(H, y + img.shape[0])
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = img[y0 - y:y1 - y, x0 - x:x1 - x]


ATTACKS = ("print_stand", "print_wave", "print_rotated", "print_turned", "print_bent", "replay", "slideshow")


class SceneRenderer:
    """Renders one scene at one frame size: ``render(t)`` -> BGR uint8, t in seconds since the scene began.

    Everything expensive (photo decode, yawed variants, background) happens in the
    constructor; ``render`` is a background copy plus alpha blends.
    """

    def __init__(self, scene: dict[str, Any] | None, size: tuple[int, int],
                 pose: Callable[[float], dict[str, Any]] | None = None) -> None:
        """``pose(t)``: the pose chosen by whoever follows the screen (a patient's head, an
        attacker's print), at scene time t; used by ``live`` scenes with ``follow`` and by the
        attack behaviours (:data:`ATTACKS`)."""
        self.scene = dict(scene or {})
        self.pose = pose
        self.attack: _Attack | None = None
        self.noise: _SensorNoise | None = None
        self.size = (int(size[0]), int(size[1]))
        W, H = self.size
        self.behaviour = str(self.scene.get("behaviour") or "live")
        source = str(self.scene.get("source") or "")  # a photo, or a folder of video frames
        if not source:
            self.behaviour = "none"
        self.bg = background(self.size)
        self.people: list[_Person] = []
        self.video: list[np.ndarray] = []
        self.motion = "live"
        b = self.behaviour
        if b == "none":
            return
        if Path(source).is_dir():
            self._load_video(Path(source))
            return
        if b in ATTACKS:
            self.attack = _Attack(b, source, self.scene, self.size)
            self.noise = _SensorNoise(self.size)
            return
        if self.scene.get("follow") or self.scene.get("sensor_noise"):
            self.noise = _SensorNoise(self.size)
        if b in ("live", "dark"):
            self.people.append(_Person(source, self.scene, self.size, LIVE_FACE_FRACTION, (0.5, 0.45), 0.0,
                                       fill=not props_of(self.scene) or "backlight" not in props_of(self.scene)))
        elif b == "far":
            self.people.append(_Person(source, self.scene, self.size, FAR_FACE_FRACTION, (0.5, 0.4), 0.0))
        elif b in ("photo", "screen"):
            self.people.append(_Person(source, self.scene, self.size, LIVE_FACE_FRACTION, (0.5, 0.45), 0.0,
                                       printed=True))
            self.motion = "shake" if b == "photo" else "still"
        elif b == "two":
            other = self.scene.get("other") or source
            self.people.append(_Person(source, self.scene, self.size, 0.3, (0.3, 0.45), 0.0))
            self.people.append(_Person(other, {k: v for k, v in self.scene.items() if k != "face_box"},
                                       self.size, 0.3, (0.72, 0.47), 1.7))
        else:
            log.warning("camera sim: unknown behaviour %r, showing the person live", b)
            self.people.append(_Person(source, self.scene, self.size, LIVE_FACE_FRACTION, (0.5, 0.45), 0.0))
        if b == "dark":
            self.bg = (self.bg.astype(np.float32) * 0.08).astype(np.uint8)
        if "backlight" in props_of(self.scene):
            self.bg = backlight_background(self.bg)

    def _load_video(self, folder: Path) -> None:
        W, H = self.size
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:MAX_VIDEO_FRAMES]
        for p in files:
            rgb = _load_rgb(p)
            k = min(W / rgb.shape[1], H / rgb.shape[0])
            small = _resize(rgb, int(rgb.shape[1] * k), int(rgb.shape[0] * k))
            canvas = self.bg.copy()
            y0, x0 = (H - small.shape[0]) // 2, (W - small.shape[1]) // 2
            canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
            self.video.append(np.ascontiguousarray(canvas[:, :, ::-1]))
        self.video_fps = float(self.scene.get("video_fps", 15))
        if not self.video:
            log.warning("camera sim: no images in video folder %s", folder)

    def yaw_at(self, t: float) -> float:
        """The main person's head yaw in degrees at time t (0 for photos and empty scenes)."""
        if not self.people or self.motion != "live":
            return 0.0
        if self.scene.get("follow"):
            return float((self.pose(t) if self.pose else {}).get("yaw", 0.0))
        return self.people[0].yaw_at(t)

    def render(self, t: float) -> np.ndarray:
        if self.video:
            return self.video[int(t * self.video_fps) % len(self.video)].copy()
        canvas = self.bg.copy()
        if self.attack is not None:
            self.attack.draw(canvas, t, self.pose(t) if self.pose else None)
            if self.attack.defocus > 0:
                canvas = np.asarray(Image.fromarray(canvas).filter(ImageFilter.GaussianBlur(self.attack.defocus)))
        follow = bool(self.scene.get("follow"))
        for i, p in enumerate(self.people):
            p.draw(canvas, t, self.motion, yaw=self.yaw_at(t) if follow and i == 0 else None)
        if self.behaviour == "dark" and self.people:
            canvas = (canvas.astype(np.uint16) * 20 >> 8).astype(np.uint8)  # ~8% of the light
        if self.noise is not None:
            canvas = self.noise.add(canvas, t)
        return np.ascontiguousarray(canvas[:, :, ::-1])  # RGB -> BGR


def render_scene(scene: dict[str, Any] | None, size: tuple[int, int], times) -> list[np.ndarray]:
    """Convenience for tests and tools: frames of ``scene`` at the given times (seconds)."""
    r = SceneRenderer(scene, size)
    return [r.render(t) for t in times]


# ----------------------------------------------------------------------------- bus feed

class _SceneFeed:
    """The latest camera scene on one sim bus (one subscription per process and bus)."""

    _feeds: dict[str, "_SceneFeed"] = {}
    _feeds_lock = threading.Lock()

    @classmethod
    def for_bus(cls, path: str) -> "_SceneFeed":
        with cls._feeds_lock:
            feed = cls._feeds.get(path)
            if feed is None:
                feed = cls._feeds[path] = cls()
                from myna_drivers.simbus import SimBus

                bus = SimBus.shared(path)
                bus.subscribe("camera", feed._on_message)
                bus.subscribe("camera_pose", feed._on_pose)
            return feed

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.scene: dict[str, Any] | None = None
        self.version = 0
        self.since = time.monotonic()
        self.move: dict[str, Any] | None = None   # the latest pose move (times on time.monotonic())

    def _on_message(self, msg: dict[str, Any]) -> None:
        scene = msg.get("scene")
        if scene is not None and not isinstance(scene, dict):
            log.warning("camera sim: ignoring scene %r", scene)
            return
        with self._lock:
            self.scene = scene
            self.version += 1
            self.since = time.monotonic()

    def _on_pose(self, msg: dict[str, Any]) -> None:
        move = {k: v for k, v in msg.items() if k != "dev"}
        with self._lock:
            self.move = move or None

    def pose_at(self, t_abs: float) -> dict[str, Any]:
        with self._lock:
            move = self.move
        return pose_of(move, t_abs)

    def get(self) -> tuple[int, dict[str, Any] | None, float]:
        with self._lock:
            return self.version, self.scene, self.since


# ----------------------------------------------------------------------------- camera

def _shifted_pose(feed: _SceneFeed, since: float) -> Callable[[float], dict[str, Any]]:
    """The bus's pose at scene time ``ts``: the scene began at ``since`` on the monotonic clock."""
    return lambda ts: feed.pose_at(ts + since)


class SimCamera:
    """Same interface as :class:`myna_drivers.camera.PiCamera`: start / read / stop."""

    def __init__(self, bus_path: str, size: tuple[int, int], fps: int) -> None:
        self.bus_path = str(bus_path)
        self.size = (int(size[0]), int(size[1]))
        self.fps = max(1, int(fps))
        self._feed: _SceneFeed | None = None
        self._renderer: SceneRenderer | None = None
        self._version = -1
        self._since = 0.0
        self._next = 0.0
        self._started = False

    def start(self) -> None:
        self._feed = _SceneFeed.for_bus(self.bus_path)
        self._next = time.monotonic()
        self._started = True

    def read(self) -> Frame:
        """The next frame, paced at ``fps`` (blocks until its time)."""
        if not self._started or self._feed is None:
            raise RuntimeError("camera not started")
        now = time.monotonic()
        if self._next > now:
            time.sleep(self._next - now)
        # never fall more than one frame behind: a slow consumer gets the current frame
        self._next = max(self._next, time.monotonic() - 1.0 / self.fps) + 1.0 / self.fps
        version, scene, since = self._feed.get()
        if version != self._version or self._renderer is None:
            feed = self._feed
            try:
                self._renderer = SceneRenderer(scene, self.size, pose=_shifted_pose(feed, since))
            except Exception as e:  # a bad source path must not kill the daemon's camera
                log.warning("camera sim: cannot render scene %s: %s",
                            json.dumps(scene, ensure_ascii=False, default=str)[:200], e)
                self._renderer = SceneRenderer(None, self.size)
            self._version, self._since = version, since
        t = time.monotonic()
        return Frame(self._renderer.render(t - self._since), t)

    def stop(self) -> None:
        self._started = False
        self._renderer = None
