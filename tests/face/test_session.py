"""Verification session: a fake engine for the logic, the real one with sim frames end to end."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from myna_models.session import FaceVerification, Update

W, H = 640, 480


@dataclass
class F:
    box: tuple
    landmarks: np.ndarray
    score: float = 0.95


def head(yaw_deg=0.0, dx=0.0) -> F:
    ied, cx, cy = 70.0, 320.0 + dx, 230.0
    a = math.radians(yaw_deg)
    ex = ied * np.sin(np.radians([-30, 30]) + a)
    lm = np.array([[cx + ex[0], cy], [cx + ex[1], cy], [cx + 1.4 * ied * math.sin(a), cy + 35],
                   [cx - 28, cy + 70], [cx + 28, cy + 70]], np.float32)
    return F((cx - 77, cy - 70, 154, 192), lm)


class FakeEngine:
    """detect() returns what the frame's 'script' says; embeddings are unit vectors at a given cosine."""

    threshold = 0.36

    def __init__(self, script, cos_card=0.6, cos_turned=None):
        self.script, self.cos_card, self.cos_turned = script, cos_card, cos_turned
        self.calls = 0

    def detect(self, bgr, max_side=640):
        return self.script(bgr)

    def embed_face(self, bgr, face):
        self.calls += 1
        c = self.cos_card
        lm = face.landmarks
        yaw = (lm[2, 0] - (lm[0, 0] + lm[1, 0]) / 2) / (lm[1, 0] - lm[0, 0])
        v = np.zeros(128, np.float32)
        if self.cos_turned is not None and abs(yaw) > 0.1:  # someone else: orthogonal to the frontal ones
            v[2] = 1.0
            return v
        v[0], v[1] = c, math.sqrt(max(0.0, 1 - c * c))
        return v

    @staticmethod
    def score(a, b):
        a, b = np.asarray(a, float), np.asarray(b, float)
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


CARD = np.eye(128, dtype=np.float32)[0]
TEXTURE = np.random.default_rng(0).integers(60, 200, (H, W, 3)).astype(np.uint8)


def frame(tag: float) -> np.ndarray:
    """A textured frame carrying a number in its first pixel (the fake detector reads it)."""
    f = TEXTURE.copy()
    f[0, 0, 0] = int(tag) & 255
    return f


def drive(session: FaceVerification, faces_at, seconds=12.0, fps=15):
    ups: list[Update] = []
    for i in range(int(seconds * fps)):
        t = i / fps
        session._t = t
        ups.append(session.feed(frame(i), t))
        if ups[-1].done:
            break
        if hasattr(faces_at, "see"):
            faces_at.see(ups[-1].hint, t)
    return ups


def make(faces_at, liveness=True, cos=0.6, cos_turned=None, limit=10.0, needed=3):
    holder = {}

    def script(bgr):
        return faces_at(holder["s"]._t)

    eng = FakeEngine(script, cos, cos_turned)
    s = FaceVerification(eng, CARD, time_limit_s=limit, frames_needed=needed, liveness=liveness, clock_start=0.0)
    s._t = 0.0
    holder["s"] = s
    return s, eng


class Obeying:
    """A synthetic head that does what the hint asks: 0.4 s to react, 0.4 s to turn."""

    GOALS = {"turn_left": 25.0, "turn_right": -25.0, "face_front": 0.0}

    def __init__(self):
        self.hint, self.t0, self.start, self.goal = None, 0.0, 0.0, 0.0

    def see(self, hint, t):
        if hint == self.hint:
            return
        self.hint = hint
        if hint in self.GOALS:
            self.start, self.goal, self.t0 = self.yaw(t + 0.4), self.GOALS[hint], t + 0.4

    def yaw(self, t):
        u = min(1.0, max(0.0, (t - self.t0) / 0.4))
        return self.start + (self.goal - self.start) * u

    def __call__(self, t):
        return [head(self.yaw(t), dx=3 * math.sin(t * 5))]


def test_live_match():
    sway = Obeying()
    s, _ = make(sway)
    ups = drive(s, sway)
    last = ups[-1]
    assert last.done and last.match and last.reason == "match" and last.score == pytest.approx(0.6, abs=1e-3)
    hints = {u.hint for u in ups}
    assert "hold_still" in hints and ({"turn_left", "turn_right"} & hints)


def test_live_other_person_no_match():
    sway = Obeying()
    s, _ = make(sway, cos=0.1)
    last = drive(s, sway)[-1]
    assert last.done and not last.match and last.reason == "no_match"


def test_without_liveness_checking_then_match():
    still = lambda t: [head(0, dx=2 * math.sin(t * 7))]  # noqa: E731
    s, _ = make(still, liveness=False)
    ups = drive(s, still)
    assert [u.hint for u in ups[:-1]] == ["checking"] * (len(ups) - 1)
    assert ups[-1].reason == "match" and len(ups) == 3


def test_photo_times_out_as_liveness_failed():
    shaking = lambda t: [head(0, dx=2 * math.sin(t * 9))]  # noqa: E731
    s, _ = make(shaking)
    last = drive(s, shaking)[-1]
    assert last.done and last.match is False and last.reason == "liveness_failed"


def test_still_picture_fails_early():
    still = lambda t: [head(0)]  # noqa: E731
    s, _ = make(still)
    ups = drive(s, still)
    assert ups[-1].reason == "liveness_failed" and len(ups) < 30


def test_turned_face_must_be_same_person():
    sway = Obeying()
    s, _ = make(sway, cos=0.6, cos_turned=True)
    last = drive(s, sway)[-1]
    assert last.reason == "liveness_failed" and not last.match


def test_no_face_and_quality_hints():
    nothing = lambda t: []  # noqa: E731
    s, _ = make(nothing)
    ups = drive(s, nothing)
    assert ups[0].hint == "no_face" and ups[-1].reason == "no_face" and ups[-1].match is False
    far = lambda t: [F((300, 220, 30, 36), head(0).landmarks * 0.2 + 250)]  # noqa: E731
    s, _ = make(far)
    ups = drive(s, far)
    assert ups[0].hint == "too_far" and ups[-1].reason == "timeout"


def test_done_is_final():
    still = lambda t: [head(0, dx=2 * math.sin(t * 7))]  # noqa: E731
    s, eng = make(still, liveness=False)
    ups = drive(s, still)
    n = eng.calls
    assert s.feed(frame(0), 99.0) is ups[-1] and eng.calls == n


# ------------------------------------------------------------------ end to end with the real models

def _sim_session(engine, faces_dir, card_name, source, behaviour, seconds=10.0, fps=15):
    from PIL import Image

    from myna_drivers.camera_sim import SceneRenderer
    from myna_models.cardphoto import encode_card_photo

    with Image.open(faces_dir / card_name) as img:
        card = engine.embed_card_photo(encode_card_photo(img))
    if behaviour == "live":   # the patient follows the screen (mynasim.patient)
        from mynasim.patient import simulate_attempt

        u, t, _ = simulate_attempt(engine, card, {"source": str(faces_dir / source), "behaviour": "live",
                                                  "follow": True}, "patient", seed=1, time_limit_s=seconds)
        return u, t
    r = SceneRenderer({"source": str(faces_dir / source), "behaviour": behaviour}, (W, H))
    s = FaceVerification(engine, card, time_limit_s=seconds, frames_needed=3, liveness=True, clock_start=0.0)
    for i in range(int(seconds * fps) + 2):
        t = i / fps
        u = s.feed(r.render(t), t)
        if u.done:
            return u, t
    raise AssertionError("session never finished")


@pytest.mark.models
@pytest.mark.parametrize("source", ["lfw_tony_blair__2.jpg", "lfw_tony_blair__9.jpg"])
def test_e2e_live_card_holder_matches(engine, faces_dir, source):
    u, t = _sim_session(engine, faces_dir, "lfw_tony_blair__1.jpg", source, "live")
    assert u.reason == "match" and u.match and u.score >= engine.threshold, (u, t)
    assert t < 9.0  # three prompted steps (liveness.random_sequence) within the 10 s limit


@pytest.mark.models
def test_e2e_live_other_person_no_match(engine, faces_dir):
    u, _ = _sim_session(engine, faces_dir, "lfw_tony_blair__1.jpg", "lfw_donald_rumsfeld__3.jpg", "live")
    assert u.reason == "no_match" and u.match is False


@pytest.mark.models
@pytest.mark.parametrize("behaviour", ["photo", "screen"])
def test_e2e_photo_of_card_holder_never_matches(engine, faces_dir, behaviour):
    u, _ = _sim_session(engine, faces_dir, "lfw_tony_blair__1.jpg", "lfw_tony_blair__2.jpg", behaviour)
    assert u.reason in ("liveness_failed", "timeout") and u.match is False
