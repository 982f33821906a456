"""Idle cost of the daemon: CPU (% of one core), wake-ups and RSS while no one is at the counter.

Runs the real mynad under hw-sim (idle screen, card reader watched, host link up with its
keep-alives) twice: with the keypad sleeping on GPIO edge interrupts (the default), and, as
the reference in the same run, with the keypad scanning all the time (``[keypad] irq =
false``, what the reader did before). CPU is read from /proc/<pid>/stat (utime+stime over the
window), wake-ups from the context switches of all the daemon's threads, RSS from VmRSS.

    .venv/bin/python bench/idle_cpu.py [--seconds 30]

Figures are for this machine; a Pi 4 core is several times slower, so the same work is a
larger share of its core (the README says so next to the figures).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "hw-sim"))

from mynasim.rig import SimRig  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15 of stat)


def switches(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(irq: bool, seconds: float, settle: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="idle-cpu-") as tmp:
        rig = SimRig(Path(tmp) / "rig", overrides={"keypad": {"irq": irq}}).start()
        try:
            assert rig.daemon is not None
            pid = rig.daemon.pid
            time.sleep(settle)  # imports, model loading and the first keep-alives are over
            c0, s0, t0 = cpu_seconds(pid), switches(pid), time.monotonic()
            step = seconds / 10
            for i in range(10):
                time.sleep(step)
                print(f"\r  keypad irq={irq!s:5}: {100 * (i + 1) // 10:3d} %", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
            c1, s1, t1 = cpu_seconds(pid), switches(pid), time.monotonic()
            return {"cpu_pct": 100 * (c1 - c0) / (t1 - t0), "wakeups_s": (s1 - s0) / (t1 - t0), "rss_mb": rss_mb(pid)}
        finally:
            rig.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="measuring window per run")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds to wait after the idle screen")
    args = ap.parse_args()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    rows = [("keypad on edge interrupts (mynad now)", measure(True, args.seconds, args.settle)),
            ("reference: keypad scanning at 200 Hz", measure(False, args.seconds, args.settle))]
    print(f"\nidle mynad under hw-sim, {args.seconds:.0f} s window, {os.cpu_count()} CPUs")
    print(f"{'':40} {'CPU % of a core':>16} {'wake-ups/s':>11} {'RSS MB':>8}")
    for name, r in rows:
        print(f"{name:40} {r['cpu_pct']:16.2f} {r['wakeups_s']:11.1f} {r['rss_mb']:8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
