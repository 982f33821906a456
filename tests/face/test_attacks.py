"""Presentation attacks through the real session and models: hw-sim's camera renders the
scene at the frame times, someone (the holder or the attacker) follows the prompts that the
session returns, exactly as on the reader's screen (``mynasim.patient.simulate_attempt``).

Every attack here is refused and the cooperative holder passes. The rates over many
attempts (APCER per attack kind, BPCER) are in bench/pad_report.py and docs/face.md; this
file pins seeded cases so a regression shows as a failure, not as a drifting figure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def card_of(engine, faces_dir):
    from PIL import Image

    from myna_models.cardphoto import encode_card_photo

    cache = {}

    def get(name: str):
        if name not in cache:
            with Image.open(faces_dir / name) as img:
                cache[name] = engine.embed_card_photo(encode_card_photo(img))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def scene_of(engine, faces_dir):
    """scene_of(photo, behaviour, **extra): with the face box found in the photo (the sim turns
    the head about it) and ``follow`` when someone follows the screen."""
    from myna_models.engine import load_image

    def get(name: str, behaviour: str, follow: bool = True, **extra):
        faces = engine.detect(load_image(faces_dir / name))
        box = [float(v) for v in max(faces, key=lambda f: f.box[2] * f.box[3]).box]
        scene = {"source": str(faces_dir / name), "behaviour": behaviour, "face_box": box, **extra}
        if follow:
            scene["follow"] = True
        return scene

    return get


def attempt(engine, card, scene, kind, seed):
    from mynasim.patient import simulate_attempt

    u, t, follower = simulate_attempt(engine, card, scene, kind, seed)
    return u, follower


HOLDER = [("lfw_tony_blair__1.jpg", "lfw_tony_blair__3.jpg"),
          ("lfw_vladimir_putin__1.jpg", "lfw_vladimir_putin__5.jpg"),
          ("bbt_sheldon__1.jpg", "bbt_sheldon__5.jpg")]


@pytest.mark.parametrize("card,live", HOLDER)
@pytest.mark.parametrize("seed", [0, 1])
def test_cooperative_holder_passes(engine, card_of, scene_of, card, live, seed):
    u, follower = attempt(engine, card_of(card), scene_of(live, "live"), "patient", seed)
    assert u.reason == "match" and u.match, (u, follower.log)
    prompts = [p for _, p, _ in follower.log]
    assert prompts.count("front") >= 1 and {"left", "right"} & set(prompts)


CARD, LIVE = "lfw_tony_blair__1.jpg", "lfw_tony_blair__3.jpg"


@pytest.mark.parametrize("behaviour,kind", [
    ("print_stand", None), ("print_wave", None), ("print_rotated", "print_rotated"),
    ("print_turned", "print_turned"), ("replay", "replay"), ("slideshow", "slideshow"),
    ("replay", None),            # the clip just loops, started before the visit
    ("print_rotated", None),     # rotated back and forth on its own
])
@pytest.mark.parametrize("seed", [0, 1])
def test_attack_is_refused(engine, card_of, scene_of, behaviour, kind, seed):
    extra = {}
    if behaviour == "slideshow":
        extra["slides"] = {"front": str(scene_of(LIVE, "live")["source"]),
                           "left": str(Path(scene_of(LIVE, "live")["source"]).with_name("lfw_tony_blair__4.jpg")),
                           "right": str(Path(scene_of(LIVE, "live")["source"]).with_name("lfw_tony_blair__6.jpg"))}
    u, follower = attempt(engine, card_of(CARD), scene_of(LIVE, behaviour, follow=kind is not None, **extra),
                          kind, seed)
    assert not u.match and u.reason in ("liveness_failed", "timeout", "no_face", "no_match"), u
    if kind is not None:
        assert follower.log, "the attacker saw no prompt"


def test_print_rotated_in_plane_is_asked_to_hold_straight(engine, card_of, scene_of):
    """The reported attack: the print rotated towards the prompted side. The session asks for a
    straight head (the frames are not used) and the turn never counts."""
    import random

    from myna_drivers.camera_sim import SceneRenderer
    from myna_models.session import FaceVerification
    from mynad.ui.texts import face_hint_text
    from mynasim.patient import Follower

    follower = Follower("print_rotated", random.Random(5))
    r = SceneRenderer(scene_of(LIVE, "print_rotated"), (640, 480), pose=follower.pose_at)
    s = FaceVerification(engine, card_of(CARD), time_limit_s=10, frames_needed=3, liveness=True, clock_start=0.0,
                         rng=random.Random(5))
    hints = []
    for i in range(152):
        t = i / 15
        u = s.feed(r.render(t), t)
        if u.done:
            break
        hints.append(u.hint)
        follower.see(face_hint_text(u.hint), t + 0.06)
    assert u.done and not u.match and u.reason == "liveness_failed"
    assert "head_straight" in hints


@pytest.mark.xfail(strict=False, reason="known gap: a folded print turned on cue is a rigid 3-D object and "
                   "YuNet's landmarks on it move like a head's; the passive PAD model has to catch it")
@pytest.mark.parametrize("fold", [20.0, 40.0])
def test_bent_print_needs_the_pad_model(engine, card_of, scene_of, fold):
    """Kept visible on purpose (docs/face.md, "what remains"): print_bent's APCER is measured by
    bench/pad_report.py; with the landmark geometry alone it is accepted in a sizeable share."""
    for seed in (0, 1):
        u, _ = attempt(engine, card_of(CARD), scene_of(LIVE, "print_bent", fold_deg=fold), "print_bent", seed)
        assert not u.match, u


def test_pad_model_vetoes_when_its_median_is_low(engine, card_of, scene_of):
    """The optional passive PAD model: the holder passes the challenge, but a PAD that scores
    every frame as an attack ends the attempt as "presentation_attack"."""
    class FakePad:
        threshold = 0.5
        calls = 0

        def score(self, bgr, box):
            FakePad.calls += 1
            return 0.1

    from mynasim.patient import simulate_attempt

    u, _, _ = simulate_attempt(engine, card_of(CARD), scene_of(LIVE, "live"), "patient", 0, pad=FakePad())
    assert u.reason == "presentation_attack" and not u.match and FakePad.calls >= 5
