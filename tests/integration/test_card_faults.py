"""Card faults through the real daemon: every fault ends the visit cleanly, says why,
tells the host, and leaves the reader ready for the next patient.

The virtual card injects the fault (docs/virtual-card.md, ``FaultPlan``); pcscd and
the daemon are the real ones. "Pulled at APDU n" is tried for every n of a PIN visit.
"""

from __future__ import annotations

import os
import time

import pytest

from mynasim.card.faults import FaultPlan
from mynasim.rig import SimRig
from mynasim.timeline import TimelineTimeout

pytestmark = pytest.mark.pcscd

END_SCREENS = ("idle", "card_error", "cancelled", "fault", "host_error", "remove_card")


def patient_pin_visit(rig: SimRig, profile: str, mark: int, budget_s: float = 25.0) -> str:
    """A cooperative patient doing a PIN visit for as long as the reader lets them.

    Returns the screen the visit ended on (done, an error, or idle after a pull).
    """
    pin = rig.profiles[profile].pin
    deadline = time.monotonic() + budget_s
    seen = mark
    typed = False
    while time.monotonic() < deadline:
        try:
            e = rig.timeline.wait_for(lambda x: x.source == "display", timeout=max(0.1, deadline - time.monotonic()),
                                      after=seen, what="a screen")
        except TimelineTimeout:
            break
        seen = rig.timeline.entries().index(e) + 1
        screen = e.data.get("screen")
        params = e.data.get("params") or {}
        if screen == "method_choice" and "pin" in params.get("choices", []):
            rig.press(list(params["choices"]).index("pin") + 1)
        elif screen == "pin_entry" and not typed and params.get("entered") == 0:
            typed = True
            rig.type_digits(pin)
        elif screen in ("consent", "consent_carryover", "cert_expiring", "pin_last_try"):
            rig.press(12)
        elif screen == "done":
            return "done"
        elif screen in END_SCREENS and (screen != "idle" or seen > mark + 1):
            return screen
    return "stuck"


def visit_ids(rig: SimRig, mark: int, type_: str) -> set[str]:
    t0 = rig.timeline.entries()[mark].t
    return {e.data.get("visit_id") for e in rig.timeline.entries("host", "received")
            if e.t >= t0 and e.data.get("type") == type_}


def assert_host_told(rig: SimRig, mark: int) -> None:
    """Every visit the host heard begin was also ended (aborted or a result)."""
    deadline = time.monotonic() + 10
    while True:
        started = visit_ids(rig, mark, "visit.started")
        ended = visit_ids(rig, mark, "visit.aborted") | visit_ids(rig, mark, "visit.result")
        if started <= ended or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert started <= ended, f"host never told how visits {started - ended} ended"


def back_to_idle(rig: SimRig, mark: int) -> None:
    rig.remove_card()
    rig.wait_screen("idle", after=mark, timeout=15)
    assert rig.daemon is not None and rig.daemon.poll() is None, "mynad died"


def full_visit_apdus(rig: SimRig) -> int:
    mark = rig.mark()
    n0 = len(rig.timeline.entries("card", "apdu"))
    rig.place_card("taro")
    assert patient_pin_visit(rig, "taro", mark) == "done"
    rig.wait_host("visit.result", after=mark, timeout=15)
    n = len(rig.timeline.entries("card", "apdu")) - n0
    back_to_idle(rig, mark)
    return n


# Every APDU of a visit with MYNA_EXHAUSTIVE=1 (~50 s); in the suite every other one, the last
# (VERIFY's neighbourhood included) always: the soak pulls at random APDUs as well.
EVERY_APDU = bool(os.environ.get("MYNA_EXHAUSTIVE"))


def test_card_pulled_at_every_apdu_of_a_pin_visit(rig: SimRig):
    total = full_visit_apdus(rig)
    assert 5 <= total <= 40, total
    outcomes = {}
    pulls = range(1, total + 1) if EVERY_APDU else sorted(set(range(1, total + 1, 2)) | {total - 1, total})
    for n in pulls:
        mark = rig.mark()
        rig.place_card("taro", faults=FaultPlan(pull_at_apdu=n))
        outcomes[n] = patient_pin_visit(rig, "taro", mark, budget_s=15)
        back_to_idle(rig, mark)
        assert_host_told(rig, mark)
    assert "stuck" not in outcomes.values(), outcomes
    assert not [line for line in rig.log_lines if "Traceback" in line]


@pytest.mark.parametrize("faults, expect", [
    (FaultPlan(mute_at_apdu=2), "card_error"),
    (FaultPlan(garbage_at_apdu=2), "card_error"),
    (FaultPlan(truncate_at_apdu=3), "card_error"),
    (FaultPlan(invalid_cert=True), "card_error"),
    (FaultPlan(oversized_cert=True), "card_error"),
], ids=["mute", "garbage", "truncated", "invalid_cert", "oversized_cert"])
def test_card_faults_end_the_visit_with_a_clear_error(rig: SimRig, faults: FaultPlan, expect: str):
    mark = rig.mark()
    rig.place_card("taro", faults=faults)
    e = rig.timeline.wait_for(lambda x: x.source == "display" and x.data.get("screen") in END_SCREENS
                              and x.data.get("screen") != "idle", timeout=25, after=mark, what="an error screen")
    assert e.data["screen"] == expect, e.data
    assert (e.data.get("params") or {}).get("code"), e.data
    assert "エラー" in e.data.get("text", "")
    back_to_idle(rig, mark)
    assert_host_told(rig, mark)
    assert not [line for line in rig.log_lines if "Traceback" in line]


def test_slow_card_still_completes(rig: SimRig):
    mark = rig.mark()
    rig.place_card("taro", faults=FaultPlan(slow_s=0.15))
    assert patient_pin_visit(rig, "taro", mark, budget_s=40) == "done"
    rig.wait_host("visit.result", after=mark, timeout=15)
    back_to_idle(rig, mark)


@pytest.mark.parametrize("faults", [FaultPlan(photo_not_image=True), FaultPlan(photo_bomb=True)],
                         ids=["photo_not_image", "photo_bomb"])
def test_bad_card_photo_leaves_pin_and_says_face_is_unavailable(rig: SimRig, faults: FaultPlan):
    mark = rig.mark()
    rig.place_card("taro", faults=faults)
    assert patient_pin_visit(rig, "taro", mark) == "done"
    rig.wait_host("visit.result", after=mark, timeout=15)
    assert any("card photo unusable" in line for line in rig.log_lines)
    back_to_idle(rig, mark)
    assert not [line for line in rig.log_lines if "Traceback" in line]
