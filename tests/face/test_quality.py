"""Quality gate: synthetic faces and frames, no models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from myna_models import quality
from myna_models.quality import HINTS, assess

W, H = 640, 480


@dataclass
class F:
    box: tuple
    landmarks: np.ndarray
    score: float = 0.95


def face(cx=320.0, cy=230.0, ied=70.0, score=0.95) -> F:
    """A frontal face with its eye midpoint at (cx, cy) and eyes ``ied`` apart."""
    bw = ied * 2.2
    lm = np.array([[cx - ied / 2, cy], [cx + ied / 2, cy], [cx, cy + 0.5 * ied],
                   [cx - 0.4 * ied, cy + ied], [cx + 0.4 * ied, cy + ied]], np.float32)
    return F((cx - bw / 2, cy - 0.45 * bw, bw, bw * 1.25), lm, score)


def textured(level=128, amp=40, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = level + rng.integers(-amp, amp + 1, size=(H, W, 1))
    return np.repeat(img, 3, axis=2).clip(0, 255).astype(np.uint8)


def test_good_frame_is_none():
    assert assess((H, W, 3), [face()], textured()) is None


def test_no_face():
    assert assess((H, W, 3), [], textured()) == "no_face"


def test_no_face_in_the_dark_says_dark():
    assert assess((H, W, 3), [], textured(level=10, amp=5)) == "too_dark"
    assert assess((H, W, 3), [], textured(level=245, amp=5)) == "too_bright"


def test_many_faces_but_small_background_faces_ignored():
    assert assess((H, W, 3), [face(), face(cx=500, ied=60)], textured()) == "many_faces"
    assert assess((H, W, 3), [face(), face(cx=560, cy=100, ied=20)], textured()) is None


def test_distance():
    assert assess((H, W, 3), [face(ied=20)], textured()) == "too_far"
    assert assess((H, W, 3), [face(ied=0.35 * W)], textured()) == "too_close"


def test_off_centre():
    assert assess((H, W, 3), [face(cx=100)], textured()) == "off_centre"
    assert assess((H, W, 3), [face(cy=400)], textured()) == "off_centre"


def test_light_of_the_face_box():
    assert assess((H, W, 3), [face()], textured(level=30, amp=20)) == "too_dark"
    assert assess((H, W, 3), [face()], textured(level=230, amp=20)) == "too_bright"


def test_blurred():
    smooth = np.full((H, W, 3), 128, np.uint8)
    assert assess((H, W, 3), [face()], smooth) == "blurred"
    assert quality.sharpness(textured()[:200, :200]) > 10 * quality.MIN_SHARPNESS


def test_without_pixels_only_geometry():
    assert assess((H, W, 3), [face()], None) is None


@pytest.mark.parametrize("hint", HINTS)
def test_hint_keys_fixed(hint):
    assert hint in {"no_face", "many_faces", "too_far", "too_close", "off_centre", "too_dark",
                    "too_bright", "blurred"}


def test_fast_enough():
    import time

    img, faces = textured(), [face()]
    t0 = time.perf_counter()
    for _ in range(50):
        assess(img.shape, faces, img)
    assert (time.perf_counter() - t0) / 50 < 0.01
