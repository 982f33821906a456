"""Run as a script: type a staff password the way the daemon does, check it, then look for
its digits anywhere in this process's writable memory.

The digits are drawn at random and kept only as a list of small ints (no byte or str
pattern exists until the very end). After the check, every writable mapping is copied
out of /proc/self/mem first; only then is the search pattern built and looked for in the
copies, so the pattern itself is never among what is searched. Prints one JSON line.

Usage: residue_probe.py STATE_DIR LENGTH right|wrong|live

``live`` is the probe's control: a ``bytes`` copy of the entered digits is kept alive; it
must be found, or the probe proves nothing.
"""

from __future__ import annotations

import gc
import json
import os
import re
import sys

from mynad.core.secret import PinBuffer
from mynad.staffauth import LockoutPolicy, ScryptParams, StaffGate, set_password


def random_digits(n: int) -> list[int]:
    return [b % 10 for b in os.urandom(n)]


def typed(digits: list[int]) -> bytearray:
    """Key by key into a PinBuffer, then take_ascii(): the path of app.py's staff check."""
    pin = PinBuffer(len(digits))
    for d in digits:
        pin.push(d)
    return pin.take_ascii()


def snapshot() -> list[bytes]:
    maps = open("/proc/self/maps").read().splitlines()  # read fully before any copy is made
    regions = []
    for line in maps:
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
        if m and m.group(3).startswith("rw"):
            regions.append((int(m.group(1), 16), int(m.group(2), 16)))
    out = []
    with open("/proc/self/mem", "rb", buffering=0) as mem:
        for lo, hi in regions:
            try:
                mem.seek(lo)
                out.append(mem.read(hi - lo))
            except OSError:
                pass
    return out


def main() -> None:
    state, length, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    stored = random_digits(length)
    set_password(__import__("pathlib").Path(state), typed(stored), length=length, params=ScryptParams(10, 8, 1))
    entered = stored if mode == "right" else random_digits(length)
    gate = StaffGate(state, LockoutPolicy(), length=length)
    if mode == "live":  # the probe's own control: a copy still referenced must be found
        kept = bytes(typed(entered))
        verdict = gate.check(bytearray(length))
    else:
        verdict = gate.check(typed(entered))
    gc.collect()
    copies = snapshot()
    found = {}
    for name, digits in (("stored", stored), ("entered", entered)):
        pattern = bytes(0x30 + d for d in digits)
        found[name] = sum(c.count(pattern) for c in copies)
        found[name + "_utf16"] = sum(c.count(pattern.decode().encode("utf-16-le")) for c in copies)
        del pattern
    print(json.dumps({"outcome": verdict.outcome, "found": found, "scanned": sum(map(len, copies))}))


if __name__ == "__main__":
    main()
