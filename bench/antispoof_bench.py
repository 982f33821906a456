#!/usr/bin/env python3
"""Passive anti-spoofing (MiniFASNet x2): speed, load memory, and the scores it gives on our data.

Speed: hw-sim camera frames (default 640x480, a live patient, several people). Per frame, in
the same process and the same loop: YuNet detection with the face engine (the reference,
what every frame already pays) and the anti-spoofing score of the detected face (crop +
resize of both patches, one onnxruntime run for both networks). Both at ``--threads`` (1 by
default, the target is <= 5 ms per frame at 1 thread). Each frame's time is its best over
``--repeat`` runs (load on the shared machine only ever adds time).

Memory: a fresh child process imports numpy/onnx/onnxruntime (and, in a second child, loads the
FaceEngine first, as the daemon does), resets its peak-RSS mark, then loads ``AntiSpoof``; it
reports RSS before and after and the peak during the load (Linux /proc/self/status).

``--scores`` adds the measurements behind docs/antispoof.md: upstream's three samples (with
upstream's own boxes and with YuNet's, raw and adjusted), the 64 real photos of
assets/faces, and hw-sim camera frames for behaviours live / photo / screen.

    .venv/bin/python bench/antispoof_bench.py [--frames 40] [--repeat 3] [--threads 1] [--scores]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = Path(os.environ.get("MYNA_MODELS_DIR", REPO / "assets" / "models"))
FACES = REPO / "assets" / "faces"
SAMPLES = REPO / "assets" / "antispoof-samples"
# boxes upstream drew on image_*_result.jpg (fitted to the drawn rectangles) and the score it printed
UPSTREAM = {"F1": ((178, 136, 223, 225), "fake", 0.73), "F2": ((120, 252, 252, 256), "fake", 0.82),
            "T1": ((106, 147, 207, 213), "real", 0.99)}
SIM_PEOPLE = ("lfw_tony_blair__1.jpg", "bbt_penny__2.jpg", "deepface_p04__1.jpg", "lfw_vladimir_putin__2.jpg",
              "clapton__1.jpg", "biden__1.jpg")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_child(threads: int, after_engine: bool) -> None:
    import numpy  # noqa: F401
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401

    from myna_models.antispoof import AntiSpoof
    from myna_models.engine import FaceEngine

    engine = FaceEngine(MODELS, threads=threads) if after_engine else None  # as in the daemon

    # peak (VmHWM) can only be compared after resetting it: write "5" to clear_refs (Linux)
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass
    rss0, hwm0 = _status_mb("VmRSS"), _status_mb("VmHWM")
    spoof = AntiSpoof(MODELS, threads=threads)
    print(json.dumps({"rss_before": rss0, "hwm_before": hwm0, "rss_after": _status_mb("VmRSS"),
                      "hwm_after": _status_mb("VmHWM"), "maxrss": _peak_mb()}))
    del spoof, engine


def sim_frames(behaviour: str, people, times, size):
    from myna_drivers.camera_sim import render_scene

    out = []
    for p in people:
        out += [(p, f) for f in render_scene({"source": str(FACES / p), "behaviour": behaviour}, size, times)]
    return out


def largest(faces):
    return max(faces, key=lambda f: f.area) if faces else None


def bench_speed(args) -> None:
    from myna_models.antispoof import AntiSpoof
    from myna_models.engine import FaceEngine

    size = tuple(int(v) for v in args.size.split("x"))
    eng = FaceEngine(MODELS, threads=args.threads)
    spoof = AntiSpoof(MODELS, threads=args.threads)
    per = max(1, args.frames // len(SIM_PEOPLE))
    frames = [f for _, f in sim_frames("live", SIM_PEOPLE, [i / 15 for i in range(per)], size)]
    det_t, as_t, run_t = [], [], []
    for frame in frames:
        best_d = best_a = best_r = float("inf")
        face = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            face = largest(eng.detect(frame))
            t1 = time.perf_counter()
            best_d = min(best_d, t1 - t0)
            if face is None:
                continue
            t1 = time.perf_counter()
            spoof.score(frame, face.box)
            t2 = time.perf_counter()
            best_a = min(best_a, t2 - t1)
            feeds = {f"crop_{i}": p[None] for i, p in enumerate(spoof.patches(frame, face.box))}
            t3 = time.perf_counter()
            spoof._session.run(["prob"], feeds)
            best_r = min(best_r, time.perf_counter() - t3)
        det_t.append(best_d)
        if face is not None:
            as_t.append(best_a)
            run_t.append(best_r)

    def row(name, xs):
        xs = sorted(x * 1000 for x in xs)
        p90 = xs[min(len(xs) - 1, int(0.9 * len(xs)))]
        print(f"| {name} | {statistics.median(xs):.2f} | {p90:.2f} | {xs[0]:.2f} | {len(xs)} |")

    print(f"\nspeed: {len(frames)} hw-sim live frames {size[0]}x{size[1]}, {args.threads} thread(s), "
          f"best of {args.repeat} per frame, onnxruntime {__import__('onnxruntime').__version__}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (the fastest frame is the least disturbed)")
    print("| step | median ms | p90 ms | fastest ms | frames |\n|---|---|---|---|---|")
    row("reference: YuNet detection (FaceEngine.detect)", det_t)
    row("anti-spoofing score, both networks (crop+resize+run)", as_t)
    row("  of which the onnxruntime run", run_t)
    if as_t:
        ratio = statistics.median(as_t) / statistics.median(det_t)
        print(f"anti-spoofing / detection: {ratio:.2f}x")
    for after_engine, what in ((False, "numpy+onnx+onnxruntime imported"),
                               (True, "FaceEngine already loaded, as in the daemon")):
        cmd = [sys.executable, __file__, "--rss-child", "--threads", str(args.threads)]
        r = subprocess.run(cmd + (["--after-engine"] if after_engine else []), capture_output=True, text=True,
                           check=True)
        m = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"memory of loading AntiSpoof (fresh process, {what}): RSS {m['rss_before']:.0f} -> "
              f"{m['rss_after']:.0f} MB (+{m['rss_after'] - m['rss_before']:.1f} MB), peak during the load "
              f"+{m['hwm_after'] - m['rss_before']:.1f} MB")


def bench_scores(args) -> None:
    import numpy as np

    from myna_models.antispoof import AntiSpoof, adjust_box
    from myna_models.engine import FaceEngine, load_image

    eng = FaceEngine(MODELS, threads=args.threads)
    spoof = AntiSpoof(MODELS, threads=args.threads)
    thr = spoof.threshold
    print(f"\nthreshold (manifest): P(real) >= {thr}")

    print("\nupstream samples: P(real) and upstream-style (label, value)")
    print("| sample | upstream printed | upstream box | YuNet box raw | YuNet box adjusted | IoU raw / adjusted |")
    print("|---|---|---|---|---|---|")
    for name, (ubox, label, value) in UPSTREAM.items():
        img = load_image(SAMPLES / f"image_{name}.jpg")
        face = largest(eng.detect(img))
        cells = []
        for probs in (spoof.probabilities(img, ubox, adjust=False), spoof.probabilities(img, face.box, adjust=False),
                      spoof.probabilities(img, face.box)):
            lab = int(np.argmax(probs))
            cells.append(f"{probs[1]:.3f} ({'real' if lab == 1 else 'fake'} {probs[lab]:.2f})")
        print(f"| {name} | {label} {value:.2f} | " + " | ".join(cells) +
              f" | {_iou(face.box, ubox):.2f} / {_iou(adjust_box(face.box), ubox):.2f} |")

    def summary(name, raw, adj):
        for tag, xs in (("raw box", raw), ("adjusted box", adj)):
            xs = np.asarray(xs)
            n_real = int((xs >= thr).sum())
            print(f"| {name} | {tag} | {len(xs)} | {n_real} ({100 * n_real / len(xs):.0f} %) | "
                  f"{xs.min():.3f} | {np.percentile(xs, 10):.3f} | {np.median(xs):.3f} | {xs.max():.3f} |")

    print("\nP(real) per face (raw: YuNet's box as is; adjusted: adjust_box, what AntiSpoof.score uses)")
    print("| data | box | faces | scored real | min | p10 | median | max |\n|---|---|---|---|---|---|---|---|")
    raw, adj, low = [], [], []
    for p in sorted(FACES.glob("*.jpg")):
        img = load_image(p)
        face = largest(eng.detect_still(img))
        if face is None:
            continue
        raw.append(float(spoof.probabilities(img, face.box, adjust=False)[1]))
        adj.append(spoof.score(img, face.box))
        low.append((adj[-1], p.name))
    summary("assets/faces (real photos)", raw, adj)
    size = tuple(int(v) for v in args.size.split("x"))
    times = [i * 0.25 for i in range(12)]
    for behaviour in ("live", "photo", "screen"):
        raw, adj = [], []
        for _, frame in sim_frames(behaviour, SIM_PEOPLE, times, size):
            face = largest(eng.detect(frame))
            if face is None:
                continue
            raw.append(float(spoof.probabilities(frame, face.box, adjust=False)[1]))
            adj.append(spoof.score(frame, face.box))
        summary(f"hw-sim {behaviour}", raw, adj)
    print("lowest real photos:", ", ".join(f"{n} {s:.3f}" for s, n in sorted(low)[:6]))


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    i = iw * ih
    return i / (aw * ah + bw * bh - i)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=36)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--scores", action="store_true", help="also print the score tables")
    ap.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--after-engine", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.threads, args.after_engine)
        return 0
    bench_speed(args)
    if args.scores:
        bench_scores(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
