"""Frame quality gate: is this camera frame good enough to match, and if not, what should the patient do?

:func:`assess` is pure (no state, no I/O) and cheap (a few numpy reductions on the
face box, well under 1 ms at 640x480). It returns one of the fixed hint keys below,
for which the UI has texts, or ``None`` when the frame is good:

    no_face, many_faces, too_far, too_close, off_centre, too_dark, too_bright, blurred

Faces are duck-typed: anything with ``box`` (x, y, w, h), ``landmarks`` (5, 2)
[right eye, left eye, nose, right mouth, left mouth] and ``score`` works
(``myna_models.engine.Face`` in the daemon, small stand-ins in tests).

The checks run in the order the patient can fix them: be there alone, then be at
the right distance, then be in the middle, then the light, then hold still.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

HINTS = ("no_face", "many_faces", "too_far", "too_close", "off_centre", "too_dark", "too_bright", "blurred")

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
    luma = face_luma(crop)
    if luma < MIN_FACE_LUMA:
        return "too_dark"
    if luma > MAX_FACE_LUMA:
        return "too_bright"
    if sharpness(crop) < MIN_SHARPNESS:
        return "blurred"
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
        grey = np.asarray(Image.fromarray(grey).resize((BLUR_SIZE, BLUR_SIZE), Image.BILINEAR))
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
