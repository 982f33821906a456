#!/usr/bin/env python3
"""Face pipeline speed, memory and accuracy: ours (onnxruntime) against OpenCV's own YuNet + SFace.

Camera-size frames (default 640x480, the ``[camera]`` default) are built from the sample
photos. Per frame: detect + align + embed, timed whole and per step. The same frames go
through ``cv2.FaceDetectorYN`` + ``cv2.FaceRecognizerSF`` with the same model files as the
reference. Each pipeline runs in its own process (so the peak memory is its own), and the
processes are driven in lockstep: frame i goes through every pipeline before frame i+1, so a
busy moment of the shared machine hits all of them alike. The frames are run ``--repeat``
times; each frame's time is its best over the repeats (load only ever adds time).

Ours runs twice where the CPU has onnxruntime's blocked (NCHWc) layout (x86 with AVX2):
as shipped here, and with the layout turned off (``ours, plain NCHW``), which is what ARM
(the Raspberry Pi) runs, since onnxruntime has no such kernels there. The run checks from the
optimised graphs that the layout really is off in that mode. The run ends with the accuracy
check: our landmarks and embedding against OpenCV's on the same frame.

``--cpu N`` pins every process to CPU N (with 1 thread, a clean single-core figure).
``--explore`` adds what was tried to get there, each against the shipped pipeline on the
same frames (1 thread): the detector at the static 640x640 input the file ships with, at
smaller detection sizes, or on a region around the last face (tracking, on hw-sim camera
sequences); the recognizer with its PRelus as shipped or in other forms, without folding the
quantised weights, with and without the blocked layout. What moves landmarks or embeddings is
not used.

    .venv/bin/python bench/face_bench.py [--frames 30] [--size 640x480] [--threads 1,2,4] [--repeat 3]
                                         [--cpu N] [--explore] [--markdown FILE]
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
# tracking experiment: hw-sim's live patient, these people, this many frames each (15 fps)
TRACK_PEOPLE = ("lfw_tony_blair__1.jpg", "bbt_penny__2.jpg", "deepface_p04__1.jpg", "lfw_vladimir_putin__2.jpg")
TRACK_FRAMES = 30


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


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------ the pipelines

KINDS = {
    "ours": "ours (onnxruntime)",
    "ours-nchw": "ours, plain NCHW (blocked layout off, as on ARM)",
    "cv2": "OpenCV FaceDetectorYN + FaceRecognizerSF",
}


def pipeline_ours(threads: int, blocked: bool | None):
    """One frame through our engine -> (steps ms, face count, landmarks, embedding)."""
    from myna_models.engine import FaceEngine

    eng = FaceEngine(MODELS, threads=threads, blocked_layout=blocked)

    def once(f):
        t0 = time.perf_counter()
        faces = eng.detect(f)
        t1 = time.perf_counter()
        if not faces:
            return ((t1 - t0) * 1000, 0.0, 0.0), 0, None, None
        crop = eng.align(f, faces[0])
        t2 = time.perf_counter()
        emb = eng.embed_aligned(crop)
        t3 = time.perf_counter()
        return ((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000), len(faces), faces[0].landmarks, emb

    return once, eng.blocked_layout


def pipeline_cv2(threads: int, size):
    import cv2
    import numpy as np

    cv2.setNumThreads(threads)
    det = cv2.FaceDetectorYN.create(str(MODELS / DET), "", size, 0.6, 0.3, 5000)
    rec = cv2.FaceRecognizerSF.create(str(MODELS / REC), "")

    def once(f):
        t0 = time.perf_counter()
        _, faces = det.detect(f)
        t1 = time.perf_counter()
        if faces is None or len(faces) == 0:
            return ((t1 - t0) * 1000, 0.0, 0.0), 0, None, None
        crop = rec.alignCrop(f, faces[0])
        t2 = time.perf_counter()
        e = rec.feature(crop).reshape(-1)
        t3 = time.perf_counter()
        return ((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000), len(faces), faces[0][4:14].reshape(5, 2), \
            e / np.linalg.norm(e)

    return once


def layout_check(blocked: bool) -> dict:
    """Node counts of the graphs onnxruntime actually runs, from an optimised-model dump to a temporary
    directory (the bench only: the daemon writes nothing derived), with the engine's options."""
    import collections
    import tempfile

    import onnx
    import onnxruntime as ort

    from myna_models.engine import session_options
    from myna_models.graphs import detector_graph, recognizer_graph

    out = {}
    with tempfile.TemporaryDirectory(prefix="face_bench_") as tmp:
        for part, data in (("detector", detector_graph((MODELS / DET).read_bytes())),
                           ("recognizer", recognizer_graph((MODELS / REC).read_bytes(), blocked))):
            so = session_options(1, blocked)
            so.optimized_model_filepath = str(Path(tmp) / f"{part}.onnx")
            ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])
            graph = onnx.load(so.optimized_model_filepath).graph
            out[part] = dict(collections.Counter(f"{n.domain}:{n.op_type}" if n.domain else n.op_type
                                                 for n in graph.node))
    return out


def serve(kind: str, threads: int, n: int, size) -> None:
    """Child process: load one pipeline, then run the frames the parent names on stdin, one JSON line each."""
    fr = frames(n, size)
    if kind == "cv2":
        once, blocked = pipeline_cv2(threads, size), None
    else:
        once, blocked = pipeline_ours(threads, False if kind == "ours-nchw" else None)
    for f in fr[:3]:  # warm-up: first-run allocations and lazy initialisation are not per-frame costs
        once(f)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "end":
            break
        t0 = time.perf_counter()
        steps, count, lm, emb = once(fr[int(cmd)])
        ms = _ms(t0)
        print(json.dumps({"ms": ms, "steps": steps, "count": count,
                          "lm": None if lm is None else [float(v) for v in lm.reshape(-1)],
                          "emb": None if emb is None else [float(x) for x in emb]}), flush=True)
    summary = {"rss_mb": _rss_mb(), "blocked": blocked}
    if blocked is not None:
        summary["layout"] = layout_check(blocked)
    print(json.dumps(summary), flush=True)


class Child:
    """One pipeline in its own process, driven one frame at a time."""

    def __init__(self, kind: str, threads: int, n: int, size, cpu: int | None) -> None:
        import tempfile

        self.kind, self.threads = kind, threads
        self.err = tempfile.TemporaryFile(mode="w+")
        cmd = [sys.executable, __file__, "--child", kind, "--threads", str(threads), "--frames", str(n),
               "--size", f"{size[0]}x{size[1]}"]
        pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                     bufsize=1, preexec_fn=pin,
                                     env=dict(os.environ, OMP_NUM_THREADS=str(threads)))

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.err.seek(0)
            raise SystemExit(f"face_bench: the {self.kind} run with {self.threads} threads failed:\n"
                             f"{self.err.read()[-2000:]}")
        return json.loads(line)

    def ask(self, cmd: str) -> dict:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.read()


def run_lockstep(kinds: list[str], threads: int, n: int, size, repeat: int, cpu: int | None, bar) -> dict:
    """Every frame through every pipeline before the next frame; each frame's best time over the repeats."""
    children = [Child(k, threads, n, size, cpu) for k in kinds]
    for c in children:
        c.read()  # ready
    best: dict[str, list] = {k: [None] * n for k in kinds}
    for _ in range(max(1, repeat)):
        for i in range(n):
            order = children[i % len(children):] + children[:i % len(children)]  # nobody always goes first
            for c in order:
                r = c.ask(str(i))
                old = best[c.kind][i]
                if old is None or r["ms"] < old["ms"]:
                    best[c.kind][i] = r
                bar.update(1)
    out = {}
    for c in children:
        summary = c.ask("end")
        c.proc.wait()
        rows = best[c.kind]
        out[c.kind] = {"times": [r["ms"] for r in rows], "steps": [r["steps"] for r in rows],
                       "counts": [r["count"] for r in rows], "lms": [r["lm"] for r in rows],
                       "embs": [r["emb"] for r in rows], **summary}
    return out


# ------------------------------------------------------------------ what was tried

def run_explore(n: int, size) -> dict:
    import numpy as np
    import onnxruntime as ort

    from myna_models.engine import FaceEngine, session_options
    from myna_models.graphs import recognizer_graph
    from myna_models.manifest import read_verified

    fr = frames(n, size)
    eng = FaceEngine(MODELS, threads=1)
    ref = []  # (landmarks, embedding, crop) of the shipped pipeline
    for f in fr:
        faces = eng.detect(f)
        crop = eng.align(f, faces[0])
        ref.append((faces[0].landmarks, eng.embed_aligned(crop), crop))

    rows = []

    def lm_dev(a, b) -> float:
        return float(np.abs(np.asarray(a) - np.asarray(b)).max())

    def detector_row(name, ms, devs, coss, note):
        rows.append({"part": "detector", "name": name, "ms": statistics.median(ms),
                     "dev_med": statistics.median(devs) if devs else None, "dev_max": max(devs) if devs else None,
                     "cos_min": min(coss) if coss else None, "note": note})

    def on_canvas(f):
        """The frame top-left on the black square the file's static 640x640 input needs."""
        side = max(640, -(-max(f.shape[:2]) // 32) * 32)
        canvas = np.zeros((side, side, 3), np.uint8)
        canvas[:f.shape[0], :f.shape[1]] = f
        return eng.detect(canvas, max_side=side)

    # 1-2. the file's static input and smaller detection sizes, interleaved frame by frame so
    # that a busy moment of the machine hits every variant alike
    det_variants = [
        ("frame-shaped input, every frame (shipped)", lambda f: eng.detect(f), "kept"),
        ("static 640x640 canvas (as the file ships)", on_canvas, "replaced"),
        ("detect at 480 px long side", lambda f: eng.detect(f, max_side=480), "not used: landmarks move"),
        ("detect at 320 px long side", lambda f: eng.detect(f, max_side=320), "not used: landmarks move"),
    ]
    det = {name: ([], [], []) for name, _, _ in det_variants}
    for _ in range(2):
        for f, (lm, emb, _) in zip(fr, ref):
            for name, fn, _ in det_variants:
                fn(f)
                t0 = time.perf_counter()
                faces = fn(f)
                ms, devs, coss = det[name]
                ms.append(_ms(t0))
                if faces and len(devs) < len(fr):
                    devs.append(lm_dev(faces[0].landmarks, lm))
                    coss.append(eng.score(eng.embed_face(f, faces[0]), emb))
    for name, _, note in det_variants:
        ms, devs, coss = det[name]
        missed = len(fr) - len(devs)
        detector_row(name, ms, devs, coss, note + (f"; {missed} faces missed" if missed else ""))

    # 3. tracking: detect only in a region around the last face (corner on the 32 px grid)
    from myna_drivers.camera_sim import render_scene
    from myna_models.engine import Face, load_image

    seqs = []
    for name in TRACK_PEOPLE:
        src = FACES / name
        box = max(eng.detect(load_image(src)), key=lambda q: q.area).box
        seqs.append(render_scene({"source": str(src), "behaviour": "live", "face_box": list(box)}, size,
                                 [i / 15 for i in range(TRACK_FRAMES)]))
    for margin in (1.0, 0.5):
        ms, full_ms, devs, coss, missed = [], [], [], [], 0
        for seq in seqs:
            prev = None
            for f in seq:
                t0 = time.perf_counter()
                full = eng.detect(f)
                full_ms.append(_ms(t0))
                if prev is not None and full:
                    x, y, w, h = prev.box
                    x0, y0 = int((x - margin * w) // 32 * 32), int((y - margin * h) // 32 * 32)
                    x0, y0 = max(0, x0), max(0, y0)
                    x1, y1 = min(f.shape[1], int(x + w + margin * w)), min(f.shape[0], int(y + h + margin * h))
                    t0 = time.perf_counter()
                    region = eng.detect(np.ascontiguousarray(f[y0:y1, x0:x1]), max_side=max(f.shape[:2]))
                    ms.append(_ms(t0))
                    if region:
                        a = max(full, key=lambda q: q.area)
                        b = max(region, key=lambda q: q.area)
                        lm_b = b.landmarks + np.array([x0, y0], np.float32)
                        devs.append(lm_dev(lm_b, a.landmarks))
                        shifted = Face((b.box[0] + x0, b.box[1] + y0, b.box[2], b.box[3]), lm_b, b.score)
                        coss.append(eng.score(eng.embed_face(f, shifted), eng.embed_face(f, a)))
                    else:
                        missed += 1
                prev = max(full, key=lambda q: q.area) if full else None
        detector_row(f"track: region of face ± {margin:g} face size (whole frame: {statistics.median(full_ms):.1f} ms)",
                     ms, devs, coss, "not used: landmarks move" + (f"; {missed} faces lost" if missed else "")
                     if missed or not devs or max(devs) > 0.5 else "not used: saves little at this framing")

    # 4. the recognizer: graph and runtime options
    entry = eng.manifest.entry(eng.recognizer)
    raw = read_verified(MODELS, entry)
    shipped_emb = [e for _, e, _ in ref]

    def sess(data: bytes, so):
        return ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])

    plain = ort.SessionOptions()
    plain.intra_op_num_threads, plain.inter_op_num_threads, plain.log_severity_level = 1, 1, 3
    # without the blocked layout is what an ARM CPU runs: onnxruntime has no NCHWc kernels there
    here = eng.blocked_layout
    variants = [
        (f"shipped here: PRelu as s·x+(1−s)·Relu(x), folded weights, blocked layout {'on' if here else 'off'}",
         recognizer_graph(raw, here), session_options(1, here), "kept"),
        ("as the file ships, onnxruntime defaults", raw, plain, "replaced"),
        ("as the file ships, quantised weights folded at load", raw, session_options(1), "replaced"),
        ("PRelu as Max(x, s·x), blocked layout on", recognizer_graph(raw, False), session_options(1, True),
         "not with the blocked layout (Max has no NCHWc kernel)"),
        ("plain NCHW (as on ARM): PRelu as Max(x, s·x)", recognizer_graph(raw, False), session_options(1, False),
         "kept where there is no blocked layout"),
        ("plain NCHW (as on ARM): PRelu as s·x+(1−s)·Relu(x)", recognizer_graph(raw, True), session_options(1, False),
         "replaced (previous release)"),
        ("plain NCHW (as on ARM): PRelu as the file ships, folded", raw, session_options(1, False), "replaced"),
    ]
    sessions = []
    for name, data, so, note in variants:
        sess_ = sess(data, so)
        sessions.append((name, sess_, sess_.get_inputs()[0].name, sess_.get_outputs()[0].name, note,
                         [[] for _ in ref], []))
    for _ in range(3):
        for k, ((_, _, crop), e) in enumerate(zip(ref, shipped_emb)):
            blob = np.ascontiguousarray(crop[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
            for name, s, inp, out, note, ms, coss in sessions:
                s.run([out], {inp: blob})
                t0 = time.perf_counter()
                v = s.run([out], {inp: blob})[0][0]
                ms[k].append(_ms(t0))
                coss.append(eng.score(v, e))
    for name, s, inp, out, note, ms, coss in sessions:
        rows.append({"part": "recognizer", "name": name, "ms": statistics.median(min(m) for m in ms),
                     "dev_med": None, "dev_max": None, "cos_min": min(coss), "note": note})
    return {"rows": rows, "profile": profile_plain(fr, [c for _, _, c in ref])}


def _conv_class(shapes: list) -> str:
    """Kind of a Conv from the profiler's input/output shapes: X [1,C,H,W], W [F,C/g,kh,kw] -> Y."""
    x, w, y = shapes
    if len(w) != 4:
        return "other"
    if w[2] == w[3] == 1:
        return "1x1 convolution"
    if w[1] == 1 and x[1] == w[0] > 1:
        return "3x3 depthwise, stride 1" if (w[2], w[3], y[2]) == (3, 3, x[2]) else "depthwise, stride 2"
    return "full convolution (3x3)"


def profile_plain(fr, crops, reps: int = 3) -> list[dict]:
    """Where the time goes without the blocked layout: onnxruntime's profiler, median kernel time per node,
    summed by kind of operator (1 thread)."""
    import collections
    import tempfile

    import numpy as np
    import onnxruntime as ort

    from myna_models.engine import session_options
    from myna_models.graphs import detector_graph, recognizer_graph

    rows = []
    with tempfile.TemporaryDirectory(prefix="face_bench_") as tmp:
        for part, data, feeds in (
                ("detector", detector_graph((MODELS / DET).read_bytes()), [{"frame": f[None]} for f in fr]),
                ("recognizer", recognizer_graph((MODELS / REC).read_bytes(), False),
                 [{"data": np.ascontiguousarray(c[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)}
                  for c in crops])):
            so = session_options(1, False)
            so.enable_profiling, so.profile_file_prefix = True, str(Path(tmp) / part)
            s = ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])
            for _ in range(reps):
                for feed in feeds:
                    s.run(None, feed)
            events = json.loads(Path(s.end_profiling()).read_text())
            per_node, kind = collections.defaultdict(list), {}
            for e in events:
                if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                    args = e["args"]
                    per_node[e["name"]].append(e["dur"] / 1000)
                    if args["op_name"] in ("Conv", "FusedConv"):
                        shapes = [list(d.values())[0] for d in args["input_type_shape"][:2]]
                        shapes.append(list(args["output_type_shape"][0].values())[0])
                        kind[e["name"]] = _conv_class(shapes)
                    else:
                        kind[e["name"]] = "element-wise and other"
            by = collections.defaultdict(float)
            for name, ms in per_node.items():
                by[kind[name]] += statistics.median(ms)
            total = sum(by.values())
            for k, ms in sorted(by.items(), key=lambda kv: -kv[1]):
                rows.append({"part": part, "kind": k, "ms": ms, "share": ms / total})
    return rows


# ------------------------------------------------------------------ report

def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def _fmt(v, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def _nchwc_nodes(ops: dict) -> int:
    return sum(v for k, v in ops.items() if k.startswith("com.microsoft.nchwc:"))


def layout_lines(results: dict, kinds: list[str], threads: list[int]) -> list[str]:
    """What the optimised graphs contain per mode; SystemExit if 'plain NCHW' still has blocked-layout nodes."""
    lines = []
    for kind in kinds:
        if kind == "cv2":
            continue
        lay = results[(kind, threads[0])]["layout"]
        counts = {part: _nchwc_nodes(ops) for part, ops in lay.items()}
        lines.append(f"layout of {KINDS[kind]}: NCHWc nodes in the optimised graphs: detector {counts['detector']}, "
                     f"recognizer {counts['recognizer']}; recognizer ops "
                     + ", ".join(f"{k} {v}" for k, v in sorted(lay["recognizer"].items())))
        if kind == "ours-nchw" and any(counts.values()):
            raise SystemExit("face_bench: the blocked layout was not turned off in the plain NCHW mode")
    if "ours" in kinds and "ours-nchw" in kinds:
        a = results[("ours", threads[0])]["layout"]
        b = results[("ours-nchw", threads[0])]["layout"]
        if a == b:
            raise SystemExit("face_bench: both modes ran the same optimised graphs: the mode switch did nothing")
    return lines


def report(results: dict, kinds: list[str], threads: list[int], args, explore: dict | None) -> list[str]:
    import numpy as np

    lines = ["| pipeline | threads | median ms/frame | p95 ms | detect | align | embed | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|"]
    for th in threads:
        for kind in kinds:
            r = results[(kind, th)]
            steps = [s for s in r["steps"] if s[2] > 0] or r["steps"]
            med = [statistics.median(s[i] for s in steps) for i in range(3)]
            lines.append(f"| {KINDS[kind]} | {th} | {statistics.median(r['times']):.1f} | {p95(r['times']):.1f} | "
                         f"{med[0]:.1f} | {med[1]:.2f} | {med[2]:.1f} | {r['rss_mb']:.0f} |")
    lines.append("")
    pinned = f", every process pinned to CPU {args.cpu}" if args.cpu is not None else ""
    for kind in kinds:
        if kind == "cv2":
            continue
        ratio = {t: statistics.median(results[("cv2", t)]["times"]) / statistics.median(results[(kind, t)]["times"])
                 for t in threads}
        speed = ", ".join(f"{ratio[t]:.2f}x ({t} thread{'s' if t > 1 else ''})" for t in threads)
        verdict = "faster at every thread count" if min(ratio.values()) > 1 else "NOT faster at every thread count"
        lines.append(f"{KINDS[kind]} vs OpenCV (speed-up, median per frame): {speed}: {verdict}")
    first = results[(kinds[0], threads[0])]
    lines.append(f"frames {args.size}, {len(first['times'])} per run, each frame's best of {max(1, args.repeat)} "
                 f"repeats, the pipelines interleaved frame by frame, {os.cpu_count()} CPUs{pinned} "
                 f"(ours never runs more compute threads than CPUs: 'threads' is what was asked)")
    b = results[("cv2", threads[0])]
    for kind in kinds:
        if kind == "cv2":
            continue
        a = results[(kind, threads[0])]
        pairs = [(x, y) for x, y in zip(a["embs"], b["embs"]) if x is not None and y is not None]
        cos = [float(np.dot(x, y)) for x, y in pairs]
        lm = [float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(a["lms"], b["lms"])
              if x is not None and y is not None]
        same_count = sum(1 for x, y in zip(a["counts"], b["counts"]) if x == y)
        lines.append(f"accuracy of {KINDS[kind]} on the same frames: embedding cosine against OpenCV mean "
                     f"{statistics.mean(cos):.4f}, min {min(cos):.4f} over {len(cos)} frames; landmarks differ by "
                     f"at most {max(lm):.3f} px; same face count on {same_count}/{len(a['counts'])} frames")
    lines += layout_lines(results, kinds, threads)
    if explore:
        lines += ["", "What was tried (ours, 1 thread, same frames; deviation and cosine against the shipped pipeline):", "",
                  "| part | variant | median ms | landmark shift px (median / max) | min embedding cosine | used? |",
                  "|---|---|---|---|---|---|"]
        for r in explore["rows"]:
            dev = "–" if r["dev_med"] is None else f"{r['dev_med']:.2f} / {r['dev_max']:.2f}"
            lines.append(f"| {r['part']} | {r['name']} | {r['ms']:.1f} | {dev} | {_fmt(r['cos_min'], '.4f')} | {r['note']} |")
        lines += ["", "Where the time goes in plain NCHW (as on ARM; ours, 1 thread, onnxruntime profiler, median "
                  "kernel time per operator summed by kind):", "",
                  "| part | kind of operator | ms | share |", "|---|---|---|---|"]
        for r in explore["profile"]:
            lines.append(f"| {r['part']} | {r['kind']} | {r['ms']:.1f} | {100 * r['share']:.0f} % |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--threads", default="1,2,4", help="comma-separated thread counts (parent) or one (child)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="passes over the frames; each frame's best time is reported (a shared machine only ever "
                         "adds time)")
    ap.add_argument("--cpu", type=int, help="pin every process to this CPU (use with --threads 1)")
    ap.add_argument("--explore", action="store_true", help="also measure the variants that were tried")
    ap.add_argument("--child", choices=(*KINDS, "explore"))
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args()
    size = tuple(int(x) for x in args.size.split("x"))
    if args.child == "explore":
        print(json.dumps(run_explore(args.frames, size)))
        return 0
    if args.child:
        serve(args.child, int(args.threads), args.frames, size)
        return 0

    from tqdm import tqdm

    from myna_models.graphs import blocked_layout_available

    threads = [int(t) for t in args.threads.split(",")]
    # the plain NCHW mode only differs from the shipped one where the CPU has the blocked layout
    kinds = ["ours", "ours-nchw", "cv2"] if blocked_layout_available() else ["ours", "cv2"]
    results = {}
    with tqdm(total=len(threads) * len(kinds) * args.frames * max(1, args.repeat), desc="face bench",
              unit="frame") as bar:
        for th in threads:
            for kind, r in run_lockstep(kinds, th, args.frames, size, args.repeat, args.cpu, bar).items():
                results[(kind, th)] = r
    explore = None
    if args.explore:
        cmd = [sys.executable, __file__, "--child", "explore", "--threads", "1", "--frames", str(args.frames),
               "--size", args.size]
        pin = (lambda: os.sched_setaffinity(0, {args.cpu})) if args.cpu is not None else None
        out = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=pin,
                             env=dict(os.environ, OMP_NUM_THREADS="1"))
        if out.returncode != 0:
            raise SystemExit(f"face_bench: the explore run failed:\n{out.stderr[-2000:]}")
        explore = json.loads(out.stdout.strip().splitlines()[-1])
    lines = report(results, kinds, threads, args, explore)
    print()
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
