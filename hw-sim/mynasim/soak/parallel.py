"""Several soaks side by side, each in a mount and network namespace of its own.

A soak is mostly waiting: the patient's pace, the faults' durations, the link's backoff.
One rig keeps about a third of a core busy at ~3.4 s a visit, so the 10,000-visit figure
takes nine hours with one rig, and about two with five on two cores. Rigs cannot simply
run side by side: pcscd owns ``/run/pcscd`` and vpcd's TCP port 35963 on the loopback,
so a second rig would talk to the first one's card. Each job therefore starts under
``unshare --mount --net``: a private tmpfs on ``/run/pcscd`` and a loopback of its own,
and with them its own pcscd, vpcd card, pty pair (or broker), supervisor, loop-mounted
state filesystem and run folder. Nothing but the CPU is shared, so a job is the same soak
as a single run, with the same audit; the parent only splits the plan and adds up.

Job ``j`` (1-based) of seed ``S`` plays the plan of seed ``S * 1000 + j`` in ``OUT/job-j``.
Jobs run outside the machine's test-bench lock (:mod:`mynasim.benchlock`): they touch no
shared reader, so the test suite may run beside them (that is how the suite is shown to
pass on a loaded machine).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROGRESS_FILE = "progress.json"
RESULT_FILE = "result.json"
JOB_LOG = "job.log"
PCSCD_RUN = Path("/run/pcscd")
PARENT_NS_ENV = "MYNA_SOAK_PARENT_NS"  # the parent's namespaces: a job must be in others

# struct ifreq for SIOCGIFFLAGS / SIOCSIFFLAGS: the name, then the flags (short), padding
_IFREQ = "16sH22x"
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


class IsolationError(RuntimeError):
    """A job cannot get namespaces of its own; the message says why."""


def job_seed(seed: int, job: int) -> int:
    return seed * 1000 + job


def split(total: int, jobs: int) -> list[int]:
    """Visits per job, as even as possible (the first jobs take the remainder)."""
    base, extra = divmod(total, jobs)
    return [base + (1 if j < extra else 0) for j in range(jobs)]


def can_isolate() -> str | None:
    """None when jobs can get their own namespaces here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "parallel jobs need root (unshare --mount --net, a tmpfs on /run/pcscd, a loop mount)"
    if shutil.which("unshare") is None:
        return "unshare(1) is missing (apt-get install util-linux)"
    return None


def enter_job_namespace() -> None:
    """Inside ``unshare --mount --net``: a private /run/pcscd and the loopback up.

    Refuses to run in the machine's own namespaces: mounting over /run/pcscd there would
    hide the system's pcscd from everyone."""
    try:
        mine = _namespaces()
    except OSError as e:
        raise IsolationError(f"cannot tell which namespaces this process is in ({e})") from None
    parents = os.environ.get(PARENT_NS_ENV, "")
    if not parents or any(ns in parents.split() for ns in mine):
        raise IsolationError("a soak job must run in mount and network namespaces of its own "
                             "(the parent starts it under unshare --mount --net)")
    PCSCD_RUN.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(PCSCD_RUN)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise IsolationError(f"cannot mount a private tmpfs on {PCSCD_RUN}: {done.stderr.strip()}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack(_IFREQ, b"lo", 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(s, _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


def _namespaces() -> list[str]:
    """This process's mount and network namespaces, e.g. ``mnt:[4026531841]``."""
    return [os.readlink(f"/proc/self/ns/{kind}") for kind in ("mnt", "net")]


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Whole or not at all: the parent may read it at any moment."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class Job:
    number: int
    visits: int
    seed: int
    out: Path
    proc: subprocess.Popen[bytes] | None = None
    log: Any = None
    progress: dict[str, Any] = field(default_factory=dict)

    def done_visits(self) -> int:
        return int(self.progress.get("visits", 0))


@dataclass
class Outcome:
    """What the summary table needs of a visit (the job's VisitOutcome, read back)."""

    kind: str
    method: str
    ending: str
    done: bool


@dataclass
class ParallelResult:
    outcomes: list[Outcome]
    faults: dict[str, dict[str, int]]
    counts: dict[str, int]
    failures: list[str]
    seconds: float
    state_fs: str
    supervisor: dict[str, int]
    notes: list[str]


def job_command(job: Job, passthrough: list[str]) -> list[str]:
    return ["unshare", "--mount", "--net", "--", sys.executable, "-m", "mynasim.cli", "soak", "--job",
            "--visits", str(job.visits), "--seed", str(job.seed), "--out", str(job.out), "--no-progress",
            *passthrough]


def run_jobs(out: Path, visits: int, seed: int, jobs: int, passthrough: list[str], *, progress: bool) -> ParallelResult:
    """Start the jobs, show their summed progress, wait, and add up what they report."""
    from mynasim.soak.runner import _progress

    t0 = time.monotonic()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    plan = [Job(j + 1, n, job_seed(seed, j + 1), out / f"job-{j + 1}") for j, n in enumerate(split(visits, jobs)) if n]
    env = dict(os.environ, **{PARENT_NS_ENV: " ".join(_namespaces())})
    env.pop("MYNA_BENCH_HELD", None)
    for job in plan:
        job.out.mkdir(parents=True)
        job.log = open(job.out.parent / f"job-{job.number}.log", "wb")
        # each job its own bench lock: it shares no reader with anyone
        job_env = dict(env, MYNA_RIG_LOCK=str(job.out.parent / f"job-{job.number}.lock"))
        job.proc = subprocess.Popen(job_command(job, passthrough), stdout=job.log, stderr=subprocess.STDOUT,
                                    env=job_env, start_new_session=True)
    bar = _progress(visits, progress)
    shown = 0
    try:
        while any(j.proc is not None and j.proc.poll() is None for j in plan):
            time.sleep(2.0)
            shown = _show(plan, bar, shown)
        shown = _show(plan, bar, shown)
    except KeyboardInterrupt:
        for j in plan:
            if j.proc is not None and j.proc.poll() is None:
                os.killpg(j.proc.pid, signal.SIGINT)
        for j in plan:
            if j.proc is not None:
                j.proc.wait()
        raise
    finally:
        bar.close()
        for j in plan:
            if j.log is not None:
                j.log.close()
    return _merge(plan, time.monotonic() - t0)


def _show(plan: list[Job], bar: Any, shown: int) -> int:
    for j in plan:
        j.progress = _read_json(j.out / PROGRESS_FILE) or j.progress
    total = sum(j.done_visits() for j in plan)
    counts: dict[str, int] = {}
    for j in plan:
        for k, v in (j.progress.get("counts") or {}).items():
            counts[k] = counts.get(k, 0) + int(v)
    if total > shown:
        bar.update(counts, n=total - shown)
    return max(shown, total)


def _merge(plan: list[Job], seconds: float) -> ParallelResult:
    outcomes: list[Outcome] = []
    faults: dict[str, dict[str, int]] = {}
    counts: dict[str, int] = {}
    supervisor: dict[str, int] = {}
    failures: list[str] = []
    notes: list[str] = [f"{len(plan)} jobs side by side, each in its own mount and network namespace "
                        f"(job j: seed S*1000+j, folder job-j)"]
    state_fs: set[str] = set()
    for j in plan:
        assert j.proc is not None
        r = _read_json(j.out / RESULT_FILE)
        if r is None:
            failures.append(f"job {j.number} (seed {j.seed}) ended with exit code {j.proc.returncode} and no result; "
                            f"see {j.out.parent / f'job-{j.number}.log'}")
            continue
        outcomes += [Outcome(o["kind"], o["method"], o["ending"], bool(o["done"])) for o in r["outcomes"]]
        for kind, c in r["faults"].items():
            mine = faults.setdefault(kind, {"planned": 0, "done": 0, "skipped": 0})
            for k, v in c.items():
                mine[k] = mine.get(k, 0) + int(v)
        for k, v in r["counts"].items():
            counts[k] = counts.get(k, 0) + int(v)
        for k, v in r["supervisor"].items():
            supervisor[k] = supervisor.get(k, 0) + int(v)
        failures += [f"job {j.number}: {f}" for f in r["failures"]]
        notes += [f"job {j.number}: {n}" for n in r["notes"]]
        state_fs.add(str(r["state_fs"]))
    return ParallelResult(outcomes, faults, counts, failures, seconds, "; ".join(sorted(state_fs)), supervisor, notes)


def job_result(result: Any) -> dict[str, Any]:
    """A job's SoakResult as the parent reads it back."""
    return {"outcomes": [{"kind": o.kind, "method": o.method, "ending": o.ending, "done": o.done}
                         for o in result.outcomes],
            "faults": result.faults, "counts": result.report.counts(), "failures": result.report.failures(),
            "seconds": result.seconds, "state_fs": result.state_fs, "supervisor": result.supervisor,
            "notes": result.notes}
