"""Who stands at the reader and follows its screen: a cooperative patient, or an attacker.

The reader asks for head poses on its display (「ゆっくり顔を左に向けてください」,
「正面を向いてください」...). A real patient reads that, reacts after a human delay and turns the head
smoothly; an attacker holding a print or a tablet reads the same screen and moves the
thing they hold. :class:`Follower` models both from the screen TEXT only (what a person
sees): it never looks at the daemon's state. Its output is a pose "move" (start time,
duration, from-pose, to-pose; see ``myna_drivers.camera_sim.pose_of``) that the simulated
camera renders: published on the sim bus as ``camera_pose`` by :class:`ScreenFollower`
in the rig, or evaluated directly with :meth:`Follower.pose_at` in tests that feed frames
to the verification session themselves.

Kinds (what is moved, and how a prompt maps to a pose):

``patient``        the head: left/right = yaw ±25-38° (as far as people turn when asked), front = 0;
``print_rotated``  a print rotated in-plane towards the prompted side (roll ±15-25°): the
                   attack that passed the old check;
``print_turned``   a flat print turned like a door (yaw ±25-35°);
``print_bent``     a print folded along the nose, turned like a door (yaw ±25-35°);
``replay``         a tablet with a clip of the holder: the attacker presses play on the first
                   prompt (the clip's own turns follow its recording, not the screen);
``slideshow``      a tablet with photos of the holder: swiped to the photo of the prompted side.

All timing is on the caller's clock (``time.monotonic()`` in the rig, frame times in tests).
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any, Callable

from myna_drivers.camera_sim import pose_of
from mynasim.bus import SimBusServer
from mynasim.timeline import Timeline

# Human reaction to a prompt on a screen (reading a short line and starting to move).
REACTION_S = (0.3, 0.8)
# A head or a hand moves between poses in about this long (the prompt says ゆっくり, slowly).
MOVE_S = (0.5, 0.9)

FOLLOWER_KINDS = ("patient", "print_rotated", "print_turned", "print_bent", "replay", "slideshow")


# The face hints a person acts on, by what they mean; the words are the screen's own, in
# whatever language the patient chose (they understand the sentence, as a person does).
_HINT_MEANING = {"turn_left": "left", "turn_right": "right", "face_front": "front", "ok": "front",
                 "retry": "front", "head_straight": "straight", "hold_still": "hold", "blurred": "hold"}


def _hint_sentences() -> list[tuple[str, str]]:
    """(sentence as shown in some language, meaning), longest first so that a longer sentence
    wins over one it contains."""
    from mynad.ui.i18n import LANG_CODES, gettext
    from mynad.ui.texts import FACE_HINTS

    out = {}
    for key, meaning in _HINT_MEANING.items():
        for lang in LANG_CODES:
            out[gettext(FACE_HINTS[key], lang)] = meaning
    return sorted(out.items(), key=lambda kv: -len(kv[0]))


_SENTENCES: list[tuple[str, str]] | None = None


def read_prompt(text: str | None) -> str | None:
    """What a person understands from the screen: left | right | front | straight | hold | None."""
    global _SENTENCES
    if not text:
        return None
    if _SENTENCES is None:
        _SENTENCES = _hint_sentences()
    for sentence, meaning in _SENTENCES:
        if sentence and sentence in text:
            return meaning
    # Japanese words a person also acts on when the sentence is worded differently
    if "左" in text:
        return "left"
    if "右" in text:
        return "right"
    if "正面" in text or "カメラに顔を向け" in text:
        return "front"
    if "傾け" in text or "まっすぐ" in text:
        return "straight"
    if "動かないで" in text or "そのまま" in text:
        return "hold"
    return None


class Follower:
    def __init__(self, kind: str = "patient", rng: random.Random | None = None,
                 publish: Callable[[dict[str, Any]], None] | None = None) -> None:
        if kind not in FOLLOWER_KINDS:
            raise ValueError(f"unknown follower kind {kind!r}; one of {', '.join(FOLLOWER_KINDS)}")
        self.kind = kind
        self.rng = rng or random.Random()
        self.publish = publish
        self.move: dict[str, Any] = {}
        self._last_text: str | None = None
        self.log: list[tuple[float, str, dict[str, Any]]] = []   # (t seen, prompt, move) for reports

    def pose_at(self, t: float) -> dict[str, Any]:
        return pose_of(self.move, t)

    def see(self, text: str | None, t: float) -> dict[str, Any] | None:
        """The screen now shows ``text`` (seen at ``t``): maybe start a move. Returns it."""
        if text == self._last_text:
            return None
        self._last_text = text
        prompt = read_prompt(text)
        if prompt is None or prompt == "hold":
            return None
        target = self._target(prompt)
        if target is None:
            return None
        t0 = t + self.rng.uniform(*REACTION_S)
        now = self.pose_at(t0)
        move: dict[str, Any] = {"t0": t0, "dur": self.rng.uniform(*MOVE_S),
                "from": {k: now.get(k, 0.0) for k in ("yaw", "roll")},
                "to": {k: now.get(k, 0.0) for k in ("yaw", "roll")}}
        for k in ("play", "slide", "slide_t"):
            if k in self.move:
                move[k] = self.move[k]
        for k, v in target.items():
            if k in ("yaw", "roll"):
                move["to"][k] = v
            elif k == "play" and "play" not in move:
                move["play"] = t0
            elif k == "slide":
                move["prev_slide"] = self.move.get("slide", "front")
                move["slide"], move["slide_t"] = v, t0
        self.move = move
        self.log.append((t, prompt, move))
        if self.publish is not None:
            self.publish(move)
        return move

    def _target(self, prompt: str) -> dict[str, Any] | None:
        side = {"left": 1.0, "right": -1.0}.get(prompt)
        k, u = self.kind, self.rng.uniform
        if k == "patient":
            if prompt == "straight":
                return None      # the simulated head does not roll
            return {"yaw": side * u(25.0, 38.0) if side else u(-1.0, 1.0)}
        if k == "print_rotated":
            return {"roll": side * u(15.0, 25.0) if side else 0.0}
        if k in ("print_turned", "print_bent"):
            return {"yaw": side * u(25.0, 35.0) if side else 0.0, "roll": 0.0}
        if k == "replay":
            return {"play": True} if side else None
        if k == "slideshow":
            return {"slide": prompt} if prompt in ("left", "right", "front") else None
        return None


class ScreenFollower:
    """Runs a :class:`Follower` against the rig: reads every display frame the daemon sends
    (the timeline's ``display`` entries, i.e. what the patient sees) and publishes the moves
    as ``camera_pose`` on the sim bus. A thread; ``stop()`` ends it."""

    def __init__(self, timeline: Timeline, bus: SimBusServer, kind: str, rng: random.Random | None = None) -> None:
        self.timeline, self.bus = timeline, bus
        self.follower = Follower(kind, rng, publish=lambda m: bus.publish("camera_pose", **m))
        self._stop = threading.Event()
        self._from = len(timeline)
        bus.publish("camera_pose")          # forget any earlier person's pose
        self._thread = threading.Thread(target=self._run, name=f"follower-{kind}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from mynasim.timeline import TimelineTimeout

        i = self._from
        while not self._stop.is_set():
            try:
                e, i = self.timeline.wait_for_at(lambda e: e.source == "display", 0.3, after=i, what="a screen")
            except TimelineTimeout:
                continue
            if e.data.get("screen") == "face_guide":
                self.follower.see(str(e.data.get("text") or ""), time.monotonic())
            else:
                self.follower.see(None, time.monotonic())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)


# ----------------------------------------------------------------------------- one attempt, in process

SCREEN_LATENCY_S = 0.06   # hint -> flow -> rendered screen on the reader, about


def simulate_attempt(engine, card_embedding, scene: dict[str, Any], kind: str | None, seed: int,
                     fps: float = 15.0, size: tuple[int, int] = (640, 480), time_limit_s: float = 10.0,
                     frames_needed: int = 3, pad=None, renderer=None):
    """One face-verification attempt with the real session, without the daemon: the scene is
    rendered at frame times ``i / fps``, each frame goes to ``FaceVerification.feed`` and the
    hint it returns is shown (as the reader's screen text) to a :class:`Follower` of ``kind``
    (None: nobody follows the screen). Seeded: the challenge and the person's reactions.
    Returns (final Update, time of the decision, follower or None)."""
    from myna_drivers.camera_sim import SceneRenderer
    from myna_models.session import FaceVerification
    from mynad.ui.texts import face_hint_text

    rng = random.Random(seed)
    follower = Follower(kind, random.Random(rng.random())) if kind else None
    scene = dict(scene, phase=rng.uniform(0, 6.28))
    r = renderer or SceneRenderer(scene, size, pose=follower.pose_at if follower else None)
    if renderer is not None:
        r.pose = follower.pose_at if follower else None
    session = FaceVerification(engine, card_embedding, time_limit_s=time_limit_s, frames_needed=frames_needed,
                               liveness=True, clock_start=0.0, pad=pad, rng=random.Random(rng.random()))
    n = int(time_limit_s * fps) + 2
    for i in range(n):
        t = i / fps
        u = session.feed(r.render(t), t)
        if u.done:
            return u, t, follower
        if follower is not None:
            follower.see(face_hint_text(u.hint), t + SCREEN_LATENCY_S)
    raise AssertionError("the session did not end within its time limit")
