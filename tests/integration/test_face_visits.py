"""Face visits through the real daemon: real models, the card's own JPEG 2000 photo read
over PC/SC, camera frames composed by hw-sim from real photos of real people.

The card carries photo ``<identity>__1``; the patient in front of the camera is shown
from a different photo of the same identity (``__2``), as a live person differs from
their card photo. Another identity must fail, and so must a printed photo held still.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mynasim.rig import SimRig

pytestmark = [pytest.mark.pcscd, pytest.mark.models]


def live_photo(rig: SimRig, profile: str) -> Path:
    card = rig.photo_of(profile)
    other = card.with_name(card.name.replace("__1.", "__2."))
    assert other.exists(), other
    return other


def start_face(rig: SimRig, profile: str, source: Path | None, behaviour: str = "live") -> int:
    mark = rig.mark()
    rig.show_face(source, behaviour=behaviour)
    rig.place_card(profile)
    e = rig.wait_screen("method_choice", timeout=20, after=mark)
    choices = list(e.data["params"]["choices"])
    assert "face" in choices, choices
    rig.press(choices.index("face") + 1)
    rig.wait_screen("face_guide", timeout=10, after=mark)
    return mark


def finish(rig: SimRig, mark: int) -> None:
    rig.remove_card()
    rig.show_face(None, behaviour="none")
    rig.wait_screen("idle", after=mark, timeout=15)


def test_card_holder_passes_face_authentication(rig: SimRig):
    mark = start_face(rig, "taro", live_photo(rig, "taro"))
    rig.timeline.wait_for(lambda x: x.source == "display" and x.data.get("screen") in ("consent", "consent_carryover"),
                          timeout=40, after=mark, what="the consents")
    auth = rig.wait_host("visit.authenticated", after=mark).data
    assert auth["method"] == "face" and auth["face_score"] is not None
    while True:
        m = rig.mark()
        rig.press(12)
        e = rig.timeline.wait_for(lambda x: x.source == "display" and x.data.get("screen") in ("consent", "consent_carryover", "done"),
                                  timeout=10, after=m, what="next consent or done")
        if e.data["screen"] == "done":
            break
    result = rig.wait_host("visit.result", after=mark).data
    assert result["method"] == "face" and result["ProcessingResultStatus"] == 1
    finish(rig, mark)


def test_another_person_fails_and_is_offered_pin_or_staff(rig: SimRig):
    mark = start_face(rig, "taro", live_photo(rig, "hanako"))
    e = rig.wait_screen("face_failed", timeout=60, after=mark)
    assert "pin" in e.data["params"]["choices"]
    assert not [x for x in rig.timeline.entries("host", "received")
                if x.data.get("type") == "visit.authenticated" and x.t >= rig.timeline.entries()[mark].t]
    finish(rig, mark)
    aborted = rig.wait_host("visit.aborted", after=mark).data
    assert aborted["reason"] == "card_removed"


def test_printed_photo_of_the_card_holder_is_refused(rig: SimRig):
    mark = start_face(rig, "taro", live_photo(rig, "taro"), behaviour="photo")
    rig.wait_screen("face_failed", timeout=60, after=mark)
    assert not [x for x in rig.timeline.entries("host", "received")
                if x.data.get("type") == "visit.authenticated" and x.t >= rig.timeline.entries()[mark].t]
    finish(rig, mark)
