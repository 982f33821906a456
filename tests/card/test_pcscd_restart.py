"""The reader keeps working when pcscd restarts: the monitor says the service was lost,
reconnects by itself, and the next card is seen and read (no daemon restart)."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import time

import pytest

from tests.card.test_pcsc import READER, connect, slot, wait_kind  # noqa: F401
from mynad.card.session import MynaCard

pytestmark = [pytest.mark.pcscd, pytest.mark.slow]


def _pcscd_pids() -> list[int]:
    """The pcscd serving this test's /run/pcscd: one in our mount namespace. pcscds of soak
    jobs running beside the suite (each in a namespace of its own) are not ours to kill."""
    out = subprocess.run(["pgrep", "-x", "pcscd"], capture_output=True, text=True).stdout
    mine = os.readlink("/proc/self/ns/mnt")
    pids = []
    for p in out.split():
        try:
            if os.readlink(f"/proc/{p}/ns/mnt") == mine:
                pids.append(int(p))
        except OSError:
            continue  # gone, or not ours to look at
    return pids


def _start_pcscd() -> None:
    exe = shutil.which("pcscd") or "/usr/sbin/pcscd"
    subprocess.Popen([exe, "--foreground"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


def test_monitor_survives_a_pcscd_restart(slot):  # noqa: F811
    from myna_drivers.pcsc import PcscMonitor

    q: queue.Queue = queue.Queue()
    m = PcscMonitor(q.put, reader_filter=READER)
    m.start()
    try:
        slot.insert("taro")
        wait_kind(q, "inserted")
        pids = _pcscd_pids()
        assert pids, "pcscd is not running"
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        wait_kind(q, "service_lost", timeout=10)
        slot.remove()
        deadline = time.monotonic() + 10
        while _pcscd_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        # as systemd's socket activation would; through the simulator's own Pcscd when it started
        # the one killed, so later tests (the soak's pcscd_restart) can still restart it
        from mynasim.services import respawn_pcscd

        if not respawn_pcscd():
            _start_pcscd()
        wait_kind(q, "service_back", timeout=15)
        assert m.alive()
        slot.insert("hanako")
        wait_kind(q, "inserted", timeout=10)
        t = connect()
        try:
            assert MynaCard(t).identify().token == "JPKIAPICCTOKEN"
        finally:
            t.close()
    finally:
        m.stop()
