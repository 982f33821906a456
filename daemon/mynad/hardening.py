"""Process hardening at daemon start: no core dump may ever hold a PIN.

A PIN, the staff password and 照合番号B pass through this process's memory. A core dump
(a crash with ``ulimit -c`` set, ``systemd-coredump``, ``gcore``) would write that memory
to disk where it outlives the visit. Two independent locks, because either alone can be
undone by configuration outside the daemon:

* ``RLIMIT_CORE = 0`` (soft and hard), the same as ``LimitCORE=0`` in the unit, so a run
  outside systemd is covered too; the hard limit cannot be raised again without privilege;
* ``prctl(PR_SET_DUMPABLE, 0)``: the kernel writes no core even when a core pattern pipes to
  systemd-coredump (which ignores RLIMIT_CORE for its own storage), and processes of the
  same user can no longer ptrace the daemon or read its /proc/<pid>/mem.

Side effect, accepted: /proc/<pid>/ files of a non-dumpable process belong to root, so a
technician's debugger needs root. Both calls are harmless no-ops where unsupported.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import resource

log = logging.getLogger("mynad.hardening")

PR_SET_DUMPABLE = 4  # linux/prctl.h
PR_GET_DUMPABLE = 3


def _prctl(option: int, arg: int = 0) -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return int(libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)))


def dumpable() -> int:
    """The kernel's dumpable flag for this process (0 = no core, no same-user ptrace)."""
    return _prctl(PR_GET_DUMPABLE)


def forbid_core_dumps() -> bool:
    """Make this process undumpable; True when both locks are in place."""
    ok = True
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError) as e:
        log.warning("could not set RLIMIT_CORE to 0: %s", e)
        ok = False
    try:
        if _prctl(PR_SET_DUMPABLE, 0) != 0:
            log.warning("prctl(PR_SET_DUMPABLE, 0) failed: errno %d", ctypes.get_errno())
            ok = False
    except (OSError, AttributeError) as e:  # no libc prctl (not Linux)
        log.warning("prctl is not available here (%s); relying on RLIMIT_CORE only", e)
        ok = False
    return ok
