"""Disk full, for real: the state directory on a small tmpfs (ENOSPC is the kernel's).

Issue #10: a full disk dropped messages silently (a traceback in the log, the message gone,
status said pending 0). Now a message that does not fit is kept, the space reserve is given
back so it fits, the flow is told (StorageChanged) so no new visit starts, and everything
is stored, in order, when space returns.
"""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from mynad.config import HostSection, ReaderSection
from mynad.core import events as ev
from mynad.shell import hostio as hostio_mod
from mynad.shell.hostio import HostIO
from mynad.shell.storage import RESERVE_NAME


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path) -> None:
    """Write until the filesystem refuses (ENOSPC)."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            assert e.errno == errno.ENOSPC


@pytest.fixture
def pty_path():
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


class Events:
    def __init__(self) -> None:
        self.seen: list[ev.Event] = []
        self.changed = asyncio.Event()

    def post(self, e: ev.Event) -> None:
        self.seen.append(e)
        self.changed.set()

    async def wait_for(self, pred, timeout: float = 30.0) -> ev.Event:
        async def loop():
            while True:
                for e in self.seen:
                    if pred(e):
                        return e
                self.changed.clear()
                await self.changed.wait()
        return await asyncio.wait_for(loop(), timeout)


def make(state_dir, tty, events: Events) -> HostIO:
    from tests.hostlink.peer import key_file  # the host-link key lives outside the small filesystem

    return HostIO(HostSection(transport="serial", serial_path=tty, key_file=key_file(Path(tempfile.mkdtemp()))),
                  ReaderSection(id="r1", state_dir=state_dir), post=events.post)


def test_disk_full_keeps_every_message_and_refuses_new_visits_until_space_returns(small_fs, pty_path, monkeypatch):
    monkeypatch.setattr(hostio_mod, "RECHECK_S", 0.05)

    async def main():
        events = Events()
        io = make(small_fs, pty_path, events)
        await io.start()
        assert (small_fs / RESERVE_NAME).exists() and io.storage_error is None
        fill(small_fs / "filler")  # someone else filled the disk
        futs = [io.send("reader.event", kind="test", code="", message=f"message {i}") for i in range(40)]
        ids = await asyncio.wait_for(asyncio.gather(*futs), 30)
        assert len(set(ids)) == 40  # every one stored (the reserve made room), none dropped
        bad = await events.wait_for(lambda e: isinstance(e, ev.StorageChanged) and not e.ok)
        assert "cannot be written" in bad.reason or "nearly full" in bad.reason
        assert not (small_fs / RESERVE_NAME).exists()
        bodies = [m["message"] for m in io.link.outbox.pending()]
        assert bodies == [f"message {i}" for i in range(40)]  # in order
        assert io.status()["storage"] != "ok"
        (small_fs / "filler").unlink()
        await events.wait_for(lambda e: isinstance(e, ev.StorageChanged) and e.ok)
        assert (small_fs / RESERVE_NAME).exists() and io.status()["storage"] == "ok"
        await io.stop()

    asyncio.run(main())


def test_message_that_cannot_be_stored_waits_in_memory_then_is_stored(small_fs, pty_path, monkeypatch):
    monkeypatch.setattr(hostio_mod, "RECHECK_S", 0.05)
    monkeypatch.setattr(hostio_mod, "RETRY_MAX_S", 0.2)

    async def main():
        events = Events()
        io = make(small_fs, pty_path, events)
        await io.start()
        (small_fs / RESERVE_NAME).unlink()  # no reserve left (given back before)
        fill(small_fs / "filler")
        stored = io.send("visit.result", visit_id="v1", ProcessingResultStatus=1)
        await events.wait_for(lambda e: isinstance(e, ev.StorageChanged) and not e.ok)
        for _ in range(3):  # a few tries fail; the message is still owed, not dropped
            await asyncio.sleep(0.1)
        assert not stored.done() and io.backlog == 1
        assert io.alive()
        (small_fs / "filler").unlink()
        msg_id = await asyncio.wait_for(stored, 30)
        assert [m["id"] for m in io.link.outbox.pending()] == [msg_id]
        await events.wait_for(lambda e: isinstance(e, ev.StorageChanged) and e.ok)
        await io.stop()

    asyncio.run(main())


def test_starting_on_a_nearly_full_disk_refuses_visits(small_fs, pty_path):
    async def main():
        events = Events()
        fill(small_fs / "filler")
        io = make(small_fs, pty_path, events)
        try:
            await io.start()
        except Exception as e:  # the outbox itself may not even be creatable: a clear error then
            assert "disk" in str(e).lower() or "full" in str(e).lower()
            return
        assert io.storage_error is not None
        assert any(isinstance(e, ev.StorageChanged) and not e.ok for e in events.seen)
        await io.stop()

    asyncio.run(main())
