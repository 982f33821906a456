"""Do the quality gate's mask / sunglasses / backlight checks fire on props and not on clean faces,
and how does SFace score a face behind those props?

Every sample photo (assets/faces) is shown to the simulated camera as a live patient, without
props and with each prop of drivers/myna_drivers/scene_props.py (placed on YuNet's landmarks of
the photo), at several head-turn phases and two distances. Each frame goes through the detector
and ``quality.assess``. For frontal frames at the normal distance, the face is also embedded and
scored against the card form of every other photo (the calibration's pairing), so the figures say
whether a masked patient would still match.

    .venv/bin/python bench/face_quality_props.py            # all 64 photos (a few minutes on 2 cores)
    .venv/bin/python bench/face_quality_props.py --photos 12

Held out from the choice of the thresholds (quality.py took them from the frames at full
distance, phases 0 / 0.35 / 0.75 s): the frames at 0.6x distance and phases 0.2 / 0.55 s.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROPS = ((), ("mask",), ("sunglasses",), ("backlight",))
NEW_CHECKS = {"mask", "sunglasses", "backlight"}
# (scale, phase s, held out from the threshold choice?)
VIEWS = [(1.0, 0.0, False), (1.0, 0.35, False), (1.0, 0.75, False), (0.6, 0.2, True), (0.6, 0.55, True)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=0, help="only the first N photos (0 = all)")
    args = ap.parse_args()

    from myna_drivers.camera_sim import SceneRenderer
    from myna_models import quality
    from myna_models.calibration import embed_folder, read_labels
    from myna_models.engine import FaceEngine, load_image
    from myna_models.threshold_stats import binom_upper

    faces = ROOT / "assets" / "faces"
    engine = FaceEngine(ROOT / "assets" / "models", threads=2)
    labels = read_labels(faces)
    if args.photos:
        labels = labels[:args.photos]
    t0 = time.perf_counter()
    print(f"card forms of {len(labels)} photos...", flush=True)
    emb = embed_folder(engine, faces, labels, progress=False)
    card = {f: (emb.card[i], emb.identities[i]) for i, f in enumerate(emb.files)}

    hints: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
    fired_photo: dict[tuple, set] = collections.defaultdict(set)
    genuine: dict[tuple, list] = collections.defaultdict(list)
    impostor: dict[tuple, list] = collections.defaultdict(list)
    det_score: dict[tuple, list] = collections.defaultdict(list)
    n_photos = 0
    assess_ms: list[float] = []
    for k, (name, ident) in enumerate(labels):
        if name not in card:
            continue
        n_photos += 1
        bgr = load_image(faces / name)
        f0 = max(engine.detect_still(bgr), key=lambda f: f.area)
        for props in PROPS:
            for scale in sorted({v[0] for v in VIEWS}, reverse=True):
                scene = {"source": str(faces / name), "behaviour": "live", "face_box": list(f0.box),
                         "face_landmarks": f0.landmarks.tolist(), "props": list(props), "scale": scale}
                r = SceneRenderer(scene, (640, 480))
                for s, t, held in VIEWS:
                    if s != scale:
                        continue
                    frame = r.render(t)
                    fs = engine.detect(frame)
                    t1 = time.perf_counter()
                    hint = quality.assess(frame.shape, fs, frame)
                    assess_ms.append((time.perf_counter() - t1) * 1000)
                    key = (props, held)
                    hints[key][hint] += 1
                    if hint in NEW_CHECKS:
                        fired_photo[(props, held, hint)].add(name)
                    if fs and scale == 1.0 and t == 0.0:
                        face = max(fs, key=quality.eye_distance)
                        det_score[props].append(face.score)
                        v = engine.embed_face(frame, face)
                        for other, (c, oid) in card.items():
                            if other == name:
                                continue
                            (genuine if oid == ident else impostor)[props].append(float(engine.score(v, c)))
        print(f"  {k + 1}/{len(labels)} {name}", flush=True)

    thr = engine.threshold
    print(f"\n{n_photos} photos, {time.perf_counter() - t0:.0f} s; threshold {thr:.3f} ({engine.threshold_source})")
    print(f"quality.assess per 640x480 frame: median {np.median(assess_ms):.2f} ms, p90 "
          f"{np.percentile(assess_ms, 90):.2f} ms (detection not included)")
    print("\n## Hints (frames)")
    for held in (False, True):
        print(f"\n{'held-out views (0.6x distance, phases 0.2/0.55 s)' if held else 'views used to set the limits'}:")
        for props in PROPS:
            c = hints[(props, held)]
            n = sum(c.values())
            print(f"  {'+'.join(props) or 'clean':<11} {n:4d} frames: " +
                  ", ".join(f"{h or 'ok'} {m}" for h, m in c.most_common()))
    print("\n## Clean frames a new check rejects (false rejects), per photo (any frame), 95 % Clopper-Pearson bound")
    for held in (False, True):
        for hint in sorted(NEW_CHECKS):
            k_ = len(fired_photo[((), held, hint)])
            print(f"  {'held-out' if held else 'tuning  '} {hint:<10} {k_}/{n_photos} photos, bound "
                  f"{binom_upper(k_, n_photos):.1%}")
        any_ = set().union(*(fired_photo[((), held, h)] for h in NEW_CHECKS))
        print(f"  {'held-out' if held else 'tuning  '} any         {len(any_)}/{n_photos} photos, bound "
              f"{binom_upper(len(any_), n_photos):.1%}")
    print("\n## Props the matching check catches, per photo (any frame of that photo gives the prop's hint)")
    for props in PROPS[1:]:
        for held in (False, True):
            k_ = len(fired_photo[(props, held, props[0])])
            print(f"  {props[0]:<10} {'held-out' if held else 'tuning  '} {k_}/{n_photos} photos")
    print(f"\n## SFace with props (frontal frame vs the card form of every other photo; match = score >= {thr:.3f})")
    print("  prop        genuine: median  p10   matched           impostor: max   accepted   YuNet score median")
    for props in PROPS:
        g, i = np.asarray(genuine[props]), np.asarray(impostor[props])
        if not len(g):
            continue
        kg, ki = int(np.sum(g >= thr)), int(np.sum(i >= thr))
        print(f"  {'+'.join(props) or 'clean':<11} {np.median(g):.3f}  {np.percentile(g, 10):.3f}  "
              f"{kg}/{len(g)} ({kg / len(g):.0%})   {i.max():.3f}  {ki}/{len(i)}   "
              f"{np.median(det_score[props]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
