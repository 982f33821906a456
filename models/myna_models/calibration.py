"""Threshold calibration on a labelled photo folder, in the card-vs-live setting of the reader.

Every photo is embedded twice: in *live* form (the file as a camera frame) and in
*card* form (``encode_card_photo`` -> JPEG 2000 bytes -> the same bounded decode the
daemon uses for the chip photo). Genuine pairs are (card form of A, live form of B)
for two different photos A != B of one identity; impostor pairs are the same for
photos of different identities (both orders). A match is ``score >= threshold``.

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

from myna_models.cardphoto import encode_card_photo
from myna_models.engine import FaceEngine, decode_card_photo
from myna_models.errors import FaceError
from myna_models.manifest import update_threshold

TARGET_FMR = 1e-3
SECONDARY_FMR = 1e-2
MAX_FNMR_AT_TARGET = 0.5   # beyond this the FMR target is not a usable operating point on this data


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
    t = {"live_detect": [], "card_detect": [], "embed": [], "card_decode": []}
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


def _embed_timed(engine: FaceEngine, bgr: np.ndarray, t: dict, key: str) -> np.ndarray:
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


def pair_scores(emb: Embedded) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scores and (card index, live index) pairs: genuine, impostor."""
    sims = emb.card @ emb.live.T  # both L2-normalised -> cosine
    ids = np.asarray(emb.identities)
    same = ids[:, None] == ids[None, :]
    n = len(ids)
    off_diag = ~np.eye(n, dtype=bool)
    g_idx = np.argwhere(same & off_diag)
    i_idx = np.argwhere(~same)
    return (sims[g_idx[:, 0], g_idx[:, 1]].astype(np.float64), sims[i_idx[:, 0], i_idx[:, 1]].astype(np.float64),
            g_idx, i_idx)


def fmr_fnmr(genuine: np.ndarray, impostor: np.ndarray, t: float) -> tuple[float, float]:
    return float(np.mean(impostor >= t)), float(np.mean(genuine < t))


def threshold_at_fmr(impostor: np.ndarray, target: float, decimals: int = 3) -> float:
    """Smallest threshold (rounded up to ``decimals``) whose FMR on ``impostor`` is <= target."""
    imp = np.sort(impostor)[::-1]
    k = int(math.floor(target * len(imp) + 1e-9))  # impostor pairs allowed at or above the threshold
    if k >= len(imp):
        return -1.0
    q = 10 ** decimals
    t = math.floor(imp[k] * q) / q + 1.0 / q
    while float(np.mean(impostor >= t)) > target:
        t += 1.0 / q
    return round(t, decimals)


def equal_error(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(EER, threshold at the EER point)."""
    cands = np.unique(np.concatenate([genuine, impostor, [1.0 + 1e-6]]))
    imp_sorted, gen_sorted = np.sort(impostor), np.sort(genuine)
    fmr = 1.0 - np.searchsorted(imp_sorted, cands, side="left") / len(imp_sorted)
    fnmr = np.searchsorted(gen_sorted, cands, side="left") / len(gen_sorted)
    i = int(np.argmin(np.abs(fmr - fnmr)))
    return float((fmr[i] + fnmr[i]) / 2), float(cands[i])


def roc_curve(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cands = np.unique(np.concatenate([genuine, impostor]))[::-1]
    fmr = 1.0 - np.searchsorted(np.sort(impostor), cands, side="left") / len(impostor)
    fnmr = np.searchsorted(np.sort(genuine), cands, side="left") / len(genuine)
    return cands, fmr, fnmr


def binom_upper(k: int, n: int, conf: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound for a rate with k events in n trials."""
    if n == 0:
        return 1.0
    if k >= n:
        return 1.0

    def cdf(p: float) -> float:
        if p <= 0:
            return 1.0
        if p >= 1:
            return 0.0
        lp, lq = math.log(p), math.log1p(-p)
        return sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)
                   for i in range(k + 1))

    lo, hi = k / n, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if cdf(mid) > 1 - conf:
            lo = mid
        else:
            hi = mid
    return hi


@dataclass
class Result:
    folder: Path
    engine_recognizer: str
    emb: Embedded
    genuine: np.ndarray
    impostor: np.ndarray
    g_idx: np.ndarray
    i_idx: np.ndarray
    eer: float
    eer_threshold: float
    at_fmr: dict[float, tuple[float, float, float]]  # target -> (threshold, fnmr, fmr)
    threshold: float
    rule: str
    rule_reason: str
    live_live_eer: float
    card_card_eer: float
    date: str

    def manifest_values(self, calibrated_on: str) -> dict:
        fmr, fnmr = fmr_fnmr(self.genuine, self.impostor, self.threshold)
        t2, f2, _ = self.at_fmr[SECONDARY_FMR]
        t3, f3, _ = self.at_fmr[TARGET_FMR]
        return {
            "value": self.threshold,
            "rule": self.rule,
            "calibrated_on": calibrated_on,
            "pairing": "card form (greyscale JPEG 2000 180x240 via encode_card_photo) vs live form",
            "photos": len(self.emb.files),
            "identities": len(set(self.emb.identities)),
            "genuine_pairs": int(len(self.genuine)),
            "impostor_pairs": int(len(self.impostor)),
            "eer": round(self.eer, 5),
            "eer_threshold": round(self.eer_threshold, 4),
            "fmr": round(fmr, 6),
            "fnmr": round(fnmr, 5),
            "threshold_at_fmr_1e-2": t2,
            "fnmr_at_fmr_1e-2": round(f2, 5),
            "threshold_at_fmr_1e-3": t3,
            "fnmr_at_fmr_1e-3": round(f3, 5),
            "date": self.date,
        }


def analyse(engine: FaceEngine, folder: Path, emb: Embedded) -> Result:
    genuine, impostor, g_idx, i_idx = pair_scores(emb)
    if len(genuine) == 0 or len(impostor) == 0:
        raise FaceError(f"{folder}: need at least two photos of one identity and two identities with usable faces")
    eer, eer_t = equal_error(genuine, impostor)
    at = {}
    for target in (SECONDARY_FMR, TARGET_FMR):
        t = threshold_at_fmr(impostor, target)
        fmr, fnmr = fmr_fnmr(genuine, impostor, t)
        at[target] = (t, fnmr, fmr)
    t3, fnmr3, _ = at[TARGET_FMR]
    n_imp = len(impostor)
    needed = math.ceil(3 / TARGET_FMR)
    if n_imp < needed:
        threshold, rule = round(eer_t, 3), "eer"
        reason = (f"only {n_imp} impostor pairs: FMR 1e-3 cannot be resolved on this data "
                  f"(rule of three needs >= {needed}), so the EER point is used")
    elif fnmr3 > MAX_FNMR_AT_TARGET:
        threshold, rule = round(eer_t, 3), "eer"
        reason = (f"FMR <= 1e-3 would reject {fnmr3:.0%} of genuine pairs (> {MAX_FNMR_AT_TARGET:.0%}), "
                  "not an operating point; the EER point is used")
    else:
        threshold, rule = t3, "fmr<=1e-3"
        reason = (f"{n_imp} impostor pairs (>= {needed}, the rule-of-three minimum to resolve 1e-3) and FNMR "
                  f"{fnmr3:.1%} at that point: the FMR target is achievable, and a false accept (someone else's "
                  "card accepted) costs more than a false reject (which falls back to PIN / staff visual check)")

    def same_form_eer(a: np.ndarray) -> float:
        s = a @ a.T
        ids = np.asarray(emb.identities)
        same = ids[:, None] == ids[None, :]
        iu = np.triu_indices(len(ids), 1)
        return equal_error(s[iu][same[iu]].astype(np.float64), s[iu][~same[iu]].astype(np.float64))[0]

    return Result(folder, engine.recognizer, emb, genuine, impostor, g_idx, i_idx, eer, eer_t, at, threshold, rule,
                  reason, same_form_eer(emb.live), same_form_eer(emb.card), _dt.date.today().isoformat())


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
    bins = np.linspace(min(res.impostor.min(), res.genuine.min()) - 0.02, 1.0, 60)
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


def write_report(res: Result, out: Path, roc_png: Path, hist_png: Path, manifest_note: str, engine: FaceEngine,
                 labels_sha: str, calibrated_on: str) -> Path:
    e = res.emb
    f, n = fmr_fnmr(res.genuine, res.impostor, res.threshold)
    k_imp = int(np.sum(res.impostor >= res.threshold))
    lines = [
        "# Face matching calibration",
        "",
        f"Generated by `mynactl face-calibrate` on {res.date}. Data: `{calibrated_on}` "
        f"(labels.csv sha256 `{labels_sha[:16]}…`).",
        "",
        "## Setting",
        "",
        f"- Recognizer `{engine.recognizer}` (sha256 `{engine.hashes[engine.recognizer]}`), detector "
        f"`{engine.detector_file}`; onnxruntime {engine._ort.__version__}, {engine.threads} threads.",
        "- Every photo is embedded twice: **live form** (the file, as a camera frame) and **card form** "
        "(ID-photo framing around the detected face: 3:4, face box ~55% of the height, then "
        "`encode_card_photo`: greyscale JPEG 2000 180x240, "
        f"median {int(np.median(e.card_bytes)) if e.card_bytes else 0} bytes, decoded by the daemon's bounded "
        "`decode_card_photo`, then detected and embedded like the chip photo).",
        "- **Genuine** pair: card form of photo A vs live form of photo B, same identity, A ≠ B (both orders). "
        "**Impostor** pair: the same for different identities. Match = cosine ≥ threshold.",
        f"- {e.n_photos} photos listed, {len(e.files)} usable in both forms, "
        f"{len(set(e.identities))} identities: {len(res.genuine)} genuine and {len(res.impostor)} impostor pairs.",
        "",
        "## Results",
        "",
        "| figure | value |",
        "|---|---|",
        f"| EER | **{res.eer:.2%}** (at threshold {res.eer_threshold:.4f}) |",
        f"| FNMR at FMR ≤ 1e-2 | {res.at_fmr[SECONDARY_FMR][1]:.2%} (threshold {res.at_fmr[SECONDARY_FMR][0]:.3f}) |",
        f"| FNMR at FMR ≤ 1e-3 | {res.at_fmr[TARGET_FMR][1]:.2%} (threshold {res.at_fmr[TARGET_FMR][0]:.3f}) |",
        f"| **chosen threshold** | **{res.threshold:.3f}** (rule `{res.rule}`) |",
        f"| at the chosen threshold | FMR {f:.4%} ({k_imp}/{len(res.impostor)} impostor pairs), "
        f"FNMR {n:.2%} ({int(np.sum(res.genuine < res.threshold))}/{len(res.genuine)} genuine pairs) |",
        f"| 95% upper bound on FMR there (Clopper-Pearson, pairs treated as independent) | "
        f"{binom_upper(k_imp, len(res.impostor)):.4f} |",
        f"| for comparison: EER live vs live / card vs card | {res.live_live_eer:.2%} / {res.card_card_eer:.2%} |",
        f"| genuine scores | min {res.genuine.min():.3f}, median {np.median(res.genuine):.3f} |",
        f"| impostor scores | median {np.median(res.impostor):.3f}, max {res.impostor.max():.3f} |",
        "",
        f"**Why this threshold.** {res.rule_reason}.",
        "",
        "Other operating points on the same pairs:",
        "",
        "| threshold | FMR | FNMR | note |",
        "|---|---|---|---|",
    ]
    points = [(res.at_fmr[SECONDARY_FMR][0], "FMR ≤ 1e-2"), (round(res.eer_threshold, 3), "EER point"),
              (res.threshold, f"chosen ({res.rule})"),
              (math.floor(res.impostor.max() * 1000) / 1000 + 0.001, "just above the highest impostor score"),
              (0.363, "OpenCV Zoo's published fp32 SFace threshold")]
    for thr, note in sorted(points):
        pf, pn = fmr_fnmr(res.genuine, res.impostor, thr)
        lines.append(f"| {thr:.3f} | {pf:.4%} | {pn:.2%} | {note} |")
    lines += [
        "",
        f"![ROC]({roc_png.name})",
        "",
        f"![score histograms]({hist_png.name})",
        "",
        "## Caveats",
        "",
        f"- Small development set ({len(set(e.identities))} identities): the impostor pairs are not independent "
        "(each photo takes part in many), so the FMR figures are optimistic and the 1e-3 point rests on the few "
        "highest impostor scores. Check the threshold on the held-back set and on real card photos before relying "
        "on it; the card form here is a simulation of the chip photo, not a scan of a printed card.",
        "- The set mixes press photos, LFW news photos and 150x150 greyscale TV stills; reception-desk frames "
        "(frontal, cooperative, indoor light) should score higher for genuine pairs.",
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
        lines += [f"| {a} | {b} | {c} |" for a, b, c in e.failures]
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
        "## Manifest",
        "",
        manifest_note,
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


def calibrate(folder: Path | str, out: Path | str, engine: FaceEngine, manifest: Path | str | None = None,
              write: bool = True, progress: bool = True) -> Result:
    folder, out = Path(folder), Path(out)
    labels = read_labels(folder)
    labels_sha = hashlib.sha256((folder / "labels.csv").read_bytes()).hexdigest()
    emb = embed_folder(engine, folder, labels, progress=progress)
    res = analyse(engine, folder, emb)
    out.mkdir(parents=True, exist_ok=True)
    roc_png, hist_png = out / "face-roc.png", out / "face-scores.png"
    plot_roc(res, roc_png)
    plot_hist(res, hist_png)
    shown = _display_path(folder)
    calibrated_on = f"{shown} ({len(emb.files)} photos, {len(set(emb.identities))} identities)"
    mpath = Path(manifest) if manifest is not None else engine.manifest.path
    if write:
        update_threshold(mpath, engine.recognizer, res.manifest_values(calibrated_on))
        note = (f"Threshold {res.threshold:.3f} written to `{_display_path(mpath)}` "
                f"for `{engine.recognizer}`.")
    else:
        note = f"`--no-write`: the manifest `{_display_path(mpath)}` was left unchanged."
    write_report(res, out, roc_png, hist_png, note, engine, labels_sha, calibrated_on)
    return res


__all__ = ["calibrate", "analyse", "embed_folder", "read_labels", "equal_error", "threshold_at_fmr", "Result"]
