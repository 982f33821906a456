"""Threshold calibration on a labelled photo folder, in the card-vs-live setting of the reader.

Every photo is embedded twice: in *live* form (the file as a camera frame) and in
*card* form (``encode_card_photo`` -> JPEG 2000 bytes -> the same bounded decode the
daemon uses for the chip photo). Genuine pairs are (card form of A, live form of B)
for two different photos A != B of one identity; impostor pairs are the same for
photos of different identities (both orders). A match is ``score >= threshold``.

The threshold is chosen so that the 95 % upper bound on the false match rate, counted
over distinct identity pairs, is <= 0.1 %; a set too small to support that (fewer than
78 people) keeps the public reference threshold of the model. The rule is checked by
identity-disjoint cross-validation (:mod:`myna_models.threshold_stats` holds the
statistics and says why identities, not photo pairs, are the unit).

The result goes to the reader's state directory (``<state_dir>/face-calibration.toml``,
:mod:`myna_models.calibration_file`), never into the package; the Markdown report and
plots go to ``out`` (docs/ in the source tree).

matplotlib and tqdm are technician tools (the ``tools`` extra): imported only here.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from myna_models.calibration_file import CALIBRATION_FILE, SCHEMA, write_calibration
from myna_models.cardphoto import encode_card_photo
from myna_models.engine import Face, FaceEngine, decode_card_photo
from myna_models.errors import FaceError
from myna_models.threshold_stats import (CvSummary, Fold, Pairs, binom_upper, bootstrap_upper, cross_validate,
                                         equal_error, fmr_fnmr, identities_needed, identity_pair_accepts,
                                         roc_curve, select_threshold, summarise, threshold_at_fmr, trials_needed)

TARGET_FMR = 1e-3      # the false match rate whose 95 % upper bound the threshold must keep
SECONDARY_FMR = 1e-2
CONFIDENCE = 0.95
# The floor when the data cannot support a threshold of its own is the manifest's default for
# the recognizer: for SFace, OpenCV Zoo's published cosine threshold 0.363 (the public
# reference, measured by its authors on far more people than a site can collect).
BOOTSTRAP_ROUNDS = 2000


@dataclass
class Embedded:
    files: list[str]
    identities: list[str]
    live: np.ndarray           # (N, 128)
    card: np.ndarray           # (N, 128)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (file, form, reason)
    timing_ms: dict[str, list[float]] = field(default_factory=dict)
    card_bytes: list[int] = field(default_factory=list)
    n_photos: int = 0


def read_labels(folder: Path) -> list[tuple[str, str]]:
    path = folder / "labels.csv"
    if not path.exists():
        raise FaceError(f"{path} is missing (columns: file,identity)")
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if not r.get("file") or not r.get("identity"):
                continue
            rows.append((r["file"].strip(), r["identity"].strip()))
    if not rows:
        raise FaceError(f"{path} has no rows with file and identity")
    return rows


def embed_folder(engine: FaceEngine, folder: Path, labels: list[tuple[str, str]], progress: bool = True) -> Embedded:
    from tqdm import tqdm

    files, ids, live, card = [], [], [], []
    out = Embedded([], [], np.zeros((0, 128)), np.zeros((0, 128)), n_photos=len(labels))
    t: dict[str, list[float]] = {"live_detect": [], "card_detect": [], "embed": [], "card_decode": []}
    for name, ident in tqdm(labels, desc="embedding photos", unit="photo", disable=not progress):
        try:
            with Image.open(folder / name) as im:
                rgb = ImageOps.exif_transpose(im).convert("RGB")
        except (OSError, ValueError) as e:
            out.failures.append((name, "file", f"unreadable ({e})"))
            continue
        bgr = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
        try:
            v_live, face = _embed_timed(engine, bgr, t, "live_detect")
        except FaceError as e:
            out.failures.append((name, "live", e.message))
            continue
        jp2 = encode_card_photo(portrait_crop(rgb, face.box))
        out.card_bytes.append(len(jp2))
        try:
            t0 = time.perf_counter()
            card_bgr = decode_card_photo(jp2)
            t["card_decode"].append((time.perf_counter() - t0) * 1000)
            v_card, _ = _embed_timed(engine, card_bgr, t, "card_detect")
        except FaceError as e:
            out.failures.append((name, "card", e.message))
            continue
        files.append(name)
        ids.append(ident)
        live.append(v_live)
        card.append(v_card)
    out.files, out.identities = files, ids
    out.live = np.asarray(live, np.float32).reshape(-1, 128)
    out.card = np.asarray(card, np.float32).reshape(-1, 128)
    out.timing_ms = t
    return out


def _embed_timed(engine: FaceEngine, bgr: np.ndarray, t: dict[str, list[float]], key: str) -> tuple[np.ndarray, Face]:
    t0 = time.perf_counter()
    faces = engine.detect_still(bgr)
    t1 = time.perf_counter()
    if not faces:
        raise FaceError("no face found")
    face = max(faces, key=lambda f: f.area)
    v = engine.embed_face(bgr, face)
    t2 = time.perf_counter()
    t[key].append((t1 - t0) * 1000)
    t["embed"].append((t2 - t1) * 1000)
    return v, face


PORTRAIT_FACE_HEIGHT = 0.55   # face box height / photo height in an ID-style portrait


def portrait_crop(rgb: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    """An ID-photo framing of the face before ``encode_card_photo``: 3:4, face centred, face box ~55% of the
    height (shifted to stay inside the image, never larger than it). ``encode_card_photo`` alone centre-crops,
    which cuts the face out of tall or wide press photos; the chip photo is always a face-centred portrait."""
    w, h = rgb.size
    x, y, bw, bh = box
    ch = bh / PORTRAIT_FACE_HEIGHT
    cw = ch * 3 / 4
    if cw > w:
        cw, ch = w, w * 4 / 3
    if ch > h:
        ch, cw = h, h * 3 / 4
    cx, cy = x + bw / 2, y + bh / 2
    x0 = min(max(cx - cw / 2, 0), w - cw)
    y0 = min(max(cy - ch / 2, 0), h - ch)
    return rgb.crop((round(x0), round(y0), round(x0 + cw), round(y0 + ch)))


def pairs_of(emb: Embedded) -> tuple[Pairs, np.ndarray, np.ndarray]:
    """All card-vs-live pairs with their identities, and the (card photo, live photo) indices of each."""
    sims = emb.card @ emb.live.T  # both L2-normalised -> cosine
    names = sorted(set(emb.identities))
    pid = np.array([names.index(i) for i in emb.identities], dtype=int)
    same = pid[:, None] == pid[None, :]
    off_diag = ~np.eye(len(pid), dtype=bool)
    g_idx = np.argwhere(same & off_diag)
    i_idx = np.argwhere(~same)
    pairs = Pairs(names, sims[g_idx[:, 0], g_idx[:, 1]].astype(np.float64), pid[g_idx[:, 0]],
                  sims[i_idx[:, 0], i_idx[:, 1]].astype(np.float64), pid[i_idx[:, 0]], pid[i_idx[:, 1]])
    return pairs, g_idx, i_idx


@dataclass
class Bounds:
    """Error rates at one threshold with their 95 % upper bounds."""

    threshold: float
    fmr: float
    imp_accepts: int
    imp_pairs: int
    id_pairs_accepted: int
    id_pairs: int
    fmr_upper_id_pairs: float      # Clopper-Pearson over distinct identity pairs: the bound used
    fmr_upper_bootstrap: float     # bootstrap over identities (0 when nothing was accepted)
    fmr_upper_naive: float         # Clopper-Pearson over photo pairs as if independent (optimistic)
    fnmr: float
    gen_rejects: int
    gen_pairs: int
    fnmr_upper_pairs: float        # Clopper-Pearson over genuine pairs as if independent
    fnmr_upper_bootstrap: float

    @property
    def fmr_upper(self) -> float:
        return max(self.fmr_upper_id_pairs, self.fmr_upper_bootstrap)

    @property
    def fnmr_upper(self) -> float:
        return max(self.fnmr_upper_pairs, self.fnmr_upper_bootstrap)


def bounds_at(p: Pairs, t: float) -> Bounds:
    k_id, n_id = identity_pair_accepts(p, t)
    b_fmr, b_fnmr = bootstrap_upper(p, t, CONFIDENCE, BOOTSTRAP_ROUNDS)
    fmr, fnmr = fmr_fnmr(p.genuine, p.impostor, t)
    ka, kr = int(np.sum(p.impostor >= t)), int(np.sum(p.genuine < t))
    return Bounds(t, fmr, ka, len(p.impostor), k_id, n_id, binom_upper(k_id, n_id, CONFIDENCE), b_fmr,
                  binom_upper(ka, len(p.impostor), CONFIDENCE), fnmr, kr, len(p.genuine),
                  binom_upper(kr, len(p.genuine), CONFIDENCE), b_fnmr)


@dataclass
class Result:
    folder: Path
    engine_recognizer: str
    recognizer_sha256: str
    emb: Embedded
    pairs: Pairs
    g_idx: np.ndarray
    i_idx: np.ndarray
    eer: float
    eer_threshold: float
    at_fmr: dict[float, tuple[float, float, float]]  # target -> (in-sample threshold, fnmr, fmr)
    reference: float
    threshold: float
    bound_met: bool
    rule: str
    rule_reason: str
    chosen: Bounds
    folds: list[Fold]
    cv: CvSummary
    live_live_eer: float
    card_card_eer: float
    date: str

    @property
    def genuine(self) -> np.ndarray:
        return self.pairs.genuine

    @property
    def impostor(self) -> np.ndarray:
        return self.pairs.impostor

    def state_values(self, calibrated_on: str, labels_sha: str) -> dict:
        """The content of ``<state_dir>/face-calibration.toml`` (calibration_file.py reads it back)."""
        c, cv = self.chosen, self.cv
        cal = {
            "recognizer": self.engine_recognizer,
            "recognizer_sha256": self.recognizer_sha256,
            "threshold": self.threshold,
            "rule": self.rule,
            "bound_met": self.bound_met,
            "target_fmr": TARGET_FMR,
            "confidence": CONFIDENCE,
            "reference_threshold": self.reference,
            "method": ("FMR bound: one-sided Clopper-Pearson over distinct identity pairs (and a bootstrap over "
                       "identities, the larger is reported); rule checked by leave-identities-out cross-validation"),
            "fmr": round(c.fmr, 6),
            "fmr_upper": round(c.fmr_upper, 6),
            "fmr_upper_id_pairs": round(c.fmr_upper_id_pairs, 6),
            "fmr_upper_bootstrap": round(c.fmr_upper_bootstrap, 6),
            "fnmr": round(c.fnmr, 6),
            "fnmr_upper": round(c.fnmr_upper, 6),
            "cv_folds": cv.folds,
            "cv_heldout_fmr": round(cv.heldout_fmr, 6),
            "cv_heldout_fnmr": round(cv.heldout_fnmr, 6),
            "cv_heldout_fmr_insample_rule": round(cv.heldout_fmr_insample_rule, 6),
            "calibrated_on": calibrated_on,
            "labels_sha256": labels_sha,
            "pairing": "card form (greyscale JPEG 2000 180x240 via encode_card_photo) vs live form",
            "photos": len(self.emb.files),
            "identities": self.pairs.n_ids,
            "identity_pairs": c.id_pairs,
            "genuine_pairs": int(len(self.genuine)),
            "impostor_pairs": int(len(self.impostor)),
            "eer": round(self.eer, 6),
            "date": self.date,
        }
        folds = [{"held_out": ", ".join(f.held_out), "threshold": f.threshold,
                  "insample_threshold": f.insample_threshold,
                  "test_impostor_pairs": f.test_impostor, "test_accepts": f.test_accepts,
                  "test_accepts_insample_rule": f.test_accepts_insample,
                  "test_genuine_pairs": f.test_genuine, "test_rejects": f.test_rejects} for f in self.folds]
        return {"schema": SCHEMA, "calibration": cal, "fold": folds}


def analyse(engine: FaceEngine, folder: Path, emb: Embedded, progress: bool = False) -> Result:
    pairs, g_idx, i_idx = pairs_of(emb)
    genuine, impostor = pairs.genuine, pairs.impostor
    if len(genuine) == 0 or len(impostor) == 0:
        raise FaceError(f"{folder}: need at least two photos of one identity and two identities with usable faces")
    reference = engine.manifest.threshold_for(engine.recognizer)[0]
    eer, eer_t = equal_error(genuine, impostor)
    at = {}
    for target in (SECONDARY_FMR, TARGET_FMR):
        t = threshold_at_fmr(impostor, target)
        fmr, fnmr = fmr_fnmr(genuine, impostor, t)
        at[target] = (t, fnmr, fmr)

    if progress:
        print(f"cross-validating over {pairs.n_ids} identities (leave identities out)...", flush=True)
    folds = cross_validate(pairs, TARGET_FMR, reference, CONFIDENCE)
    n_id_pairs = identity_pair_accepts(pairs, 1.0)[1]
    cv = summarise(folds, n_id_pairs, CONFIDENCE)

    threshold, met = select_threshold(pairs, TARGET_FMR, reference, CONFIDENCE)
    need_pairs, need_ids = trials_needed(TARGET_FMR, CONFIDENCE), identities_needed(TARGET_FMR, CONFIDENCE)
    if met:
        rule = "fmr-bound"
        reason = (f"{n_id_pairs} distinct identity pairs support a 95 % upper bound on the FMR <= {TARGET_FMR:g}; "
                  f"{threshold:.3f} is the smallest threshold that keeps it")
    else:
        rule = "public-reference"
        raised = threshold > reference
        reason = (f"{pairs.n_ids} identities give only {n_id_pairs} distinct identity pairs: even with none of them "
                  f"matching, the 95 % upper bound on the FMR is {binom_upper(0, n_id_pairs, CONFIDENCE):.2%}, far "
                  f"above {TARGET_FMR:.1%} (that needs >= {need_pairs} identity pairs, i.e. >= {need_ids} people). "
                  "The data cannot support a threshold of its own, so the public reference threshold of the model "
                  f"({reference:.3f}) is kept" + (", raised just above the highest impostor score seen" if raised
                                                  else "; no impostor pair of this set reaches it"))
    if progress:
        print(f"bounds at {threshold:.3f} (bootstrap over identities, {BOOTSTRAP_ROUNDS} rounds)...", flush=True)
    chosen = bounds_at(pairs, threshold)

    def same_form_eer(a: np.ndarray) -> float:
        s = a @ a.T
        ids = np.asarray(emb.identities)
        same = ids[:, None] == ids[None, :]
        iu = np.triu_indices(len(ids), 1)
        return equal_error(s[iu][same[iu]].astype(np.float64), s[iu][~same[iu]].astype(np.float64))[0]

    return Result(folder, engine.recognizer, engine.hashes[engine.recognizer], emb, pairs, g_idx, i_idx, eer, eer_t,
                  at, reference, threshold, met, rule, reason, chosen, folds, cv,
                  same_form_eer(emb.live), same_form_eer(emb.card), _dt.date.today().isoformat())


# ---------------------------------------------------------------- plots

def plot_roc(res: Result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, fmr, fnmr = roc_curve(res.genuine, res.impostor)
    floor = 0.5 / len(res.impostor)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=110)
    ax.step(np.maximum(fmr, floor), 1 - fnmr, where="post", color="C0", label="card form vs live form")
    ax.set_xscale("log")
    ax.set_xlim(floor, 1)
    lowest = float(np.min((1 - fnmr)[fmr >= floor])) if np.any(fmr >= floor) else 0.0
    ax.set_ylim(max(0.0, min(0.95, lowest) - 0.01), 1.002)  # zoom: the interesting part is near 1
    for target in (SECONDARY_FMR, TARGET_FMR):
        ax.axvline(target, color="grey", lw=0.8, ls=":")
    f, n = fmr_fnmr(res.genuine, res.impostor, res.threshold)
    ax.plot([max(f, floor)], [1 - n], "o", color="C3",
            label=f"chosen threshold {res.threshold:.3f} ({res.rule}): FMR {f:.4f}, FNMR {n:.3f}")
    ef, en = fmr_fnmr(res.genuine, res.impostor, res.eer_threshold)
    ax.plot([max(ef, floor)], [1 - en], "s", color="C2", label=f"EER {res.eer:.3f} at {res.eer_threshold:.3f}")
    ax.set_xlabel("false match rate (impostor pairs accepted)")
    ax.set_ylabel("1 - false non-match rate")
    ax.set_title(f"ROC, {res.engine_recognizer}\n{len(res.genuine)} genuine / {len(res.impostor)} impostor pairs",
                 fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_hist(res: Result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    bins = np.linspace(min(res.impostor.min(), res.genuine.min()) - 0.02, 1.0, 60).tolist()
    ax.hist(res.impostor, bins=bins, density=True, alpha=0.6, color="C1", label=f"impostor ({len(res.impostor)})")
    ax.hist(res.genuine, bins=bins, density=True, alpha=0.6, color="C0", label=f"genuine ({len(res.genuine)})")
    ax.axvline(res.threshold, color="C3", lw=1.2, label=f"threshold {res.threshold:.3f} ({res.rule})")
    ax.axvline(res.eer_threshold, color="C2", lw=1.0, ls="--", label=f"EER point {res.eer_threshold:.3f}")
    ax.set_xlabel("cosine similarity (card form vs live form)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------- report

def _ms(v: list[float]) -> str:
    if not v:
        return "-"
    return f"{np.median(v):.1f} (p90 {np.percentile(v, 90):.1f})"


def _pct(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}%}"


def write_report(res: Result, out: Path, roc_png: Path, hist_png: Path, state_note: str, engine: FaceEngine,
                 labels_sha: str, calibrated_on: str) -> Path:
    e, c, cv, p = res.emb, res.chosen, res.cv, res.pairs
    ratio = cv.heldout_fmr_insample_rule / cv.insample_fmr if cv.insample_fmr > 0 else float("inf")
    lines = [
        "# Face matching calibration",
        "",
        f"Generated by `mynactl face-calibrate` on {res.date}. Data: `{calibrated_on}` "
        f"(labels.csv sha256 `{labels_sha[:16]}…`).",
        "",
        "## Setting",
        "",
        f"- Recognizer `{engine.recognizer}` (sha256 `{res.recognizer_sha256}`), detector "
        f"`{engine.detector_file}`; onnxruntime {engine._ort.__version__}, {engine.threads} threads.",
        "- Every photo is embedded twice: **live form** (the file, as a camera frame) and **card form** "
        "(ID-photo framing around the detected face: 3:4, face box ~55% of the height, then "
        "`encode_card_photo`: greyscale JPEG 2000 180x240, "
        f"median {int(np.median(e.card_bytes)) if e.card_bytes else 0} bytes, decoded by the daemon's bounded "
        "`decode_card_photo`, then detected and embedded like the chip photo).",
        "- **Genuine** pair: card form of photo A vs live form of photo B, same identity, A ≠ B (both orders). "
        "**Impostor** pair: the same for different identities. Match = cosine ≥ threshold.",
        f"- {e.n_photos} photos listed, {len(e.files)} usable in both forms, {p.n_ids} identities: "
        f"{len(res.genuine)} genuine and {len(res.impostor)} impostor pairs, {c.id_pairs} distinct identity pairs.",
        "",
        "## Result",
        "",
        "| figure | value |",
        "|---|---|",
        f"| **threshold** | **{res.threshold:.3f}** (rule `{res.rule}`; FMR bound met: "
        f"{'yes' if res.bound_met else 'no'}) |",
        f"| target | 95 % upper bound on the FMR ≤ {TARGET_FMR:.1%} |",
        f"| FMR at the threshold | {_pct(c.fmr, 3)} ({c.imp_accepts}/{c.imp_pairs} impostor pairs; "
        f"{c.id_pairs_accepted}/{c.id_pairs} identity pairs with any accept) |",
        f"| **95 % upper bound on the FMR** | **{_pct(c.fmr_upper)}** (Clopper-Pearson over identity pairs "
        f"{_pct(c.fmr_upper_id_pairs)}; bootstrap over identities {_pct(c.fmr_upper_bootstrap)}) |",
        f"| for comparison: bound if photo pairs were independent | {_pct(c.fmr_upper_naive, 3)} "
        "(optimistic, not used) |",
        f"| FNMR at the threshold (card form vs live form) | {_pct(c.fnmr)} ({c.gen_rejects}/{c.gen_pairs} "
        "genuine pairs) |",
        f"| **95 % upper bound on the FNMR** | **{_pct(c.fnmr_upper)}** (Clopper-Pearson over genuine pairs "
        f"{_pct(c.fnmr_upper_pairs)}; bootstrap over identities {_pct(c.fnmr_upper_bootstrap)}) |",
        f"| cross-validated (held-out identities) FMR / FNMR of this rule | {_pct(cv.heldout_fmr, 3)} / "
        f"{_pct(cv.heldout_fnmr)} ({cv.folds} folds) |",
        f"| EER (in-sample, context only) | {_pct(res.eer)} at {res.eer_threshold:.4f}; live vs live "
        f"{_pct(res.live_live_eer)}, card vs card {_pct(res.card_card_eer)} |",
        f"| genuine scores | min {res.genuine.min():.3f}, median {np.median(res.genuine):.3f} |",
        f"| impostor scores | median {np.median(res.impostor):.3f}, max {res.impostor.max():.3f} |",
        "",
        f"**Why this threshold.** {res.rule_reason}.",
        "",
        "**Why identity pairs.** Each photo takes part in dozens of impostor pairs and each person in hundreds, so "
        "the pairs are not independent trials: a bound that counts photo pairs is several times too optimistic. "
        "The bound used counts each distinct pair of people as one trial (a trial fails if *any* of its photo pairs "
        "matches, which errs on the safe side); the bootstrap resamples people, not pairs (at zero accepts it "
        "collapses to 0, so it only adds information when something was accepted). The larger of the two is "
        "reported. The FNMR bound is the larger of a pair-level Clopper-Pearson bound and the same bootstrap.",
        "",
        "## Cross-validation with identity-disjoint folds",
        "",
        f"{cv.folds} folds, leave {'one identity' if all(len(f.held_out) == 1 for f in res.folds) else 'identities'} "
        "out: the threshold is chosen on the pairs among the training identities only; the fold's test pairs are "
        "every pair that involves a held-out identity (its card form against everyone's live form and the reverse), "
        "none of which the threshold saw. An impostor pair of two people is tested in both their folds, each time "
        "with that fold's threshold.",
        "",
        f"- **Old rule** (in-sample FMR ≤ {TARGET_FMR:g} on the pairs at hand, what face-calibrate did before): "
        f"FMR on its own training pairs {_pct(cv.insample_fmr, 3)} on average, on the held-out pairs "
        f"**{_pct(cv.heldout_fmr_insample_rule, 3)}** ({ratio:.1f}x); {cv.id_pairs_accepted_insample_rule}/"
        f"{cv.id_pairs} identity pairs accepted at least once, 95 % bound {_pct(cv.fmr_upper_insample_rule)}; "
        f"held-out FNMR {_pct(cv.heldout_fnmr_insample_rule)}.",
        f"- **This rule** (bound, else never below the reference {res.reference:.3f}): held-out FMR "
        f"**{_pct(cv.heldout_fmr, 3)}**, {cv.id_pairs_accepted}/{cv.id_pairs} identity pairs accepted, 95 % bound "
        f"{_pct(cv.fmr_upper)}; held-out FNMR {_pct(cv.heldout_fnmr)}.",
        "",
        "| held out | old rule: threshold | held-out impostor accepts | held-out genuine rejects "
        "| this rule: threshold | held-out impostor accepts | held-out genuine rejects |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in res.folds:
        lines.append(f"| {', '.join(f.held_out)} | {f.insample_threshold:.3f} | {f.test_accepts_insample}/"
                     f"{f.test_impostor} | {f.test_rejects_insample}/{f.test_genuine} | {f.threshold:.3f}"
                     f"{'' if f.bound_met else ' (reference)'} | {f.test_accepts}/{f.test_impostor} | "
                     f"{f.test_rejects}/{f.test_genuine} |")
    lines += [
        "",
        "## Other operating points (all pairs, in-sample)",
        "",
        "| threshold | FMR | identity pairs accepted | FNMR | note |",
        "|---|---|---|---|---|",
    ]
    points = [(res.at_fmr[SECONDARY_FMR][0], "in-sample FMR ≤ 1e-2"), (res.at_fmr[TARGET_FMR][0],
              "in-sample FMR ≤ 1e-3 (the old rule)"), (round(res.eer_threshold, 3), "EER point"),
              (math.floor(res.impostor.max() * 1000) / 1000 + 0.001, "just above the highest impostor score"),
              (res.reference, "public reference (OpenCV Zoo), shipped default")]
    seen = set()
    for thr, note in sorted(points):
        if thr == res.threshold:
            note += "; **chosen**"
        key = (round(thr, 3), note)
        if key in seen:
            continue
        seen.add(key)
        pf, pn = fmr_fnmr(res.genuine, res.impostor, thr)
        k, n = identity_pair_accepts(p, thr)
        lines.append(f"| {thr:.3f} | {_pct(pf, 4)} | {k}/{n} | {_pct(pn)} | {note} |")
    lines += [
        "",
        f"![ROC]({roc_png.name})",
        "",
        f"![score histograms]({hist_png.name})",
        "",
        "## Caveats",
        "",
        f"- {p.n_ids} identities cannot show an FMR of {TARGET_FMR:.1%}: the threshold is the public reference, "
        f"and this set only checks that it is not contradicted (no impostor pair reaches it here, and held-out "
        "identities behave like the training ones). Re-run on a set with more people (and real card photos) "
        "before lowering it.",
        "- The card form is a simulation of the chip photo (the same encoder and decoder), not a scan of a "
        "printed card; the set mixes press photos, LFW news photos and 150x150 greyscale TV stills. "
        "Reception-desk frames (frontal, cooperative, indoor light) should score higher for genuine pairs.",
        "",
        "## Hardest genuine pairs (lowest scores)",
        "",
        "| card form | live form | score |",
        "|---|---|---|",
    ]
    for j in np.argsort(res.genuine)[:10]:
        a, b = res.g_idx[j]
        lines.append(f"| {e.files[a]} | {e.files[b]} | {res.genuine[j]:.3f} |")
    lines += ["", "## Highest impostor pairs", "", "| card form | live form | score |", "|---|---|---|"]
    for j in np.argsort(-res.impostor)[:10]:
        a, b = res.i_idx[j]
        lines.append(f"| {e.files[a]} | {e.files[b]} | {res.impostor[j]:.3f} |")
    lines += ["", "## Photos left out", ""]
    if e.failures:
        lines += ["| file | form | reason |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c_} |" for a, b, c_ in e.failures]
    else:
        lines.append("None: every photo gave a face in both forms.")
    t = e.timing_ms
    lines += [
        "",
        "## Timing on this machine (ms, median)",
        "",
        f"- detect, live photos (downscaled to ≤ 640 px, incl. resize): {_ms(t.get('live_detect', []))}",
        f"- detect, card photos (180x240): {_ms(t.get('card_detect', []))}",
        f"- align + embed (SFace): {_ms(t.get('embed', []))}",
        f"- JPEG 2000 decode of the card photo: {_ms(t.get('card_decode', []))}",
        "",
        "## Where the threshold lives",
        "",
        state_note,
        "",
        "The shipped manifest (`models/myna_models/manifest.toml`) keeps the model hashes and the default "
        f"threshold {res.reference:.3f} (the public reference). The face engine reads "
        f"`<state_dir>/{CALIBRATION_FILE}` when it exists and its `recognizer_sha256` is the recognizer it loads "
        "(a file for another recognizer is ignored with a warning, a malformed one stops the engine with a "
        "ModelError), else the manifest's default. Reinstalling the package does not touch the state directory.",
        "",
    ]
    path = out / "face-calibration.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _display_path(p: Path) -> str:
    try:
        return os.path.relpath(p.resolve(), Path.cwd())
    except ValueError:
        return str(p)


def calibrate(folder: Path | str, out: Path | str, engine: FaceEngine, state_dir: Path | str | None = None,
              write: bool = True, progress: bool = True) -> Result:
    """Embed, analyse, write the report and plots to ``out`` and (``write``) the threshold to
    ``<state_dir>/face-calibration.toml``."""
    folder, out = Path(folder), Path(out)
    if write and state_dir is None:
        raise ValueError("calibrate(write=True) needs the reader's state_dir")
    labels = read_labels(folder)
    labels_sha = hashlib.sha256((folder / "labels.csv").read_bytes()).hexdigest()
    emb = embed_folder(engine, folder, labels, progress=progress)
    res = analyse(engine, folder, emb, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    roc_png, hist_png = out / "face-roc.png", out / "face-scores.png"
    plot_roc(res, roc_png)
    plot_hist(res, hist_png)
    calibrated_on = f"{_display_path(folder)} ({len(emb.files)} photos, {res.pairs.n_ids} identities)"
    if write:
        assert state_dir is not None  # refused above, before the slow work
        target = Path(state_dir) / CALIBRATION_FILE
        write_calibration(target, res.state_values(calibrated_on, labels_sha))
        note = (f"Threshold {res.threshold:.3f} written to `{target}` (the reader's state directory) for "
                f"`{engine.recognizer}` (sha256 `{res.recognizer_sha256[:16]}…`).")
    else:
        note = "`--no-write`: no calibration file was written; the reader keeps its current threshold."
    write_report(res, out, roc_png, hist_png, note, engine, labels_sha, calibrated_on)
    return res


__all__ = ["calibrate", "analyse", "embed_folder", "read_labels", "pairs_of", "bounds_at", "Result", "Bounds",
           "TARGET_FMR", "CONFIDENCE"]
