"""Visits a crash interrupts are closed at the host (issue 10): the real daemon in hw-sim.

kill -9 (or the watchdog's kill) ends the daemon before the flow can send
``visit.aborted``; the open visit is recorded in the state directory before
``visit.started`` leaves, and the next start closes it with ``reader_restarted``.
Every wait is for an event (a screen, a host message); the host link keeps the
reader's order, so a message queued at start arrives before the next visit.started.
"""

from __future__ import annotations

import json
import signal

import pytest

from mynad.shell.openvisit import ABORT_CODE, ABORT_REASON, FILE_NAME
from mynasim.rig import SimRig
from tests.integration.conftest import running_rig

pytestmark = pytest.mark.pcscd


@pytest.fixture(scope="module")
def rig(tmp_path_factory) -> SimRig:
    yield from running_rig(tmp_path_factory.mktemp("crash"), face={"enabled": False})


def record_path(rig: SimRig):
    return rig.run_dir / "state" / FILE_NAME


def host_got(rig: SimRig, mark: int, type_: str, visit_id: str) -> list[dict]:
    return [e.data for e in rig.timeline.entries("host", "received")[:]
            if e.data.get("type") == type_ and e.data.get("visit_id") == visit_id
            and rig.timeline.entries().index(e) >= mark]


def start_visit(rig: SimRig, profile: str = "taro") -> tuple[int, str]:
    """Place a card and wait until the host has opened the visit; (mark, visit id)."""
    mark = rig.mark()
    rig.place_card(profile)
    started = rig.wait_host("visit.started", after=mark, timeout=30).data
    return mark, started["visit_id"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "stopped"])
def test_a_visit_cut_short_by_the_daemon_ending_is_aborted_at_the_host_after_restart(rig: SimRig, sig: int):
    mark, visit_id = start_visit(rig)
    rig.stop_daemon(sig)
    rig.remove_card()
    rig.start_daemon()
    aborted = rig.wait_host("visit.aborted", after=mark, timeout=30, visit_id=visit_id).data
    assert aborted["reason"] == ABORT_REASON == "reader_restarted" and aborted["code"] == ABORT_CODE
    assert not record_path(rig).exists()  # closed once: the record went with the abort

    # a clean restart sends nothing more for it (a message queued at start would reach the
    # host before the next visit.started: the link keeps the reader's order)
    assert rig.stop_daemon() == 0
    rig.start_daemon()
    _, next_id = start_visit(rig)
    assert next_id != visit_id
    assert len(host_got(rig, mark, "visit.aborted", visit_id)) == 1
    m = rig.mark()
    rig.remove_card()
    rig.wait_host("visit.aborted", after=m, visit_id=next_id, reason="card_removed")
    rig.wait_screen("idle", after=m)


def test_a_visit_killed_twice_is_aborted_once(rig: SimRig):
    """Killed during the visit, then killed again right after the restart had closed it."""
    mark, visit_id = start_visit(rig)
    rig.stop_daemon(signal.SIGKILL)
    rig.remove_card()
    rig.start_daemon()
    rig.wait_host("visit.aborted", after=mark, timeout=30, visit_id=visit_id)
    rig.stop_daemon(signal.SIGKILL)
    rig.start_daemon()
    _, next_id = start_visit(rig)
    assert len(host_got(rig, mark, "visit.aborted", visit_id)) == 1
    m = rig.mark()
    rig.remove_card()
    rig.wait_host("visit.aborted", after=m, visit_id=next_id)
    rig.wait_screen("idle", after=m)


def test_a_visit_ended_by_removing_the_card_leaves_no_record(rig: SimRig):
    mark, visit_id = start_visit(rig)
    # the record was on disk before visit.started left: only the id and the start time
    record = json.loads(record_path(rig).read_text(encoding="utf-8"))
    assert set(record) == {"visit_id", "started"} and record["visit_id"] == visit_id
    m = rig.mark()
    rig.remove_card()
    rig.wait_host("visit.aborted", after=m, visit_id=visit_id, reason="card_removed")
    assert not record_path(rig).exists()  # removed when the abort was handed to the host sender
    rig.wait_screen("idle", after=m)


def pin_visit_to_done(rig: SimRig, mark: int) -> None:
    """From the method choice to the done screen, accepting every consent."""
    e = rig.wait_screen("method_choice", timeout=20, after=mark)
    rig.press(list(e.data["params"]["choices"]).index("pin") + 1)
    rig.wait_screen("pin_entry", after=mark)
    rig.type_digits(rig.profiles["taro"].pin)
    consents = ("consent", "consent_carryover")
    rig.timeline.wait_for(lambda x: x.source == "display" and x.data.get("screen") in consents,
                          timeout=20, after=mark, what="the consents")
    while True:  # accept every consent screen until the visit is done
        m = rig.mark()
        rig.press(12)
        e = rig.timeline.wait_for(lambda x: x.source == "display" and x.data.get("screen") in consents + ("done",),
                                  timeout=10, after=m, what="next consent or done")
        if e.data["screen"] == "done":
            break


def test_a_completed_visit_leaves_no_record(rig: SimRig):
    mark, visit_id = start_visit(rig)
    pin_visit_to_done(rig, mark)
    rig.wait_host("visit.result", after=mark, visit_id=visit_id)
    assert not record_path(rig).exists()
    m = rig.mark()
    rig.remove_card()
    rig.wait_screen("idle", after=m)
    assert host_got(rig, mark, "visit.aborted", visit_id) == []


def test_killed_the_moment_done_is_shown_the_result_still_reaches_the_host_once(rig: SimRig):
    """Issue #10: the done screen came before the result was on disk; kill -9 at that moment
    lost results the patient had been told were done (2 of 10). The done screen now waits for
    the result to be committed to the outbox."""
    for _ in range(3):
        mark, visit_id = start_visit(rig)
        pin_visit_to_done(rig, mark)  # returns the moment the done screen is drawn
        rig.stop_daemon(signal.SIGKILL)
        rig.remove_card()
        rig.start_daemon()
        rig.wait_host("visit.result", after=mark, timeout=30, visit_id=visit_id)
        m = rig.mark()
        _, next_id = start_visit(rig)  # the link keeps order: anything owed arrived before this
        assert len(host_got(rig, mark, "visit.result", visit_id)) == 1
        assert host_got(rig, mark, "visit.aborted", visit_id) == []
        rig.remove_card()
        rig.wait_host("visit.aborted", after=m, visit_id=next_id)
        rig.wait_screen("idle", after=m)


def test_killed_after_the_result_was_stored_the_visit_is_not_also_aborted(rig: SimRig):
    """Found by the soak (kill -9 a few ms after the decision): the result was in the outbox but
    the open-visit note was still on disk, so the restart sent visit.aborted as well, and the host
    got both. Storing a visit's end now marks it closed in the same SQLite transaction."""
    from mynad.hostlink import messages
    from mynad.hostlink.outbox import Outbox
    from mynad.shell.openvisit import OpenVisitRecord

    mark, visit_id = start_visit(rig)
    rig.stop_daemon(signal.SIGKILL)  # ... at the moment between storing the end and clearing the note:
    state = rig.run_dir / "state"
    box = Outbox.in_state_dir(state)
    box.put(messages.envelope({"type": "visit.aborted", "visit_id": visit_id, "reason": "card_removed",
                               "code": "032"}))
    box.close()
    assert OpenVisitRecord(state).load() is not None
    rig.remove_card()
    rig.start_daemon()
    aborted = rig.wait_host("visit.aborted", after=mark, timeout=30, visit_id=visit_id).data
    assert aborted["reason"] == "card_removed"  # the stored end, not "reader_restarted"
    _, next_id = start_visit(rig)  # the link keeps order: anything queued at start arrived before this
    assert len(host_got(rig, mark, "visit.aborted", visit_id)) == 1
    assert not record_path(rig).exists() or json.loads(record_path(rig).read_text())["visit_id"] == next_id
    m = rig.mark()
    rig.remove_card()
    rig.wait_host("visit.aborted", after=m, visit_id=next_id)
    rig.wait_screen("idle", after=m)
