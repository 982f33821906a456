"""The sim bus carries keypad/camera state to the daemon's drivers and screens back to the timeline."""

from __future__ import annotations

import time

import pytest

from myna_drivers.simbus import SimBus
from mynasim.bus import SimBusServer
from mynasim.rig import write_toml
from mynasim.timeline import Timeline, TimelineTimeout


def test_state_reaches_late_subscribers_and_frames_reach_the_timeline(tmp_path):
    tl = Timeline(tmp_path / "t.jsonl")
    srv = SimBusServer(tmp_path / "bus.sock", tl)
    try:
        srv.publish("keypad", pressed=[5])
        bus = SimBus(str(tmp_path / "bus.sock"))
        bus.start()
        got: list[dict] = []
        bus.subscribe("keypad", got.append)
        assert bus.wait_connected(2)
        deadline = time.monotonic() + 2
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
        srv.publish("keypad", pressed=[])
        bus.send("display", screen="idle", png="/x.png", text="マイナンバーカードを置いてください")
        e = tl.wait_for(lambda e: e.source == "display", 2)
        assert e.data["screen"] == "idle"
        deadline = time.monotonic() + 2
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert got[0]["pressed"] == [5] and got[-1]["pressed"] == []
        assert "マイナンバーカード" in (tmp_path / "t.jsonl").read_text(encoding="utf-8")
        bus.close()
    finally:
        srv.close()


def test_malformed_bus_lines_are_ignored(tmp_path):
    import socket

    tl = Timeline()
    srv = SimBusServer(tmp_path / "bus.sock", tl)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(tmp_path / "bus.sock"))
        s.sendall(b"not json\n{\"no_dev\": 1}\n{\"dev\": \"display\", \"screen\": \"idle\"}\n")
        assert tl.wait_for(lambda e: e.source == "display", 2).data["screen"] == "idle"
        s.close()
    finally:
        srv.close()


def test_timeline_wait_times_out_with_context():
    tl = Timeline()
    tl.add("display", "frame", screen="idle")
    with pytest.raises(TimelineTimeout, match="display:frame:idle"):
        tl.wait_for(lambda e: e.data.get("screen") == "done", 0.05, what="done")


def test_write_toml_round_trips(tmp_path):
    import tomllib

    data = {"a": {"s": 'x"y', "n": 3, "f": 1.5, "b": True, "l": [1, 2]}, "b": {}}
    write_toml(data, tmp_path / "c.toml")
    assert tomllib.loads((tmp_path / "c.toml").read_text()) == data


def test_a_bounded_timeline_keeps_absolute_indices_and_a_window(tmp_path):
    """A long soak keeps only recent entries in memory; indices and waits stay absolute,
    and the file still holds every entry."""
    from mynasim.timeline import Timeline

    tl = Timeline(tmp_path / "t.jsonl", keep=5)
    for n in range(12):
        tl.add("rig", "tick", n=n)
    assert len(tl) == 12
    assert [e.data["n"] for e in tl.entries()] == [7, 8, 9, 10, 11]
    got, nxt = tl.since(9)
    assert [e.data["n"] for e in got] == [9, 10, 11] and nxt == 12
    got, nxt = tl.since(0)  # older ones have left the window: from the oldest kept
    assert [e.data["n"] for e in got][0] == 7 and nxt == 12
    e, after = tl.wait_for_at(lambda e: e.data["n"] % 2 == 0, 0.0, after=3)
    assert e.data["n"] == 8 and after == 9
    tl.close()
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == 12
