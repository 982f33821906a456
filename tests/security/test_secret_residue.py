"""No copy of the staff password is left in the process after the check.

Two looks: the objects Python can reach (a gc walk, in this process), and the raw bytes of
every writable mapping (a fresh process reads its own /proc/self/mem, tests/security/
residue_probe.py). Each has a control that plants a copy and must find it.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mynad.core.secret import PinBuffer
from mynad.staffauth import LockoutPolicy, ScryptParams, StaffGate, set_password

PROBE = Path(__file__).with_name("residue_probe.py")
FAST = ScryptParams(10, 8, 1)


def _digits(n: int) -> list[int]:
    """Random digits that no object in this process holds yet: a full suite is full of numbers
    ("2147483648" holds "483648"), and a secret that was never typed must not count as a leak."""
    while True:
        digits = [b % 10 for b in os.urandom(n)]
        if _reachable_copies(digits) == 0:
            return digits


def _typed(digits: list[int]) -> bytearray:
    pin = PinBuffer(len(digits))
    for d in digits:
        pin.push(d)
    return pin.take_ascii()


def _reachable_copies(digits: list[int], *, exclude: tuple = ()) -> int:
    """bytes/bytearray/str objects that hold the digits, reachable from any gc-tracked object or
    from a local variable of any running frame (frames being executed are not gc-tracked)."""
    gc.collect()
    frames = []
    for frame in sys._current_frames().values():
        while frame is not None:
            frames.append(frame.f_locals)
            frame = frame.f_back
    pattern = bytes(0x30 + d for d in digits)
    text = pattern.decode()
    skip = {id(pattern), id(text), id(frames), *map(id, exclude)}
    hits, seen = 0, set()
    for obj in [*gc.get_objects(), *frames]:
        for x in (obj, *gc.get_referents(obj)):
            if id(x) in seen or id(x) in skip:
                continue
            seen.add(id(x))
            if isinstance(x, (bytes, bytearray)) and pattern in x:
                hits += 1
            elif isinstance(x, str) and text in x:
                hits += 1
    return hits


@pytest.fixture
def gate(tmp_path):
    stored = _digits(6)
    set_password(tmp_path, _typed(stored), length=6, params=FAST)
    return StaffGate(tmp_path, LockoutPolicy(), length=6), stored


@pytest.mark.parametrize("right", [True, False])
def test_gc_walk_finds_no_copy_after_the_check(gate, right):
    g, stored = gate
    entered = stored if right else _digits(6)
    holder = [_typed(entered)]  # a list is always gc-tracked: the walk sees it if not wiped
    verdict = g.check(holder[0])
    assert verdict.ok is right
    assert _reachable_copies(entered) == 0
    assert _reachable_copies(stored) == 0


def test_gc_walk_control_finds_a_planted_copy(gate):
    _, stored = gate
    holder = [bytes(0x30 + d for d in stored)]  # noqa: F841 - what the walk must find
    assert _reachable_copies(stored) == 1


def _probe(tmp_path, length: int, mode: str) -> dict:
    state = tmp_path / f"probe-{mode}-{length}"
    state.mkdir()
    r = subprocess.run([sys.executable, str(PROBE), str(state), str(length), mode],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("length,mode", [(6, "right"), (6, "wrong"), (12, "right"), (12, "wrong")])
def test_process_memory_holds_no_copy_after_the_check(tmp_path, length, mode):
    out = _probe(tmp_path, length, mode)
    assert out["outcome"] == ("ok" if mode == "right" else "wrong")
    assert out["scanned"] > 1_000_000
    assert out["found"] == {"stored": 0, "stored_utf16": 0, "entered": 0, "entered_utf16": 0}, out


def test_process_memory_probe_control_finds_a_live_copy(tmp_path):
    out = _probe(tmp_path, 6, "live")
    assert out["found"]["entered"] >= 1, out
