"""A card pulled right after a face attempt starts: the visit ends before the attempt's task runs.

Found by the 10,000-visit soak (seed 2, job 3): forget() cleared the card's embedding task
between start() and the attempt's first step, which asserted it was there (AssertionError in
a background task). The attempt now takes the task at start()."""

from __future__ import annotations

import asyncio


def test_visit_ended_between_start_and_the_attempt_leaves_no_task_error():
    from mynad.shell.faceio import FaceIO

    async def scenario() -> list:
        loop = asyncio.get_running_loop()
        errors: list = []
        loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        posted: list = []
        fio = FaceIO(cfg=None, camera=None, post=posted.append, loop=loop)
        fio.engine = object()  # only "models loaded" matters before the session runs
        gate = loop.create_future()

        async def read_photo() -> bytes:
            await gate  # the card photo is still being read
            return b""

        fio.prepare(read_photo)
        fio.start(1)
        fio.forget()  # card pulled: the visit ends before the attempt first runs
        for _ in range(5):
            await asyncio.sleep(0)
        import gc

        gc.collect()
        await asyncio.sleep(0)
        fio._worker.shutdown(wait=False)
        return errors

    errors = asyncio.run(scenario())
    assert not [e for e in errors if isinstance(e.get("exception"), AssertionError)], errors
