"""``mynasim soak`` on the command line (registered by mynasim.cli)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from collections import Counter

from mynasim.soak.plan import PlanOptions, directed_plan, fault_kinds_for


def add_soak(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("soak", help="PIN and face visits through the real daemon with faults, then an audit",
                       description="Visits through the real daemon (pcscd + virtual card, pty or MQTT host link, "
                                   "sim keypad/cameras) under a systemd-like supervisor, with faults at random "
                                   "moments; at the end every decided result must have reached the host exactly "
                                   "once, no visit open or stuck, no traceback, no PIN or 照合番号B anywhere. "
                                   "Exit 1 on any audit failure. See docs/soak.md.")
    p.add_argument("--visits", type=int, default=100)
    p.add_argument("--seed", type=int, default=1, help="the plan (visits, faults, moments) is drawn from it")
    p.add_argument("--out", default="out/soak", help="run folder (timeline, logs, screens); emptied first")
    p.add_argument("--face-share", type=float, default=0.15, help="share of face visits")
    p.add_argument("--min-face", type=int, default=0, help="at least this many face visits")
    p.add_argument("--fault-share", type=float, default=0.35, help="share of visits with a fault")
    p.add_argument("--faults", default=None,
                   help=f"fault kinds to use, comma-separated (default: all of the transport's; serial: "
                        f"{','.join(fault_kinds_for('serial'))}; mqtt: {','.join(fault_kinds_for('mqtt'))})")
    p.add_argument("--directed", metavar="KIND@MOMENT",
                   help="every visit gets this one fault at this moment (e.g. kill9@decided, disk_full@consent)")
    p.add_argument("--step", type=float, default=0.0,
                   help="with --directed: visit n fires (n-1)*STEP seconds after the moment (a sweep)")
    p.add_argument("--transport", choices=("serial", "mqtt"), default="serial",
                   help="the host link: a pty pair, or MQTT through a private mosquitto the soak restarts")
    p.add_argument("--watchdog-s", type=float, default=4.0, help="WatchdogSec the supervisor gives mynad")
    p.add_argument("--real-timers", action="store_true", help="keep the flow's own timers (default: short ones)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--echo", action="store_true", help="echo the daemon's log")
    p.add_argument("--audit-only", metavar="DIR", help="audit a kept run folder again, without running")
    p.add_argument("--jobs", type=int, default=1,
                   help="soaks side by side, each with its own pcscd, card, line and state in a mount and network "
                        "namespace of its own (root); job j plays seed S*1000+j in OUT/job-j; see docs/soak.md")
    p.add_argument("--job", action="store_true", help=argparse.SUPPRESS)  # one job of --jobs, in its namespaces
    p.set_defaults(func=run_soak_cli)


def run_soak_cli(args: argparse.Namespace) -> int:
    from mynasim.soak.runner import SoakAborted, SoakRunner
    from mynasim.soak.summary import summary_table

    known = fault_kinds_for(args.transport)
    kinds = tuple(k for k in args.faults.split(",") if k) if args.faults is not None else known
    unknown = set(kinds) - set(known)
    if unknown:
        print(f"mynasim soak: fault kind(s) {', '.join(sorted(unknown))} cannot be done over {args.transport}; "
              f"known: {', '.join(known)}", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("mynasim soak: --jobs must be at least 1", file=sys.stderr)
        return 2
    if args.jobs > 1:
        return _run_parallel(args)
    if args.audit_only:
        return _audit_again(Path(args.audit_only), args.seed)
    options = PlanOptions(face_share=args.face_share, fault_share=args.fault_share, fault_kinds=kinds,
                          min_face=args.min_face)
    runner = SoakRunner(Path(args.out), args.visits, args.seed, options=options,
                        fast=not args.real_timers, echo=args.echo, progress=not args.no_progress,
                        watchdog_s=args.watchdog_s, transport=args.transport)
    if args.directed:
        kind, _, at = args.directed.partition("@")
        try:
            runner.plan = directed_plan(runner.plan, kind, at or "decided", step_s=args.step)
        except ValueError as e:
            print(f"mynasim soak: --directed: {e}", file=sys.stderr)
            return 2
        runner.fault_counts = {kind: {"planned": len(runner.plan), "done": 0, "skipped": 0}}
    if args.job:
        from mynasim.soak import parallel

        try:
            parallel.enter_job_namespace()
        except parallel.IsolationError as e:
            print(f"mynasim soak: {e}", file=sys.stderr)
            return 2
        progress_file = Path(args.out) / parallel.PROGRESS_FILE
        done = [0]

        def tell_parent(_outcome: object, counts: dict[str, int]) -> None:
            done[0] += 1
            parallel.write_json(progress_file, {"visits": done[0], "counts": counts})

        runner.on_visit = tell_parent
    try:
        result = runner.run()
    except SoakAborted as e:
        print(f"mynasim soak: stopped: {e}", file=sys.stderr)
        return 1
    if args.job:
        parallel.write_json(Path(args.out) / parallel.RESULT_FILE, parallel.job_result(result))
    print(summary_table(visits=result.outcomes, faults=result.faults, counts=result.report.counts(), seconds=result.seconds,
                        state_fs=result.state_fs, supervisor=result.supervisor, seed=args.seed, notes=result.notes))
    failures = result.report.failures()
    if failures:
        print(f"\nAUDIT FAILED ({len(failures)} items; run folder {result.run_dir}):")
        for f in failures:
            print(f"  FAIL {f}")
        return 1
    print(f"\naudit passed (run folder {result.run_dir})")
    return 0


def _run_parallel(args: argparse.Namespace) -> int:
    from mynasim.soak import parallel
    from mynasim.soak.summary import summary_table

    if args.directed or args.audit_only or args.job:
        print("mynasim soak: --jobs cannot be combined with --directed, --audit-only or --job", file=sys.stderr)
        return 2
    why = parallel.can_isolate()
    if why:
        print(f"mynasim soak: {why}", file=sys.stderr)
        return 2
    jobs = min(args.jobs, args.visits)
    passthrough = ["--face-share", str(args.face_share), "--fault-share", str(args.fault_share),
                   "--min-face", str(-(-args.min_face // jobs)), "--transport", args.transport,
                   "--watchdog-s", str(args.watchdog_s)]
    if args.faults is not None:
        passthrough += ["--faults", args.faults]
    if args.real_timers:
        passthrough.append("--real-timers")
    result = parallel.run_jobs(Path(args.out), args.visits, args.seed, jobs, passthrough,
                               progress=not args.no_progress)
    print(summary_table(visits=result.outcomes, faults=result.faults, counts=result.counts, seconds=result.seconds,
                        state_fs=result.state_fs, supervisor=result.supervisor, seed=args.seed, notes=result.notes))
    if result.failures:
        print(f"\nAUDIT FAILED ({len(result.failures)} items; run folder {args.out}):")
        for f in result.failures:
            print(f"  FAIL {f}")
        return 1
    print(f"\naudit passed ({jobs} jobs; run folder {args.out})")
    return 0


def _audit_again(folder: Path, seed: int) -> int:
    """Audit a kept run folder again (after a fix to the audit itself): one soak's folder, or a
    ``--jobs`` run's, whose jobs are audited one by one in their own ``job-N`` folders. The audit
    reads only the folder (timeline, logs, state files, the cards' profiles), never the plan."""
    from mynasim.soak.runner import SoakRunner

    if (folder / "timeline.jsonl").is_file():
        runs = [("", folder)]
    else:
        jobs = sorted((p for p in folder.glob("job-*") if (p / "timeline.jsonl").is_file()),
                      key=lambda p: (len(p.name), p.name))
        if not jobs:
            print(f"mynasim soak: {folder} holds no timeline.jsonl, neither its own nor a job-N/ one: "
                  "not a soak run folder", file=sys.stderr)
            return 2
        runs = [(f"{p.name.replace('-', ' ')}: ", p) for p in jobs]
    failures: list[str] = []
    counts: Counter[str] = Counter()
    for prefix, run_dir in runs:
        report = SoakRunner(run_dir, 1, seed, progress=False).audit()
        failures += [prefix + f for f in report.failures()]
        counts.update(report.counts())
    print("\n".join(f"FAIL {f}" for f in failures) or "audit passed", flush=True)
    print(dict(counts))
    return 1 if failures else 0
