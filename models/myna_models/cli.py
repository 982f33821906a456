"""``mynactl`` face subcommands: face-verify, face-calibrate, face-check.

Imported by ``mynad.ctl`` on every run, so nothing heavy at module level
(onnxruntime, matplotlib and tqdm are imported inside the commands).
Exit codes: 0 ok, 1 model or other error, 2 an input image is unusable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

JP2_SIGNATURES = (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")


def add_subcommands(subparsers) -> None:
    p = subparsers.add_parser("face-verify", help="compare the faces in two images (cosine score vs threshold)")
    p.add_argument("img_a", metavar="IMG_A", help="image file; a JPEG 2000 file is read as a card photo")
    p.add_argument("img_b", metavar="IMG_B")
    p.add_argument("--json", action="store_true", help='print {"score", "threshold", "match"} as JSON')
    _model_args(p)
    p.set_defaults(func=cmd_face_verify)

    p = subparsers.add_parser("face-calibrate", help="calibrate the match threshold on a labelled photo folder")
    p.add_argument("dir", metavar="DIR", help="folder with the photos and labels.csv (columns file,identity)")
    p.add_argument("--out", default="docs", help="where to write face-calibration.md and the plots (default docs/)")
    p.add_argument("--no-write", action="store_true",
                   help="report only: do not write <state_dir>/face-calibration.toml")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _model_args(p)
    p.set_defaults(func=cmd_face_calibrate)

    p = subparsers.add_parser("face-check", help="verify the face model files against the manifest's sha256")
    p.add_argument("--json", action="store_true")
    _model_args(p)
    p.set_defaults(func=cmd_face_check)


def _model_args(p) -> None:
    p.add_argument("--models-dir", default=None,
                   help="model folder (default $MYNA_MODELS_DIR, else the source tree's assets/models, "
                        "else /var/lib/myna-reader/models)")
    p.add_argument("--manifest", default=None, help="model manifest (default: the one in the myna_models package)")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime threads (default 2)")
    p.add_argument("--state-dir", default=None,
                   help="the reader's state directory holding face-calibration.toml (default: [reader] state_dir "
                        "of --config when that file exists)")


def _models_dir(args) -> Path:
    from myna_models.engine import default_models_dir

    return Path(args.models_dir) if args.models_dir else default_models_dir()


def _state_dir(args) -> Path | None:
    """--state-dir, else the daemon config's [reader] state_dir when the config file exists, else None."""
    if getattr(args, "state_dir", None):
        return Path(args.state_dir)
    config = getattr(args, "config", None)
    if config and Path(config).is_file():
        from mynad.config import ConfigError, load_config

        try:
            return load_config(config).reader.state_dir
        except ConfigError as e:
            raise SystemExit(f"mynactl: {e}") from None
    return None


def _err(cmd: str, msg: str) -> None:
    print(f"mynactl {cmd}: {msg}", file=sys.stderr)


def _engine(args, cmd: str):
    from myna_models.calibration_file import CALIBRATION_FILE
    from myna_models.engine import FaceEngine
    from myna_models.errors import ModelError

    state = _state_dir(args)
    try:
        return FaceEngine(_models_dir(args), args.manifest, threads=args.threads,
                          calibration=state / CALIBRATION_FILE if state is not None else None)
    except ModelError as e:
        _err(cmd, str(e))
        return None


def _embed_file(engine, path: str) -> "object":
    from myna_models.engine import load_image
    from myna_models.errors import FaceError, NoFace

    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as e:
        raise FaceError(f"{path}: {e.strerror or e}") from None
    try:
        if head.startswith(JP2_SIGNATURES):
            return engine.embed_card_photo(Path(path).read_bytes())
        return engine.embed_image(load_image(path))
    except NoFace:
        raise NoFace(f"{path}: no usable face found") from None
    except FaceError as e:
        msg = str(e)
        raise type(e)(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


def cmd_face_verify(args) -> int:
    from myna_models.errors import FaceError

    engine = _engine(args, "face-verify")
    if engine is None:
        return 1
    try:
        a = _embed_file(engine, args.img_a)
        b = _embed_file(engine, args.img_b)
    except FaceError as e:
        _err("face-verify", str(e))
        return 2
    score = engine.score(a, b)
    match = bool(score >= engine.threshold)
    if args.json:
        print(json.dumps({"score": round(score, 6), "threshold": engine.threshold, "match": match}))
    else:
        word = "MATCH" if match else "no match"
        rel = ">=" if match else "<"
        note = "" if engine.threshold_calibrated else " (threshold not calibrated)"
        print(f"{word}: score {score:.4f} {rel} threshold {engine.threshold:.4f}{note}")
    return 0


def cmd_face_calibrate(args) -> int:
    from myna_models.errors import FaceError

    folder = Path(args.dir)
    if not folder.is_dir():
        _err("face-calibrate", f"{folder} is not a folder")
        return 2
    try:
        from myna_models.calibration import calibrate
    except ImportError as e:
        _err("face-calibrate", f"needs the tools extra (matplotlib, tqdm): {e}")
        return 1
    state = _state_dir(args)
    if state is None and not args.no_write:
        _err("face-calibrate", "no state directory to write face-calibration.toml to: pass --state-dir DIR, "
             "--config with the daemon's config, or --no-write")
        return 1
    engine = _engine(args, "face-calibrate")
    if engine is None:
        return 1
    try:
        res = calibrate(folder, Path(args.out), engine, state_dir=state, write=not args.no_write,
                        progress=not args.no_progress)
    except FaceError as e:
        _err("face-calibrate", str(e))
        return 2
    except OSError as e:
        _err("face-calibrate", f"cannot write: {e}")
        return 1
    c, cv = res.chosen, res.cv
    print(f"{res.pairs.n_ids} identities, {len(res.genuine)} genuine / {len(res.impostor)} impostor pairs "
          f"({c.id_pairs} identity pairs)")
    print(f"cross-validation ({cv.folds} identity-disjoint folds): the old in-sample rule passes "
          f"{cv.heldout_fmr_insample_rule:.3%} of held-out impostor pairs (in-sample {cv.insample_fmr:.3%}); "
          f"this rule {cv.heldout_fmr:.3%}, FNMR {cv.heldout_fnmr:.2%}")
    print(f"threshold {res.threshold:.3f} ({res.rule}): FMR {c.fmr:.3%} (95% bound {c.fmr_upper:.2%}), "
          f"FNMR {c.fnmr:.2%} (95% bound {c.fnmr_upper:.2%})")
    where = "[not written]" if args.no_write or state is None else f"written to {state / 'face-calibration.toml'}"
    print(f"{where}; report in {Path(args.out) / 'face-calibration.md'}")
    if res.emb.failures:
        print(f"{len(res.emb.failures)} photo(s) left out: " + ", ".join(f"{a} ({b})" for a, b, _ in res.emb.failures))
    return 0


def cmd_face_check(args) -> int:
    from myna_models.errors import ModelError
    from myna_models.manifest import ModelEntry, file_sha256, load_manifest

    models_dir = _models_dir(args)
    try:
        man = load_manifest(args.manifest)
    except ModelError as e:
        _err("face-check", str(e))
        return 1
    rows: list[tuple[ModelEntry, str, str | None]] = []  # (model, status, sha256 found)
    ok = True
    have_recognizer = False
    preferred = None  # the recognizer the engine would load: the first present by preference
    for m in man.by_role("recognizer"):
        if (models_dir / m.file).exists():
            preferred = m.file
            break
    for m in man.models:
        path = models_dir / m.file
        if not path.exists():
            optional = m.role == "recognizer"  # any one recognizer is enough
            status = "absent (optional)" if optional else "MISSING"
            ok = ok and optional
            rows.append((m, status, None))
            continue
        digest = file_sha256(path)
        good = digest == m.sha256 and path.stat().st_size == m.size
        ok = ok and good
        have_recognizer = have_recognizer or (good and m.role == "recognizer")
        rows.append((m, "OK" if good else "MISMATCH", digest))
    ok = ok and have_recognizer
    if args.json:
        print(json.dumps({"models_dir": str(models_dir), "manifest": str(man.path), "ok": ok,
                          "models": [{"role": m.role, "file": m.file, "status": s, "sha256": d,
                                      "expected_sha256": m.sha256} for m, s, d in rows]}, indent=2))
    else:
        print(f"models: {models_dir}\nmanifest: {man.path}")
        for m, status, found in rows:
            print(f"{status:>17}  {m.role:<10} {m.file}")
            print(f"{'':>17}  sha256 {found or '-'}")
            if status == "MISMATCH":
                print(f"{'':>17}  expected {m.sha256}")
        if preferred is not None:
            try:
                t, cal = man.threshold_for(preferred)
                source = "manifest default" + ("" if cal else ", not calibrated on this reader")
                state = _state_dir(args)
                if state is not None:
                    from myna_models.calibration_file import CALIBRATION_FILE, read_calibration

                    c = read_calibration(state / CALIBRATION_FILE, preferred, man.entry(preferred).sha256, t)
                    if c is not None:
                        t, source = c.threshold, f"{c.path}, {c.rule}, {c.date}"
                print(f"recognizer in use: {preferred}, threshold {t:.3f} ({source})")
            except ModelError as e:
                print(f"threshold: {e}")
                ok = False
    if not ok:
        _err("face-check", "model check FAILED" + ("" if have_recognizer else ": no usable recognizer"))
    return 0 if ok else 1
