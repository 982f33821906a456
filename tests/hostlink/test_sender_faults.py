"""The engine's tasks never die on store errors, and a failing store causes no resend storm (issue 10).

Before: ``ack()`` raising after an ACK killed the sender for good (status still said connected,
pending grew, the watchdog kept petting); ``tried()`` raising with a frame in flight made the
sender resend every 0.1 s. The store here raises ``sqlite3.OperationalError("database or disk
is full")`` (what SQLite says on ENOSPC) until the test lets it recover. Tests wait for what
the engine does (frames it writes, store calls it makes), never for time.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections import Counter

from mynad.hostlink import messages
from mynad.hostlink.codec import FrameType
from mynad.hostlink.counters import MemoryCounterStore
from mynad.hostlink.engine import LinkEngine
from mynad.hostlink.outbox import MemoryOutbox
from tests.hostlink.peer import KEY, Peer
from tests.hostlink.test_engine import MemoryPort

DISK_FULL = "database or disk is full"


class Failing:
    """Which store calls fail, until ``recover()``; counts every call."""

    def __init__(self, *names: str, times: int | None = None) -> None:
        self.names = set(names)
        self.times = times  # None: until recover()
        self.calls: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._ok = threading.Event()

    def recover(self) -> None:
        self._ok.set()

    def check(self, name: str) -> None:
        self.calls[name] += 1
        if name not in self.names or self._ok.is_set():
            return
        if self.times is not None and self.failed[name] >= self.times:
            return
        self.failed[name] += 1
        raise sqlite3.OperationalError(DISK_FULL)


class FlakyOutbox(MemoryOutbox):
    def __init__(self, failing: Failing) -> None:
        super().__init__()
        self.failing = failing

    def head(self):
        self.failing.check("head")
        return super().head()

    def tried(self, msg_id):
        self.failing.check("tried")
        return super().tried(msg_id)

    def ack(self, msg_id):
        self.failing.check("ack")
        return super().ack(msg_id)

    def reject(self, msg_id, reason):
        self.failing.check("reject")
        return super().reject(msg_id, reason)


class FlakyCounters(MemoryCounterStore):
    def __init__(self, failing: Failing) -> None:
        super().__init__()
        self.failing = failing

    def save_send_limit(self, key_id, limit):
        self.failing.check("save_send_limit")
        return super().save_send_limit(key_id, limit)

    def save_peer_hwm(self, key_id, hwm):
        self.failing.check("save_peer_hwm")
        return super().save_peer_hwm(key_id, hwm)


HOST = Peer("host")


def engine_for(port, store, counters=None, deliver=lambda m: None, ack_timeout: float = 60.0) -> LinkEngine:
    return LinkEngine(port, store, key=KEY, role="reader", counters=counters or MemoryCounterStore(),
                      hello=lambda reply: {"type": "hello", "reply": reply},
                      accept=lambda m: messages.validate(m, messages.HOST_TO_READER), deliver=deliver,
                      store_in_thread=False, reconnect_min=0.01, reconnect_max=0.02, keepalive_s=60,
                      ack_timeout=ack_timeout, max_backoff=60.0, store_retry_min=0.01, store_retry_max=0.05,
                      counter_block=4)


async def until(cond, what: str, timeout: float = 10.0) -> None:
    """Wait for something the engine makes true (a safety deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.002)


async def next_data(port: MemoryPort):
    while True:
        f = await asyncio.wait_for(port.written.get(), 10)
        if f.type == FrameType.DATA:
            return f


def ack_for(f) -> bytes:
    return HOST.frame(FrameType.ACK, f.seq, {"id": f.json()["id"]})


def event(n: int = 0) -> dict:
    return messages.envelope({"type": "reader.event", "kind": "test", "code": None, "message": str(n)})


def test_sender_survives_ack_raising_and_sends_the_next_message():
    failing = Failing("ack")
    store = FlakyOutbox(failing)

    async def main():
        port = MemoryPort()
        engine = engine_for(port, store)
        await engine.start()
        try:
            m1 = await engine.submit(event(1))
            f = await next_data(port)
            assert f.json()["id"] == m1
            port.incoming.put_nowait(ack_for(f))
            await until(lambda: engine.status()["store_error"], "the failing delete is reported")
            st = engine.status()
            assert DISK_FULL in st["store_error"] and DISK_FULL in st["last_error"]
            assert engine.alive() and st["pending"] == 1  # still owed: the row is there
            await until(lambda: failing.calls["ack"] >= 3, "the delete is retried")
            failing.recover()
            await until(lambda: engine.counters["acked"] == 1, "the delete works once the disk has room")
            m2 = await engine.submit(event(2))  # the sender is alive: the next message goes out
            f2 = await next_data(port)
            assert f2.json()["id"] == m2
            port.incoming.put_nowait(ack_for(f2))
            await until(lambda: engine.counters["acked"] == 2, "the second message is acknowledged")
            st = engine.status()
            assert engine.alive() and st["alive"] and st["store_error"] is None and st["pending"] == 0
            assert store.count() == 0
        finally:
            await engine.stop()
        assert not engine.alive()

    asyncio.run(main())


def test_tried_raising_is_not_a_failed_send_no_resend_storm():
    failing = Failing("tried", times=5)  # the old sender resent at once each time this raised
    store = FlakyOutbox(failing)

    async def main():
        port = MemoryPort()
        engine = engine_for(port, store)
        await engine.start()
        try:
            mid = await engine.submit(event())
            frames = 0
            while engine.counters["acked"] == 0:  # ACK every DATA frame the engine writes
                get = asyncio.ensure_future(port.written.get())
                done, _ = await asyncio.wait({get}, timeout=0.01)
                if not done:
                    get.cancel()
                    continue
                f = get.result()
                if f.type == FrameType.DATA:
                    assert f.json()["id"] == mid
                    frames += 1
                    port.incoming.put_nowait(ack_for(f))
                    assert frames < 50, "resend storm"
            return frames, engine.status()
        finally:
            await engine.stop()

    frames, st = asyncio.run(main())
    assert frames == 1  # written once, acknowledged once (the old sender wrote 6)
    assert failing.failed["tried"] == 1 and st["retries"] == 0


def test_head_raising_is_retried_with_backoff_and_logged_once(caplog):
    failing = Failing("head")
    store = FlakyOutbox(failing)

    async def main():
        port = MemoryPort()
        engine = engine_for(port, store)
        await engine.start()
        try:
            await engine.submit(event())
            await until(lambda: failing.calls["head"] >= 6, "head is retried")
            assert engine.alive() and port.written.qsize() <= 1  # at most the opening HELLO
            failing.recover()
            f = await next_data(port)
            port.incoming.put_nowait(ack_for(f))
            await until(lambda: engine.counters["acked"] == 1, "the message is sent once the store reads again")
        finally:
            await engine.stop()

    with caplog.at_level(logging.INFO, logger="mynad.hostlink"):
        asyncio.run(main())
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR and "could not read" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in failures]
    assert any("works again" in r.getMessage() for r in caplog.records)


def test_counter_reservation_failing_sends_nothing_and_recovers():
    failing = Failing("save_send_limit")
    counters = FlakyCounters(failing)

    async def main():
        port = MemoryPort()
        engine = engine_for(port, MemoryOutbox(), counters=counters)
        await engine.start()
        try:
            await engine.submit(event())
            await until(lambda: failing.calls["save_send_limit"] >= 5, "the reservation is retried")
            assert port.written.empty()  # no frame ever leaves with an unreserved counter
            assert engine.alive() and DISK_FULL in engine.status()["store_error"]
            failing.recover()
            f = await next_data(port)
            port.incoming.put_nowait(ack_for(f))
            await until(lambda: engine.counters["acked"] == 1, "sent once the counter block is on disk")
            limit, _ = counters.load(engine.auth.key_id)
            assert f.counter < limit  # the frame's counter was reserved before use
        finally:
            await engine.stop()

    asyncio.run(main())


def test_peer_counter_not_saved_means_not_taken_and_the_resend_is_delivered_once():
    failing = Failing("save_peer_hwm")
    delivered: list[dict] = []
    msg = messages.staff_visual_check("check")

    async def main():
        port = MemoryPort()
        engine = engine_for(port, MemoryOutbox(), counters=FlakyCounters(failing), deliver=delivered.append)
        await engine.start()
        try:
            port.incoming.put_nowait(HOST.data(msg))
            await until(lambda: failing.failed["save_peer_hwm"] == 1, "the counter write fails")
            assert delivered == [] and engine.alive()
            failing.recover()
            port.incoming.put_nowait(HOST.data(msg))  # the host's resend, sealed with a new counter
            while True:
                f = await asyncio.wait_for(port.written.get(), 10)
                if f.type == FrameType.ACK:
                    break
            assert f.json()["id"] == msg["id"]
        finally:
            await engine.stop()

    asyncio.run(main())
    assert [m["id"] for m in delivered] == [msg["id"]]


def test_alive_tells_the_watchdog_whether_the_link_tasks_run_and_the_link_restarts(tmp_path):
    from mynad.hostlink.link import HostLink

    async def main():
        link = HostLink(MemoryPort(), tmp_path, lambda m: None, key=KEY, reconnect_min=0.01, keepalive_s=60)
        assert not link.alive() and link.status()["alive"] is False
        await link.start()
        assert link.alive() and link.status()["alive"]
        await link.stop()
        assert not link.alive()
        await link.start()  # stop + start on the same object (e.g. after a storage fault)
        try:
            assert link.alive()
            sender = link.engine._tasks[1]
            sender.cancel()  # a task that ended for whatever reason
            await asyncio.gather(sender, return_exceptions=True)
            assert not link.alive() and link.status()["alive"] is False
        finally:
            await link.stop()

    asyncio.run(main())
