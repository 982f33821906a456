"""Scripted visits for every path of the flow, through the real daemon against hw-sim.

Each ends with the right message to the host (issue: complete reception flow).
"""

from __future__ import annotations

import pytest

from mynasim.rig import STAFF_PASSWORD, SimRig
from tests.integration.conftest import running_rig


@pytest.fixture(scope="module")
def rig(tmp_path_factory) -> SimRig:
    # the take-your-card reminder after 5 s instead of the config's 15: one test waits for it
    yield from running_rig(tmp_path_factory.mktemp("paths"), flow={"card_left_s": 5.0})

pytestmark = pytest.mark.pcscd


def choose(rig: SimRig, screen_entry, name: str) -> None:
    rig.press(list(screen_entry.data["params"]["choices"]).index(name) + 1)


def answer_consents(rig: SimRig, mark: int, key: int = 12) -> list[str]:
    items = []
    while True:
        e = rig.timeline.wait_for(
            lambda x: x.source == "display" and x.data.get("screen") in ("consent", "done", "consent_carryover"),
            timeout=15, after=mark, what="consent or done")
        mark = rig.mark()
        if e.data["screen"] == "done":
            return items
        if e.data["screen"] == "consent":
            items.append(e.data["params"]["item"])
        rig.press(key)


def finish(rig: SimRig, mark: int) -> None:
    rig.remove_card()
    rig.wait_screen("idle", after=mark, timeout=10)


def start(rig: SimRig, profile: str):
    mark = rig.mark()
    rig.place_card(profile)
    return mark


def pin_path(rig: SimRig, mark: int, profile: str, pin: str | None = None):
    e = rig.wait_screen("method_choice", after=mark, timeout=20)
    choose(rig, e, "pin")
    rig.wait_screen("pin_entry", after=mark)
    rig.type_digits(pin or rig.profiles[profile].pin)


def test_pin_with_one_wrong_try(rig: SimRig):
    mark = start(rig, "hanako")
    pin_path(rig, mark, "hanako", pin="0000" if rig.profiles["hanako"].pin != "0000" else "1111")
    rig.wait_screen("pin_backoff", after=mark)
    again = rig.wait_screen("pin_entry", after=rig.mark(), timeout=10)
    assert again.data["params"]["wrong"] is True and again.data["params"]["tries_left"] == 2
    rig.type_digits(rig.profiles["hanako"].pin)
    items = answer_consents(rig, mark)
    assert "checkup" not in items  # hanako is under 40
    result = rig.wait_host("visit.result", after=mark).data
    assert result["consents"]["SpecificHealthCheckupsInfoConsFlg"] == "0"
    finish(rig, mark)


def test_locked_pin_is_steered_to_face_or_staff_and_never_verified(rig: SimRig):
    mark = start(rig, "locked")
    e = rig.wait_screen("method_choice", after=mark, timeout=20)
    choose(rig, e, "pin")
    locked = rig.wait_screen("pin_locked", after=mark)
    assert "staff" in locked.data["params"]["choices"]
    rig.press(10)
    rig.wait_host("visit.aborted", after=mark)
    verifies = [a for a in rig.timeline.entries("card", "apdu")[:]
                if a.data["c"].startswith("00 20 00 80") and a.data["lc"] == 4]  # PIN VERIFY, not 照合番号B (14)
    assert not [v for v in verifies if v.t >= rig.timeline.entries()[mark].t]
    finish(rig, mark)


def test_expiring_certificate(rig: SimRig):
    mark = start(rig, "expiring")
    rig.wait_screen("cert_expiring", after=mark, timeout=20)
    rig.press(12)
    pin_path(rig, mark, "expiring")
    answer_consents(rig, mark)
    assert rig.wait_host("visit.result", after=mark).data["cert_state"] == "expiring"
    finish(rig, mark)


def test_grace_certificate_is_qualification_only(rig: SimRig):
    mark = start(rig, "grace")
    rig.wait_screen("cert_grace", after=mark, timeout=20)
    rig.press(12)
    pin_path(rig, mark, "grace")
    assert answer_consents(rig, mark) == []
    result = rig.wait_host("visit.result", after=mark).data
    assert result["qualification_only"] is True
    finish(rig, mark)


def test_expired_certificate_is_refused(rig: SimRig):
    mark = start(rig, "expired")
    rig.wait_screen("cert_expired", after=mark, timeout=20)
    aborted = rig.wait_host("visit.aborted", after=mark).data
    assert aborted["reason"] == "cert_expired" and aborted["code"] == "006"
    finish(rig, mark)


def test_unregistered_card_registers_on_the_spot(rig: SimRig):
    mark = start(rig, "unregistered")
    pin_path(rig, mark, "unregistered")
    rig.wait_screen("registration_offer", after=mark, timeout=20)
    rig.press(12)
    rig.wait_host("visit.registration", after=mark)
    rig.wait_screen("registration_done", after=mark, timeout=20)
    rig.press(12)
    answer_consents(rig, mark)
    rig.wait_host("visit.result", after=mark)
    finish(rig, mark)


def test_visual_check_from_the_host_returns_to_auto(rig: SimRig):
    mark = rig.mark()
    rig.host.send_staff_visual_check()
    rig.wait_screen("idle", after=mark, mode="visual")
    rig.place_card("nopin")
    # a host message alone never lets a patient through: the staff password is asked at the reader
    rig.wait_screen("visual_check", after=mark, timeout=20, stage="password")
    rig.wait_screen("visual_check", after=mark, timeout=20, stage="password", length=6)  # pad drawn
    rig.type_digits(STAFF_PASSWORD)
    rig.wait_screen("visual_check", after=mark, timeout=20, stage="confirm")
    rig.press(12)
    answer_consents(rig, mark)
    assert rig.wait_host("visit.result", after=mark).data["method"] == "visual"
    finish(rig, mark)
    rig.wait_screen("idle", after=mark, mode="auto")


def test_card_without_pin_offers_face_and_staff_only(rig: SimRig):
    mark = start(rig, "nopin")
    e = rig.wait_screen("method_choice", after=mark, timeout=20)
    assert "pin" not in e.data["params"]["choices"] and "proxy" not in e.data["params"]["choices"]
    assert "staff" in e.data["params"]["choices"]
    rig.press(10)
    assert rig.wait_host("visit.aborted", after=mark).data["reason"] == "cancelled"
    finish(rig, mark)


def test_staff_password_on_the_reader_wrong_then_right(rig: SimRig):
    mark = start(rig, "nopin")
    e = rig.wait_screen("method_choice", after=mark, timeout=20)
    choose(rig, e, "staff")
    rig.wait_screen("visual_check", after=mark, stage="password", entered=0)
    rig.wait_screen("visual_check", after=mark, stage="password", entered=0, length=6)  # pad drawn
    m = rig.mark()
    rig.type_digits("999999")
    # the check (scrypt, on a worker thread) refuses it and a fresh pad is drawn
    again = rig.wait_screen("visual_check", after=m, timeout=10, stage="password", entered=0, length=6)
    rig.type_digits(STAFF_PASSWORD)
    rig.wait_screen("visual_check", after=mark, timeout=10, stage="confirm")
    rig.press(12)
    answer_consents(rig, mark)
    result = rig.wait_host("visit.result", after=mark).data
    assert result["method"] == "visual"
    assert STAFF_PASSWORD not in repr([x.data for x in rig.timeline.entries("host")])
    assert all(STAFF_PASSWORD not in line for line in rig.log_lines)
    assert again is not None
    finish(rig, mark)
    rig.wait_screen("idle", after=mark, mode="auto")


def test_proxy_enters_the_pin(rig: SimRig):
    mark = start(rig, "elder")
    e = rig.wait_screen("method_choice", after=mark, timeout=20)
    if "proxy" not in e.data["params"]["choices"]:
        pytest.skip("proxy entry is switched off in this config")
    choose(rig, e, "proxy")
    pad = rig.wait_screen("pin_entry", after=mark)
    assert pad.data["params"]["proxy"] is True
    rig.type_digits(rig.profiles["elder"].pin)
    answer_consents(rig, mark)
    result = rig.wait_host("visit.result", after=mark).data
    assert result["proxy"] is True
    finish(rig, mark)


def test_card_left_on_the_reader_is_noticed(rig: SimRig):
    mark = start(rig, "taro")
    pin_path(rig, mark, "taro")
    answer_consents(rig, mark)
    rig.wait_screen("remove_card", after=mark, timeout=20, reminder=True)
    rig.timeline.wait_for(lambda x: x.source == "buzzer", timeout=30, after=mark, what="the buzzer")
    rig.wait_host("reader.event", after=mark, msg_kind="card_left")
    finish(rig, mark)


def test_three_wrong_pins_lock_the_card_and_the_screens_say_so(rig: SimRig):
    """hanako's card: 2 wrong tries (back-off each), the last-try warning, the 3rd locks.

    A fresh card state is made for hanako first, as test_pin_with_one_wrong_try spent a try
    that the right PIN then restored.
    """
    mark = start(rig, "hanako")
    wrong = "0000" if rig.profiles["hanako"].pin != "0000" else "1111"
    pin_path(rig, mark, "hanako", pin=wrong)
    rig.wait_screen("pin_backoff", after=mark)
    m = rig.mark()
    rig.wait_screen("pin_entry", after=m, timeout=10, tries_left=2, wrong=True)
    m = rig.mark()
    rig.type_digits(wrong)
    rig.wait_screen("pin_backoff", after=m)
    rig.wait_screen("pin_last_try", after=m, timeout=10)  # a wrong PIN now locks: confirm first
    rig.press(12)
    rig.wait_screen("pin_entry", after=m, timeout=10, tries_left=1)
    m = rig.mark()
    rig.type_digits(wrong)
    locked = rig.wait_screen("pin_locked", after=m, timeout=10)
    assert "pin" not in locked.data["params"]["choices"]
    t0 = rig.timeline.entries()[mark].t
    verifies = [a for a in rig.timeline.entries("card", "apdu")
                if a.t >= t0 and a.data["c"].startswith("00 20 00 80") and a.data["lc"] == 4]
    assert [v.data["sw"] for v in verifies] == ["63c2", "63c1", "63c0"]
    rig.press(10)
    rig.wait_host("visit.aborted", after=mark)
    finish(rig, mark)
    # the lock survives removal: next time the card is steered away from the PIN
    mark = start(rig, "hanako")
    e = rig.wait_screen("method_choice", after=mark, timeout=20)
    choose(rig, e, "pin")
    rig.wait_screen("pin_locked", after=mark)
    rig.press(10)
    finish(rig, mark)
    assert not [a for a in rig.timeline.entries("card", "apdu")
                if a.t >= rig.timeline.entries()[mark].t and a.data["c"].startswith("00 20 00 80") and a.data["lc"] == 4]
