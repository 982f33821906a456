"""Frame quality gate: is this camera frame good enough to match, and if not, what should the patient do?

:func:`assess` is pure (no state, no I/O) and cheap (a few numpy reductions on the
face box and a coarse grid of the frame: ~2.5 ms at 640x480 here, on 2 shared cores).
It returns one of the fixed hint keys below, for which the UI has texts, or ``None``
when the frame is good:

    no_face, many_faces, too_far, too_close, off_centre, backlight, too_dark, too_bright,
    sunglasses, blurred, mask

Faces are duck-typed: anything with ``box`` (x, y, w, h), ``landmarks`` (5, 2)
[right eye, left eye, nose, right mouth, left mouth] and ``score`` works
(``myna_models.engine.Face`` in the daemon, small stand-ins in tests).

The checks run in the order the patient can fix them: be there alone, then be at
the right distance, then be in the middle, then the light, then take off sunglasses,
then hold still, then take off the mask (a blurred lower face looks flat like a mask).

The light and occlusion checks read only the frame and YuNet's five landmarks: they
sample small patches placed in eye-distance units along and across the eye line (so
they follow a tilted or turned head) and compare the face with itself or with the wall
behind it, never with absolute skin colours, so skin tone and white balance do not matter:

* backlight: the wall around the head is much brighter than the face (a window behind
  the patient; the camera then exposes the face dark). Reported as such, not as "too
  dark" or "blurred", because the fix is different (light, not the patient). Matching a
  backlit face is unsafe too: on the sample photos one impostor pair in 3660 reached the
  threshold under backlight (0.378), none without.
* sunglasses: even the brightest part of each eye region (80th percentile) is much darker
  than the forehead; real eyes always show sclera or eyelid skin there.
* mask: the lower face (nose tip to chin) is flat (no lips, nostrils or mouth shading) and
  breaks with the forehead's skin colour or is brighter than it, i.e. there is no skin
  continuity; a real lower face has lip and nostril edges and is darker than the forehead
  under ceiling light. YuNet's score does drop with a mask (median 0.90 against 0.94 on
  the sample photos) but overlaps too much with clean faces to be used.

bench/face_quality_props.py measures all three on the 64 sample photos through the camera
simulator, with and without props (scene_props.py), 5 views each (2 of them, 0.6x distance
and other head-turn phases, not used to set the limits). On clean faces none of the three
fired on any frame (0/320 frames, 0/64 photos: 95 % upper bound 4.6 % of photos). They
caught the mask on 319/320 frames (the other one: "blurred"), backlight on 319/320 (one
"too_far"), sunglasses on 278/320: 63/64 on the frontal view, the misses are heads turned
13-20° (the far eye's patch leaves the lens; both eyes must look covered) and 5 frames where
the detector lost the face ("no_face"). A patient always shows frontal frames first.

Why the mask check blocks instead of only advising: behind the mask SFace still scores the
same person fairly high (card form vs masked frame: median 0.48 against 0.62 unmasked), but
13 % of genuine frames fall below the threshold (0.5 % unmasked), and impostor scores move
up towards it (highest 0.360 against 0.334, threshold 0.363): the public threshold was
measured on uncovered faces, and a masked match would rest on the eyes alone.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

HINTS = ("no_face", "many_faces", "too_far", "too_close", "off_centre", "backlight", "too_dark", "too_bright",
         "sunglasses", "blurred", "mask")

# --- who is in the frame -------------------------------------------------------------
# A second face counts when its inter-eye distance is at least this fraction of the main
# face's: someone standing right behind the patient (or a second photo held up) is about
# as large; a poster or a person across the waiting room is much smaller and is ignored.
OTHER_FACE_MIN_RATIO = 0.5

# --- distance (inter-eye distance in frame pixels) ---------------------------------------
# SFace's 112x112 aligned crop puts the eyes ~35 px apart. Below ~32 px the crop is an
# upscale of fewer real pixels than the recognizer expects and scores drop; YuNet's
# landmarks also get noisy (about 1 px of error is 3% of the distance).
MIN_EYE_PX = 32.0
# Too close: the eyes span more than 30% of the frame width (at 640 px wide ≈ 190 px
# between the eyes): the chin or the forehead leaves the frame and the wide-angle lens
# distorts the nose. Expressed as a fraction so it holds for any camera size.
MAX_EYE_FRACTION = 0.30
# ...or the face box already runs off the frame by more than this fraction of its size
# on both sides vertically / horizontally (the face fills more than the picture).
OVERFLOW_FRACTION = 0.12

# --- position ---------------------------------------------------------------------------
# The eye midpoint must lie in the central part of the frame: at most this fraction of the
# frame width (height) away from the centre. Near the edges the lens distorts the face and
# a small movement takes it out of the picture.
MAX_OFFSET_X = 0.25
MAX_OFFSET_Y = 0.25
# A face box cut by the frame edge by more than this fraction of its width/height is
# off-centre even when the eyes are inside (half a face does not align well).
MAX_CUT_FRACTION = 0.15

# --- light (mean luma 0..255 of the face box, BT.601 weights) ---------------------------
# Below ~60 the sensor noise and the JPEG-like denoising of the ISP wash out skin texture
# and the detector's landmarks wander; SFace scores of the same person drop sharply.
MIN_FACE_LUMA = 60.0
# Above ~200 on average, large parts of the face are clipped at 255 (backlight from a
# window behind the camera or a lamp in the face); clipped skin carries no identity.
MAX_FACE_LUMA = 200.0
# The same limits, looser, for a frame with no face at all: when the whole picture is
# this dark or bright, "too dark" helps more than "no face".
MIN_FRAME_LUMA = 35.0
MAX_FRAME_LUMA = 225.0

# --- backlight (luma 0..255) -------------------------------------------------------------
# The wall beside and above the head (the frame outside the face box widened by 35 % of its
# width on each side and 25 % of its height above) against the face's own patches. A wall
# this bright is a window or a lamp; twice the face's luma means the camera has exposed for
# it. Measured on the sample photos through the camera sim: clean frames have a wall/face
# ratio of 0.6-1.9 (wall ~120); backlit ones 3.2-9.4 (wall ~240).
BACKLIGHT_MIN_WALL_LUMA = 170.0
BACKLIGHT_MIN_RATIO = 2.0

# --- sunglasses -------------------------------------------------------------------------
# 80th percentile of the luma in each eye patch (0.44 x 0.24 eye distances around the eye
# landmark) over the mean luma of forehead + nose bridge; the brighter eye counts (both must
# be covered). Clean sample frames: 0.57-1.78; dark lenses over the eyes: 0.13-0.40.
SUNGLASSES_MAX_EYE_BRIGHTNESS = 0.40

# --- mask -------------------------------------------------------------------------------
# Lower face: 0.8 eye distances wide, from just below the nose tip to 0.35 below the mouth.
# Texture = mean absolute luma step between neighbouring samples / mean luma. Clean sample
# frames: 0.05-0.39 (lips, nostrils, mouth corners); a surgical mask: 0.00-0.11.
MASK_MAX_TEXTURE = 0.12
# ...and no skin continuity with the forehead: chroma (Cb, Cr) distance, or brighter than it,
# or so flat that nothing but cloth can be there (for grey frames where chroma says nothing).
# Clean: chroma distance 0-18 (but then textured), luma ratio 0.47-1.01; masked: 16-75, 0.84-2.3.
MASK_MIN_CHROMA_JUMP = 12.0
MASK_MIN_LUMA_RATIO = 1.05
MASK_FLAT_TEXTURE = 0.03

# --- sharpness --------------------------------------------------------------------------
# Variance of the 4-neighbour Laplacian of the face box resampled to the recognizer's
# 112x112 scale: blur that disappears at that scale does not matter to SFace, blur that
# survives it does. Sharp webcam-like faces measure ~100-1000; a Gaussian blur of sigma
# ~1.5 px at that scale (motion while turning, out of focus) brings it under ~40.
BLUR_SIZE = 112
MIN_SHARPNESS = 40.0

_LUMA = np.array([0.114, 0.587, 0.299], dtype=np.float32)  # B, G, R


def assess(frame_shape: Sequence[int], faces: Sequence, bgr: np.ndarray | None) -> str | None:
    """The first hint key that applies to this frame, or None when it is good enough to match.

    ``faces`` is the detector's output for the frame, best first (the largest face is
    taken as the patient's). ``bgr`` may be None to skip the pixel checks (light, blur).
    """
    h, w = int(frame_shape[0]), int(frame_shape[1])
    if not faces:
        if bgr is not None:
            y = frame_luma(bgr)
            if y < MIN_FRAME_LUMA:
                return "too_dark"
            if y > MAX_FRAME_LUMA:
                return "too_bright"
        return "no_face"

    main = max(faces, key=eye_distance)
    ied = eye_distance(main)
    if sum(1 for f in faces if f is not main and eye_distance(f) >= OTHER_FACE_MIN_RATIO * ied) > 0:
        return "many_faces"

    x, y0, bw, bh = (float(v) for v in main.box)
    if ied > MAX_EYE_FRACTION * w:
        return "too_close"
    over_x = (max(0.0, -x) + max(0.0, x + bw - w)) / max(bw, 1.0)
    over_y = (max(0.0, -y0) + max(0.0, y0 + bh - h)) / max(bh, 1.0)
    if (max(0.0, -x) > OVERFLOW_FRACTION * bw and max(0.0, x + bw - w) > OVERFLOW_FRACTION * bw) or \
            (max(0.0, -y0) > OVERFLOW_FRACTION * bh and max(0.0, y0 + bh - h) > OVERFLOW_FRACTION * bh):
        return "too_close"
    if ied < MIN_EYE_PX:
        return "too_far"

    lm = np.asarray(main.landmarks, dtype=np.float32)
    mid = (lm[0] + lm[1]) / 2.0
    if abs(mid[0] - w / 2.0) > MAX_OFFSET_X * w or abs(mid[1] - h / 2.0) > MAX_OFFSET_Y * h:
        return "off_centre"
    if over_x > MAX_CUT_FRACTION or over_y > MAX_CUT_FRACTION:
        return "off_centre"

    if bgr is None:
        return None
    crop = _crop(bgr, main.box)
    if crop is None:
        return "off_centre"
    regions = FaceRegions.measure(bgr, main)
    if is_backlit(bgr, main.box, regions):
        return "backlight"
    luma = face_luma(crop)
    if luma < MIN_FACE_LUMA:
        return "too_dark"
    if luma > MAX_FACE_LUMA:
        return "too_bright"
    if regions.eye_brightness < SUNGLASSES_MAX_EYE_BRIGHTNESS:
        return "sunglasses"
    # blur before the mask: a blurred lower face is flat too, and "hold still" is the right advice then
    if sharpness(crop) < MIN_SHARPNESS:
        return "blurred"
    if regions.looks_masked:
        return "mask"
    return None


def eye_distance(face) -> float:
    lm = np.asarray(face.landmarks, dtype=np.float32)
    return float(np.hypot(*(lm[1] - lm[0])))


def frame_luma(bgr: np.ndarray) -> float:
    """Mean luma of the whole frame, sampled on a coarse grid (every 8th pixel)."""
    sample = np.asarray(bgr)[::8, ::8, :3]
    return float(sample.reshape(-1, 3).astype(np.float32).mean(axis=0) @ _LUMA)


def face_luma(crop_bgr: np.ndarray) -> float:
    step = max(1, min(crop_bgr.shape[:2]) // 64)
    sample = crop_bgr[::step, ::step, :3]
    return float(sample.reshape(-1, 3).astype(np.float32).mean(axis=0) @ _LUMA)


def sharpness(crop_bgr: np.ndarray) -> float:
    """Variance of the Laplacian of the crop at the recognizer's scale (BLUR_SIZE square)."""
    grey = (crop_bgr[:, :, :3].astype(np.float32) @ _LUMA).clip(0, 255).astype(np.uint8)
    if grey.shape[0] != BLUR_SIZE or grey.shape[1] != BLUR_SIZE:
        grey = np.asarray(Image.fromarray(grey).resize((BLUR_SIZE, BLUR_SIZE), Image.Resampling.BILINEAR))
    g = grey.astype(np.float32)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


def _crop(bgr: np.ndarray, box) -> np.ndarray | None:
    h, w = bgr.shape[:2]
    x, y, bw, bh = (float(v) for v in box)
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(w, int(round(x + bw))), min(h, int(round(y + bh)))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    return bgr[y0:y1, x0:x1]


# ---------------------------------------------------------------- face regions from the landmarks

def _ycc(px: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 luma and chroma (Cb, Cr around 0) of BGR samples."""
    px = px.astype(np.float32)
    b, g, r = px[..., 0], px[..., 1], px[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return y, 0.564 * (b - y), 0.713 * (r - y)


def _patch(bgr: np.ndarray, o: np.ndarray, u: np.ndarray, v: np.ndarray, d: float,
           a: tuple[float, float], b: tuple[float, float], n: tuple[int, int] = (12, 8)) -> np.ndarray:
    """Samples (nb, na, 3) of the patch a0..a1 along the eyes, b0..b1 down the face (eye-distance units)."""
    h, w = bgr.shape[:2]
    A, B = np.meshgrid(np.linspace(a[0], a[1], n[0]), np.linspace(b[0], b[1], n[1]))
    x = o[0] + d * (A * u[0] + B * v[0])
    y = o[1] + d * (A * u[1] + B * v[1])
    xi = np.clip(np.rint(x).astype(np.intp), 0, w - 1)
    yi = np.clip(np.rint(y).astype(np.intp), 0, h - 1)
    return bgr[yi, xi, :3]


def _texture(luma: np.ndarray) -> float:
    """Mean absolute step between neighbouring samples, relative to the mean (scale of the face does not matter)."""
    step = (np.abs(np.diff(luma, axis=0)).mean() + np.abs(np.diff(luma, axis=1)).mean()) / 2
    return float(step / max(float(luma.mean()), 1.0))


class FaceRegions:
    """Luma/chroma figures of a few patches placed by the landmarks (see the module docstring)."""

    __slots__ = ("ref_luma", "eye_brightness", "lower_texture", "lower_chroma_jump", "lower_luma_ratio",
                 "face_luma")

    def __init__(self, ref_luma: float, eye_brightness: float, lower_texture: float, lower_chroma_jump: float,
                 lower_luma_ratio: float, face_luma: float) -> None:
        self.ref_luma = ref_luma
        self.eye_brightness = eye_brightness
        self.lower_texture = lower_texture
        self.lower_chroma_jump = lower_chroma_jump
        self.lower_luma_ratio = lower_luma_ratio
        self.face_luma = face_luma

    @classmethod
    def measure(cls, bgr: np.ndarray, face) -> "FaceRegions":
        lm = np.asarray(face.landmarks, dtype=np.float64)
        re, le = lm[0], lm[1]
        d = max(float(np.hypot(*(le - re))), 1.0)
        u = (le - re) / d
        v = np.array([-u[1], u[0]])
        o = (re + le) / 2
        nose_b = float(np.dot(lm[2] - o, v)) / d
        mouth_b = float(np.dot((lm[3] + lm[4]) / 2 - o, v)) / d

        ref_px = np.concatenate([_patch(bgr, o, u, v, d, (-0.4, 0.4), (-0.6, -0.3)).reshape(-1, 3),
                                 _patch(bgr, o, u, v, d, (-0.1, 0.1), (-0.12, 0.08), (5, 5)).reshape(-1, 3)])
        ry, rcb, rcr = _ycc(ref_px)
        ref_luma = max(float(ry.mean()), 1.0)

        eyes = [_ycc(_patch(bgr, o, u, v, d, (c - 0.22, c + 0.22), (-0.12, 0.12), (12, 7)))[0] for c in (-0.5, 0.5)]
        eye_brightness = max(float(np.percentile(e, 80)) for e in eyes) / ref_luma

        ly, lcb, lcr = _ycc(_patch(bgr, o, u, v, d, (-0.4, 0.4), (nose_b + 0.12, mouth_b + 0.35)))
        lower_luma = float(ly.mean())
        jump = float(np.hypot(lcb.mean() - rcb.mean(), lcr.mean() - rcr.mean()))
        inner = _ycc(_patch(bgr, o, u, v, d, (-0.6, 0.6), (-0.4, mouth_b + 0.2)))[0]
        return cls(ref_luma, eye_brightness, _texture(ly), jump, lower_luma / ref_luma, float(inner.mean()))

    @property
    def looks_masked(self) -> bool:
        if self.lower_texture >= MASK_MAX_TEXTURE:
            return False
        return (self.lower_chroma_jump > MASK_MIN_CHROMA_JUMP or self.lower_luma_ratio > MASK_MIN_LUMA_RATIO
                or self.lower_texture < MASK_FLAT_TEXTURE)


def wall_luma(bgr: np.ndarray, box) -> float | None:
    """Median luma of the frame beside and above the face box (sampled every 8th pixel); None if no wall shows."""
    h, w = bgr.shape[:2]
    x, y, bw, bh = (float(v) for v in box)
    g = bgr[::8, ::8, :3].astype(np.float32) @ _LUMA
    xs, ys = np.arange(0, w, 8), np.arange(0, h, 8)
    outside = ((xs < x - 0.35 * bw) | (xs > x + 1.35 * bw))[None, :] | (ys < y - 0.25 * bh)[:, None]
    if not outside.any():
        return None
    return float(np.median(g[outside]))


def is_backlit(bgr: np.ndarray, box, regions: FaceRegions) -> bool:
    wall = wall_luma(bgr, box)
    return wall is not None and wall >= BACKLIGHT_MIN_WALL_LUMA and wall >= BACKLIGHT_MIN_RATIO * max(
        regions.face_luma, 1.0)
