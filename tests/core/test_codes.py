"""The one table of reader error codes (mynad.core.codes) and everyone who uses it.

- codes are three digits and unique, reasons unique; 001/002/006 mean what they mean on
  readers in the field;
- every reason used anywhere (card errors, the flow's aborts and screens, the shell, the
  card-face notes, the host protocol doc, the virtual host's codes) has a code;
- every code has a patient text and one line in docs/error-codes.md, which is exactly
  what ``python -m mynad.core.codes --markdown`` prints;
- every error screen the pure flow can show carries a code, the code of its cause, and
  the same code the host was sent for that visit.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from mynad.card import errors as card_errors
from mynad.core import codes
from mynad.core import events as ev
from mynad.core.cert_policy import CertState
from mynad.core.config import FlowConfig
from mynad.core.flow import NEG, ReceptionFlow
from mynad.ui.screens import SCREENS
from tests.core.conftest import Driver
from tests.core.test_flow_exhaustive import alphabet

ROOT = Path(__file__).resolve().parents[2]
DAEMON = ROOT / "daemon" / "mynad"
SHEET = ROOT / "docs" / "error-codes.md"


def _source(rel: str) -> str:
    return (DAEMON / rel).read_text(encoding="utf-8")


# ---------------------------------------------------------------- the table itself


def test_codes_are_three_digits_and_unique_and_reasons_unique():
    seen_codes = [c.code for c in codes.CODES]
    seen_reasons = [c.reason for c in codes.CODES]
    assert len(seen_codes) == len(set(seen_codes))
    assert len(seen_reasons) == len(set(seen_reasons))
    assert not set(seen_reasons) & set(codes.FAMILY_REASONS)
    for c in codes.CODES:
        assert re.fullmatch(r"[0-9]{3}", c.code), c
        assert re.fullmatch(r"[a-z][a-z_]*", c.reason), c
        assert codes.by_code(c.code) is c and codes.by_reason(c.reason) is c
        assert any(c.code.startswith(prefix) for prefix, _, _ in codes.FAMILIES), c.code


def test_field_codes_keep_their_field_meaning():
    assert codes.by_code("001") is codes.CARD_MUTE  # マイナンバーカードの認識不可
    assert codes.by_code("002") is codes.NOT_MYNA  # マイナンバーカード以外
    assert codes.by_code("006") is codes.CERT_EXPIRED  # 利用者証明用電子証明書の失効・有効期限切れ
    for unknown_on_real_readers in ("003", "004", "005", "007", "008", "009"):
        assert codes.by_code(unknown_on_real_readers) is None


def test_distinct_causes_have_distinct_codes():
    causes = [codes.WRONG_PIN, codes.PIN_LOCKED, codes.NO_PIN, codes.PIN_THROTTLED, codes.CERT_UNREADABLE,
              codes.CERT_EXPIRED, codes.NOT_MYNA, codes.CARD_MUTE, codes.CARD_REMOVED_MID_COMMAND,
              codes.CARD_REMOVED, codes.SCREEN_TIMEOUT, codes.READER_LOST, codes.PCSCD_DOWN,
              codes.HOST_UNREACHABLE, codes.QUALIFICATION_FAILED, codes.NOT_REGISTERED, codes.FACE_FAILED,
              codes.FACE_UNAVAILABLE, codes.CARD_FACE_UNREADABLE, codes.CODE_B_LOCKED, codes.CODE_B_RESERVE,
              codes.CODE_B_WRONG, codes.CHALLENGE_CONFLICT, codes.READER_RESTARTED, codes.STORAGE_FULL,
              codes.STAFF_REJECTED, codes.STAFF_PASSWORD_WRONG, codes.STAFF_PASSWORD_LOCKED,
              codes.STAFF_PASSWORD_NOT_SET, codes.CANCELLED]
    assert len({c.code for c in causes}) == len(causes)


def test_every_code_has_a_patient_text_a_meaning_and_an_action():
    for c in codes.CODES:
        for field in (c.patient, c.meaning_ja, c.meaning_en, c.action_ja, c.action_en):
            assert field.strip(), c
        assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", c.patient), c  # Japanese, for the panel
        assert len(c.patient) <= 32, c  # one or two panel lines
        assert "エラーコード" not in c.patient  # the screen adds the code line itself
        assert c.seen and set(c.seen) <= {codes.SCREEN, codes.HOST, codes.LOG}
        assert c.screen is None or c.screen in SCREENS, c


def test_lookups_take_the_key_part_of_a_reason():
    assert codes.code_for("unexpected: KeyError") == codes.CARD_UNEXPECTED.code
    assert codes.by_reason("zzz") is None and codes.by_code("999") is None and codes.by_code(None) is None
    with pytest.raises(KeyError):
        codes.code_for("no_such_reason")


def test_ui_error_texts_are_the_table_texts():
    from mynad.ui.texts import ERRORS

    assert ERRORS == codes.patient_texts()


# ---------------------------------------------------------------- the staff sheet


def test_committed_sheet_is_the_generated_sheet(capsys):
    assert codes.main(["--markdown"]) == 0
    printed = capsys.readouterr().out
    assert printed == codes.markdown()
    assert SHEET.read_text(encoding="utf-8") == printed, \
        "docs/error-codes.md is stale: run  python -m mynad.core.codes --markdown > docs/error-codes.md"


def test_every_code_has_one_sheet_line_with_its_patient_text():
    sheet = codes.markdown()
    for c in codes.CODES:
        rows = [line for line in sheet.splitlines() if line.startswith(f"| **{c.code}** |")]
        assert len(rows) == 1, c.code
        assert c.patient in rows[0]


def test_cli_refuses_unknown_arguments(capsys):
    assert codes.main([]) == 2 and "usage" in capsys.readouterr().err


# ---------------------------------------------------------------- every reason used anywhere has a code


def _card_error_classes() -> list[type]:
    out, todo = [], [card_errors.CardError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo += cls.__subclasses__()
    return out


def test_every_card_error_takes_code_and_reason_from_the_table():
    classes = _card_error_classes()
    assert len(classes) >= 15
    for cls in classes:
        assert cls.cause in codes.CODES, cls
        assert (cls.code, cls.reason) == (cls.cause.code, cls.cause.reason), cls
        assert codes.code_for(cls.reason) == cls.code
    # the status-word mapping yields table causes too
    for sw in (0x63C2, 0x63C0, 0x6983, 0x6982, 0x6A82, 0x6D00, 0x6F00, 0x6A86):
        e = card_errors.error_for_sw(sw, "x")
        assert codes.by_code(e.code) is type(e).cause


def _literal_reasons(source: str) -> set[str]:
    found = set(re.findall(r'_abort\(\s*"([a-z_]+)"', source))
    found |= set(re.findall(r'_fail\(\s*"[a-z_]+",\s*"([a-z_]+)"', source))
    found |= set(re.findall(r'\breason="([a-z_]+)"', source))
    found |= set(re.findall(r'return False, "([a-z_]+)"', source))  # app.py: why 顔認証 is not offered
    return found


def test_every_reason_in_the_flow_and_the_shell_has_a_code():
    used: set[str] = set()
    for rel in ("core/flow.py", "app.py", "shell/cardio.py", "shell/openvisit.py"):
        used |= _literal_reasons(_source(rel))
    assert {"card_removed", "cert_expired", "pin_locked", "storage_full", "card_face_unreadable"} <= used
    for reason in used:
        assert reason in codes.FAMILY_REASONS or codes.by_reason(reason) is not None, reason


def test_no_code_is_written_as_a_literal_outside_the_table():
    """Codes come from mynad.core.codes; a literal '0xx' elsewhere would be a second truth.
    (ui/ is left out: screen descriptions give examples in words.)"""
    for path in DAEMON.rglob("*.py"):
        rel = path.relative_to(DAEMON).as_posix()
        if rel == "core/codes.py" or rel.startswith("ui/"):
            continue
        text = "\n".join(line.split("#", 1)[0] for line in path.read_text(encoding="utf-8").splitlines())
        assert not re.search(r"[\"']0[0-9]{2}[\"']", text), rel


def test_card_face_notes_have_codes():
    from mynad.ui.texts import FACE_NOTES

    for note in FACE_NOTES:
        assert codes.by_reason(note) is not None and codes.by_reason(note).screen == "method_choice", note


def test_the_virtual_hosts_codes_are_in_the_table():
    from mynasim.host import virtual_host as vh

    assert vh.ERR_QUALIFICATION == codes.QUALIFICATION_FAILED.code
    assert vh.ERR_SIGNATURE == codes.HOST_SIGNATURE_REJECTED.code
    assert vh.ERR_CERTIFICATE == codes.HOST_CERT_REJECTED.code
    assert vh.ERR_NO_VISIT == codes.HOST_UNKNOWN_VISIT.code


def test_the_host_protocol_doc_names_the_table_codes():
    doc = (ROOT / "docs" / "host-protocol.md").read_text(encoding="utf-8")
    pairs = re.findall(r"`([a-z_]+)` \(([0-9]{3})\)", doc)
    assert len(pairs) >= 12
    for reason, code in pairs:
        entry = codes.by_reason(reason)
        if entry is not None:  # reader.event kinds that are also reasons, and abort reasons
            assert entry.code == code, (reason, code)
        else:
            assert codes.by_code(code) is not None, (reason, code)


def test_opening_a_reader_restarted_abort_uses_the_table():
    from mynad.shell.openvisit import ABORT_CODE, ABORT_REASON

    assert (ABORT_REASON, ABORT_CODE) == (codes.READER_RESTARTED.reason, codes.READER_RESTARTED.code)


# ---------------------------------------------------------------- the flow shows each cause's own code


def _shows(actions: list[ev.Action]) -> list:
    return [a.screen for a in actions if isinstance(a, ev.Show)]


def _aborted(d: Driver) -> dict:
    sent = d.host("visit.aborted")
    assert len(sent) == 1
    return dict(sent[0].fields)


def _pin_locked(d: Driver) -> None:
    d.insert(locked=True, tries=0)
    d.choose("pin")


def _throttle(d: Driver) -> None:
    for i in range(d.flow.cfg.throttle_max_wrong):
        d.send(ev.CardRemoved())
        d.insert(visit_id=f"t{i}")
        d.choose("pin")
        d.type_pin()
        d.send(ev.PinChecked(False, 2, False))
    d.send(ev.CardRemoved())
    d.insert(visit_id="last")
    d.choose("pin")


def _staff(d: Driver, ok: bool = True, reason: str = "wrong") -> None:
    d.send(ev.PinLayoutReady(tuple("123456789") + ("取消", "0", "クリア")))
    for _ in range(d.flow.cfg.staff_password_length):
        d.send(ev.PinDigit())
    d.send(ev.StaffPasswordChecked(ok, reason))


def _face_fail(d: Driver) -> None:
    d.insert()
    d.choose("face")
    for _ in range(d.flow.cfg.face_attempts):
        d.send(ev.FaceDone(False, "no_match", 0.1))


def _auth(d: Driver) -> None:
    d.insert()
    d.choose("pin")
    d.type_pin()
    d.send(ev.PinChecked(True, 3, False))


SCENARIOS = {
    "not_myna": (lambda d: (d.send(ev.CardInserted("v1")), d.send(ev.CardFailed("002", "not_myna"))),
                 "card_error", codes.NOT_MYNA),
    "mute": (lambda d: (d.send(ev.CardInserted("v1")),
                        d.send(ev.CardFailed(card_errors.CardMute.code, card_errors.CardMute.reason))),
             "card_error", codes.CARD_MUTE),
    "cert_invalid": (lambda d: (d.send(ev.CardInserted("v1")), d.send(ev.CardFailed(
        card_errors.CertificateInvalid.code, card_errors.CertificateInvalid.reason))), "card_error",
                     codes.CERT_UNREADABLE),
    "cert_expired": (lambda d: d.insert(cert=CertState.EXPIRED), "cert_expired", codes.CERT_EXPIRED),
    "wrong_pin": (lambda d: (_auth_wrong(d)), "pin_backoff", codes.WRONG_PIN),
    "pin_locked": (_pin_locked, "pin_locked", codes.PIN_LOCKED),
    "pin_locked_end": (lambda d: (_pin_locked(d), d.key(NEG)), "cancelled", codes.PIN_LOCKED),
    "pin_throttled": (_throttle, "pin_throttled", codes.PIN_THROTTLED),
    "face_failed": (_face_fail, "face_failed", codes.FACE_FAILED),
    "face_failed_end": (lambda d: (_face_fail(d), d.key(NEG)), "cancelled", codes.FACE_FAILED),
    "photo_invalid": (lambda d: (d.insert(), d.choose("face"), d.send(ev.FaceUnavailable("no photo"))),
                      "face_failed", codes.FACE_UNAVAILABLE),
    "photo_invalid_end": (lambda d: (d.insert(), d.choose("face"), d.send(ev.FaceUnavailable("no photo")),
                                     d.key(NEG)), "cancelled", codes.FACE_UNAVAILABLE),
    "host_unreachable": (lambda d: (_auth(d), d.fire("host")), "host_error", codes.HOST_UNREACHABLE),
    "host_silent_at_challenge": (lambda d: (_auth(d), d.send(ev.AuthFailed(
        codes.HOST_UNREACHABLE.code, codes.HOST_UNREACHABLE.reason))), "card_error", codes.HOST_UNREACHABLE),
    "qualification_failed": (lambda d: (_auth(d), d.send(ev.HostQualification("v1", False))), "host_error",
                             codes.QUALIFICATION_FAILED),
    "host_cert_rejected": (lambda d: (_auth(d), d.send(ev.HostQualification(
        "v1", False, error_code=codes.HOST_CERT_REJECTED.code))), "host_error", codes.HOST_CERT_REJECTED),
    "host_signature_rejected": (lambda d: (_auth(d), d.send(ev.HostQualification(
        "v1", False, error_code=codes.HOST_SIGNATURE_REJECTED.code))), "host_error", codes.HOST_SIGNATURE_REJECTED),
    "host_unknown_visit": (lambda d: (_auth(d), d.send(ev.HostQualification(
        "v1", False, error_code=codes.HOST_UNKNOWN_VISIT.code))), "host_error", codes.HOST_UNKNOWN_VISIT),
    "not_registered": (lambda d: (_auth(d), d.qualify(registered=False), d.key(NEG)), "cancelled",
                       codes.NOT_REGISTERED),
    "cancelled": (lambda d: (d.insert(), d.key(NEG)), "cancelled", codes.CANCELLED),
    "timeout": (lambda d: (d.insert(), d.fire("screen")), "cancelled", codes.SCREEN_TIMEOUT),
    "staff_rejected": (lambda d: (d.insert(), d.choose("staff"), _staff(d), d.key(NEG)), "cancelled",
                       codes.STAFF_REJECTED),
    "staff_password_wrong": (lambda d: (d.insert(), d.choose("staff"), _staff(d, False), _staff(d, False),
                                        _staff(d, False)), "cancelled", codes.STAFF_PASSWORD_WRONG),
    "staff_password_locked": (lambda d: (d.insert(), d.choose("staff"), _staff(d, False, "locked")),
                              "visual_check", codes.STAFF_PASSWORD_LOCKED),
    "staff_password_not_set": (lambda d: (d.insert(), d.choose("staff"), _staff(d, False, "not_set")),
                               "visual_check", codes.STAFF_PASSWORD_NOT_SET),
    "challenge_conflict": (lambda d: (_auth(d), d.send(ev.ChallengeConflict("v1"))), "host_error",
                           codes.CHALLENGE_CONFLICT),
    "storage_full": (lambda d: (d.send(ev.StorageChanged(False, "disk full")), d.send(ev.CardInserted("v1"))),
                     "fault", codes.STORAGE_FULL),
}


def _auth_wrong(d: Driver) -> None:
    d.insert()
    d.choose("pin")
    d.type_pin()
    d.send(ev.PinChecked(False, 2, False))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_error_screen_shows_its_causes_code(name):
    steps, screen_id, cause = SCENARIOS[name]
    d = Driver()
    steps(d)
    screen = d.screen
    assert screen.id == screen_id, (name, screen)
    assert screen.params.get("code") == cause.code, (name, screen)
    if cause.screen == screen_id:  # the gallery draws this cause as the flow shows it
        example = codes.screen_params(cause)
        assert {k: screen.params.get(k) for k in ("code", "reason", "stage") if k in example} == \
            {k: example[k] for k in ("code", "reason", "stage") if k in example}, name
    vid = d.flow.visit.visit_id if d.flow.visit else None
    sent = [a for a in d.host("visit.aborted") if a.fields["visit_id"] == vid]
    if sent:  # the host got the same code as the patient sees
        assert sent[-1].fields["code"] == cause.code, (name, sent[-1].fields)
        reason = sent[-1].fields["reason"]
        assert reason in codes.FAMILY_REASONS or reason == "qualification_failed" or \
            codes.code_for(reason) == cause.code, (name, reason)


def test_every_cause_the_flow_shows_has_a_scenario():
    shown_by_flow = {c for c in codes.CODES if c.screen is not None and c.screen != "method_choice"
                     and SCREEN_OWNER.get(c.code, "flow") == "flow"}
    covered = {cause for _, _, cause in SCENARIOS.values()}
    assert shown_by_flow - covered == set(), sorted(c.code for c in shown_by_flow - covered)


# Causes the flow shows only as a card error that it passes through (code and reason from the card
# layer or the shell): their screens are covered by the card_error scenario above.
SCREEN_OWNER = {c.code: "card" for c in codes.CODES if c.screen == "card_error"
                and c not in (codes.NOT_MYNA, codes.CARD_MUTE, codes.CERT_UNREADABLE)}


def test_card_removed_by_the_patient_goes_to_the_host_only():
    d = Driver()
    d.insert()
    d.send(ev.CardRemoved())
    assert _aborted(d)["code"] == codes.CARD_REMOVED.code and d.screen.id == "idle"


def test_reader_events_carry_table_codes():
    d = Driver()
    _throttle(d)
    kinds = {a.fields["kind"]: a.fields["code"] for a in d.host("reader.event") if a.fields.get("code")}
    assert kinds["pin_throttled"] == codes.PIN_THROTTLED.code
    d = Driver()
    d.send(ev.StaffPasswordState(False))
    d.send(ev.HostVisualCheck())
    assert d.host("reader.event")[-1].fields["code"] == codes.STAFF_PASSWORD_NOT_SET.code


# Screens whose text does not print the code yet (mynad.ui.texts.content, owned with the
# translations): the flow already sends the code with them, see the scenarios above.
@pytest.mark.parametrize("cause", [c for c in codes.CODES if c.screen not in (None, "method_choice")],
                         ids=lambda c: c.code)
def test_every_error_screen_prints_its_code(cause):
    from mynad.ui.screens import Screen
    from mynad.ui.texts import screen_text

    text = screen_text(Screen(cause.screen, codes.screen_params(cause)))
    assert f"エラーコード: {cause.code}" in text, text


# ---------------------------------------------------------------- a walk over the whole flow

ERROR_SCREENS = {"card_error", "cert_expired", "pin_backoff", "pin_locked", "pin_throttled", "face_failed",
                 "host_error", "cancelled", "fault"}


def _is_error_screen(screen) -> bool:
    if screen.id == "visual_check":
        return screen.params.get("stage") in ("locked", "not_set")
    return screen.id in ERROR_SCREENS


def test_every_error_screen_the_flow_can_show_carries_a_known_code():
    """Breadth-first over every event in every state (as test_flow_exhaustive): each error screen
    has a code from the table (or the host's own), and the code the host is sent with an abort is
    the code on the screen shown with it."""
    flow = ReceptionFlow(FlowConfig(staff_password_length=4))
    timers: dict[str, int] = {}
    for a in flow.start():
        if isinstance(a, ev.StartTimer):
            timers[a.name] = a.token
    frontier = [(flow, timers)]
    seen: set[tuple] = set()
    shown: set[str] = set()
    now = 0.0
    for _depth in range(6):
        nxt = []
        for node_flow, node_timers in frontier:
            for event in alphabet(node_flow, node_timers):
                now += 1.0
                f = copy.deepcopy(node_flow)
                t = dict(node_timers)
                out = f.handle(event, now)
                aborts = [a.fields for a in out if isinstance(a, ev.SendHost) and a.type == "visit.aborted"]
                for s in _shows(out):
                    if not _is_error_screen(s):
                        continue
                    shown.add(s.id)
                    code = s.params.get("code")
                    assert code, (f.state, s)
                    assert codes.by_code(code) is not None, (f.state, s)
                    for fields in aborts:  # (fault: the device's state, e.g. disk full, not the visit's)
                        assert s.id == "fault" or fields["code"] == code, (f.state, s, fields)
                for fields in aborts:
                    reason = fields["reason"]
                    assert reason in codes.FAMILY_REASONS or codes.by_reason(reason) is not None, fields
                for a in out:
                    if isinstance(a, ev.SendHost) and a.type == "reader.event" and a.fields.get("code"):
                        assert codes.by_code(a.fields["code"]) is not None, a.fields
                    if isinstance(a, ev.StartTimer):
                        t[a.name] = a.token
                    elif isinstance(a, ev.CancelTimer):
                        t.pop(a.name, None)
                if isinstance(event, ev.TimerFired):
                    t.pop(event.name, None)
                v = f.visit
                facts = None if v is None else (v.has_pin, v.pin_tries, v.pin_locked, v.face_possible, v.entered,
                                                v.staff_from_host, v.qualification_only, v.face_attempt,
                                                v.abort_code, v.staff_wrong)
                key = (f.state, facts, f.visual_armed, f.storage_ok, f.staff_available, tuple(sorted(t)))
                if key not in seen:
                    seen.add(key)
                    nxt.append((f, t))
        frontier = nxt
    assert {"card_error", "cert_expired", "pin_locked", "face_failed", "host_error", "cancelled"} <= shown, shown



# ---------------------------------------------------------------- the flow spec is the project's own


def test_no_reference_to_notes_outside_the_repository():
    """Code and docs point at docs/reception-flow.md and docs/sources.md, never at notes that
    live outside the repository."""
    outside = re.compile(r"/work/shared|shared/docs|domain-research|stack-notes|design-anchors|seeds? 00")
    for top in ("daemon", "drivers", "models", "hw-sim", "docs"):
        for path in (ROOT / top).rglob("*"):
            if path.suffix not in (".py", ".md", ".toml") or ".venv" in path.parts:
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                assert not outside.search(line), f"{path.relative_to(ROOT)}:{n}: {line.strip()}"


def test_the_flow_spec_and_its_sources_are_in_docs():
    flow_doc = (ROOT / "docs" / "reception-flow.md").read_text(encoding="utf-8")
    sources = (ROOT / "docs" / "sources.md").read_text(encoding="utf-8")
    for screen in SCREENS:
        assert f"`{screen}`" in flow_doc, screen
    for n in range(1, 10):
        assert f"## S{n}." in sources
    for cited in set(re.findall(r"\[S([0-9])\]", flow_doc)):
        assert f"## S{cited}." in sources
