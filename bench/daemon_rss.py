#!/usr/bin/env python3
"""Memory of the real daemon with every model loaded, beside references in the same run.

Starts mynad under hw-sim (real pcscd, pty host link) in three configurations and
reads the kernel's own figures for the daemon process (``/proc/PID/status``: VmRSS
now, VmHWM the peak so far):

* ``python + numpy + onnxruntime``: a bare interpreter with the two libraries every
  configuration imports: the floor no configuration can go below;
* ``face only``: the daemon as it was before the card-face reader and the passive
  anti-spoofing model (``[card_face] backend = "none"``, no PAD model);
* ``all models``: the product: YuNet, SFace, both MiniFASNet graphs and the OCR models.

For each daemon configuration: RSS once idle, then the peak after one full face visit
of the card holder (card face read, card photo embedded, camera frames matched).
The budget (issue #9) is a peak of 250 MB with every model loaded.

    .venv/bin/python bench/daemon_rss.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BUDGET_MB = 250.0


def proc_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB (1e6 bytes, as the budget is written)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            fields[k] = int(v.split()[0]) * 1024 / 1e6
    return fields["VmRSS"], fields["VmHWM"]


def bare_reference() -> tuple[float, float]:
    code = ("import numpy, onnxruntime, sys; "
            "s = open('/proc/self/status').read().splitlines(); "
            "print(*[l.split()[1] for l in s if l.startswith(('VmRSS', 'VmHWM'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]) * 1024 / 1e6, int(out[1]) * 1024 / 1e6


def measure(run_dir: Path, overrides: dict, label: str) -> dict:
    from mynasim.rig import SimRig

    with SimRig(run_dir, overrides=overrides) as rig:
        pid = rig.daemon.pid
        time.sleep(1.0)  # let start-up allocations settle before the idle figure
        idle_rss, idle_hwm = proc_mb(pid)
        card = rig.photo_of("taro")
        live = card.with_name(card.name.replace("__1.", "__2."))
        mark = rig.mark()
        rig.show_face(live, behaviour="live")
        rig.place_card("taro")
        e = rig.wait_screen("method_choice", timeout=30, after=mark)
        choices = list(e.data["params"]["choices"])
        matched = False
        if "face" in choices:
            rig.press(choices.index("face") + 1)
            rig.timeline.wait_for(lambda x: x.source == "display" and x.data.get("screen") in
                                  ("consent", "consent_carryover", "face_failed"),
                                  timeout=60, after=mark, what="the end of face authentication")
            matched = any(x.data.get("type") == "visit.authenticated" for x in rig.timeline.entries("host", "received"))
        rss, hwm = proc_mb(pid)
        rig.remove_card()
        rig.wait_screen("idle", after=mark, timeout=15)
    return {"label": label, "idle_rss": idle_rss, "rss": rss, "peak": hwm, "face": "face" in choices,
            "matched": matched}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    rows = []
    rss, hwm = bare_reference()
    rows.append({"label": "python + numpy + onnxruntime", "idle_rss": rss, "rss": rss, "peak": hwm,
                 "face": None, "matched": None})
    with tempfile.TemporaryDirectory(prefix="myna-rss-") as tmp:
        rows.append(measure(Path(tmp) / "face-only", {"card_face": {"backend": "none"}, "face": {"pad": False}},
                            "face only (no card-face reader, no PAD)"))
        rows.append(measure(Path(tmp) / "all", {}, "all models (product)"))
    print(f"\n{'configuration':44} {'idle RSS':>9} {'RSS after':>10} {'peak':>8}  face offered / matched")
    for r in rows:
        extra = "" if r["face"] is None else f"{r['face']!s:>5} / {r['matched']!s}"
        print(f"{r['label']:44} {r['idle_rss']:7.1f}MB {r['rss']:8.1f}MB {r['peak']:6.1f}MB  {extra}")
    peak = rows[-1]["peak"]
    print(f"\nbudget: peak <= {BUDGET_MB:.0f} MB with every model loaded: "
          f"{'MET' if peak <= BUDGET_MB else 'NOT MET'} ({peak:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
