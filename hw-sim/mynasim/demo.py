"""``mynasim demo``: one scripted patient visit through the real daemon.

The patient (profile ``taro``) places the card, chooses 暗証番号, types the PIN on
the shuffled pad, agrees to every consent, reads 「〇〇様 確認が完了しました」 and
takes the card. The host's view and every screen are printed at the end.

``--method face`` chooses 顔認証 instead: hw-sim's camera shows the card holder (another
photo of the same person than the card's, turning the head when asked), and the real
models match it against the photo read from the card. ``--camera other`` puts someone
else in front of the camera and ``--camera photo`` a printed photo of the card holder:
then face authentication must be refused (「顔認証ができませんでした」), and the demo passes
when it is. ``--camera print_rotated`` (and the other ``ATTACK_CAMERAS``) stages a presentation
attack that follows the screen like the holder would (``mynasim.patient``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mynasim.rig import SimRig

ATTACK_CAMERAS = ("print_stand", "print_wave", "print_rotated", "print_turned", "print_bent", "replay", "slideshow")
CAMERAS = ("holder", "other", "photo") + ATTACK_CAMERAS


def _camera_scene(rig: SimRig, profile: str, camera: str) -> tuple[Path, str, str]:
    """(photo, behaviour, words) for who stands in front of the camera."""
    card = rig.photo_of(profile)
    if camera == "other":
        identity = card.stem.split("__")[0]
        name = next(n for n in sorted(rig.profiles) if rig.profiles[n].photo
                    and rig.photo_of(n).stem.split("__")[0] != identity)
        return rig.photo_of(name), "live", f"another person (the photo of profile {name})"
    live = card.with_name(card.name.replace("__1.", "__2."))
    live = live if live.exists() else card
    if camera == "photo":
        return live, "photo", "a printed photo of the card holder"
    if camera in ATTACK_CAMERAS:
        return live, camera, f"a presentation attack with the card holder's photos ({camera})"
    return live, "live", "the card holder"


def _holder_slides(card: Path) -> list[str]:
    """The holder's other photos, as an attacker would collect them for a slideshow."""
    stem = card.stem.split("__")[0]
    return [str(p) for p in sorted(card.parent.glob(f"{stem}__*")) if p != card][:3] or [str(card)]


def run_demo(run_dir: Path, profile: str = "taro", echo: bool = True, method: str = "pin",
             camera: str = "holder", mynad: list[str] | None = None, models_dir: Path | None = None) -> int:
    """``mynad``: the command that starts the daemon (default this checkout's), ``models_dir``
    the model files it loads (default the checkout's assets): an installed release's own."""
    t0 = time.monotonic()
    print(f"mynasim demo: starting pcscd, the virtual host and {(mynad or ['mynad'])[0]} in {run_dir}", flush=True)
    overrides = {"face": {"models_dir": str(models_dir)}} if models_dir else None
    with SimRig(run_dir, echo=echo, mynad=mynad, overrides=overrides) as rig:
        prof = rig.profiles[profile]
        mark = rig.mark()
        expect_refusal = method == "face" and camera != "holder"
        if method == "face":
            photo, behaviour, who = _camera_scene(rig, profile, camera)
            print(f"mynasim demo: in front of the camera: {who} ({photo.name}, {behaviour})", flush=True)
            extra: dict[str, Any] = {"slides": _holder_slides(rig.photo_of(profile))} if behaviour == "slideshow" else {}
            rig.show_face(photo, behaviour=behaviour, **extra)
        print(f"mynasim demo: patient places the card of {prof.name} ({profile})", flush=True)
        rig.place_card(profile)
        choice = rig.wait_screen("method_choice", timeout=20, after=mark)
        choices = list(choice.data["params"]["choices"])
        if method not in choices:
            raise SystemExit(f"mynasim demo: the reader does not offer {method} for this card (offers {choices})")
        rig.press(choices.index(method) + 1)
        seen = rig.mark()
        if method == "pin":
            rig.wait_screen("pin_entry", after=mark)
            print("mynasim demo: patient types the PIN on the shuffled pad", flush=True)
            if prof.pin is None:  # the card offers no PIN method then: the choice above stopped it
                raise SystemExit(f"mynasim demo: the card of {profile} has no PIN")
            rig.type_digits(prof.pin)
        else:
            rig.wait_screen("face_guide", timeout=10, after=mark)
            print("mynasim demo: patient looks at the camera and follows the screen", flush=True)
        while True:
            e, seen = rig.timeline.wait_for_at(
                lambda e: e.source == "display" and e.data.get("screen") in ("consent", "done", "consent_carryover",
                                                                             "host_error", "card_error", "cancelled",
                                                                             "face_failed"),
                timeout=60, after=seen, what="a consent or the completion screen")
            screen = e.data["screen"]
            if screen == "face_failed" and expect_refusal:
                print("mynasim demo: face authentication refused, as it must be; the patient takes the card",
                      flush=True)
                break
            if screen in ("consent", "consent_carryover"):
                item = (e.data.get("params") or {}).get("item", "previous answers")
                print(f"mynasim demo: patient agrees ({item})", flush=True)
                rig.press(12)
                continue
            if screen != "done" or expect_refusal:
                raise SystemExit(f"mynasim demo: the visit failed on screen {screen}: {e.data}")
            break
        if expect_refusal:
            rig.remove_card()
            rig.wait_screen("idle", after=mark)
            ended = rig.wait_host("visit.aborted", timeout=10, after=mark)
            ok = not [x for x in rig.timeline.entries("host", "received")
                      if x.data.get("type") == "visit.authenticated"]
        else:
            rig.wait_screen("remove_card", timeout=20, after=mark)
            print("mynasim demo: patient takes the card", flush=True)
            rig.remove_card()
            rig.wait_screen("idle", after=mark)
            ended = rig.wait_host("visit.result", timeout=10, after=mark)
            ok = ended.data.get("ProcessingResultStatus") == 1 and ended.data.get("method") == method
        frames = rig.screens()
        print()
        print("== The clinic host received:")
        for e in rig.timeline.entries("host", "received"):
            d = {k: v for k, v in e.data.items() if k not in ("cert_der", "signature")}
            print("  " + json.dumps(d, ensure_ascii=False))
        print()
        print(f"== {len(frames)} screens were shown; PNGs in {rig.screens_dir}:")
        for e in frames:
            print(f"  {e.t:7.2f}s  {e.data.get('screen'):18} {e.data.get('png')}")
        print()
        print(f"mynasim demo: {'PASSED' if ok else 'FAILED'} in {time.monotonic() - t0:.1f}s "
              f"(timeline: {rig.run_dir / 'timeline.jsonl'}, daemon log: {rig.run_dir / 'mynad.log'})")
        return 0 if ok else 1
