"""One face-verification attempt: camera frames in, hints and a decision out.

``FaceVerification.feed(bgr, t)`` is called for every camera frame on the face worker
thread (daemon/mynad/shell/faceio.py). Per frame:

1. detect faces in the whole frame at its own resolution, every frame (YuNet runs at the
   frame's size, ~7 ms for 640x480 here; bench/face_bench.py --explore measures why neither
   a smaller detection size nor tracking a region around the last face is used: both move
   the landmarks by pixels for little time saved at this framing);
2. quality gate (:mod:`myna_models.quality`): a bad frame only produces a hint;
3. liveness (:mod:`myna_models.liveness`, when enabled) from the landmarks: a random
   sequence of head poses, each prompted through the hint, with a planarity check;
4. presentation-attack detection, when a ``pad`` model is given (a passive texture model,
   ``pad.score(bgr, box) -> P(real)`` and ``pad.threshold``): every accepted frame is scored
   and the attempt fails with "presentation_attack" once the median of the recent scores is
   below the threshold;
5. good frontal frames are embedded and scored against the card photo's embedding;
   turned frames are embedded only to check they are still the same person.

The decision comes once ``frames_needed`` frontal scores are collected and liveness has
passed: match when the median score reaches ``engine.threshold``. When the time limit
runs out the attempt ends with "no_face" (never a face), "liveness_failed" (enough
frames, no head turn) or "timeout" (faces, but never enough good frames). ``Update.detail``
says why liveness failed (``myna_models.liveness`` reasons), for logs and the PAD report.

Nothing of the frames is kept: only scores, landmark numbers and, for the same-person
check, the running mean of this attempt's frontal embeddings, all dropped with the
session object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from myna_models import quality
from myna_models.errors import FaceError
from myna_models.liveness import HeadTurnLiveness, yaw_proxy

# Without liveness, frames this far from frontal are not used for matching (SFace
# scores of the same person fall at larger yaw).
MAX_MATCH_YAW = 0.15
# The turned frames must look like this attempt's frontal frames: cosine of the turned
# embedding to the mean frontal embedding. Same person at 15-20° measures ~0.6-0.9 with
# SFace (measured on the sim's warped photos: 0.46-0.93 up to ~40° apart); two different
# people rarely exceed 0.3. Below the match threshold on purpose: a continuity check,
# not an identification.
CONTINUITY_MIN = 0.30
# Scores kept for the median (the most recent ones: the patient settles in over time).
MAX_SCORES = 15
# Frontal frames beyond this many are not embedded while waiting for liveness (saves CPU).
SPARE_FRAMES = 3
# PAD: the decision uses the median of this many recent frame scores, once there are at
# least PAD_MIN_FRAMES (one odd frame must not end an attempt, either way).
PAD_WINDOW = 7
PAD_MIN_FRAMES = 5


@dataclass
class Update:
    hint: str | None
    done: bool
    match: bool | None
    score: float | None
    reason: str | None
    detail: str | None = None


class FaceVerification:
    def __init__(self, engine, card_embedding, time_limit_s: float, frames_needed: int, liveness: bool,
                 clock_start: float, pad=None, rng=None) -> None:
        """``pad``: optional passive presentation-attack model (``score(bgr, box)`` -> P(real),
        ``threshold``). ``rng``: random source for the challenge (default: the OS's, via
        :mod:`secrets`); tests and the PAD report pass a seeded one to be reproducible."""
        self.engine = engine
        self.card = np.asarray(card_embedding, dtype=np.float32).reshape(-1)
        self.time_limit_s = float(time_limit_s)
        self.frames_needed = max(1, int(frames_needed))
        self.liveness = HeadTurnLiveness(rng=rng) if liveness else None
        self.pad = pad
        self.pad_scores: list[float] = []
        self.clock_start = float(clock_start)
        self.scores: list[float] = []
        self.faces_seen = 0
        self.good_frames = 0
        self._frontal_sum: np.ndarray | None = None
        self._pending_turned: list[np.ndarray] = []
        self._final: Update | None = None

    # ----------------------------------------------------------------- public
    def feed(self, bgr: np.ndarray, t: float) -> Update:
        if self._final is not None:
            return self._final
        if t - self.clock_start > self.time_limit_s:
            return self._timeout()

        faces = self.engine.detect(bgr)
        if faces:
            self.faces_seen += 1
        hint = quality.assess(bgr.shape, faces, bgr)
        if hint is not None:
            return Update(hint, False, None, None, None)
        self.good_frames += 1
        face = max(faces, key=quality.eye_distance)

        if self.pad is not None and self._pad_says_attack(bgr, face):
            return self._finish(False, "presentation_attack", detail=(
                f"live-face score {float(np.median(self.pad_scores)):.2f} < {float(self.pad.threshold):.2f}"))

        frontal, turned = True, False
        live = self.liveness
        live_hint = None
        if live is not None and not live.passed:
            st = live.update(face, t)
            if st.failed:
                return self._finish(False, "liveness_failed", detail=st.reason)
            frontal, turned, live_hint = st.frontal, st.turned, st.hint
        elif live is not None:
            frontal = abs(yaw_proxy(face.landmarks) - (live.baseline or 0.0)) <= MAX_MATCH_YAW
        else:
            frontal = abs(yaw_proxy(face.landmarks)) <= MAX_MATCH_YAW

        try:
            want_score = len(self.scores) < self.frames_needed + SPARE_FRAMES or live is None or live.passed
            if frontal and want_score:
                emb = self.engine.embed_face(bgr, face)
                self.scores.append(float(self.engine.score(emb, self.card)))
                del self.scores[:-MAX_SCORES]
                self._add_frontal(emb)
            elif turned:
                self._check_turned(self.engine.embed_face(bgr, face))
        except FaceError:
            # landmarks unusable for alignment on this frame: just wait for the next one
            return Update("hold_still", False, None, None, None)
        if live is not None and live.failed:
            return self._finish(False, "liveness_failed", detail=live.reason)

        if len(self.scores) >= self.frames_needed and (live is None or live.passed):
            med = float(np.median(self.scores))
            ok = med >= float(self.engine.threshold)
            return self._finish(ok, "match" if ok else "no_match", med)
        if live is not None and not live.passed:
            return Update(live_hint or live.hint or "hold_still", False, None, None, None)
        return Update("checking", False, None, None, None)

    # ----------------------------------------------------------------- internals
    def _add_frontal(self, emb: np.ndarray) -> None:
        e = np.asarray(emb, dtype=np.float32).reshape(-1)
        self._frontal_sum = e.copy() if self._frontal_sum is None else self._frontal_sum + e
        pending, self._pending_turned = self._pending_turned, []
        for p in pending:
            self._check_turned(p)

    def _check_turned(self, emb: np.ndarray) -> None:
        if self._frontal_sum is None:
            if len(self._pending_turned) < 4:
                self._pending_turned.append(np.asarray(emb, dtype=np.float32).reshape(-1))
            return
        if float(self.engine.score(emb, self._frontal_sum)) < CONTINUITY_MIN and self.liveness is not None:
            self.liveness.fail("different_person")

    def _pad_says_attack(self, bgr: np.ndarray, face) -> bool:
        self.pad_scores.append(float(self.pad.score(bgr, face.box)))
        del self.pad_scores[:-PAD_WINDOW]
        return len(self.pad_scores) >= PAD_MIN_FRAMES and float(np.median(self.pad_scores)) < float(
            self.pad.threshold)

    def _median(self) -> float | None:
        return float(np.median(self.scores)) if self.scores else None

    def _timeout(self) -> Update:
        if self.faces_seen == 0:
            reason = "no_face"
        elif self.liveness is not None and not self.liveness.passed and len(self.scores) >= self.frames_needed:
            reason = "liveness_failed"
        else:
            reason = "timeout"
        detail = None
        if self.liveness is not None and not self.liveness.passed:
            detail = self.liveness.reason or f"timeout_in_{self.liveness.phase}"
        return self._finish(False, reason, self._median(), detail=detail)

    def _finish(self, match: bool, reason: str, score: float | None = None, detail: str | None = None) -> Update:
        if score is None:
            score = self._median()
        self._final = Update(None, True, match, score, reason, detail)
        self._frontal_sum = None
        self._pending_turned = []
        return self._final
