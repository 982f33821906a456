"""``mynasim``: the hardware simulator's command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "card":
        from mynasim.card.cli import main as card_main

        return card_main(argv[1:])
    parser = argparse.ArgumentParser(prog="mynasim", description="hardware simulator for mynad")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("demo", help="run one scripted patient visit through the real daemon")
    p.add_argument("--out", default="out/demo", help="run folder (screens, timeline, logs)")
    p.add_argument("--profile", default="taro")
    p.add_argument("--method", choices=("pin", "face"), default="pin", help="how the patient proves who they are")
    from mynasim.demo import CAMERAS

    p.add_argument("--camera", choices=CAMERAS, default="holder",
                   help="with --method face: who or what is in front of the camera (all but holder must be "
                        "refused; print_*/replay/slideshow are presentation attacks, see docs/face.md)")
    p.add_argument("--quiet", action="store_true", help="do not echo the daemon's log")
    p.add_argument("--mynad", metavar="PATH",
                   help="the daemon to run (default: this checkout's); e.g. an installed release's "
                        "/opt/myna-reader/current/venv/bin/mynad, to try what a technician installed")
    p.add_argument("--models", metavar="DIR", help="the model folder that daemon uses (default: assets/models)")
    p = sub.add_parser("gallery", help="render every screen state to PNG plus an HTML index")
    p.add_argument("--out", default="out/gallery")
    p = sub.add_parser("run", help="start the virtual hardware and the daemon, and wait (Ctrl-C stops)")
    p.add_argument("--out", default="out/run")
    p.add_argument("--no-daemon", action="store_true", help="start only the virtual hardware")
    sub.add_parser("card", help="run one virtual card: mynasim card --profile NAME [--slot N] | --list-profiles")
    from mynasim.cardface.cli import add_card_face

    add_card_face(sub)
    from mynasim.soak.cli import add_soak

    add_soak(sub)
    args = parser.parse_args(argv)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    if args.cmd == "demo":
        from mynasim.demo import run_demo

        return run_demo(Path(args.out), profile=args.profile, echo=not args.quiet, method=args.method,
                        camera=args.camera, mynad=[args.mynad] if args.mynad else None,
                        models_dir=Path(args.models) if args.models else None)
    if args.cmd in ("card-face", "soak"):
        return args.func(args)
    if args.cmd == "gallery":
        from mynasim.gallery import build_gallery

        index = build_gallery(Path(args.out))
        print(f"gallery written: {index}")
        return 0
    if args.cmd == "run":
        from mynasim.rig import SimRig

        rig = SimRig(Path(args.out), echo=True).start(daemon=not args.no_daemon)
        try:
            what = "virtual hardware only" if args.no_daemon else "virtual hardware and mynad"
            print(f"{what} running; daemon config {rig.config_path}; Ctrl-C stops", flush=True)
            stop: list[int] = []
            signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
            try:
                while not stop:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
        finally:
            rig.close()
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
