#!/usr/bin/env python3
"""Face pipeline speed and memory: ours (onnxruntime) against OpenCV's own YuNet + SFace.

Camera-size frames (default 640x480, the `[camera]` default) are built from the
sample photos; each variant runs in its own subprocess so peak memory is its own.
Per frame: detect + align + embed. The same frames go through
``cv2.FaceDetectorYN`` + ``cv2.FaceRecognizerSF`` with the same model files as the
reference, and the run ends with the accuracy check: our embedding against OpenCV's
on the same frame (cosine), and the face counts.

    .venv/bin/python bench/face_bench.py [--frames 40] [--size 640x480] [--markdown FILE]
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
DET = "face_detection_yunet_2023mar.onnx"
REC = "face_recognition_sface_2021dec_int8bq_ort.onnx"


def frames(n: int, size: tuple[int, int]):
    """Photos placed on a camera-size grey canvas with the face at a counter-top distance."""
    import numpy as np
    from PIL import Image

    w, h = size
    files = sorted(p for p in FACES.glob("*.jpg"))[:n]
    out = []
    for p in files:
        img = Image.open(p).convert("RGB")
        scale = (h * 0.8) / img.height
        img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))))
        canvas = Image.new("RGB", (w, h), (110, 110, 110))
        canvas.paste(img.crop((0, 0, min(img.width, w), img.height)), ((w - min(img.width, w)) // 2, int(h * 0.1)))
        out.append(np.ascontiguousarray(np.asarray(canvas)[:, :, ::-1]))
    return out


def run_ours(threads: int, n: int, size) -> dict:
    from myna_models.engine import FaceEngine

    fr = frames(n, size)
    eng = FaceEngine(MODELS, threads=threads)
    times, embs, counts = [], [], []
    for f in fr[:3]:  # warm-up
        faces = eng.detect(f)
        if faces:
            eng.embed_face(f, faces[0])
    for f in fr:
        t0 = time.perf_counter()
        faces = eng.detect(f)
        emb = eng.embed_face(f, faces[0]) if faces else None
        times.append((time.perf_counter() - t0) * 1000)
        counts.append(len(faces))
        embs.append(None if emb is None else [float(x) for x in emb])
    return {"times": times, "embs": embs, "counts": counts,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_cv2(threads: int, n: int, size) -> dict:
    import cv2
    import numpy as np

    cv2.setNumThreads(threads)
    fr = frames(n, size)
    det = cv2.FaceDetectorYN.create(str(MODELS / DET), "", size, 0.6, 0.3, 5000)
    rec = cv2.FaceRecognizerSF.create(str(MODELS / REC), "")
    times, embs, counts = [], [], []

    def once(f):
        _, faces = det.detect(f)
        if faces is None or len(faces) == 0:
            return 0, None
        crop = rec.alignCrop(f, faces[0])
        e = rec.feature(crop).reshape(-1)
        return len(faces), e / np.linalg.norm(e)

    for f in fr[:3]:
        once(f)
    for f in fr:
        t0 = time.perf_counter()
        c, e = once(f)
        times.append((time.perf_counter() - t0) * 1000)
        counts.append(c)
        embs.append(None if e is None else [float(x) for x in e])
    return {"times": times, "embs": embs, "counts": counts,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child(kind: str, threads: int, n: int, size) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--threads", str(threads), "--frames", str(n),
           "--size", f"{size[0]}x{size[1]}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    return json.loads(out.stdout.strip().splitlines()[-1])


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", choices=("ours", "cv2"))
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args()
    size = tuple(int(x) for x in args.size.split("x"))
    if args.child:
        fn = run_ours if args.child == "ours" else run_cv2
        print(json.dumps(fn(args.threads, args.frames, size)))
        return 0

    from tqdm import tqdm
    import numpy as np

    variants = [(k, t) for t in (1, 2, 4) for k in ("ours", "cv2")]
    results = {}
    for kind, th in tqdm(variants, desc="variants", unit="run"):
        results[(kind, th)] = child(kind, th, args.frames, size)
    rows = ["| pipeline | threads | median ms/frame | p95 ms | peak RSS MB |", "|---|---|---|---|---|"]
    for (kind, th), r in results.items():
        name = "ours (onnxruntime)" if kind == "ours" else "OpenCV FaceDetectorYN + FaceRecognizerSF"
        rows.append(f"| {name} | {th} | {statistics.median(r['times']):.1f} | {p95(r['times']):.1f} | {r['rss_mb']:.0f} |")
    ratio = [statistics.median(results[("cv2", t)]["times"]) / statistics.median(results[("ours", t)]["times"])
             for t in (1, 2, 4)]
    a, b = results[("ours", 1)], results[("cv2", 1)]
    cos = [float(np.dot(x, y)) for x, y in zip(a["embs"], b["embs"]) if x is not None and y is not None]
    same_count = sum(1 for x, y in zip(a["counts"], b["counts"]) if x == y)
    lines = rows + ["",
                    f"ours vs OpenCV (speed-up): {ratio[0]:.2f}x (1 thread), {ratio[1]:.2f}x (2), {ratio[2]:.2f}x (4) "
                    f"({'faster' if min(ratio) > 1 else 'not faster everywhere'}); frames {args.size}, "
                    f"{len(a['times'])} per run, {os.cpu_count()} CPUs",
                    f"accuracy: embedding cosine ours vs OpenCV on the same frame: mean {statistics.mean(cos):.4f}, "
                    f"min {min(cos):.4f} over {len(cos)} frames; same face count on {same_count}/{len(a['counts'])} frames"]
    print()
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
