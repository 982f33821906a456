"""LinkEngine against an in-memory port: receive order (deliver, remember, ACK) and hostile frames.

The port hands the engine whole frames (``stream = False``, as MQTT does) and records what the
engine writes; tests wait for what the engine writes, never for time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mynad.hostlink import codec, messages
from mynad.hostlink.codec import Decoder, Frame, FrameType
from mynad.hostlink.counters import MemoryCounterStore
from mynad.hostlink.engine import LinkEngine
from mynad.hostlink.outbox import MemoryOutbox
from tests.hostlink.peer import KEY, Peer


class LineDown(Exception):
    """The in-memory line failed (stands for a dropped serial cable or broker)."""


class MemoryPort:
    stream = False

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.written: asyncio.Queue[Frame] = asyncio.Queue()
        self.opens = 0
        self.fail_next_write_of: FrameType | None = None
        self._closed: asyncio.Event | None = None

    @property
    def describe(self) -> str:
        return "memory"

    async def open(self) -> None:
        self.opens += 1
        self._closed = asyncio.Event()

    async def read(self) -> bytes:
        assert self._closed is not None
        get = asyncio.ensure_future(self.incoming.get())
        closed = asyncio.ensure_future(self._closed.wait())
        done, _ = await asyncio.wait({get, closed}, return_when=asyncio.FIRST_COMPLETED)
        if get in done:
            closed.cancel()
            return get.result()
        get.cancel()
        raise LineDown("the memory line is closed")

    async def write(self, data: bytes) -> None:
        (frame,) = Decoder().feed(data)
        if self.fail_next_write_of == frame.type:
            self.fail_next_write_of = None
            raise LineDown("the line dropped while writing")
        self.written.put_nowait(frame)

    async def close(self) -> None:
        if self._closed is not None:
            self._closed.set()

    async def next_answer(self) -> Frame:
        """The next ACK or NAK the engine wrote (HELLOs are skipped)."""
        while True:
            f = await asyncio.wait_for(self.written.get(), 10)
            if f.type in (FrameType.ACK, FrameType.NAK):
                return f


HOST = Peer("host")


def data_frame(msg: dict[str, Any], seq: int = 7) -> bytes:
    return HOST.data(msg, seq)


def make_engine(port: MemoryPort, deliver) -> tuple[LinkEngine, MemoryOutbox]:
    store = MemoryOutbox()
    engine = LinkEngine(port, store, key=KEY, role="reader", counters=MemoryCounterStore(),
                        hello=lambda reply: {"type": "hello", "reply": reply},
                        accept=lambda m: messages.validate(m, messages.HOST_TO_READER), deliver=deliver,
                        store_in_thread=False, reconnect_min=0.01, reconnect_max=0.02, keepalive_s=60)
    return engine, store


def test_delivery_failure_is_not_acked_and_the_retry_is_delivered():
    msg = messages.staff_visual_check("check")
    delivered: list[dict] = []

    def deliver(m: dict) -> None:
        if not delivered and not getattr(deliver, "failed", False):
            deliver.failed = True  # type: ignore[attr-defined]
            raise OSError("the handler could not take it right now")
        delivered.append(m)

    async def main():
        port = MemoryPort()
        engine, store = make_engine(port, deliver)
        await engine.start()
        try:
            port.incoming.put_nowait(data_frame(msg))
            port.incoming.put_nowait(data_frame(messages.staff_visual_check("marker")))
            first = await port.next_answer()  # the answer to the marker: the failed one got none
            assert first.json()["id"] != msg["id"], "a message that was not delivered was acknowledged"
            assert not store.seen(msg["id"])
            port.incoming.put_nowait(data_frame(msg))  # the sender's retry
            again = await port.next_answer()
            assert again.type == FrameType.ACK and again.json()["id"] == msg["id"]
            assert store.seen(msg["id"])
            assert engine.counters["delivery_failed"] == 1
        finally:
            await engine.stop()

    asyncio.run(main())
    assert [m["id"] for m in delivered] == [delivered[0]["id"], msg["id"]]


def test_line_drops_while_acking_then_the_retry_is_acked_and_delivered_once():
    msg = messages.staff_visual_check("check")
    delivered: list[dict] = []

    async def main():
        port = MemoryPort()
        engine, _ = make_engine(port, delivered.append)
        await engine.start()
        try:
            port.fail_next_write_of = FrameType.ACK
            port.incoming.put_nowait(data_frame(msg))
            while port.opens < 2:  # the failed ACK write took the line down; the engine reopens it
                await asyncio.wait_for(port.written.get(), 10)
            port.incoming.put_nowait(data_frame(msg))  # the sender's retry after the lost ACK
            ack = await port.next_answer()
            assert ack.type == FrameType.ACK and ack.json()["id"] == msg["id"]
            assert engine.counters["duplicates"] == 1
        finally:
            await engine.stop()

    asyncio.run(main())
    assert [m["id"] for m in delivered] == [msg["id"]]  # acted on exactly once


def test_refused_message_is_not_remembered_so_its_retry_is_refused_again():
    bad = {"v": 1, "id": "x1", "type": "visit.challenge", "ts": "2026-01-01T00:00:00+09:00", "visit_id": "v"}

    async def main():
        port = MemoryPort()
        engine, store = make_engine(port, lambda m: None)
        await engine.start()
        try:
            for _ in range(2):
                port.incoming.put_nowait(data_frame(bad))
                nak = await port.next_answer()
                assert nak.type == FrameType.NAK and nak.json()["id"] == "x1"
            assert not store.seen("x1")
        finally:
            await engine.stop()

    asyncio.run(main())


def deep_payload(depth: int = 30_000) -> bytes:
    return b'{"v":1,"id":"deep","type":"staff.visual_check","ts":"t","x":' + b"[" * depth + b"]" * depth + b"}"


def test_deeply_nested_payload_raises_the_codec_error():
    import pytest

    f = Frame(FrameType.DATA, 1, deep_payload())
    with pytest.raises(codec.PayloadError):
        f.json()
    with pytest.raises(codec.PayloadError):  # within Python's recursion limit but deeper than the protocol allows
        Frame(FrameType.DATA, 1, b'{"a":' + b"[" * 100 + b"]" * 100 + b"}").json()
    with pytest.raises(codec.PayloadError):
        Frame(FrameType.DATA, 1, b"not json").json()
    assert Frame(FrameType.DATA, 1, b'{"a":[[1]]}').json() == {"a": [[1]]}


def test_hostile_frames_are_refused_within_the_frame_limit_and_the_link_stays_up():
    huge_type = {"v": 1, "id": "t1", "type": "x" * 65_000, "ts": "t"}
    huge_id = {"v": 1, "id": "i" * 65_000, "type": "staff.visual_check", "ts": "t"}
    good = messages.staff_visual_check("after the attack")
    delivered: list[dict] = []

    async def main():
        port = MemoryPort()
        engine, _ = make_engine(port, delivered.append)
        await engine.start()
        try:
            for raw in (deep_payload(), codec.dumps(huge_type), codec.dumps(huge_id)):
                assert len(raw) <= codec.MAX_PAYLOAD
                port.incoming.put_nowait(HOST.data_raw(raw))
            port.incoming.put_nowait(data_frame(good))
            answers = [await port.next_answer() for _ in range(4)]
            return answers, port.opens
        finally:
            await engine.stop()

    answers, opens = asyncio.run(main())
    assert [a.type for a in answers] == [FrameType.NAK] * 3 + [FrameType.ACK]
    for a in answers:  # every answer fits easily in a frame, whatever was sent
        assert len(a.payload) <= 512
    assert answers[1].json()["id"] == "t1" and "unknown message type" in answers[1].json()["reason"]
    assert answers[3].json()["id"] == good["id"]
    assert [m["id"] for m in delivered] == [good["id"]]
    assert opens == 1  # the line was never reset


def test_ping_is_a_signed_hello_round_trip_that_owes_nothing():
    """The technician's host-link self-test: HELLO(reply=false, ping=token) out, the peer's
    HELLO(reply=true) echoing the token back; a reply to another HELLO (the engine's own at open)
    does not count; None when the peer stays silent; nothing queued or stored either way."""

    async def main():
        port = MemoryPort()
        engine, store = make_engine(port, lambda m: None)
        await engine.start()
        try:
            async def answer() -> None:  # the host answers every HELLO that asks (the engine's own at open too)
                seq = 9
                while True:
                    f = await port.written.get()
                    if f.type == FrameType.HELLO and not f.json().get("reply"):
                        seq += 1
                        echo = {"ping": f.json()["ping"]} if "ping" in f.json() else {}
                        port.incoming.put_nowait(HOST.frame(FrameType.HELLO, seq, {"type": "hello", "reply": True,
                                                                                     **echo}))

            responder = asyncio.ensure_future(answer())
            rtt = await engine.ping(10)
            responder.cancel()
            assert rtt is not None and rtt >= 0
            assert await engine.ping(0.05) is None  # nobody answers this one
            assert engine.pending_count == 0 and store.pending() == []
        finally:
            await engine.stop()

    asyncio.run(main())
