"""Liveness: a randomised head-turn challenge verified from the detector's five landmarks.

The screen asks the patient for a short sequence of head poses chosen per attempt with
:mod:`secrets` (e.g. left - front - right, or right - front - right), one step at a time.
Each step has a window that opens only when that step is prompted: the move must start
after the prompt (nothing under way when it appears, nothing done within a human reaction
time of it) and be finished within the window. A recording cannot know the sequence or
when each prompt appears, so a clip played on a phone follows it only by luck.

Measurements, all from the five landmarks (eyes, nose tip, mouth corners) of one frame:

* **Eye-line frame.** Landmarks are rotated so the eye line is horizontal and scaled by
  the inter-eye distance (IED) before anything else. The yaw proxy is the nose's x in that
  frame: ~0 frontal, ~0.5-0.6 x tan(angle) for a turned head because the nose stands in
  front of the eyes. Without this correction, rotating a printed photo IN-PLANE moves the
  nose sideways relative to the eye midpoint (a 15° roll gives 0.13, enough for a "turn"):
  that is the attack this module was rewritten for.
* **Steady start.** The frontal baseline is taken only from consecutive steady frames near
  frontal: a recording that keeps turning never gives one.
* **Roll refusal.** A frame whose eye line is tilted more than ``ROLL_MAX_DEG`` is not used
  at all and asks the patient to hold the head straight (``head_straight``).
* **Planarity (parallax).** A print or a screen moves like a plane: between a frontal and a
  turned frame, the image motion of any plane is exactly a homography. We fit it on four
  points (eyes and mouth corners), map the frontal nose through it and measure how far the
  turned nose is from the prediction, along the eye line, over the IED. A real head gives
  clear parallax (the nose tip stands ~0.4 IED in front of the eye/mouth plane); points
  fixed on a flat sheet give none under any rigid motion and perspective (exact: see the
  tests). A turn step counts only when the yaw proxy and the parallax are both past their
  thresholds in the asked direction; a turn that is all yaw and no parallax (a sheared
  print) fails as "planar".
* **Continuity.** A turn must go through intermediate poses: a jump of more than
  ``JUMP_MAX`` in the yaw proxy between two frames (a slideshow swiping to a photo of the
  holder looking sideways) fails the step.

What the geometry does NOT separate, measured with YuNet on hw-sim's renderings
(bench/pad_report.py, docs/face.md): YuNet's landmarks are regressed, not tracked texture
points. On a print turned 30-35° like a door its "nose" moves ~0.06-0.15 IED as if the
face had depth, with the parallax that goes with it; on a print folded along the nose (any
fold from 20°, a rigid 3-D object) it moves like a head's. Neither the nose parallax against
the yaw nor the foreshortening of the eye line (IED over eye-mouth distance) separated these
from the simulated head in our runs, so no threshold on them is shipped. What keeps such
prints out is the challenge (on cue, in the window, steady) only partly, and the passive PAD
model on the texture (paper, crease, border) has to do the rest. A live deepfake, a remotely
operated replay of the right clips, a 3-D mask or a twin follow the challenge: docs/face.md.

Pure logic: no images, no clock of its own (the caller passes frame times), no I/O.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

# --- pose measurements ----------------------------------------------------------------
# A frontal face measures within about ±0.05 (landmark noise, slight natural pose); a
# patient who starts turned is clamped to this so the turn still has to be real (facing
# front from a turned start does not count). 0.12 or 0.15 would spare patients who stand
# off-centre, but let 1-4.5 % of recorded sways through (tests/face/test_liveness.py model).
BASELINE_MAX = 0.08
# The baseline is taken only from a steady face: BASELINE_FRAMES consecutive frames within
# this spread (YuNet noise ≈ 0.02). A recording that keeps turning rarely gives one.
BASELINE_SPREAD = 0.05
# Frames used for the baseline (the median of the first ones with a face).
BASELINE_FRAMES = 3
# Required change of the yaw proxy: 0.12 is about a 12-15° turn on a real head, easy for
# any patient, and 5-6x the frame-to-frame landmark noise of YuNet at 60-100 px IED (≈ 0.02).
TURN_DELTA = 0.12
# Consecutive turned frames needed, so one noisy landmark cannot pass the turn.
TURN_FRAMES = 2
# Back to the front: within this of the baseline.
RETURN_DELTA = 0.06
# Frames counted as frontal (for matching) when within this of the baseline.
FRONTAL_DELTA = 0.07
# More in-plane rotation than this and the frame is not used (the patient is asked to hold
# the head straight). People turning their head on request roll it by 0-8°; a print rotated
# to fake a turn needs 12° or more to move the uncorrected proxy by TURN_DELTA.
ROLL_MAX_DEG = 12.0
# Nose parallax against the homography of eyes + mouth corners, in IED, along the turn.
# The simulated head with YuNet at the TURN_DELTA pose: 0.10-0.30 (bench/pad_report.py);
# points fixed on a flat sheet: 0 plus landmark noise (≈ 0.02 at 60-100 px IED), hence 0.05.
# (YuNet's own landmarks on a turned print are not texture-fixed: see the module docstring.)
PARALLAX_MIN = 0.05
# A head turning "slowly" as asked (≤ ~120°/s) moves the proxy by ≤ ~0.12 between frames at
# 15 fps; a swipe between two photos jumps at once.
JUMP_MAX = 0.2

# --- the challenge ---------------------------------------------------------------------
# No human reacts to a prompt faster than this: a move completed earlier was already under
# way. The prompt reaches the screen ~50-100 ms after the frame that caused it.
MIN_REACTION_S = 0.25
# At the prompt the head must not yet be turned more than this towards the asked side.
START_MAX = 0.06
# Time from a prompt to the completed move (reaction 0.3-1 s plus a 0.5 s turn, with margin
# for older patients).
STEP_WINDOW_S = 2.6
# Before each turn after the first, "hold still" is shown for a random time in this range
# (the face must stay frontal): a clip's next turn cannot be timed to the prompt.
HOLD_S = (0.4, 1.6)
# Moving this far from the baseline during the hold is a move before the prompt.
HOLD_MAX = 0.09
# Static check: over this window, if no landmark moved more than STATIC_MAX_PX (or the
# fraction of the inter-eye distance, whichever is larger), the face is a still image.
STATIC_WINDOW_S = 1.2
STATIC_MIN_FRAMES = 8
STATIC_MAX_PX = 0.35
STATIC_MAX_FRACTION = 0.004

LEFT, RIGHT, FRONT = "left", "right", "front"
HINTS = {LEFT: "turn_left", RIGHT: "turn_right", FRONT: "face_front"}


class RandomSource(Protocol):
    def choice(self, seq: Sequence): ...
    def uniform(self, a: float, b: float) -> float: ...


def _system_random() -> RandomSource:
    return secrets.SystemRandom()


# ----------------------------------------------------------------------------- geometry

def eye_frame(landmarks) -> tuple[np.ndarray, float, float]:
    """Landmarks in the eye-line frame: origin at the eye midpoint, x along the eye line
    (towards the right eye in the image), unit = inter-eye distance.
    Returns (5x2 array, roll in degrees (positive: eye line rising to the image right is
    negative y, i.e. clockwise in image coordinates), IED in px)."""
    lm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    d = lm[1] - lm[0]
    ied = float(np.hypot(*d))
    if ied <= 1e-6:
        return np.zeros((5, 2)), 0.0, 0.0
    c, s = d / ied
    rot = np.array([[c, s], [-s, c]])               # rotates the eye vector onto +x
    mid = (lm[0] + lm[1]) / 2.0
    return (lm - mid) @ rot.T / ied, math.degrees(math.atan2(d[1], d[0])), ied


def yaw_proxy(landmarks) -> float:
    """Nose x in the eye-line frame (in IED); positive = nose towards the image right."""
    return float(eye_frame(landmarks)[0][2, 0])


def roll_deg(landmarks) -> float:
    """Angle of the eye line against the image horizontal, degrees."""
    return eye_frame(landmarks)[1]


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 H with dst ~ H @ src for 4+ point pairs (DLT on normalised points, numpy SVD)."""
    def norm(p):
        m = p.mean(axis=0)
        s = math.sqrt(2.0) / max(1e-9, float(np.mean(np.hypot(*(p - m).T))))
        return np.array([[s, 0, -s * m[0]], [0, s, -s * m[1]], [0, 0, 1.0]])

    ts, td = norm(src), norm(dst)
    ps = np.c_[src, np.ones(len(src))] @ ts.T
    pd = np.c_[dst, np.ones(len(dst))] @ td.T
    rows = []
    for (x, y, w), (u, v, q) in zip(ps, pd):
        rows.append([0, 0, 0, -q * x, -q * y, -q * w, v * x, v * y, v * w])
        rows.append([q * x, q * y, q * w, 0, 0, 0, -u * x, -u * y, -u * w])
    _, _, vt = np.linalg.svd(np.asarray(rows))
    h = vt[-1].reshape(3, 3)
    h = np.linalg.inv(td) @ h @ ts
    return h / h[2, 2] if abs(h[2, 2]) > 1e-12 else h


def nose_parallax(reference, landmarks) -> float:
    """How far the nose is from where a plane through eyes and mouth corners would put it.

    The homography of the four points from ``reference`` to ``landmarks`` predicts the nose;
    the difference, along the current eye line, over the current IED. Zero for anything flat
    (print, screen) under any rigid motion and perspective; proportional to the nose's height
    above the eye/mouth plane times the sine of the turn for a head. Signed like the yaw proxy.
    """
    ref = np.asarray(reference, dtype=np.float64).reshape(5, 2)
    cur = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    idx = [0, 1, 3, 4]
    h = homography(ref[idx], cur[idx])
    p = h @ np.array([ref[2, 0], ref[2, 1], 1.0])
    if abs(p[2]) < 1e-9:
        return 0.0
    pred = p[:2] / p[2]
    d = cur[1] - cur[0]
    ied = float(np.hypot(*d))
    if ied <= 1e-6:
        return 0.0
    return float((cur[2] - pred) @ (d / ied) / ied)


def _aspect(lm: np.ndarray) -> float:
    """Inter-eye distance over the eye-to-mouth distance: shrinks as the face turns (the eye
    line foreshortens, the vertical does not), whatever the distance to the camera."""
    lm = np.asarray(lm, dtype=np.float64).reshape(5, 2)
    ied = float(np.hypot(*(lm[1] - lm[0])))
    emd = float(np.hypot(*((lm[3] + lm[4]) / 2 - (lm[0] + lm[1]) / 2)))
    return ied / max(emd, 1e-6)


# ----------------------------------------------------------------------------- challenge

def random_sequence(rng: RandomSource | None = None) -> tuple[str, ...]:
    """side - front - side: the first side at random, the second again at random (same or
    other), so after seeing the first prompt a recording still has to guess."""
    rng = rng or _system_random()
    return (rng.choice((LEFT, RIGHT)), FRONT, rng.choice((LEFT, RIGHT)))


@dataclass
class LivenessState:
    phase: str            # "baseline" | "hold" | "step" | "passed" | "failed"
    hint: str | None      # hint key for the screen; None when passed/failed
    yaw: float | None     # roll-corrected yaw proxy of this frame, relative to the baseline
    frontal: bool         # this frame faces the camera (usable for matching)
    turned: bool          # this frame is turned the asked way (check it is the same person)
    passed: bool
    failed: bool
    reason: str | None = None   # why it failed: static | anticipated | wrong_way | missed | planar | jump
    parallax: float | None = None


@dataclass
class HeadTurnLiveness:
    """Frame-by-frame challenge. ``steps`` None: a random side-front-side sequence.
    ``direction`` (legacy, one turn and back) gives the sequence (direction, front)."""

    direction: str | None = None
    steps: tuple[str, ...] | None = None
    rng: RandomSource | None = None
    turn_delta: float = TURN_DELTA
    _baseline_samples: list = field(default_factory=list)
    _baseline: float | None = None
    _reference: np.ndarray | None = None     # landmarks of the latest frontal frame
    _phase: str = "baseline"
    _step: int = 0
    _prompt_t: float | None = None           # when the current step was first prompted
    _hold_until: float | None = None
    _run: int = 0
    _armed: bool = False
    _rest: float = 0.0                       # unclamped median yaw of the baseline frames
    _last_yaw: float | None = None
    _planar_frames: int = 0
    _static: list = field(default_factory=list)
    _reason: str | None = None
    max_parallax: float = 0.0
    evidence: list = field(default_factory=list)   # (yaw, parallax, aspect ratio) of counted turned frames
    # steps and rng as resolved by __post_init__ (the public fields stay what was asked, or the same)
    _steps: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _rng: RandomSource = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.rng = self._rng = self.rng or _system_random()
        steps = self.steps
        if self.direction is not None:
            if self.direction not in (LEFT, RIGHT):
                raise ValueError(f"direction must be 'left' or 'right', not {self.direction!r}")
            steps = (self.direction, FRONT)
        if steps is None:
            steps = random_sequence(self._rng)
        bad = [s for s in steps if s not in HINTS]
        if bad or not steps or steps[0] == FRONT:
            raise ValueError(f"steps must start with a side and hold only left/right/front: {steps!r}")
        self.steps = self._steps = steps
        self.direction = steps[0]

    # ------------------------------------------------------------------ properties
    @property
    def phase(self) -> str:
        return self._phase

    @property
    def baseline(self) -> float | None:
        return self._baseline

    @property
    def passed(self) -> bool:
        return self._phase == "passed"

    @property
    def failed(self) -> bool:
        return self._phase == "failed"

    @property
    def reason(self) -> str | None:
        return self._reason

    @property
    def current_step(self) -> str | None:
        return self._steps[self._step] if self._phase in ("step", "hold") else None

    @property
    def hint(self) -> str | None:
        if self._phase == "step":
            return HINTS[self._steps[self._step]]
        if self._phase in ("baseline", "hold"):
            return "hold_still"
        return None

    @property
    def turn_hint(self) -> str:   # kept for callers that show the first side
        return HINTS[self._steps[0]]

    def fail(self, reason: str) -> None:
        """Let the caller fail the challenge (e.g. the turned face is someone else)."""
        self._phase, self._reason = "failed", reason

    # ------------------------------------------------------------------ per frame
    def update(self, face, t: float) -> LivenessState:
        """Feed one good frame's face (duck-typed: ``landmarks`` (5, 2)) taken at time ``t``."""
        lm = np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2)
        _, roll, _ = eye_frame(lm)
        raw = yaw_proxy(lm)
        if self._phase in ("passed", "failed"):
            rel = raw - (self._baseline or 0.0)
            return self._state(rel, abs(rel) <= FRONTAL_DELTA and abs(roll) <= ROLL_MAX_DEG, False)

        if self._is_static(lm, t):
            return self._fail("static")
        if abs(roll) > ROLL_MAX_DEG:
            # not used: neither for the yaw (it would be a print turned in-plane) nor for matching
            self._run, self._last_yaw = 0, None
            self._check_window(t)
            return self._state(None, False, False, hint="head_straight")

        if self._phase == "baseline":
            self._baseline_samples.append(raw)
            del self._baseline_samples[:-BASELINE_FRAMES]
            self._reference = lm.copy()
            samples = self._baseline_samples
            steady = len(samples) == BASELINE_FRAMES and max(samples) - min(samples) <= BASELINE_SPREAD
            if not steady:
                hint = "face_front" if abs(raw) > BASELINE_MAX else None
                return self._state(None, abs(raw) <= BASELINE_MAX + FRONTAL_DELTA / 2, False, hint=hint)
            b = float(np.median(samples))
            self._rest = b
            self._baseline = float(np.clip(b, -BASELINE_MAX, BASELINE_MAX))
            self._enter_step(t)

        assert self._baseline is not None  # set by the baseline phase, which every other phase follows
        rel = raw - self._baseline
        jump = self._last_yaw is not None and abs(rel - self._last_yaw) > JUMP_MAX
        self._last_yaw = rel
        frontal = abs(rel) <= FRONTAL_DELTA
        turned = False

        if self._phase == "hold":
            if frontal:
                self._reference = lm.copy()
            if abs(raw - self._rest) >= HOLD_MAX:   # moving before the next prompt
                return self._fail("anticipated", rel, frontal)
            assert self._hold_until is not None  # _next_step sets it when it enters "hold"
            if t >= self._hold_until:
                self._enter_step(t)
            return self._state(rel, frontal, False)

        # phase "step"
        if self._prompt_t is None:
            self._prompt_t = t        # first frame that shows this prompt
        since = t - self._prompt_t
        step = self._steps[self._step]
        if step == FRONT:
            if abs(rel) <= RETURN_DELTA:
                if since < MIN_REACTION_S:
                    return self._fail("anticipated", rel, frontal)
                self._reference = lm.copy()
                self._next_step(t)
            elif since > STEP_WINDOW_S:
                return self._fail("missed", rel, frontal)
            return self._state(rel, frontal, False)

        sign = 1.0 if step == LEFT else -1.0
        if jump:
            return self._fail("jump", rel, frontal)
        if sign * rel <= -self.turn_delta:
            return self._fail("wrong_way", rel, frontal)
        # The window counts a turn only if it starts after the prompt: a head already turned
        # that way when the prompt appears, or turned within a reaction time of it, does not
        # count until it has come back below START_MAX (armed again).
        if since == 0.0:
            self._armed = sign * rel < START_MAX
        elif not self._armed:
            self._armed = sign * rel < START_MAX and since >= MIN_REACTION_S
        par = None
        if not self._armed:
            self._run = 0
            if since > STEP_WINDOW_S:
                return self._fail("anticipated", rel, frontal)
            return self._state(rel, frontal, False)
        if sign * rel >= self.turn_delta:
            turned = True
            if since < MIN_REACTION_S:   # faster than any person reacts: it was under way
                self._armed, self._run = False, 0
                return self._state(rel, frontal, turned)
            assert self._reference is not None  # every baseline frame sets it
            par = nose_parallax(self._reference, lm)
            self.max_parallax = max(self.max_parallax, sign * par)
            self.evidence.append((sign * rel, sign * par, _aspect(lm) / _aspect(self._reference)))
            if sign * par >= PARALLAX_MIN:
                self._run += 1
                self._planar_frames = 0
            else:
                self._run = 0
                self._planar_frames += 1
                if self._planar_frames >= 3:   # turned as asked, but moving like a plane
                    return self._fail("planar", rel, frontal)
            if self._run >= TURN_FRAMES:
                self._next_step(t)
        else:
            self._run = 0
            if since > STEP_WINDOW_S:
                return self._fail("missed", rel, frontal)
        return self._state(rel, frontal, turned, parallax=par)

    # ------------------------------------------------------------------ internals
    def _enter_step(self, t: float) -> None:
        self._phase, self._prompt_t, self._run, self._planar_frames = "step", None, 0, 0

    def _next_step(self, t: float) -> None:
        self._step += 1
        if self._step >= len(self._steps):
            self._phase = "passed"
            return
        if self._steps[self._step] == FRONT:
            self._enter_step(t)
        else:  # a random hold before the next turn: its prompt time cannot be predicted
            self._phase = "hold"
            self._hold_until = t + float(self._rng.uniform(*HOLD_S))

    def _check_window(self, t: float) -> None:
        if self._phase != "step":
            return
        if self._prompt_t is None:
            self._prompt_t = t        # the prompt is on the screen even if this frame is not usable
        if t - self._prompt_t > STEP_WINDOW_S:
            self._phase, self._reason = "failed", "missed"

    def _fail(self, reason: str, rel: float | None = None, frontal: bool = False) -> LivenessState:
        self._phase, self._reason = "failed", reason
        return self._state(rel, frontal, False)

    def _is_static(self, lm: np.ndarray, t: float) -> bool:
        self._static.append((t, lm.copy()))
        while self._static and t - self._static[0][0] > STATIC_WINDOW_S:
            self._static.pop(0)
        if len(self._static) < STATIC_MIN_FRAMES or t - self._static[0][0] < STATIC_WINDOW_S * 0.75:
            return False
        pts = np.stack([p for _, p in self._static])           # (n, 5, 2)
        spread = float(np.max(pts.max(axis=0) - pts.min(axis=0)))
        ied = float(np.hypot(*(lm[1] - lm[0])))
        return spread <= max(STATIC_MAX_PX, STATIC_MAX_FRACTION * ied)

    def _state(self, rel, frontal: bool, turned: bool, hint: str | None = None,
               parallax: float | None = None) -> LivenessState:
        phase = self._phase
        return LivenessState(phase=phase, hint=hint or self.hint, yaw=rel, frontal=frontal, turned=turned,
                             passed=phase == "passed", failed=phase == "failed", reason=self._reason,
                             parallax=parallax)
