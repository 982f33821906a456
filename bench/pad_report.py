"""Presentation-attack figures: APCER per attack kind and BPCER, through the real face session.

Each attempt is one ``FaceVerification`` with the real models (YuNet + SFace from
assets/models) on frames rendered by hw-sim's camera (``myna_drivers.camera_sim``) at
their frame times, with someone following the reader's prompts (``mynasim.patient``):
the card holder for BPCER, an attacker holding the holder's print or tablet for APCER.
People rotate over the sample identities that have at least two photos (card photo = one,
camera = another). Seeded: the same command gives the same figures.

Terms (ISO/IEC 30107-3): APCER = share of attack presentations of one kind that are
accepted (here: the attempt ends in "match"); BPCER = share of bona fide presentations
(the holder, cooperating) that are refused. Upper bounds are one-sided 95 % Clopper-Pearson
(for 0 errors in n that is ≈ 3/n).

    .venv/bin/python bench/pad_report.py                # 10 per kind: ~3-4 min on 2 cores
    .venv/bin/python bench/pad_report.py --n 40 --kinds holder,print_bent

What it does not measure: real cameras, real prints, real screens, real people. The
simulated head's nose parallax is larger than a real one's (see docs/face.md), so the
BPCER here is optimistic and the figures for the geometric checks are only as good as the
simulator's physics.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path

from myna_models.threshold_stats import binom_upper  # one Clopper-Pearson bound for every report

ROOT = Path(__file__).resolve().parents[1]
# the sim's person faces front only as far as its photo does (yaw proxy of the photo)
MAX_SOURCE_YAW = 0.12
KINDS = ("holder", "print_stand", "print_wave", "print_rotated", "print_turned", "print_bent", "replay", "slideshow")
# which Follower reacts to the screen for each kind (None: nobody does, the thing is just held)
FOLLOWS = {"holder": "patient", "print_stand": None, "print_wave": None, "print_rotated": "print_rotated",
           "print_turned": "print_turned", "print_bent": "print_bent", "replay": "replay", "slideshow": "slideshow"}


def identities(faces: Path) -> list[list[Path]]:
    by: dict[str, list[Path]] = {}
    with open(faces / "labels.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            by.setdefault(r["identity"], []).append(faces / r["file"])
    return [sorted(v) for _, v in sorted(by.items()) if len(v) >= 2]


def face_box(engine, path: Path) -> list[float] | None:
    """Where the face is in a photo (the scene's ``face_box``: the renderer turns the head
    about it; without it the face is assumed centred, which most snapshots are not)."""
    from myna_models.engine import load_image

    faces = engine.detect(load_image(path))
    if not faces:
        return None
    f = max(faces, key=lambda f: f.box[2] * f.box[3])
    return [float(v) for v in f.box]


def scene_for(kind: str, photos: list[Path], boxes: dict) -> dict:
    live = photos[1]
    behaviour = "live" if kind == "holder" else kind
    scene = {"source": str(live), "behaviour": behaviour}
    if boxes.get(live):
        scene["face_box"] = boxes[live]
    if FOLLOWS[kind]:
        scene["follow"] = True
    if kind == "slideshow":
        rest = [str(p) for p in photos[1:]] or [str(live)]
        scene["slides"] = (rest * 3)[:3]
    return scene


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10, help="attempts per kind")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="one line per attempt")
    ap.add_argument("--models", default=str(ROOT / "assets" / "models"))
    ap.add_argument("--faces", default=str(ROOT / "assets" / "faces"))
    ap.add_argument("--pad", choices=("on", "off", "both"), default="both",
                    help="the passive PAD model on every accepted frame, as the daemon runs it (default: "
                         "both, the same attempts without and with it)")
    args = ap.parse_args(argv)

    from PIL import Image

    from myna_models.cardphoto import encode_card_photo
    from myna_models.engine import FaceEngine
    from mynasim.patient import simulate_attempt

    engine = FaceEngine(Path(args.models), threads=args.threads)
    from myna_models.antispoof import AntiSpoof

    pad_model = AntiSpoof(Path(args.models), threads=1)
    modes = {"off": [None], "on": [pad_model], "both": [None, pad_model]}[args.pad]
    people, cards = [], {}
    for photos in identities(Path(args.faces)):
        for j, card in enumerate(photos):   # the first photo usable as a card photo is the card
            try:
                with Image.open(card) as img:
                    cards[card] = engine.embed_card_photo(encode_card_photo(img))
            except Exception:  # no face in that photo at card size: try the next one
                continue
            people.append([card] + photos[:j] + photos[j + 1:])
            break
    # the camera shows the holder's most frontal other photo: a patient at the reader faces it
    from myna_models.engine import load_image
    from myna_models.liveness import yaw_proxy

    def frontalness(p: Path) -> float:
        faces = engine.detect(load_image(p))
        return abs(yaw_proxy(max(faces, key=lambda f: f.box[2] * f.box[3]).landmarks)) if faces else 9.0

    people = [[ph[0]] + sorted(ph[1:], key=frontalness) for ph in people]
    # hw-sim turns the photo's head about its own pose: a person whose photos are all turned
    # stays turned when "facing front", which no patient at the reader does. Left out, said so.
    turned = [ph[1].name for ph in people if frontalness(ph[1]) > MAX_SOURCE_YAW]
    people = [ph for ph in people if frontalness(ph[1]) <= MAX_SOURCE_YAW]
    if turned:
        print(f"pad_report: left out (no photo within {MAX_SOURCE_YAW} of frontal): {', '.join(turned)}")
    boxes = {p: face_box(engine, p) for photos in people for p in photos[1:2]}
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        ap.error(f"unknown kind(s) {bad}; choose from {', '.join(KINDS)}")
    print(f"pad_report: {args.n} attempts x {len(kinds)} kinds, {len(people)} identities, seed {args.seed}",
          flush=True)
    rows = []
    t_all = time.perf_counter()
    for kind in kinds:
        for pad in modes:
            tag = f"{kind}{' +PAD' if pad is not None else ''}"
            accepted, reasons, t0 = 0, Counter(), time.perf_counter()
            for i in range(args.n):
                photos = people[(i + args.seed) % len(people)]
                seed = args.seed * 100_003 + i * 7919 + KINDS.index(kind)
                u, t, _ = simulate_attempt(engine, cards[photos[0]], scene_for(kind, photos, boxes), FOLLOWS[kind],
                                           seed, pad=pad)
                accepted += bool(u.match)
                if args.verbose:
                    print(f"\n    {photos[1].name} seed {seed}: {u.reason} {u.detail or ''} t={t:.1f}", end="")
                reasons[u.reason if u.reason != "liveness_failed" else f"liveness:{u.detail}"] += 1
                print(f"\r  {tag:19} {i + 1:3}/{args.n}  accepted {accepted}", end="", flush=True)
            dt = time.perf_counter() - t0
            print(f"\r  {tag:19} {args.n:3}/{args.n}  accepted {accepted}  ({dt / args.n:.1f} s per attempt)",
                  flush=True)
            rows.append((kind, pad is not None, accepted, args.n, reasons))

    print()
    print("| presentation | PAD model | n | accepted | rate | 95 % upper | outcomes |")
    print("|---|---|---|---|---|---|---|")
    for kind, with_pad, acc, n, reasons in rows:
        if kind == "holder":
            err, label = n - acc, "BPCER (holder refused)"
        else:
            err, label = acc, f"APCER {kind}"
        out = ", ".join(f"{r} {c}" for r, c in reasons.most_common())
        print(f"| {label} | {'on' if with_pad else 'off'} | {n} | {acc} | {err / n:.0%} | {binom_upper(err, n):.0%} "
              f"| {out} |")
    print(f"\npad_report: done in {time.perf_counter() - t_all:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
