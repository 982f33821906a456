#!/usr/bin/env python3
"""Do the Pi's libraries compute what this machine's do? The reader's numbers on two architectures.

The face and card-face paths were tuned and checked on x86; the Pi runs the aarch64 builds of
numpy, Pillow and onnxruntime, whose kernels are not the same code (onnxruntime's MLAS has
NEON kernels of its own, a direct depthwise convolution among them). A different kernel may
round differently; a wrong one would move landmarks, embeddings, liveness scores or the OCR's
reading. This runs the same inputs through the same model files on both and compares:

* camera frames (the sample photos on a camera-size canvas, as bench/face_bench.py builds them):
  face count, box, five landmarks, detection score, the 128-d embedding of the aligned face
  and the passive anti-spoofing score, all in plain NCHW (what ARM runs);
* card photos as stills (``detect_still`` + embedding, the card side of a face match);
* tray pictures rendered by hw-sim: the card-face reader's confidence and 照合番号B.

    .venv/bin/python bench/arch_parity.py --make-inputs DIR      # on x86, with hw-sim
    python bench/arch_parity.py --inputs DIR --dump OUT.npz        # on each machine
    .venv/bin/python bench/arch_parity.py --compare x86.npz aarch64.npz

``scripts/check-aarch64-run`` does all three with an arm64 Debian 12 under qemu-user. Under
emulation only the numbers count, not the time; the same command works on a real Pi
(copy the inputs over, dump there, compare here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
for sub in ("models", "hw-sim"):
    if str(REPO / sub) not in sys.path:
        sys.path.insert(0, str(REPO / sub))

MODELS = REPO / "assets" / "models"
FACES = REPO / "assets" / "faces"
TODAY = dt.date(2026, 12, 1)  # the tray pictures' "today": the same validity checks on both machines

# How far apart two builds may be and still be the same reader: landmarks well under the
# 1-px shifts that already move embeddings measurably (docs/face.md), embeddings and scores
# at float rounding, and the OCR reading identical.
LIMITS = {"landmark_px": 0.05, "box_px": 0.5, "embedding_cos": 0.9999, "detect_score": 1e-3, "antispoof": 1e-3,
          "cardface_conf": 1e-3}


def make_inputs(out: Path, frames: int, stills: int, cards: int, seed: int) -> None:
    """Camera frames, card-photo stills and tray pictures as PNG files (both machines read these)."""
    from PIL import Image

    sys.path.insert(0, str(REPO / "bench"))
    import cardface_bench  # noqa: E402  (the same tray pictures as the card-face benchmark)
    import face_bench  # noqa: E402  (the same frames as the face benchmark)

    from mynasim.cardface import render_card_face

    out.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(face_bench.frames(frames, (640, 480))):
        Image.fromarray(np.ascontiguousarray(f[:, :, ::-1])).save(out / f"frame-{i:03d}.png")
    photos = sorted(FACES.glob("*.jpg"))
    for i, p in enumerate(photos[-stills:] if stills else []):
        Image.open(p).convert("RGB").save(out / f"still-{i:03d}.png")
    for i, prof, variation, rng in cardface_bench.cases(cards, seed):
        img = render_card_face(prof, variation, rng)
        Image.fromarray(np.ascontiguousarray(img[:, :, ::-1])).save(out / f"tray-{i:03d}.png")


def _bgr(path: Path) -> np.ndarray:
    from PIL import Image

    return np.ascontiguousarray(np.asarray(Image.open(path).convert("RGB"))[:, :, ::-1])


def dump(inputs: Path, out: Path, blocked: bool = False, models: Path = MODELS) -> None:
    """Every number the reader derives from the inputs, on this machine, in plain NCHW (``blocked``:
    in onnxruntime's blocked layout, x86 only: a reference for how far two kernel sets drift apart)."""
    from myna_models.antispoof import AntiSpoof
    from myna_models.cardface import CardFaceReader
    from myna_models.engine import FaceEngine

    t0 = time.monotonic()
    eng = FaceEngine(models, threads=1, blocked_layout=blocked)
    pad = AntiSpoof(models, threads=1, blocked_layout=blocked)
    reader = CardFaceReader(threads=1)
    res: dict[str, np.ndarray] = {}
    frames = sorted(inputs.glob("frame-*.png"))
    for i, p in enumerate(frames):
        bgr = _bgr(p)
        faces = eng.detect(bgr)
        res[f"{p.stem}/count"] = np.asarray([len(faces)])
        if faces:
            f = faces[0]
            res[f"{p.stem}/box"] = np.asarray(f.box, np.float64)
            res[f"{p.stem}/landmarks"] = np.asarray(f.landmarks, np.float64)
            res[f"{p.stem}/score"] = np.asarray([f.score], np.float64)
            res[f"{p.stem}/embedding"] = eng.embed_face(bgr, f).astype(np.float64)
            res[f"{p.stem}/antispoof"] = np.asarray([pad.score(bgr, tuple(f.box))], np.float64)
        print(f"\rframes {i + 1}/{len(frames)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    for p in sorted(inputs.glob("still-*.png")):
        bgr = _bgr(p)
        faces = eng.detect_still(bgr)
        res[f"{p.stem}/count"] = np.asarray([len(faces)])
        if faces:
            res[f"{p.stem}/landmarks"] = np.asarray(faces[0].landmarks, np.float64)
            res[f"{p.stem}/embedding"] = eng.embed_face(bgr, faces[0]).astype(np.float64)
    trays = sorted(inputs.glob("tray-*.png"))
    for i, p in enumerate(trays):
        r = reader.read(_bgr(p), today=TODAY)
        res[f"{p.stem}/cardface_ok"] = np.asarray([int(r.ok)])
        res[f"{p.stem}/cardface_conf"] = np.asarray([r.confidence], np.float64)
        # rendered test cards, but a dump is no place for codes: only a hash of the reading is kept

        code = r.code_b() if r.ok else ""
        res[f"{p.stem}/cardface_code_sha"] = np.frombuffer(hashlib.sha256(code.encode()).digest(), np.uint8)
        print(f"\rtray pictures {i + 1}/{len(trays)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    import onnxruntime

    machine = platform.machine() + (" (blocked layout)" if blocked else "")
    if os.environ.get("QEMU_CPU"):  # qemu-user passes its own settings on to the guest
        machine += f", {os.environ['QEMU_CPU']} emulated by qemu-user"
    res["meta/machine"] = np.frombuffer(machine.encode(), np.uint8)
    res["meta/onnxruntime"] = np.frombuffer(onnxruntime.__version__.encode(), np.uint8)
    res["meta/numpy"] = np.frombuffer(np.__version__.encode(), np.uint8)
    res["meta/seconds"] = np.asarray([time.monotonic() - t0])
    np.savez(out, **res)


def _text(a: np.ndarray) -> str:
    return bytes(a.astype(np.uint8)).decode(errors="replace")


def compare(a_path: Path, b_path: Path) -> int:
    a, b = np.load(a_path), np.load(b_path)
    ma, mb = _text(a["meta/machine"]), _text(b["meta/machine"])
    print(f"{a_path.name}: {ma}, onnxruntime {_text(a['meta/onnxruntime'])}, numpy {_text(a['meta/numpy'])}, "
          f"{float(a['meta/seconds'][0]):.0f} s")
    print(f"{b_path.name}: {mb}, onnxruntime {_text(b['meta/onnxruntime'])}, numpy {_text(b['meta/numpy'])}, "
          f"{float(b['meta/seconds'][0]):.0f} s")
    keys = sorted(k for k in a.files if not k.startswith("meta/"))
    problems: list[str] = []
    missing = sorted(set(keys) ^ {k for k in b.files if not k.startswith("meta/")})
    if missing:
        problems.append(f"results present on one side only: {', '.join(missing[:8])}")
    worst: dict[str, float] = {}
    n: dict[str, int] = {}

    def note(kind: str, value: float, bad: bool, where: str) -> None:
        n[kind] = n.get(kind, 0) + 1
        if kind not in worst or (value < worst[kind] if kind == "embedding_cos" else value > worst[kind]):
            worst[kind] = value
        if bad:
            problems.append(f"{where}: {kind} {value:.6g} (limit {LIMITS.get(kind, 0)})")

    for k in keys:
        if k not in b.files:
            continue
        x, y = a[k], b[k]
        stem, _, what = k.partition("/")
        if what in ("count", "cardface_ok", "cardface_code_sha"):
            same = x.shape == y.shape and bool(np.all(x == y))
            note({"count": "face_count", "cardface_ok": "cardface_ok", "cardface_code_sha": "cardface_code"}[what],
                 0.0 if same else 1.0, not same, stem)
        elif what == "landmarks":
            note("landmark_px", float(np.abs(x - y).max()), float(np.abs(x - y).max()) > LIMITS["landmark_px"], stem)
        elif what == "box":
            note("box_px", float(np.abs(x - y).max()), float(np.abs(x - y).max()) > LIMITS["box_px"], stem)
        elif what == "embedding":
            cos = float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))
            note("embedding_cos", cos, cos < LIMITS["embedding_cos"], stem)
        elif what in ("score", "antispoof", "cardface_conf"):
            kind = "detect_score" if what == "score" else what
            d = float(np.abs(x - y).max())
            note(kind, d, d > LIMITS[kind], stem)
    print("\n| quantity | compared | worst | limit |\n|---|---|---|---|")
    for kind in sorted(n):
        limit = LIMITS.get(kind, "equal")
        shown = f"{worst[kind]:.7f}" if kind == "embedding_cos" else f"{worst[kind]:.3g}"
        print(f"| {kind} | {n[kind]} | {shown} | {limit} |")
    if problems:
        print(f"\nDIFFERENT ({len(problems)}):")
        for p in problems[:40]:
            print(f"  {p}")
        return 1
    print(f"\nsame reader on {ma} and {mb}: every quantity within its limit")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--make-inputs", type=Path, metavar="DIR")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--stills", type=int, default=8)
    ap.add_argument("--cards", type=int, default=12)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--inputs", type=Path, metavar="DIR")
    ap.add_argument("--dump", type=Path, metavar="OUT.npz")
    ap.add_argument("--models", type=Path, default=MODELS, help="with --dump: the model files (default assets/models)")
    ap.add_argument("--blocked", action="store_true", help="with --dump: onnxruntime's blocked layout (x86)")
    ap.add_argument("--compare", type=Path, nargs=2, metavar=("A.npz", "B.npz"))
    args = ap.parse_args()
    if args.make_inputs:
        make_inputs(args.make_inputs, args.frames, args.stills, args.cards, args.seed)
        return 0
    if args.dump:
        if not args.inputs:
            ap.error("--dump needs --inputs DIR")
        dump(args.inputs, args.dump, args.blocked, args.models)
        return 0
    if args.compare:
        return compare(*args.compare)
    ap.error("give --make-inputs, --dump or --compare")
    return 2


if __name__ == "__main__":
    sys.exit(main())
