"""Bounded memory in the transports and the daemon's queue to the outbox (issue 10, defect 4)."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from myna_drivers.mqtt_link import MqttPort
from myna_drivers.serial_link import SerialPort
from mynad.config import HostSection, ReaderSection
from mynad.shell.hostio import QUEUE_LIMIT, HostIO, HostQueueFull
from mynasim.host import pty_pair


async def until(cond, what: str, timeout: float = 10.0) -> None:
    """Wait for a condition the code under test makes true (a safety deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.005)


def test_serial_receive_buffer_is_bounded_by_back_pressure_and_loses_nothing(tmp_path):
    r, h, close = pty_pair(tmp_path)
    sent = os.urandom(200_000)

    def writer() -> None:  # the peer writes far more than the buffer holds; the pty blocks it
        fd = os.open(h, os.O_WRONLY | os.O_NOCTTY)
        try:
            os.write(fd, sent)
        finally:
            os.close(fd)

    async def main() -> bytes:
        port = SerialPort(r, chunk=1024, max_buffered=8192)
        await port.open()
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        try:
            await until(lambda: port.paused, "the port stops reading when its buffer is full")
            assert port.buffered <= port.max_buffered + port.chunk
            got = bytearray()
            while len(got) < len(sent):
                got += await asyncio.wait_for(port.read(), 10)
                assert port.buffered <= port.max_buffered + port.chunk
            assert port.pauses >= 1
            return bytes(got)
        finally:
            await port.close()
            await asyncio.to_thread(t.join, 10)

    try:
        got = asyncio.run(main())
    finally:
        close()
    assert got == sent


@pytest.mark.mqtt
def test_mqtt_refuses_oversized_payloads_and_bounds_its_queue(mosquitto):
    import aiomqtt

    host, port_no = mosquitto

    async def main() -> None:
        port = MqttPort(host, port_no, sub_topic="lim/down", pub_topic="lim/up", client_id="lim-reader",
                        max_payload=1000, max_queued=4)
        await port.open()
        try:
            async with aiomqtt.Client(host, port_no, identifier="lim-attacker") as attacker:
                await attacker.publish("lim/down", b"A" * 5000, qos=1)
                await attacker.publish("lim/down", b"small", qos=1)
                assert await asyncio.wait_for(port.read(), 10) == b"small"
                assert port.dropped["payload too large"] == 1
                for i in range(4):  # nobody reads: max_queued frames wait
                    await attacker.publish("lim/down", b"f%d" % i, qos=1)
                await until(lambda: port._rx.qsize() == 4, "the receive queue is full")
                for i in range(4, 20):  # one at a time, so each reaches our pump (not aiomqtt's limit)
                    await attacker.publish("lim/down", b"f%d" % i, qos=1)
                    await until(lambda: port.dropped["receive queue full"] == i - 3, f"frame f{i} dropped")
                assert port._rx.qsize() == 4
                assert [await port.read() for _ in range(4)] == [b"f0", b"f1", b"f2", b"f3"]
        finally:
            await port.close()

    asyncio.run(main())


def test_hostio_queue_is_bounded_and_refuses_with_a_typed_error(tmp_path):
    async def main() -> None:
        io = HostIO(HostSection(), ReaderSection(id="r1", state_dir=tmp_path), post=lambda e: None)
        for i in range(QUEUE_LIMIT):  # the sender task is not running: nothing reaches the outbox
            io.send("reader.event", kind="test", code=None, message=str(i))
        with pytest.raises(HostQueueFull, match="not queued"):
            io.send("visit.result", visit_id="v1")
        assert io.backlog == QUEUE_LIMIT
        assert io.status()["host_dropped"] == {"message refused: queue to the outbox full": 1}
        waiting = asyncio.ensure_future(io.submit("visit.result", visit_id="v1"))
        await asyncio.sleep(0)
        assert not waiting.done()  # back-pressure: submit waits for room
        io._queue.get_nowait()
        await asyncio.wait_for(waiting, 5)
        assert io.backlog == QUEUE_LIMIT

    asyncio.run(main())
