"""The soak's summary table (plain text, fixed width: it goes into docs and CI logs)."""

from __future__ import annotations

from typing import Any


_AUDIT_KEYS = ("owed", "delivered", "lost", "withdrawn", "duplicated", "conflicting", "unowed", "started", "open",
               "stuck", "leaks", "tracebacks", "unexpected_restarts")


def _rows(title: str, rows: list[tuple[str, Any]]) -> list[str]:
    out = [title]
    out += [f"  {name:<34} {value}" for name, value in rows]
    return out


def summary_table(*, visits: list[Any], faults: dict[str, dict[str, int]], counts: dict[str, int], seconds: float,
                  state_fs: str, supervisor: dict[str, int], seed: int, notes: list[str]) -> str:
    n = len(visits)
    kinds: dict[str, int] = {}
    for o in visits:
        key = o.kind if not o.method or o.method == o.kind else f"{o.kind} -> {o.method}"
        kinds[key] = kinds.get(key, 0) + 1
    done = sum(1 for o in visits if o.done)
    per_visit = seconds / n if n else 0.0
    c = {**dict.fromkeys(_AUDIT_KEYS, 0), **counts}  # AuditReport.counts(), or a sum over parallel jobs
    lines = [f"mynasim soak: {n} visits, seed {seed}, {seconds / 60:.1f} min "
             f"({per_visit:.2f} s/visit, {60 / per_visit if per_visit else 0:.1f} visits/min)",
             f"state directory: {state_fs}"]
    endings: dict[str, int] = {}
    for o in visits:
        endings[o.ending] = endings.get(o.ending, 0) + 1
    lines += _rows("visits", [(k, v) for k, v in sorted(kinds.items())]
                   + [(f"ending as planned: {k}", v) for k, v in sorted(endings.items())]
                   + [("reached the done screen", done)])
    lines += _rows("faults (done / planned, skipped)",
                   [(k, f"{v['done']} / {v['planned']}" + (f", {v['skipped']} skipped" if v["skipped"] else ""))
                    for k, v in sorted(faults.items())])
    lines += _rows("daemon (supervisor)", [(k, v) for k, v in sorted(supervisor.items())])
    lines += _rows("audit", [
        ("results owed (done screen / log)", c["owed"]),
        ("results delivered to the host", c["delivered"]),
        ("results lost", c["lost"]),
        ("decided, not shown, aborted (crash)", c["withdrawn"]),
        ("results duplicated", c["duplicated"]),
        ("result and abort for one visit", c["conflicting"]),
        ("results never decided by the reader", c["unowed"]),
        ("visits started at the host", c["started"]),
        ("visits left open at the host", c["open"]),
        ("visits stuck (no idle after)", c["stuck"]),
        ("secret leaks (PIN, 照合番号B)", c["leaks"]),
        ("tracebacks in the daemon log", c["tracebacks"]),
        ("restarts no fault explains", c["unexpected_restarts"]),
    ])
    if notes:
        lines += _rows("notes", [("-", note) for note in notes])
    return "\n".join(lines)
