"""Head-turn liveness from synthetic landmark sequences."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from myna_models.liveness import TURN_DELTA, HeadTurnLiveness, yaw_proxy


@dataclass
class F:
    landmarks: np.ndarray
    box: tuple = (0, 0, 1, 1)
    score: float = 0.9


def head(yaw_deg=0.0, dx=0.0, dy=0.0, ied=70.0, cx=320.0, cy=230.0) -> F:
    """Landmarks of a head turned by yaw_deg (positive: the patient's left = nose to image right)."""
    a = math.radians(yaw_deg)
    r = ied  # eyes at ±30° on a cylinder of radius ied; nose 0.4 r in front
    ex = r * np.sin(np.radians([-30, 30]) + a)
    nose = 1.4 * r * math.sin(a) - 0.0
    lm = np.array([[cx + ex[0], cy], [cx + ex[1], cy], [cx + nose, cy + 0.5 * ied],
                   [cx - 0.4 * ied, cy + ied], [cx + 0.4 * ied, cy + ied]], np.float32)
    lm += np.array([dx, dy], np.float32)
    return F(lm)


def sway(t, amp=20.0, period=3.0):
    return amp * math.sin(2 * math.pi * t / period)


def run(live: HeadTurnLiveness, yaw_of_t, fps=15, seconds=6.0, jitter=0.7, seed=0):
    rng = np.random.default_rng(seed)
    states = []
    for i in range(int(seconds * fps)):
        t = i / fps
        st = live.update(head(yaw_of_t(t), *rng.normal(0, jitter, 2)), t)
        states.append(st)
        if st.passed or st.failed:
            break
    return states


def test_yaw_proxy_sign_and_size():
    assert abs(yaw_proxy(head(0).landmarks)) < 1e-6
    assert yaw_proxy(head(20).landmarks) > TURN_DELTA
    assert yaw_proxy(head(-20).landmarks) < -TURN_DELTA
    assert yaw_proxy(head(5).landmarks) < TURN_DELTA


@pytest.mark.parametrize("direction", ["left", "right"])
def test_swaying_person_passes_either_challenge(direction):
    live = HeadTurnLiveness(direction=direction)
    states = run(live, lambda t: sway(t + 0.2) if t > 0.2 else 0.0)
    assert states[-1].passed, [s.phase for s in states]
    hints = [s.hint for s in states]
    assert hints[0] == "hold_still" and f"turn_{direction}" in hints


def test_turn_must_come_back():
    live = HeadTurnLiveness(direction="left")
    states = run(live, lambda t: 0.0 if t < 0.5 else 25.0, seconds=4)
    assert not states[-1].passed and states[-1].phase == "return" and states[-1].hint == "hold_still"


def test_wrong_direction_does_not_pass():
    live = HeadTurnLiveness(direction="left")
    states = run(live, lambda t: 0.0 if t < 0.5 else (-25.0 if t < 2 else 0.0), seconds=4)
    assert not any(s.passed for s in states)


def test_shaking_photo_never_passes():
    """A rigid photo moves all landmarks together: no yaw change, never passes, not 'static'."""
    live = HeadTurnLiveness(direction="right")
    states = run(live, lambda t: 0.0, jitter=2.0, seconds=10)
    assert not any(s.passed or s.failed for s in states)


def test_still_picture_fails_static():
    live = HeadTurnLiveness(direction="right")
    states = run(live, lambda t: 0.0, jitter=0.0, seconds=3)
    assert states[-1].failed and states[-1].reason == "static"


def test_start_turned_is_clamped():
    """A patient who starts turned 20° right cannot pass by merely facing front."""
    live = HeadTurnLiveness(direction="left")
    states = run(live, lambda t: -20.0 if t < 1.0 else 0.0, seconds=4)
    assert not any(s.passed for s in states)


def test_random_direction():
    dirs = {HeadTurnLiveness().direction for _ in range(40)}
    assert dirs == {"left", "right"}


def test_fail_by_caller():
    live = HeadTurnLiveness(direction="left")
    live.update(head(0, 1, 0), 0.0)
    live.fail("different_person")
    assert live.failed and live.update(head(0), 0.1).failed
