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
A ``source`` that is a folder is played as a video: its images in name order at
``scene.get("video_fps", 15)``, scaled to fit the frame.

Optional scene keys: ``face_box`` [x, y, w, h] of the face in the source photo (else
the face is assumed to be roughly centred, as in a passport-style photo: the same
assumption the card photo makes), ``scale`` (multiplies the face size), ``sway_deg``
(amplitude, default 20) and ``sway_period_s`` (default 3.0).

How the live person answers the liveness challenge: the daemon does not tell the
simulator what the screen asks (a real camera cannot be told either), so the live
person is modelled as a cooperative patient who follows the prompts, i.e. keeps
turning the head slowly left and right: a sway of ±20° with a 3 s period, so the head
is turned to one side or the other every ~1.5 s, whichever way the screen asks. The
turn is rendered as a yaw of the photo on a head-shaped depth map (an ellipsoid-like
profile plus a nose ridge), so the nose moves sideways more than the eyes, as on a
real head; a flat squeeze would not move the landmarks relative to each other. A
printed photo or a still screen never does this, which is what the head-turn liveness
check relies on.

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
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from myna_drivers.camera import Frame

log = logging.getLogger("myna.camera.sim")

SWAY_DEG = 20.0
SWAY_PERIOD_S = 3.0
YAW_STEP_DEG = 2.5
# face width as a fraction of the frame height for a patient at the reader
LIVE_FACE_FRACTION = 0.42
FAR_FACE_FRACTION = 0.10
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
MAX_VIDEO_FRAMES = 600


# ----------------------------------------------------------------------------- images

def _load_rgb(path: str | Path) -> np.ndarray:
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        return np.asarray(img.convert("RGB"))


def _resize(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((max(1, w), max(1, h)), Image.BILINEAR))


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
        x0 = (w - nw) // 2
        crop = rgb[:, x0:x0 + nw]
    else:
        nh = int(w / target)
        y0 = (h - nh) // 2
        crop = rgb[y0:y0 + nh]
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
    """One person from a photo: yawed variants precomputed, placed with natural motion."""

    def __init__(self, path: str, scene: dict[str, Any], size: tuple[int, int], face_frac: float,
                 centre: tuple[float, float], phase: float, printed: bool = False) -> None:
        W, H = size
        crop, (fcx, fcy, fw) = portrait_crop(_load_rgb(path), scene.get("face_box"))
        target_fw = face_frac * H * float(scene.get("scale", 1.0))
        k = target_fw / max(fw, 1.0)
        cw, ch = max(8, int(round(crop.shape[1] * k))), max(8, int(round(crop.shape[0] * k)))
        crop = _resize(crop, cw, ch)
        fcx, fcy, fw = fcx * k, fcy * k, fw * k
        self.phase = phase
        self.amp = float(scene.get("sway_deg", SWAY_DEG))
        self.period = float(scene.get("sway_period_s", SWAY_PERIOD_S))
        # place the face centre at `centre` (fractions of the frame)
        self.x = int(round(centre[0] * W - fcx))
        self.y = int(round(centre[1] * H - fcy))
        self.printed = printed
        if printed:
            border = max(3, cw // 20)
            paper = np.full((ch + 2 * border, cw + 2 * border, 3), 238, np.uint8)
            paper[border:border + ch, border:border + cw] = crop
            self.x -= border
            self.y -= border
            self.variants = {0.0: _Sprite(paper, np.ones(paper.shape[:2], np.float32))}
        else:
            alpha = soft_ellipse(cw, ch)
            n = int(round(self.amp / YAW_STEP_DEG)) if self.amp > 0 else 0
            self.variants = {}
            for i in range(-n, n + 1):
                deg = i * YAW_STEP_DEG
                self.variants[deg] = _Sprite(yaw_warp(crop, deg, fcx, fcy + 0.12 * fw, fw), alpha)

    def yaw_at(self, t: float) -> float:
        if self.printed or self.amp <= 0:
            return 0.0
        return self.amp * math.sin(2 * math.pi * t / self.period + self.phase)

    def draw(self, canvas: np.ndarray, t: float, motion: str) -> None:
        if motion == "live":
            yaw = self.yaw_at(t)
            key = round(yaw / YAW_STEP_DEG) * YAW_STEP_DEG
            key = min(self.variants, key=lambda d: abs(d - key))
            dx = 5.0 * math.sin(2 * math.pi * t / 4.3 + self.phase) + 1.2 * math.sin(2 * math.pi * t / 0.9)
            dy = 3.0 * math.sin(2 * math.pi * t / 5.1 + 1.0) + 0.8 * math.sin(2 * math.pi * t / 1.3)
        elif motion == "shake":  # a hand holding a printed photo: small rigid tremor, no turn
            key = 0.0
            dx = 1.5 * math.sin(2 * math.pi * t / 0.7) + 0.8 * math.sin(2 * math.pi * t / 1.9)
            dy = 1.2 * math.sin(2 * math.pi * t / 0.83 + 0.5)
        else:  # perfectly still
            key, dx, dy = 0.0, 0.0, 0.0
        self.variants[key].blend(canvas, self.x + int(round(dx)), self.y + int(round(dy)))


class SceneRenderer:
    """Renders one scene at one frame size: ``render(t)`` -> BGR uint8, t in seconds since the scene began.

    Everything expensive (photo decode, yawed variants, background) happens in the
    constructor; ``render`` is a background copy plus alpha blends.
    """

    def __init__(self, scene: dict[str, Any] | None, size: tuple[int, int]) -> None:
        self.scene = dict(scene or {})
        self.size = (int(size[0]), int(size[1]))
        W, H = self.size
        self.behaviour = str(self.scene.get("behaviour") or "live")
        source = self.scene.get("source")
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
        if b in ("live", "dark"):
            self.people.append(_Person(source, self.scene, self.size, LIVE_FACE_FRACTION, (0.5, 0.45), 0.0))
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
        return self.people[0].yaw_at(t)

    def render(self, t: float) -> np.ndarray:
        if self.video:
            return self.video[int(t * self.video_fps) % len(self.video)].copy()
        canvas = self.bg.copy()
        for p in self.people:
            p.draw(canvas, t, self.motion)
        if self.behaviour == "dark" and self.people:
            canvas = (canvas.astype(np.uint16) * 20 >> 8).astype(np.uint8)  # ~8% of the light
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

                SimBus.shared(path).subscribe("camera", feed._on_message)
            return feed

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.scene: dict[str, Any] | None = None
        self.version = 0
        self.since = time.monotonic()

    def _on_message(self, msg: dict[str, Any]) -> None:
        scene = msg.get("scene")
        if scene is not None and not isinstance(scene, dict):
            log.warning("camera sim: ignoring scene %r", scene)
            return
        with self._lock:
            self.scene = scene
            self.version += 1
            self.since = time.monotonic()

    def get(self) -> tuple[int, dict[str, Any] | None, float]:
        with self._lock:
            return self.version, self.scene, self.since


# ----------------------------------------------------------------------------- camera

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
            try:
                self._renderer = SceneRenderer(scene, self.size)
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
