#!/usr/bin/env python3
"""Every figure the docs still owe for real hardware, in one run and one file.

The budgets of issue #9 (face pipeline against OpenCV's, anti-spoofing, card face, memory) and
the idle, screen, voice and password figures were measured on the x86 build machine; the
Raspberry Pi's figures are missing because nobody ran the benchmarks there. This runs them
one after another, each beside the reference it prints in the same run, and writes a single
markdown report that starts with what the machine is (board model, CPU, cores, memory, OS,
onnxruntime and OpenCV versions, whether onnxruntime has its blocked layout here), so the
figures can be sent back and put next to the x86 ones without guessing where they came from.

On a Pi, from a checkout set up with ``bash scripts/setup.sh``:

    sudo .venv/bin/python bench/device_report.py                 # all, ~25-40 min on a Pi 4
    sudo .venv/bin/python bench/device_report.py --only face,antispoof
    .venv/bin/python bench/device_report.py --quick              # a short pass: does every bench run?

A bench that fails is recorded with its exit status and the end of its error output, and the
run goes on with the next one: one missing figure must not cost the others. Run it on an
otherwise idle machine (every bench compares against a reference in the same run, but a busy
machine inflates both).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "models") not in sys.path:  # a checkout without the editable install still reports its layout
    sys.path.insert(0, str(REPO / "models"))


@dataclass(frozen=True)
class Step:
    name: str
    script: str
    args: tuple[str, ...]
    quick: tuple[str, ...]
    answers: str


STEPS = (
    Step("face", "face_bench.py", ("--threads", "1,2,4"), ("--frames", "4", "--repeat", "1", "--threads", "1"),
         "per-frame face pipeline, ours against OpenCV's FaceDetectorYN + FaceRecognizerSF (issue #9: "
         "ours must be faster, on ARM too)"),
    Step("antispoof", "antispoof_bench.py", (), ("--frames", "4", "--repeat", "1"),
         "passive anti-spoofing per frame (budget 5 ms, 1 thread), YuNet on the same frames as the reference"),
    Step("cardface", "cardface_bench.py", ("--n", "100", "--reference", "full", "--no-progress"),
         ("--n", "4", "--reference", "none", "--no-progress"),
         "card face to 照合番号B per card (budget 200 ms) and its wrong-submit count"),
    Step("memory", "daemon_rss.py", (), (), "peak RSS with every model loaded (budget 250 MB)"),
    Step("render", "render_bench.py", (), ("--visits", "2"), "screen drawing per visit"),
    Step("voice", "voice_bench.py", (), ("--limit", "2"), "spoken prompts: synthesis time against their length"),
    Step("password", "staff_password_cost.py", (), ("--repeat", "1"), "staff password hashing (scrypt) cost"),
    Step("idle", "idle_cpu.py", ("--seconds", "30"), ("--seconds", "2", "--settle", "2"),
         "the daemon's idle CPU and wake-ups (under hw-sim here; on a Pi also see docs/pi-hardware.md)"),
)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip("\x00\n ")
    except OSError:
        return ""


ARM_CORES = {"0xd03": "Cortex-A53", "0xd08": "Cortex-A72", "0xd0b": "Cortex-A76"}  # Pi 3, Pi 4, Pi 5


def _cpu_name() -> str:
    """x86 kernels name the CPU; ARM ones give a part number (and the SoC as 'Hardware')."""
    first: dict[str, str] = {}
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        first.setdefault(key.strip(), value.strip())
    if first.get("model name"):
        return first["model name"]
    part = first.get("CPU part", "")
    core = ARM_CORES.get(part, f"ARM part {part}" if part else "")
    soc = first.get("Hardware", "")
    return ", ".join(x for x in (core, soc) if x) or platform.processor() or "unknown"


def _os_name() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip('"')
    return platform.platform()


def _mem_total_mb() -> str:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024:.0f} MB"
    return "unknown"


def _version(module: str) -> str:
    try:
        mod = __import__(module)
    except Exception as e:  # a missing or broken library is itself a finding for the report
        return f"not importable ({type(e).__name__})"
    return str(getattr(mod, "__version__", "unknown"))


def identity() -> list[tuple[str, str]]:
    """What the figures were measured on: enough to put them beside another machine's."""
    try:
        from myna_models.graphs import blocked_layout_available
        blocked = "yes (x86 with AVX2/AVX-512)" if blocked_layout_available() else "no (plain NCHW, as on ARM)"
    except Exception as e:
        blocked = f"unknown ({type(e).__name__})"
    load1, load5, _ = os.getloadavg()
    return [
        ("board", _read("/proc/device-tree/model") or "not a device-tree board"),
        ("cpu", f"{_cpu_name()}, {platform.machine()}, {os.cpu_count()} CPUs"),
        ("memory", _mem_total_mb()),
        ("os", f"{_os_name()}, kernel {platform.release()}"),
        ("python", platform.python_version()),
        ("onnxruntime", _version("onnxruntime")),
        ("opencv", _version("cv2")),
        ("onnxruntime blocked layout", blocked),
        ("load average at start", f"{load1:.2f} (1 min), {load5:.2f} (5 min)"),
    ]


def run_step(step: Step, quick: bool, log) -> tuple[int, str, float]:
    """(exit status, what the bench printed, seconds). Its progress bars go to our stderr as they come."""
    cmd = [sys.executable, str(REPO / "bench" / step.script), *(step.quick if quick else step.args)]
    print(f"\n== {step.name}: {' '.join(cmd[1:])}", file=log, flush=True)
    t0 = time.monotonic()
    tail: list[str] = []
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stdout:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=stdout, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, SDL_VIDEODRIVER=os.environ.get("SDL_VIDEODRIVER", "dummy")))
        assert proc.stderr is not None
        # stderr carries the progress bars: pass it through as it comes, keep its end for a failure
        for line in proc.stderr:
            log.write(line)
            log.flush()
            tail.append(line)
            del tail[:-30]
        code = proc.wait()
        stdout.seek(0)
        out = stdout.read().rstrip()
    if code != 0:
        out = (out + "\n\n" if out else "") + "error output (last lines):\n" + "".join(tail).rstrip()
    return code, out, time.monotonic() - t0


def report(ident: list[tuple[str, str]], results: list[tuple[Step, int, str, float]], quick: bool) -> str:
    lines = [f"# myna-reader device report: {socket.gethostname()}, {dt.datetime.now().isoformat(timespec='seconds')}",
             "", "Made by `bench/device_report.py`" + (" --quick (short runs: checks that each bench runs; "
                                                        "its figures are not the benchmark's)" if quick else "") + ".",
             "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in ident]
    lines += ["", "| bench | status | minutes |", "|---|---|---|"]
    lines += [f"| {s.name} | {'ok' if code == 0 else f'FAILED (exit {code})'} | {sec / 60:.1f} |"
              for s, code, _, sec in results]
    for s, code, out, _ in results:
        lines += ["", f"## {s.name}: {s.answers}", "", f"`bench/{s.script}`" + ("" if code == 0 else
                                                                                  f": FAILED, exit status {code}"),
                  "", "```", out or "(no output)", "```"]
    return "\n".join(lines) + "\n"


def main() -> int:
    names = [s.name for s in STEPS]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help=f"comma list of: {', '.join(names)} (default: all)")
    ap.add_argument("--quick", action="store_true", help="short runs: check that every bench runs here")
    ap.add_argument("--out", type=Path, help="report file (default bench-report-HOST-DATE.md in the current folder)")
    args = ap.parse_args()
    wanted = names if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        ap.error(f"unknown bench {', '.join(unknown)} (known: {', '.join(names)})")
    out = args.out or Path(f"bench-report-{socket.gethostname()}-{dt.date.today():%Y%m%d}.md")
    ident = identity()
    results: list[tuple[Step, int, str, float]] = []
    steps = [s for s in STEPS if s.name in wanted]
    for i, step in enumerate(steps, 1):
        print(f"[{i}/{len(steps)}] {step.name}: {step.answers}", file=sys.stderr, flush=True)
        code, text, sec = run_step(step, args.quick, sys.stderr)
        results.append((step, code, text, sec))
        out.write_text(report(ident, results, args.quick), encoding="utf-8")  # a cut-off run keeps what it has
    failed = [s.name for s, code, _, _ in results if code != 0]
    print(f"\nreport: {out}" + (f"; FAILED: {', '.join(failed)}" if failed else "; every bench ran"), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
