"""No core dump of a process that held a PIN: the daemon makes itself undumpable at start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CHILD = r"""
import resource
from mynad.hardening import dumpable, forbid_core_dumps
before = dumpable()
ok = forbid_core_dumps()
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
print(before, int(ok), dumpable(), resource.getrlimit(resource.RLIMIT_CORE), status.get("CoreDumping", "").strip())
"""


def test_startup_makes_the_process_undumpable():
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    before, ok, after, *rest = r.stdout.split(maxsplit=3)
    assert before == "1"  # the control: a normal process is dumpable
    assert ok == "1" and after == "0"
    assert rest[0].startswith("(0, 0)")


def test_main_calls_it_before_the_app_starts():
    """mynad.main: forbid_core_dumps() runs before App(...).run(), i.e. before any PIN."""
    import inspect

    from mynad import main

    src = inspect.getsource(main.main)
    assert 0 < src.index("forbid_core_dumps()") < src.index("App(cfg")


@pytest.mark.parametrize("hardened", [True, False])
def test_a_crash_writes_no_core(tmp_path, hardened):
    """SIGABRT with RLIMIT_CORE raised as far as allowed: the hardened child leaves no core file;
    the control (not hardened) does, where the kernel writes cores into the working folder."""
    if not hardened and Path("/proc/sys/kernel/core_pattern").read_text().strip() not in ("core", "core.%p"):
        pytest.skip("the kernel's core_pattern does not write into the working folder here")
    child = r"""
import os, resource, signal, sys
from mynad.hardening import forbid_core_dumps
if sys.argv[1] == "1":
    forbid_core_dumps()
try:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    raised = True
except (ValueError, OSError):
    raised = False  # the hard limit 0 cannot be raised again: also the point
print(raised, flush=True)
os.kill(os.getpid(), signal.SIGABRT)
"""
    r = subprocess.run([sys.executable, "-c", child, str(int(hardened))], capture_output=True, text=True,
                       cwd=tmp_path, timeout=60)
    assert r.returncode == -6
    cores = [p for p in tmp_path.iterdir() if p.name.startswith("core")]
    assert (cores == []) is hardened
    for core in cores:
        core.unlink()
