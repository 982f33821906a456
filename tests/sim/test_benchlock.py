"""The machine's test bench lock: a second run waits, a child of the holder does not deadlock
(a test running ``mynasim demo`` while its own session holds the bench: found in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mynasim import benchlock

HW_SIM = str(Path(benchlock.__file__).resolve().parent.parent)

CHILD = ("import sys; sys.path.insert(0, {p!r}); from mynasim import benchlock as b; "
         "b.LOCK_PATH = __import__('pathlib').Path({lock!r}); b.acquire(); print('held'); b.release()")


def fresh(monkeypatch, tmp_path) -> Path:
    """This process as if it held nothing (the suite's own pcscd fixture may hold the real bench)."""
    lock = tmp_path / "bench.lock"
    monkeypatch.setattr(benchlock, "LOCK_PATH", lock)
    monkeypatch.setattr(benchlock, "_count", 0)
    monkeypatch.setattr(benchlock, "_file", None)
    monkeypatch.delenv(benchlock.HELD_ENV, raising=False)
    return lock


def test_a_child_of_the_holder_uses_the_bench_without_waiting(tmp_path, monkeypatch):
    lock = fresh(monkeypatch, tmp_path)
    benchlock.acquire()
    try:
        assert os.environ[benchlock.HELD_ENV] == str(os.getpid())
        r = subprocess.run([sys.executable, "-c", CHILD.format(p=HW_SIM, lock=str(lock))],
                           capture_output=True, text=True, timeout=60)
        assert r.stdout.strip() == "held", r.stderr
    finally:
        benchlock.release()
    assert benchlock.HELD_ENV not in os.environ


def test_an_unrelated_process_waits_until_the_holder_releases(tmp_path, monkeypatch):
    lock = fresh(monkeypatch, tmp_path)
    benchlock.acquire()
    env = {k: v for k, v in os.environ.items() if k != benchlock.HELD_ENV}  # not our child, as far as it knows
    p = subprocess.Popen([sys.executable, "-c", CHILD.format(p=HW_SIM, lock=str(lock))], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()  # it says it waits (before it can print "held")
        assert "waiting" in line
    finally:
        benchlock.release()
    out, _ = p.communicate(timeout=60)
    assert out.strip() == "held"
