"""Scripted visits through the real daemon (pcscd + vpcd, pty host link, sim keypad/display)."""

from __future__ import annotations


import pytest
from PIL import Image

from mynasim.rig import SimRig

pytestmark = pytest.mark.pcscd


def pin_visit_until(rig: SimRig, profile: str, stop_at: str | None = None) -> int:
    """Drive a PIN visit; return the timeline mark where the visit began."""
    mark = rig.mark()
    rig.place_card(profile)
    e = rig.wait_screen("method_choice", timeout=20, after=mark)
    if stop_at == "method_choice":
        return mark
    rig.press(list(e.data["params"]["choices"]).index("pin") + 1)
    rig.wait_screen("pin_entry", after=mark)
    if stop_at == "pin_entry":
        return mark
    rig.type_digits(rig.profiles[profile].pin)
    consents = ("consent", "consent_carryover")  # carry-over: this card visited this clinic before
    rig.timeline.wait_for(lambda x: x.source == "display" and x.data.get("screen") in consents,
                          timeout=20, after=mark, what="the consents")
    if stop_at == "consent":
        return mark
    while True:
        m = rig.mark()
        rig.press(12)
        e = rig.timeline.wait_for(lambda x: x.source == "display" and x.data.get("screen") in consents + ("done",),
                                  timeout=10, after=m, what="next consent or done")
        if e.data["screen"] == "done":
            break
    if stop_at == "done":
        return mark
    rig.wait_screen("remove_card", timeout=20, after=mark)
    return mark


def test_demo_pin_visit_end_to_end(rig: SimRig):
    mark = pin_visit_until(rig, "taro")
    rig.remove_card()
    rig.wait_screen("idle", after=mark)
    result = rig.wait_host("visit.result", after=mark).data
    assert result["ProcessingResultStatus"] == 1 and result["method"] == "pin"
    assert result["consents"]["OperationInfoConsFlg"] == "1"
    assert len(result["ConsTime"]) == 14
    auth = rig.wait_host("visit.authenticated", after=mark).data
    assert auth.get("signature_valid") is True or "signature" in auth
    frames = [e for e in rig.screens()[:] if e.t >= rig.timeline.entries()[mark].t]
    pngs = {e.data["png"] for e in frames if e.data.get("png")}
    assert len(pngs) >= 6
    for p in pngs:
        im = Image.open(p)
        assert im.size[0] >= 256 and im.getbbox() is not None  # not blank
    done = [e for e in frames if e.data["screen"] == "done"][0]
    assert rig.profiles["taro"].name in done.data.get("text", "")
    # nothing of the PIN in what the host got or what the daemon logged
    pin = rig.profiles["taro"].pin
    host_blob = repr([e.data for e in rig.timeline.entries("host")])
    assert pin not in host_blob
    assert all(pin not in line for line in rig.log_lines)


@pytest.mark.parametrize("step", ["method_choice", "pin_entry", "consent", "done"])
def test_card_pulled_mid_visit_returns_to_idle_and_tells_host(rig: SimRig, step: str):
    mark = pin_visit_until(rig, "taro", stop_at=step)
    rig.remove_card()
    rig.wait_screen("idle", after=mark, timeout=10)
    if step == "done":
        rig.wait_host("visit.result", after=mark)
    else:
        aborted = rig.wait_host("visit.aborted", after=mark).data
        assert aborted["reason"] == "card_removed"
    assert not [l for l in rig.log_lines if "Traceback" in l]


@pytest.mark.pcscd
def test_no_key_is_lost_while_every_core_is_busy(rig: SimRig):
    """Issue #12 §4: a press must count while heavy work loads every core. Two spinning
    processes per CPU (the face engine and the OCR do that on a Pi right after a card is
    placed) run through a whole PIN visit; a lost digit would leave the PIN short (the visit
    waits on the pad) or wrong (a try spent), and never reach the done screen."""
    import os
    import subprocess
    import sys

    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 2))]
    try:
        mark = pin_visit_until(rig, "taro", stop_at="done")
    finally:
        for b in burners:
            b.kill()
        for b in burners:
            b.wait()
    rig.wait_screen("remove_card", timeout=20, after=mark)
    rig.remove_card()
    rig.wait_screen("idle", timeout=20, after=mark)
