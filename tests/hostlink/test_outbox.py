"""The persistent outbox: survives a restart, keeps order, refuses to overflow."""

from __future__ import annotations

import pytest

from mynad.hostlink.messages import envelope
from mynad.hostlink.outbox import Outbox, OutboxFull


def test_survives_restart_in_order(tmp_path):
    ob = Outbox.in_state_dir(tmp_path)
    msgs = [envelope({"type": "visit.result", "n": i}) for i in range(5)]
    for m in msgs:
        ob.put(m)
    assert ob.ack(msgs[0]["id"])
    ob.close()
    ob = Outbox.in_state_dir(tmp_path)
    assert [m["n"] for m in ob.pending()] == [1, 2, 3, 4]
    assert ob.head()["id"] == msgs[1]["id"]
    mode = ob._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    ob.close()


def test_bounded_with_a_clear_error(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite", limit=3)
    for i in range(3):
        ob.put(envelope({"type": "reader.event", "n": i}))
    with pytest.raises(OutboxFull, match="limit 3"):
        ob.put(envelope({"type": "visit.result"}))
    assert ob.count() == 3


def test_reject_keeps_the_message_aside(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite")
    m = envelope({"type": "visit.result"})
    ob.put(m)
    assert ob.reject(m["id"], "unknown type")
    assert ob.count() == 0 and ob.rejected()[0]["reason"] == "unknown type"


def test_seen_ids_persist(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite")
    ob.remember("abc")
    ob.close()
    assert Outbox(tmp_path / "o.sqlite").seen("abc")


def test_storing_a_visits_end_marks_it_closed_in_the_same_transaction(tmp_path):
    """A restart asks ``closed`` before aborting a visit it finds open (soak finding: a result
    stored just before a kill -9 was followed by an abort for the same visit)."""
    from mynad.hostlink.outbox import Outbox

    box = Outbox(tmp_path / "o.sqlite")
    box.put({"id": "a", "type": "visit.started", "visit_id": "v1"})
    assert not box.closed("v1")
    box.put({"id": "b", "type": "visit.result", "visit_id": "v1"})
    assert box.closed("v1")
    box.ack("a")
    box.ack("b")  # delivered and gone from the queue: still known as closed
    assert box.closed("v1") and not box.closed("v2")
    box.close()
    assert Outbox(tmp_path / "o.sqlite").closed("v1")  # across a restart
