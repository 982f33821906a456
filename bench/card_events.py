#!/usr/bin/env python3
"""How soon the daemon hears that a card was placed or removed (real pcscd + vpcd).

For N place/remove cycles of the virtual card, the delay from the card touching the
reader (vpcd socket connected / closed) to our ``PcscMonitor`` event, with pyscard's
own ``CardMonitor`` observing the same cycles as the reference. Prints median, p95
and max, and any event a monitor missed.

    .venv/bin/python bench/card_events.py [--cycles 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from myna_drivers.pcsc import PcscMonitor  # noqa: E402
from mynasim.card import VirtualCardSlot, load_profiles  # noqa: E402
from mynasim.services import Pcscd  # noqa: E402

READER = "Virtual PCD 00 00"


class Stamps:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, float]] = []

    def add(self, kind: str) -> None:
        with self.lock:
            self.events.append((kind, time.perf_counter()))

    def first_after(self, kind: str, t0: float, timeout: float = 3.0) -> float | None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self.lock:
                for k, t in self.events:
                    if k == kind and t >= t0:
                        return t
            time.sleep(0.001)
        return None


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=20)
    args = ap.parse_args()
    Pcscd().ensure()
    ours, ref = Stamps(), Stamps()
    mon = PcscMonitor(lambda e: ours.add(e.kind) if e.kind in ("inserted", "removed") else None,
                      reader_filter=READER)
    mon.start()

    from smartcard.CardMonitoring import CardMonitor, CardObserver

    class Obs(CardObserver):
        def update(self, observable, handlers):
            added, removed = handlers
            for c in added:
                if str(c.reader) == READER:
                    ref.add("inserted")
            for c in removed:
                if str(c.reader) == READER:
                    ref.add("removed")

    cm = CardMonitor()
    obs = Obs()
    cm.addObserver(obs)
    time.sleep(0.5)
    res = {("ours", "inserted"): [], ("ours", "removed"): [], ("pyscard", "inserted"): [], ("pyscard", "removed"): []}
    missed = {k: 0 for k in res}
    with tempfile.TemporaryDirectory() as tmp:
        slot = VirtualCardSlot(port=35963, state_dir=Path(tmp), assets_dir=REPO / "assets", profiles=load_profiles())
        try:
            for i in range(args.cycles):
                for kind, act in (("inserted", lambda: slot.insert("taro")), ("removed", slot.remove)):
                    t0 = time.perf_counter()
                    act()
                    if kind == "inserted":
                        t0 = time.perf_counter()  # insert() first waits out the slot's minimum absence
                    for name, st in (("ours", ours), ("pyscard", ref)):
                        t = st.first_after(kind, t0)
                        if t is None:
                            missed[(name, kind)] += 1
                        else:
                            res[(name, kind)].append((t - t0) * 1000)
                    time.sleep(0.05)
                print(f"\rcycle {i + 1}/{args.cycles}", end="", flush=True)
        finally:
            slot.close()
            cm.deleteObserver(obs)
            mon.stop()
    print("\n\n| monitor | event | n | median ms | p95 ms | max ms | missed |")
    print("|---|---|---|---|---|---|---|")
    for (name, kind), xs in res.items():
        if xs:
            print(f"| {name} | {kind} | {len(xs)} | {statistics.median(xs):.1f} | {pct(xs, 0.95):.1f} | "
                  f"{max(xs):.1f} | {missed[(name, kind)]} |")
        else:
            print(f"| {name} | {kind} | 0 | - | - | - | {missed[(name, kind)]} |")
    print("\n(the delay is dominated by pcscd's own polling of the vpcd slot; both monitors wait on the same "
          "SCardGetStatusChange, ours without CardMonitor's failure modes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
