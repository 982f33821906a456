"""Liveness: a head-turn challenge verified from the detector's landmarks, frame by frame.

The screen asks the patient to turn the head to one side (chosen at random per attempt)
and back. From the five landmarks of each frame we compute a yaw proxy:

    yaw = (nose_x - eye_midpoint_x) / inter_eye_distance

which is ~0 for a frontal face and grows roughly like 0.5-0.6 * tan(angle) as the head
turns, because the nose tip stands in front of the eye plane. It does not depend on
distance or on where the face is in the frame, and it does not need a 3-D model.
Positive yaw means the nose moved to the image's right, i.e. the patient turned to
*their* left on an unmirrored camera ("turn_left").

The challenge passes when, within the time limit:
  1. a frontal baseline is seen (the median yaw of the first frames, clamped to
     ±BASELINE_MAX so a patient who starts turned cannot move the goalposts),
  2. the yaw moves at least TURN_DELTA from the baseline in the asked direction for
     TURN_FRAMES consecutive frames, and
  3. it comes back within RETURN_DELTA of the baseline.
The caller (the session) additionally checks that the turned frames are the same person
as the frontal ones (embeddings), so a turn cannot be performed by someone else.

Independently, a face whose landmarks stay perfectly still (less than STATIC_MAX_PX of
movement over STATIC_WINDOW_S) fails at once: no living person holds that still in
front of a camera, but a picture on a phone propped on the counter does.

What this stops: a printed photo (held still or waved around: a rigid photo moves all
landmarks together, so the nose never moves relative to the eyes), a still image on a
phone or tablet (static, and cannot turn), a card photo held up to the camera.
What it does NOT stop: a video replay of the person turning the head (a recording that
happens to turn the right way, or a live deepfake stream), a 3-D mask or a realistic
head model turned by hand, a cooperative impostor who looks alike (that is the
matcher's job). It is a presence check for an attended counter, not certified PAD
(ISO/IEC 30107-3).

Pure logic: no images, no clock of its own (the caller passes frame times), no I/O.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import numpy as np

# A frontal face measures within about ±0.05 (landmark noise, slight natural pose);
# a patient who starts turned is clamped to this so the turn still has to be real.
BASELINE_MAX = 0.08
# Frames used for the baseline (the median of the first ones with a face).
BASELINE_FRAMES = 3
# Required change of the yaw proxy: 0.12 is about a 12-15° turn on a real head (nose
# ratio ≈ 0.5-0.6 x tan(angle)), easy for any patient, and 5-6x the frame-to-frame
# landmark noise of YuNet at 60-100 px between the eyes (≈ 0.02).
TURN_DELTA = 0.12
# Consecutive turned frames needed, so one noisy landmark cannot pass the turn.
TURN_FRAMES = 2
# Back to the front: within this of the baseline.
RETURN_DELTA = 0.06
# Frames counted as frontal (for matching) when within this of the baseline.
FRONTAL_DELTA = 0.07
# Static check: over this window, if no landmark moved more than STATIC_MAX_PX (or the
# fraction of the inter-eye distance, whichever is larger), the face is a still image.
# A live person moves by several pixels per second even when trying to hold still; a
# real sensor adds noise too, so a printed photo on a stand is caught by the turn, and
# this check catches the perfectly still digital picture early.
STATIC_WINDOW_S = 1.2
STATIC_MIN_FRAMES = 8
STATIC_MAX_PX = 0.35
STATIC_MAX_FRACTION = 0.004

LEFT, RIGHT = "left", "right"


def yaw_proxy(landmarks) -> float:
    """(nose_x - eye_mid_x) / inter-eye distance; positive = nose towards image right."""
    lm = np.asarray(landmarks, dtype=np.float64)
    ied = float(np.hypot(*(lm[1] - lm[0])))
    if ied <= 1e-6:
        return 0.0
    return float((lm[2, 0] - (lm[0, 0] + lm[1, 0]) / 2.0) / ied)


@dataclass
class LivenessState:
    phase: str            # "baseline" | "turn" | "return" | "passed" | "failed"
    hint: str | None      # "hold_still" | "turn_left" | "turn_right" | None when passed/failed
    yaw: float | None     # yaw proxy of this frame, relative to the baseline
    frontal: bool         # this frame faces the camera (usable for matching)
    turned: bool          # this frame is turned the asked way (check it is the same person)
    passed: bool
    failed: bool
    reason: str | None = None   # why it failed: "static"


@dataclass
class HeadTurnLiveness:
    """Frame-by-frame head-turn challenge. ``direction`` None picks left or right at random."""

    direction: str | None = None
    turn_delta: float = TURN_DELTA
    _baseline_samples: list = field(default_factory=list)
    _baseline: float | None = None
    _phase: str = "baseline"
    _turn_run: int = 0
    _static: list = field(default_factory=list)   # (t, 5x2 landmarks) in the static window
    _reason: str | None = None

    def __post_init__(self) -> None:
        if self.direction is None:
            self.direction = secrets.choice((LEFT, RIGHT))
        if self.direction not in (LEFT, RIGHT):
            raise ValueError(f"direction must be 'left' or 'right', not {self.direction!r}")

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
    def turn_hint(self) -> str:
        return "turn_left" if self.direction == LEFT else "turn_right"

    def fail(self, reason: str) -> None:
        """Let the caller fail the challenge (e.g. the turned face is someone else)."""
        self._phase, self._reason = "failed", reason

    def update(self, face, t: float) -> LivenessState:
        """Feed one good frame's face (duck-typed: ``landmarks`` (5, 2)) taken at time ``t``."""
        lm = np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2)
        raw = yaw_proxy(lm)
        if self._phase in ("passed", "failed"):
            rel = raw - (self._baseline or 0.0)
            return self._state(rel, abs(rel) <= FRONTAL_DELTA, False)

        if self._is_static(lm, t):
            self._phase, self._reason = "failed", "static"
            return self._state(None, False, False)

        if self._phase == "baseline":
            self._baseline_samples.append(raw)
            if len(self._baseline_samples) < BASELINE_FRAMES:
                return self._state(None, abs(raw) <= BASELINE_MAX + FRONTAL_DELTA / 2, False, hint="hold_still")
            b = float(np.median(self._baseline_samples))
            self._baseline = float(np.clip(b, -BASELINE_MAX, BASELINE_MAX))
            self._phase = "turn"

        rel = raw - self._baseline
        frontal = abs(rel) <= FRONTAL_DELTA
        sign = 1.0 if self.direction == LEFT else -1.0
        turned = sign * rel >= self.turn_delta
        if self._phase == "turn":
            self._turn_run = self._turn_run + 1 if turned else 0
            if self._turn_run >= TURN_FRAMES:
                self._phase = "return"
        elif self._phase == "return":
            if abs(rel) <= RETURN_DELTA:
                self._phase = "passed"
        return self._state(rel, frontal, turned)

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

    def _state(self, rel, frontal: bool, turned: bool, hint: str | None = None) -> LivenessState:
        phase = self._phase
        if hint is None:
            hint = {"baseline": "hold_still", "turn": self.turn_hint, "return": "hold_still"}.get(phase)
        return LivenessState(phase=phase, hint=hint, yaw=rel, frontal=frontal, turned=turned,
                             passed=phase == "passed", failed=phase == "failed", reason=self._reason)
