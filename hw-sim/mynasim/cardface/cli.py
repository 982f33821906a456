"""``mynasim card-face --profile NAME --out FILE.png [--seed N] [--kind K] [--clean]``.

Renders one tray-camera frame of a virtual card (a technician's or a test's input for
``mynactl card-face``). Without ``--seed`` the placement is the clean, centred one.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path


def add_card_face(subparsers) -> None:
    p = subparsers.add_parser("card-face", help="render one virtual card's printed face as the tray camera sees it")
    p.add_argument("--profile", default="taro", help="profile name in profiles.toml (default taro)")
    p.add_argument("--out", required=True, help="image file to write (PNG or JPEG by its suffix)")
    p.add_argument("--seed", type=int, default=None, help="draw a random placement and imaging variation")
    p.add_argument("--kind", choices=("japanese", "foreign", "next_gen"), default=None,
                   help="print the face as this card kind (default: the profile's card_kind)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from mynasim.card.profiles import load_profiles
    from mynasim.cardface import random_variation, render_card_face

    profiles = load_profiles()
    if args.profile not in profiles:
        print(f"mynasim card-face: no profile {args.profile!r} (known: {', '.join(profiles)})", file=sys.stderr)
        return 2
    profile = profiles[args.profile]
    if args.kind:
        profile = dataclasses.replace(profile, card_kind=args.kind)
    rng = np.random.default_rng(args.seed if args.seed is not None else 0)
    variation = random_variation(rng) if args.seed is not None else None
    bgr = render_card_face(profile, variation, rng)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(out)
    print(f"card face written: {out}")
    return 0
