"""Quality gate: synthetic faces and frames (no models), then sim frames with props (real detector)."""

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
    lm = np.array([[cx - ied / 2, cy], [cx + ied / 2, cy], [cx, cy + 0.6 * ied],
                   [cx - 0.4 * ied, cy + ied], [cx + 0.4 * ied, cy + ied]], np.float32)
    return F((cx - bw / 2, cy - 0.45 * bw, bw, bw * 1.25), lm, score)


def textured(level=128, amp=40, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = level + rng.integers(-amp, amp + 1, size=(H, W, 1))
    return np.repeat(img, 3, axis=2).clip(0, 255).astype(np.uint8)


# ---------------------------------------------------------------- a drawn face (BGR)

SKIN = np.array([120, 150, 200], np.float32)   # B, G, R


def _disc(img, cx, cy, rx, ry, colour):
    yy, xx = np.mgrid[0:H, 0:W]
    img[((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1] = colour


def drawn_face(f: F, wall=125, seed=1) -> np.ndarray:
    """Skin with pores, eyes (sclera, iris), nostrils and lips at ``f``'s landmarks, on a plain wall."""
    rng = np.random.default_rng(seed)
    img = np.full((H, W, 3), wall, np.float32)
    lm = f.landmarks
    d = float(lm[1, 0] - lm[0, 0])
    cx, cy = float(lm[:2, 0].mean()), float(lm[0, 1])
    _disc(img, cx, cy + 0.35 * d, 1.05 * d, 1.45 * d, SKIN)
    img += rng.normal(0, 6, (H, W, 1))            # skin texture, the same in every channel
    for ex, ey in lm[:2]:
        _disc(img, ex, ey, 0.22 * d, 0.1 * d, (235, 235, 235))
        _disc(img, ex, ey, 0.08 * d, 0.08 * d, (40, 30, 30))
    nx, ny = lm[2]
    for s in (-1, 1):
        _disc(img, nx + s * 0.1 * d, ny + 0.02 * d, 0.05 * d, 0.03 * d, (50, 60, 80))
    mx, my = lm[3:].mean(axis=0)
    _disc(img, mx, my, 0.4 * d, 0.09 * d, (90, 80, 170))
    _disc(img, mx, my, 0.35 * d, 0.02 * d, (40, 30, 60))
    img[int(ny + 0.2 * d):int(my - 0.12 * d), int(nx - 0.05 * d):int(nx + 0.05 * d)] -= 25  # philtrum shade
    return img.clip(0, 255).astype(np.uint8)


def with_mask(img: np.ndarray, f: F, colour=(226, 204, 178)) -> np.ndarray:
    out = img.copy()
    lm = f.landmarks
    d = float(lm[1, 0] - lm[0, 0])
    cx = float(lm[:2, 0].mean())
    y0, y1 = int(lm[0, 1] + 0.35 * d), int(lm[3, 1] + 0.8 * d)
    out[y0:y1, int(cx - 1.0 * d):int(cx + 1.0 * d)] = colour
    return out


def with_sunglasses(img: np.ndarray, f: F) -> np.ndarray:
    out = img.copy()
    d = float(f.landmarks[1, 0] - f.landmarks[0, 0])
    for ex, ey in f.landmarks[:2]:
        yy, xx = np.mgrid[0:H, 0:W]
        out[((xx - ex) / (0.42 * d)) ** 2 + ((yy - ey) / (0.28 * d)) ** 2 <= 1] = (28, 24, 22)
    return out


def backlit(img: np.ndarray, f: F) -> np.ndarray:
    out = (img.astype(np.float32) * 0.35)
    x, y, bw, bh = f.box
    wall = np.ones((H, W), bool)
    wall[max(0, int(y - 0.3 * bh)):, int(x - 0.3 * bw):int(x + 1.3 * bw)] = False
    out[wall] = 245
    return out.clip(0, 255).astype(np.uint8)


# ---------------------------------------------------------------- geometry and light (as before)

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


def test_blurred_comes_before_mask():
    smooth = np.full((H, W, 3), 128, np.uint8)   # a flat lower face, but because everything is flat
    assert assess((H, W, 3), [face()], smooth) == "blurred"
    assert quality.sharpness(textured()[:200, :200]) > 10 * quality.MIN_SHARPNESS


def test_without_pixels_only_geometry():
    assert assess((H, W, 3), [face()], None) is None


# ---------------------------------------------------------------- the new checks on a drawn face

def test_drawn_face_is_good():
    f = face(ied=80)
    assert assess((H, W, 3), [f], drawn_face(f)) is None


@pytest.mark.parametrize("colour", [(226, 204, 178), (240, 240, 240), (40, 40, 40)],
                         ids=["light blue", "white", "black"])
def test_mask(colour):
    f = face(ied=80)
    img = with_mask(drawn_face(f), f, colour)
    assert assess((H, W, 3), [f], img) == "mask"
    r = quality.FaceRegions.measure(img, f)
    assert r.lower_texture < quality.MASK_MAX_TEXTURE


def test_mask_check_needs_a_flat_lower_face():
    """A lower face of another colour than the forehead (a beard, make-up, a shadow) but with lips is not a mask."""
    f = face(ied=80)
    img = drawn_face(f)
    r = quality.FaceRegions.measure(img, f)
    assert r.lower_texture >= quality.MASK_MAX_TEXTURE and not r.looks_masked


def test_sunglasses():
    f = face(ied=80)
    img = with_sunglasses(drawn_face(f), f)
    assert assess((H, W, 3), [f], img) == "sunglasses"
    assert quality.FaceRegions.measure(drawn_face(f), f).eye_brightness > 2 * quality.SUNGLASSES_MAX_EYE_BRIGHTNESS


def test_backlight_is_not_reported_as_dark_or_blurred():
    f = face(ied=80)
    img = backlit(drawn_face(f), f)
    assert quality.face_luma(img[int(f.box[1]):int(f.box[1] + f.box[3]), int(f.box[0]):int(f.box[0] + f.box[2])]) \
        < quality.MIN_FACE_LUMA  # the old gate said "too_dark" here
    assert assess((H, W, 3), [f], img) == "backlight"


def test_a_bright_wall_alone_is_not_backlight():
    """A white wall behind a normally lit face: the camera exposes both, the face is not dark."""
    f = face(ied=80)
    img = drawn_face(f, wall=200)
    assert assess((H, W, 3), [f], img) is None


def test_a_dark_room_is_still_too_dark():
    f = face(ied=80)
    img = (drawn_face(f, wall=40).astype(np.float32) * 0.3).astype(np.uint8)
    assert assess((H, W, 3), [f], img) == "too_dark"


def test_hint_keys_fixed():
    assert HINTS == ("no_face", "many_faces", "too_far", "too_close", "off_centre", "backlight", "too_dark",
                     "too_bright", "sunglasses", "blurred", "mask")


def test_every_hint_has_a_short_ui_text_that_fits_the_panel():
    from mynad.ui.render import layout_pages
    from mynad.ui.screens import Screen
    from mynad.ui.texts import FACE_HINTS, screen_text

    assert FACE_HINTS["mask"] == "マスクを外してください"
    assert FACE_HINTS["sunglasses"] == "サングラスを外してください"
    assert "逆光" in FACE_HINTS["backlight"]
    for hint in HINTS:
        assert hint in FACE_HINTS, hint
        screen = Screen("face_guide", {"hint": hint, "attempt": 1, "attempts": 3})
        assert FACE_HINTS[hint] in screen_text(screen)
        pages = layout_pages(screen, (256, 64))
        assert len(pages) == 1, hint  # one short sentence: no paging while the patient looks at the camera
        for b in pages[0].boxes:
            assert 0 <= b.box[0] and 0 <= b.box[1] and b.box[2] <= 256 and b.box[3] <= 64, (hint, b)


# ---------------------------------------------------------------- sim frames with props, real detector

SIM_PHOTOS = ["lfw_tony_blair__1.jpg", "deepface_p04__1.jpg", "bbt_sheldon__2.jpg"]


@pytest.fixture(scope="module")
def sim_frames(engine, photo, faces_dir):
    from myna_drivers.camera_sim import SceneRenderer

    out = {}
    for name in SIM_PHOTOS:
        f0 = max(engine.detect_still(photo(name)), key=lambda f: f.area)
        for props in ((), ("mask",), ("sunglasses",), ("backlight",)):
            scene = {"source": str(faces_dir / name), "behaviour": "live", "face_box": list(f0.box),
                     "face_landmarks": f0.landmarks.tolist(), "props": list(props), "sway_deg": 0}
            frame = SceneRenderer(scene, (640, 480)).render(0.0)
            out[(name, props)] = (frame, engine.detect(frame))
    return out


@pytest.mark.models
@pytest.mark.parametrize("name", SIM_PHOTOS)
@pytest.mark.parametrize("props,hint", [((), None), (("mask",), "mask"), (("sunglasses",), "sunglasses"),
                                        (("backlight",), "backlight")])
def test_sim_props_give_their_hint_and_clean_faces_none(sim_frames, name, props, hint):
    frame, faces = sim_frames[(name, props)]
    assert faces, f"{name} {props}: no face found"
    assert assess(frame.shape, faces, frame) == hint


def test_props_without_face_geometry_and_unknown_names(faces_dir, caplog):
    """A rig scene with only ``source`` (no face_box/landmarks) still gets its props; unknown ones are logged."""
    import logging

    from myna_drivers.camera_sim import SceneRenderer

    src = str(faces_dir / "deepface_p04__1.jpg")
    clean = SceneRenderer({"source": src, "sway_deg": 0}, (320, 240)).render(0.0)
    with caplog.at_level(logging.WARNING, logger="myna.camera.sim"):
        masked = SceneRenderer({"source": src, "sway_deg": 0, "props": ["mask", "hat"]}, (320, 240)).render(0.0)
    assert "unknown prop 'hat'" in caplog.text
    assert masked.shape == clean.shape and np.mean(np.abs(masked.astype(int) - clean.astype(int))) > 2
    lit = SceneRenderer({"source": src, "sway_deg": 0, "props": "backlight"}, (320, 240)).render(0.0)
    assert lit[:, :20].mean() > 200                              # the wall became a window
    face = (slice(60, 150), slice(120, 200))
    assert lit[face].mean() < clean[face].mean()                 # and the face is in its shadow
