"""HostIO (the daemon's side of the host link): which host challenges are kept."""

from __future__ import annotations

import asyncio
import os

from mynad.config import HostSection, ReaderSection
from mynad.hostlink import messages
from mynad.shell.hostio import HostIO


def make(tmp_path) -> HostIO:
    return HostIO(HostSection(), ReaderSection(id="r1", state_dir=tmp_path), post=lambda e: None)


def test_only_the_waiting_visit_gets_a_challenge_others_are_dropped(tmp_path):
    async def main():
        io = make(tmp_path)
        io.send("visit.started", visit_id="v1")  # v1 now waits for its challenge
        forged = [messages.visit_challenge(f"forged{i}", os.urandom(32)) for i in range(50)]
        for m in forged:
            io._on_message(m)
        nonce = os.urandom(32)
        io._on_message(messages.visit_challenge("v1", nonce))
        assert await io.challenge("v1", 5) == nonce
        assert set(io._challenges) <= {"v1"}  # nothing kept for visits that were never started
        assert io.dropped["challenge for a visit that is not waiting for one"] == 50
        io.forget("v1")
        io._on_message(messages.visit_challenge("v1", os.urandom(32)))  # too late: v1 ended
        assert io._challenges == {}
        assert io.dropped["challenge for a visit that is not waiting for one"] == 51

    asyncio.run(main())


def test_a_second_different_nonce_does_not_replace_the_first(tmp_path):
    async def main():
        io = make(tmp_path)
        io.send("visit.started", visit_id="v2")
        first = os.urandom(32)
        io._on_message(messages.visit_challenge("v2", first))
        io._on_message(messages.visit_challenge("v2", os.urandom(32)))
        assert await io.challenge("v2", 5) == first
        assert io.dropped["second, different challenge for the visit"] == 1

    asyncio.run(main())
