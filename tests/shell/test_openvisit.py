"""The open-visit record on its own: what it holds, and how it refuses bad input."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mynad.shell.openvisit import FILE_NAME, OpenVisit, OpenVisitError, OpenVisitRecord, decode, encode


def test_round_trip_holds_only_the_id_and_the_start():
    v = OpenVisit("3f2a9c1b7d10", "2026-12-02T09:30:00+09:00")
    assert decode(encode(v)) == v
    assert set(json.loads(encode(v))) == {"visit_id", "started"}


@pytest.mark.parametrize("text", ["", "{", "[]", '{"visit_id": 5}', '{"visit_id": "a b"}', '{"visit_id": ""}',
                                  '{"visit_id": "' + "a" * 65 + '"}', "[" * 100_000])
def test_damaged_text_is_a_value_error(text):
    with pytest.raises(ValueError):
        decode(text)


def test_record_load_clear(tmp_path):
    rec = OpenVisitRecord(tmp_path)
    assert rec.load() is None
    rec.record("3f2a9c1b7d10", dt.datetime(2026, 12, 2, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=9))))
    assert rec.load() == OpenVisit("3f2a9c1b7d10", "2026-12-02T09:30:00+09:00")
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]  # no temp file left beside it
    assert rec.clear("another-visit") is False and rec.load() is not None  # only the named visit
    assert rec.clear("3f2a9c1b7d10") is True and rec.load() is None
    assert rec.clear() is False


def test_damaged_file_is_a_typed_error_and_can_be_removed(tmp_path):
    (tmp_path / FILE_NAME).write_text("not json", encoding="utf-8")
    rec = OpenVisitRecord(tmp_path)
    with pytest.raises(OpenVisitError, match="damaged"):
        rec.load()
    assert rec.clear("3f2a9c1b7d10") is False  # names no visit: left for load() to report
    assert rec.clear() is True


def test_unwritable_state_dir_is_a_typed_error(tmp_path):
    with pytest.raises(OpenVisitError, match="could not record"):
        OpenVisitRecord(tmp_path / "missing").record("3f2a9c1b7d10")
    with pytest.raises(OpenVisitError, match="not a plain id"):
        OpenVisitRecord(tmp_path).record("../../etc")


def test_a_second_visit_does_not_push_out_one_whose_end_is_not_yet_durable(tmp_path):
    """Found by the 10,000-visit soak: visit A ended (its abort queued, not yet in the outbox),
    the next card opened B, and the one-visit record forgot A; a watchdog kill then lost A's
    abort and the restart closed only B, so A stayed open at the host."""
    rec = OpenVisitRecord(tmp_path)
    rec.record("visitA")
    rec.record("visitB")
    assert [v.visit_id for v in rec.load_all()] == ["visitA", "visitB"]  # a restart now closes both
    assert rec.load().visit_id == "visitB"
    assert rec.clear("visitA") is True  # A's abort became durable
    assert [v.visit_id for v in OpenVisitRecord(tmp_path).load_all()] == ["visitB"]
    assert rec.clear("visitB") is True and not (tmp_path / "open-visit.json").exists()


def test_the_record_an_older_release_wrote_is_still_read(tmp_path):
    (tmp_path / "open-visit.json").write_text('{"visit_id": "3f2a9c1b7d10", "started": "2026-12-02T09:30:00+09:00"}\n')
    rec = OpenVisitRecord(tmp_path)
    assert rec.load_all() == [OpenVisit("3f2a9c1b7d10", "2026-12-02T09:30:00+09:00")]
    rec.record("4a4a4a4a4a4a")
    assert [v.visit_id for v in rec.load_all()] == ["3f2a9c1b7d10", "4a4a4a4a4a4a"]


def test_the_record_stays_bounded(tmp_path):
    from mynad.shell.openvisit import MAX_OPEN

    rec = OpenVisitRecord(tmp_path)
    for i in range(MAX_OPEN + 5):
        rec.record(f"v{i}")
    ids = [v.visit_id for v in rec.load_all()]
    assert len(ids) == MAX_OPEN and ids[-1] == f"v{MAX_OPEN + 4}"
