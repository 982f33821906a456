"""``mynasim card``: run one virtual card in a vpcd slot until SIGINT/SIGTERM.

    mynasim card --profile taro [--slot 0|1] [--state DIR] [--assets DIR] [--fault NAME=VALUE ...]
    mynasim card --list-profiles
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from mynasim.card.faults import FaultPlan
from mynasim.card.profiles import load_profiles

BASE_PORT = 35963


def _default_assets() -> Path:
    env = os.environ.get("MYNA_ASSETS")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "assets"


def _default_state() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mynasim" / "card"


def _parse_fault(text: str) -> tuple[str, object]:
    name, _, value = text.partition("=")
    if not value or value.lower() in ("true", "yes", "on"):
        return name, True
    if value.lower() in ("false", "no", "off"):
        return name, False
    try:
        return name, int(value)
    except ValueError:
        return name, float(value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mynasim card", description="run one virtual My Number card on vpcd")
    ap.add_argument("--profile", help="profile key (see --list-profiles)")
    ap.add_argument("--slot", type=int, choices=(0, 1), default=0, help="vpcd slot: 0 = port 35963, 1 = 35964")
    ap.add_argument("--state", type=Path, default=None, help="state dir (PIN counters, test PKI)")
    ap.add_argument("--assets", type=Path, default=None, help="assets dir containing faces/")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--fault", action="append", default=[], metavar="NAME[=VALUE]",
                    help="FaultPlan field, e.g. --fault pull_at_apdu=5 --fault photo_bomb")
    ap.add_argument("--list-profiles", action="store_true")
    args = ap.parse_args(argv)

    profiles = load_profiles()
    if args.list_profiles:
        for key in profiles:
            print(key)
        return 0
    if not args.profile:
        ap.error("--profile is required (or --list-profiles)")
    if args.profile not in profiles:
        print(f"unknown profile {args.profile!r}; have: {', '.join(profiles)}", file=sys.stderr)
        return 2
    try:
        faults = FaultPlan.from_dict(dict(_parse_fault(f) for f in args.fault))
    except (ValueError, TypeError) as e:
        print(f"bad --fault: {e}", file=sys.stderr)
        return 2

    from mynasim.card.slot import VirtualCardSlot

    t0 = time.monotonic()

    def on_apdu(t: float, command: bytes, response: bytes) -> None:
        print(f"{time.monotonic() - t0:9.3f}  C: {command.hex(' ').upper()}  ->  "
              f"R: {response[:-2].hex().upper()[:64]}{'…' if len(response) > 34 else ''} "
              f"({max(0, len(response) - 2)} B) SW={response[-2:].hex().upper()}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    slot = VirtualCardSlot(port=BASE_PORT + args.slot, state_dir=args.state or _default_state(),
                           assets_dir=args.assets or _default_assets(), on_apdu=on_apdu, host=args.host,
                           profiles=profiles)
    try:
        slot.insert(args.profile, faults)
    except OSError as e:
        print(f"cannot reach vpcd on {args.host}:{slot.port} ({e}); is pcscd running with vpcd?", file=sys.stderr)
        return 1
    print(f"card {args.profile!r} inserted in vpcd slot {args.slot} (port {slot.port}); Ctrl-C removes it",
          flush=True)
    try:
        while not stop.wait(0.2):
            if not slot.inserted:
                print("the reader side closed the connection", file=sys.stderr)
                return 1
    finally:
        slot.close()
    print("card removed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
