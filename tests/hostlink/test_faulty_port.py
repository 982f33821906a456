"""hw-sim's FaultyPort: the line faults the virtual host puts on any port (not in the daemon's engine)."""

from __future__ import annotations

import asyncio

from mynad.hostlink import codec
from mynad.hostlink.codec import Decoder, Frame, FrameType
from mynasim.host import FaultyPort
from tests.hostlink.test_engine import MemoryPort


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_deaf_drops_what_is_read_until_it_hears_again():
    async def main():
        inner, clock = MemoryPort(), Clock()
        port = FaultyPort(inner, clock=clock)
        await port.open()
        port.deaf(5.0)
        inner.incoming.put_nowait(b"lost")
        reading = asyncio.ensure_future(port.read())
        await asyncio.sleep(0)  # the port has read and thrown away b"lost"
        for _ in range(5):
            await asyncio.sleep(0)
        assert not reading.done() and port.faults["bytes read while the simulated host was deaf"] == 4
        clock.t = 5.0  # deafness over
        inner.incoming.put_nowait(b"heard")
        assert await asyncio.wait_for(reading, 5) == b"heard"
        port.deaf(None)  # until told otherwise
        assert port.is_deaf()
        port.hear()
        assert not port.is_deaf()

    asyncio.run(main())


def test_corrupt_next_breaks_the_crc_of_that_many_writes_and_tap_sees_the_bytes():
    seen: list[bytes] = []
    written: list[bytes] = []

    class Sink:
        stream = True
        describe = "sink"

        async def write(self, data: bytes) -> None:
            written.append(data)

    async def main():
        port = FaultyPort(Sink(), tap=seen.append)
        port.corrupt_next(1)
        raw = codec.encode(Frame.of(FrameType.DATA, 1, {"x": 1}))
        await port.write(raw)
        await port.write(raw)
        assert seen == written and written[1] == raw and written[0] != raw
        d = Decoder()
        assert len(d.feed(written[0] + written[1])) == 1 and d.dropped[codec.R_CRC] == 1

    asyncio.run(main())


def test_drop_closes_now_and_open_waits_out_the_hold():
    async def main():
        inner, clock = MemoryPort(), Clock()
        port = FaultyPort(inner, clock=clock)
        await port.open()
        reading = asyncio.ensure_future(port.read())
        port.drop(10.0)
        try:
            await asyncio.wait_for(reading, 5)
            raise AssertionError("the read should fail: the line was dropped")
        except Exception as e:
            assert "closed" in str(e)
        opening = asyncio.ensure_future(port.open())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not opening.done() and inner.opens == 1  # held closed
        opening.cancel()
        clock.t = 10.0
        await asyncio.wait_for(port.open(), 5)  # the hold is over: opens at once
        assert inner.opens == 2

    asyncio.run(main())
