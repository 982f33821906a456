"""One test per row of docs/reception-flow.md (and domain-research.md A.2 where it corrects it)."""

from __future__ import annotations

import pytest

from mynad.core import events as ev
from mynad.core.cert_policy import CertState
from mynad.core.config import FlowConfig
from mynad.core.flow import NEG, POS

from .conftest import Driver


def shows(actions, screen_id):
    return [a for a in actions if isinstance(a, ev.Show) and a.screen.id == screen_id]


# §1 idle and card placement
def test_idle_asks_for_the_card(d: Driver):
    assert d.screen.id == "idle"


def test_placing_the_card_starts_reception(d: Driver):
    out = d.send(ev.CardInserted("v1"))
    assert any(isinstance(a, ev.ReadCard) for a in out)
    assert d.screen.id == "reading"


# §2 certificate validity
def test_valid_certificate_goes_straight_to_method_choice(d: Driver):
    d.insert(CertState.VALID)
    assert d.screen.id == "method_choice"
    assert d.host("visit.started")[0].fields["cert_state"] == "valid"


def test_expiring_certificate_alerts_then_normal_flow(d: Driver):
    d.insert(CertState.EXPIRING)
    assert d.screen.id == "cert_expiring"
    d.key(POS)
    assert d.screen.id == "method_choice"


def test_grace_certificate_gives_qualification_only_without_consents(d: Driver):
    d.insert(CertState.GRACE)
    assert d.screen.id == "cert_grace"
    d.key(POS)
    d.choose("pin")
    d.type_pin()
    d.send(ev.PinChecked(True, 3, False))
    d.qualify()
    assert not [a for a in d.actions if isinstance(a, ev.Show) and a.screen.id == "consent"]
    result = d.host("visit.result")[0].fields
    assert result["qualification_only"] is True
    assert set(result["consents"].values()) == {"0"}
    assert d.screen.id == "done" and d.screen.params["qualification_only"] is True


def test_expired_certificate_refuses_and_tells_the_host(d: Driver):
    d.insert(CertState.EXPIRED)
    assert d.screen.id == "cert_expired"
    aborted = d.host("visit.aborted")[0].fields
    assert aborted["reason"] == "cert_expired" and aborted["code"] == "006"
    assert not shows(d.actions, "method_choice")


# §3 choosing how to prove identity
def test_method_choice_offers_face_pin_and_end(d: Driver):
    d.insert()
    choices = d.screen.params["choices"]
    assert choices[:2] == ("face", "pin")
    d.key(NEG)  # 終了する
    assert d.screen.id == "cancelled"
    assert d.host("visit.aborted")[0].fields["reason"] == "cancelled"


def test_card_without_pin_offers_face_and_staff_only(d: Driver):
    d.insert(has_pin=False, tries=None)
    choices = d.screen.params["choices"]
    assert "pin" not in choices and "proxy" not in choices
    assert "face" in choices and "staff" in choices


def test_proxy_enters_the_pin(d: Driver):
    d.insert()
    d.choose("proxy")
    d.type_pin()
    d.send(ev.PinChecked(True, 3, False))
    auth = [a for a in d.actions if isinstance(a, ev.Authenticate)][0]
    assert auth.method == "pin" and auth.proxy is True


# §4a face authentication
def test_face_match_authenticates(d: Driver):
    d.insert()
    d.choose("face")
    assert d.screen.id == "face_guide"
    d.send(ev.FaceHint("too_far"))
    assert d.screen.params["hint"] == "too_far"
    d.send(ev.FaceDone(True, "matched", 0.71))
    auth = [a for a in d.actions if isinstance(a, ev.Authenticate)][0]
    assert auth.method == "face" and auth.face_score == pytest.approx(0.71)


def test_face_keeps_failing_then_offers_pin_or_staff():
    d = Driver(FlowConfig(face_attempts=3))
    d.insert()
    d.choose("face")
    for _ in range(3):
        d.send(ev.FaceDone(False, "mismatch", 0.1))
    starts = [a for a in d.actions if isinstance(a, ev.StartFace)]
    assert [s.attempt for s in starts] == [1, 2, 3]
    assert d.screen.id == "face_failed"
    assert d.screen.params["choices"] == ("pin", "staff")
    d.choose("pin")
    assert d.flow.state == "pin_entry"


def test_unreadable_card_photo_steers_to_pin(d: Driver):
    d.insert()
    shown = d.screen
    d.send(ev.FaceUnavailable("no face in the card photo"))
    assert d.screen == shown  # keys never move under the patient's finger
    d.choose("face")
    assert d.screen.id == "face_failed" and "pin" in d.screen.params["choices"]


# §4b PIN
def test_pin_is_masked_and_shows_tries(d: Driver):
    d.insert(tries=2)
    d.choose("pin")
    d.send(ev.PinLayoutReady(tuple("123456789") + ("取消", "0", "クリア")))
    d.send(ev.PinDigit())
    assert d.screen.id == "pin_entry"
    assert d.screen.params["entered"] == 1 and d.screen.params["tries_left"] == 2


def test_wrong_pin_backs_off_then_asks_for_the_correct_pin(d: Driver):
    d.insert(tries=3)
    d.choose("pin")
    d.type_pin()
    d.send(ev.PinChecked(False, 2, False))
    assert d.screen.id == "pin_backoff"
    d.fire("backoff")
    d.send(ev.PinLayoutReady(tuple("987654321") + ("取消", "0", "クリア")))
    assert d.screen.params["wrong"] is True and d.screen.params["tries_left"] == 2


def test_last_try_needs_confirmation_before_entry(d: Driver):
    d.insert(tries=1)
    d.choose("pin")
    assert d.screen.id == "pin_last_try"
    assert not [a for a in d.actions if isinstance(a, ev.StartPinEntry)]
    d.key(POS)
    assert d.flow.state == "pin_entry"


def test_locked_pin_never_verifies_and_offers_face_or_staff(d: Driver):
    d.insert(tries=0, locked=True)
    d.choose("pin")
    assert d.screen.id == "pin_locked"
    assert not [a for a in d.actions if isinstance(a, (ev.StartPinEntry, ev.VerifyPin))]
    assert d.screen.params["choices"] == ("face", "staff")


def test_third_wrong_pin_locks_and_no_fourth_verify(d: Driver):
    d.insert(tries=3)
    d.choose("pin")
    for left in (2, 1):
        d.type_pin()
        d.send(ev.PinChecked(False, left, False))
        d.fire("backoff")
        if d.screen.id == "pin_last_try":
            d.key(POS)
    d.type_pin()
    d.send(ev.PinChecked(False, 0, True))
    assert d.screen.id == "pin_locked"
    verifies = [a for a in d.actions if isinstance(a, ev.VerifyPin)]
    assert len(verifies) == 3
    d.choose("staff") if "staff" in d.screen.params["choices"] else None
    assert len([a for a in d.actions if isinstance(a, ev.VerifyPin)]) == 3


def test_device_wide_throttle_stops_rapid_guessing():
    cfg = FlowConfig(throttle_max_wrong=3, throttle_window_s=600, throttle_block_s=120)
    d = Driver(cfg)
    for i in range(3):
        d.insert(tries=3, visit_id=f"v{i}")
        d.choose("pin")
        d.type_pin()
        d.send(ev.PinChecked(False, 2, False))
        d.send(ev.CardRemoved())
        d.now += 10
    d.insert(tries=3, visit_id="v9")
    d.choose("pin")
    assert d.screen.id == "pin_throttled"
    assert any(a.fields.get("kind") == "pin_throttled" for a in d.host("reader.event"))


# §5 consents
def full_pin_visit(d: Driver, age=45, previous=None):
    d.insert()
    d.choose("pin")
    d.type_pin()
    d.send(ev.PinChecked(True, 3, False))
    d.qualify(age=age, previous=previous)


def test_consent_screens_in_order_with_checkup_for_40_plus(d: Driver):
    full_pin_visit(d, age=45)
    items = []
    while d.screen.id == "consent":
        items.append(d.screen.params["item"])
        d.key(POS)
    assert items == ["surgery", "care_medicine", "checkup", "comprehensive"]
    flags = d.host("visit.result")[0].fields["consents"]
    assert flags["OperationInfoConsFlg"] == "1" and flags["SpecificHealthCheckupsInfoConsFlg"] == "1"
    assert "LimitApplicationCertificateRelatedConsFlg" not in flags  # 限度額 off by default since 2024-10


def test_under_40_patient_gets_no_checkup_screen(d: Driver):
    full_pin_visit(d, age=30)
    items = []
    while d.screen.id == "consent":
        items.append(d.screen.params["item"])
        d.key(NEG)
    assert "checkup" not in items
    flags = d.host("visit.result")[0].fields["consents"]
    assert set(flags.values()) == {"0"}


def test_limit_consent_available_by_config():
    d = Driver(FlowConfig(consent_items=("surgery", "limit")))
    full_pin_visit(d)
    items = []
    while d.screen.id == "consent":
        items.append(d.screen.params["item"])
        d.key(POS)
    assert items == ["surgery", "limit"]
    assert d.host("visit.result")[0].fields["consents"]["LimitApplicationCertificateRelatedConsFlg"] == "1"


def test_previous_consents_carried_over_and_kept(d: Driver):
    prev = {"surgery": True, "care_medicine": False, "checkup": True, "comprehensive": True}
    full_pin_visit(d, previous=prev)
    assert d.screen.id == "consent_carryover"
    d.key(POS)
    flags = d.host("visit.result")[0].fields["consents"]
    assert flags["OperationInfoConsFlg"] == "1" and flags["DiagnosisInfoConsFlg"] == "0"


def test_previous_consents_can_be_changed(d: Driver):
    prev = {"surgery": True, "care_medicine": True, "checkup": True, "comprehensive": True}
    full_pin_visit(d, previous=prev)
    d.key(NEG)  # change
    assert d.screen.id == "consent" and d.screen.params["previous"] is True
    while d.screen.id == "consent":
        d.key(NEG)
    assert set(d.host("visit.result")[0].fields["consents"].values()) == {"0"}


# §6 completion
def test_completion_names_the_patient_then_reminds_to_take_the_card(d: Driver):
    full_pin_visit(d)
    while d.screen.id == "consent":
        d.key(POS)
    assert d.screen.id == "done" and d.screen.params["name"] == "マイナ タロウ"
    d.fire("done")
    assert d.screen.id == "remove_card" and d.screen.params["reminder"] is False
    out = d.fire("card_left")
    assert d.screen.params["reminder"] is True
    assert any(isinstance(a, ev.Indicate) and a.buzzer == "remind" and a.led == "blink" for a in out)
    assert any(a.fields.get("kind") == "card_left" for a in d.host("reader.event"))
    d.send(ev.CardRemoved())
    assert d.screen.id == "idle"
    assert not d.host("visit.aborted")  # a finished visit is not reported as aborted


# §7 first-time registration
def test_unregistered_card_is_registered_on_the_spot(d: Driver):
    d.insert()
    d.choose("pin")
    d.type_pin()
    d.send(ev.PinChecked(True, 3, False))
    d.qualify(registered=False)
    assert d.screen.id == "registration_offer"
    d.key(POS)
    assert d.host("visit.registration")
    d.qualify(registered=True)
    assert d.screen.id == "registration_done"
    d.key(POS)
    assert d.screen.id == "consent"


# §8 when the reader cannot confirm
def test_card_error_is_shown_and_sent_at_once(d: Driver):
    d.send(ev.CardInserted("v1"))
    d.send(ev.CardFailed("002", "not_myna"))
    assert d.screen.id == "card_error"
    assert d.host("visit.aborted")[0].fields["code"] == "002"


def test_host_silence_times_out_with_a_code(d: Driver):
    d.insert()
    d.choose("pin")
    d.type_pin()
    d.send(ev.PinChecked(True, 3, False))
    d.fire("host")
    assert d.screen.id == "host_error"
    assert d.host("visit.aborted")[0].fields["reason"] == "host_unreachable"


# timeouts, card removal, staff visual check
@pytest.mark.parametrize("state_setup", ["method", "pin", "consent", "cert"])
def test_timeout_on_every_screen_returns_and_tells_host(state_setup):
    d = Driver()
    if state_setup == "cert":
        d.insert(CertState.EXPIRING)
    else:
        d.insert()
    if state_setup == "pin":
        d.choose("pin")
    if state_setup == "consent":
        d.choose("pin")
        d.type_pin()
        d.send(ev.PinChecked(True, 3, False))
        d.qualify()
    d.fire("screen")
    assert d.screen.id == "cancelled" and d.screen.params["reason"] == "timeout"
    assert d.host("visit.aborted")[-1].fields["reason"] == "timeout"


def test_card_removed_mid_visit_returns_to_idle_and_tells_host(d: Driver):
    d.insert()
    d.choose("face")
    out = d.send(ev.CardRemoved())
    assert any(isinstance(a, ev.StopFace) for a in out)
    assert d.screen.id == "idle" and d.flow.visit is None
    assert d.host("visit.aborted")[0].fields["reason"] == "card_removed"


LAYOUT = tuple("123456789") + ("取消", "0", "クリア")


def _staff_password(d: Driver, ok: bool = True, reason: str = "wrong") -> None:
    d.send(ev.PinLayoutReady(LAYOUT))
    for _ in range(d.flow.cfg.staff_password_length):
        d.send(ev.PinDigit())
    assert isinstance([a for a in d.actions if not isinstance(a, (ev.Show, ev.StartTimer, ev.CancelTimer))][-1],
                      ev.CheckStaffPassword)
    d.send(ev.StaffPasswordChecked(ok, reason))


def test_staff_visual_check_from_host_then_back_to_auto(d: Driver):
    """Issue #10: a host message alone (anyone on the host link) armed 目視確認 and the next patient
    passed on one key; the staff password is now asked at the reader first."""
    d.send(ev.HostVisualCheck())
    assert d.screen.params["mode"] == "visual"
    d.insert()
    assert d.screen.id == "visual_check" and d.screen.params["stage"] == "password"
    d.key(POS)  # クリア on the password pad: no way through without the password
    assert not [a for a in d.actions if isinstance(a, ev.Authenticate)]
    _staff_password(d)
    assert d.screen.params["stage"] == "confirm"
    d.key(POS)
    auth = [a for a in d.actions if isinstance(a, ev.Authenticate)][0]
    assert auth.method == "visual"
    d.send(ev.CardRemoved())
    assert d.flow.visual_armed is False
    assert d.screen.params["mode"] == "auto"
    assert d.host("reader.event")[-1].fields["mode"] == "auto"


def test_staff_visual_check_armed_without_a_card_expires(d: Driver):
    d.send(ev.HostVisualCheck())
    d.fire("visual_mode")
    assert d.flow.visual_armed is False and d.screen.params["mode"] == "auto"


def test_staff_visual_check_on_the_reader_needs_the_password(d: Driver):
    d.insert()
    d.choose("staff")
    assert d.screen.id == "visual_check" and d.screen.params["stage"] == "password"
    d.send(ev.PinLayoutReady(tuple("123456789") + ("取消", "0", "クリア")))
    for _ in range(6):
        d.send(ev.PinDigit())
    assert any(isinstance(a, ev.CheckStaffPassword) for a in d.actions)
    d.send(ev.StaffPasswordChecked(False))
    assert d.flow.state == "staff_password"
    d.send(ev.PinLayoutReady(tuple("123456789") + ("取消", "0", "クリア")))
    for _ in range(6):
        d.send(ev.PinDigit())
    d.send(ev.StaffPasswordChecked(True))
    assert d.screen.params["stage"] == "confirm"


def test_host_visual_check_mid_visit_asks_the_staff_password(d: Driver):
    d.insert()
    d.send(ev.HostVisualCheck())
    assert d.screen.id == "visual_check" and d.screen.params["stage"] == "password"
    d.key(NEG)  # staff walks away: back to the patient's own choice, not into a loop
    assert d.screen.id == "method_choice"


def test_host_visual_check_refused_without_a_staff_password(d: Driver):
    d.send(ev.StaffPasswordState(False))
    d.send(ev.HostVisualCheck())
    assert d.flow.visual_armed is False
    assert d.host("reader.event")[-1].fields["kind"] == "visual_check_refused"
    d.insert()
    assert d.screen.id == "method_choice" and "staff" not in d.screen.params["choices"]


def test_staff_lockout_returns_to_the_methods_without_counting_a_try(d: Driver):
    d.insert()
    d.choose("staff")
    _staff_password(d, ok=False, reason="locked")
    assert d.screen.id == "visual_check" and d.screen.params["stage"] == "locked"
    assert d.flow.visit.staff_wrong == 0
    d.key(POS)
    assert d.screen.id == "method_choice"


def _to_last_consent(d: Driver) -> None:
    d.insert()
    d.choose("pin")
    d.type_pin()
    d.send(ev.PinChecked(True, 3, False))
    d.qualify()
    while d.flow.state == "consent":
        d.key(POS)


def test_done_screen_only_after_the_result_is_stored():
    """Issue #10: the done screen came in the same step as the result, which then sat in memory;
    a crash at that moment lost a result the patient had been told was done."""
    d = Driver(auto_store=False)
    _to_last_consent(d)
    result = d.host("visit.result")[-1]
    assert result.confirm
    assert d.flow.state == "saving" and d.screen.id != "done"
    d.send(ev.ResultStored("another-visit"))
    assert d.screen.id != "done"
    d.fire("saving")  # slow storage: say so
    assert d.screen.id == "saving" and not d.screen.params.get("code")
    d.send(ev.StorageChanged(False, "disk full"))
    assert d.screen.id == "saving" and d.screen.params["code"] == "040"
    d.send(ev.ResultStored(result.fields["visit_id"]))
    assert d.screen.id == "done"


def test_card_pulled_while_saving_keeps_the_result_and_sends_no_abort():
    d = Driver(auto_store=False)
    _to_last_consent(d)
    d.send(ev.CardRemoved())
    assert d.flow.state == "idle" and not d.host("visit.aborted")


def test_disk_full_refuses_new_visits_until_space_returns(d: Driver):
    d.send(ev.StorageChanged(False, "disk full"))
    assert d.screen.id == "fault" and d.screen.params["code"] == "040"
    d.send(ev.CardInserted("v9"))
    assert d.flow.visit is None and not d.host("visit.started")
    assert d.screen.id == "fault"
    d.send(ev.StorageChanged(True))
    assert d.screen.id == "idle"
    d.insert(visit_id="v10")
    assert d.flow.visit is not None


def test_second_different_challenge_aborts_the_visit(d: Driver):
    d.insert()
    d.choose("pin")
    d.type_pin()
    d.send(ev.PinChecked(True, 3, False))
    vid = d.flow.visit.visit_id
    d.send(ev.ChallengeConflict("other"))
    assert d.flow.state == "authenticating"
    d.send(ev.ChallengeConflict(vid))
    assert d.screen.id == "host_error" and d.screen.params["code"] == "035"
    assert d.host("visit.aborted")[-1].fields["reason"] == "challenge_conflict"


def test_face_unavailable_shows_the_causes_own_code(d: Driver):
    """Issue #11: 照合番号B refused by the card (019) showed 015 like any unusable photo."""
    d.insert()
    d.send(ev.FaceUnavailable("the card refused 照合番号B", code="019", abort_reason="code_b_wrong"))
    d.choose("face")
    assert d.screen.id == "face_failed" and d.screen.params["code"] == "019"
    d.key(NEG)
    aborted = d.host("visit.aborted")[-1].fields
    assert aborted["code"] == "019" and aborted["reason"] == "code_b_wrong"


def test_face_unavailable_without_a_cause_is_015(d: Driver):
    d.insert()
    d.send(ev.FaceUnavailable("no face in the card photo"))
    d.choose("face")
    assert d.screen.params["code"] == "015"
