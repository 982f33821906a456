#!/usr/bin/env python3
"""Memory of the reader with every model loaded, beside references in the same run.

Figures are the kernel's own for the measured process (``/proc/PID/status``: VmRSS now,
VmHWM the peak so far), in MB of 1e6 bytes as the budget (issue #9: 250 MB peak with every
model loaded) is written.

* ``python + numpy + onnxruntime``: a bare interpreter with the libraries every
  configuration imports: the floor nothing can go below.
* ``device work``: one process doing exactly what mynad does on the Pi for one face visit,
  with the daemon's own allocator settings (mynad.memory) and model options: YuNet, SFace,
  both MiniFASNet graphs and the OCR model loaded; the card face read from a tray picture;
  the card photo decoded and embedded; then camera frames through the verification session
  with the PAD model, one frame at a time as the camera hands them over. The pictures were
  rendered beforehand by hw-sim in another process and are read from disk here (on the Pi
  they come from the cameras' own buffers).
* ``mynad under hw-sim``: the real daemon in the simulator for the same visit. It carries
  what a Pi does not: pygame + luma.emulator for the PNG screens, and the simulated camera,
  which renders the patient's turning head inside the daemon. Shown so that nothing is
  hidden; the budget is judged on the device work.

    .venv/bin/python bench/daemon_rss.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BUDGET_MB = 250.0


def proc_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB (1e6 bytes, as the budget is written)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            fields[k] = int(v.split()[0]) * 1024 / 1e6
    return fields["VmRSS"], fields["VmHWM"]


def bare_reference() -> tuple[float, float]:
    code = ("import numpy, onnxruntime, sys; "
            "s = open('/proc/self/status').read().splitlines(); "
            "print(*[l.split()[1] for l in s if l.startswith(('VmRSS', 'VmHWM'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]) * 1024 / 1e6, int(out[1]) * 1024 / 1e6


def device_work(folder: Path) -> int:
    """Child process: the device's work for one face visit, printing a figure after each step."""
    import numpy as np
    from PIL import Image

    from mynad.memory import release_free_memory, tune_allocator

    tune_allocator()
    steps: list[tuple[str, float, float]] = []

    def mark(what: str) -> None:
        steps.append((what, *proc_mb(os.getpid())))

    from myna_models.antispoof import AntiSpoof
    from myna_models.cardface import CardFaceReader
    from myna_models.engine import FaceEngine, default_models_dir
    from myna_models.session import FaceVerification

    models = default_models_dir()
    engine = FaceEngine(models, threads=2)
    pad = AntiSpoof(models, threads=1)
    reader = CardFaceReader(threads=1)
    mark("models loaded (YuNet, SFace, MiniFASNet x2, PP-OCRv5 rec)")
    tray = np.asarray(Image.open(folder / "tray.png").convert("RGB"))[:, :, ::-1].copy()
    read = reader.read(tray)
    del tray
    mark(f"card face read ({'ok' if read.ok else 'refused'})")
    card = engine.embed_card_photo((folder / "card.jp2").read_bytes())
    release_free_memory()
    mark("card photo embedded")
    frames = np.load(folder / "frames.npy", mmap_mode="r")
    times = np.load(folder / "times.npy")
    session = FaceVerification(engine, card, time_limit_s=30.0, frames_needed=3, liveness=False,
                               clock_start=float(times[0]), pad=pad)
    for frame, t in zip(frames, times):
        u = session.feed(np.array(frame), float(t))  # a copy: the camera's buffer of this frame
        if u.done:
            break
    mark(f"{len(frames)} camera frames verified ({u.reason if u.done else 'undecided'})")
    release_free_memory()
    mark("visit ended")
    for what, rss, hwm in steps:
        print(f"{what}\t{rss:.1f}\t{hwm:.1f}")
    return 0


def prepare_device_work(folder: Path) -> None:
    """Render the pictures the device work reads (hw-sim, in this process)."""
    import numpy as np
    from PIL import Image

    from myna_drivers.camera_sim import SceneRenderer
    from myna_models.cardphoto import encode_card_photo
    from mynasim.card.profiles import load_profiles
    from mynasim.cardface import render_card_face
    from mynasim.rig import default_assets_dir

    prof = load_profiles()["taro"]
    faces = default_assets_dir() / "faces"
    tray = render_card_face(prof, None, np.random.default_rng(0))
    Image.fromarray(tray[:, :, ::-1]).save(folder / "tray.png")
    with Image.open(faces / prof.photo) as img:
        (folder / "card.jp2").write_bytes(encode_card_photo(img))
    live = faces / prof.photo.replace("__1.", "__2.")
    r = SceneRenderer({"source": str(live), "behaviour": "live", "sensor_noise": True}, (640, 480))
    times = np.arange(45) / 15.0
    np.save(folder / "frames.npy", np.stack([r.render(float(t)) for t in times]))
    np.save(folder / "times.npy", times)


def measure(run_dir: Path, overrides: dict, label: str) -> dict:
    from mynasim.rig import SimRig

    with SimRig(run_dir, overrides=overrides) as rig:
        pid = rig.daemon.pid
        time.sleep(1.0)  # let start-up allocations settle before the idle figure
        idle_rss, idle_hwm = proc_mb(pid)
        card = rig.photo_of("taro")
        live = card.with_name(card.name.replace("__1.", "__2."))
        mark = rig.mark()
        rig.show_face(live, behaviour="live")
        rig.place_card("taro")
        e = rig.wait_screen("method_choice", timeout=30, after=mark)
        choices = list(e.data["params"]["choices"])
        matched = False
        if "face" in choices:
            rig.press(choices.index("face") + 1)
            rig.timeline.wait_for(lambda x: x.source == "display" and x.data.get("screen") in
                                  ("consent", "consent_carryover", "face_failed"),
                                  timeout=60, after=mark, what="the end of face authentication")
            matched = any(x.data.get("type") == "visit.authenticated" for x in rig.timeline.entries("host", "received"))
        rss, hwm = proc_mb(pid)
        rig.remove_card()
        rig.wait_screen("idle", after=mark, timeout=15)
    return {"label": label, "idle_rss": idle_rss, "rss": rss, "peak": hwm, "face": "face" in choices,
            "matched": matched}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device-work", metavar="FOLDER", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.device_work:
        return device_work(Path(args.device_work))
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    rss, hwm = bare_reference()
    print(f"python + numpy + onnxruntime (reference): RSS {rss:.1f} MB, peak {hwm:.1f} MB")
    with tempfile.TemporaryDirectory(prefix="myna-rss-") as tmp:
        folder = Path(tmp)
        prepare_device_work(folder)
        out = subprocess.run([sys.executable, __file__, "--device-work", str(folder)], capture_output=True,
                             text=True, check=True).stdout
        print("\ndevice work, one face visit (what mynad does on the Pi):")
        print(f"  {'step':62} {'RSS':>8} {'peak':>8}")
        peak = 0.0
        for line in out.strip().splitlines():
            what, r, h = line.split("\t")
            peak = max(peak, float(h))
            print(f"  {what:62} {float(r):6.1f}MB {float(h):6.1f}MB")
        sim = measure(folder / "rig", {}, "mynad under hw-sim")
    print(f"\nmynad under hw-sim (includes pygame/luma.emulator and the simulated camera's renderer): "
          f"idle {sim['idle_rss']:.1f} MB, after the visit {sim['rss']:.1f} MB, peak {sim['peak']:.1f} MB "
          f"(face offered {sim['face']}, matched {sim['matched']})")
    print(f"\nbudget: device peak <= {BUDGET_MB:.0f} MB with every model loaded: "
          f"{'MET' if peak <= BUDGET_MB else 'NOT MET'} ({peak:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
