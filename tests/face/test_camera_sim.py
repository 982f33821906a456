"""Simulated camera: pacing, frame shape, scene switching over a real in-process sim bus."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from myna_drivers.camera_sim import SceneRenderer, SimCamera, render_scene

ROOT = Path(__file__).resolve().parents[2]
FACES = ROOT / "assets" / "faces"
PHOTO = FACES / "lfw_tony_blair__2.jpg"
need_photo = pytest.mark.skipif(not PHOTO.is_file(), reason="sample face photos not present")
SIZE = (320, 240)


@pytest.fixture
def bus(tmp_path):
    from mynasim.bus import SimBusServer
    from mynasim.timeline import Timeline

    server = SimBusServer(tmp_path / "sim.sock", Timeline())
    yield server
    server.close()


def _wait(pred, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_empty_scene_before_anything_is_published(bus):
    cam = SimCamera(str(bus.path), SIZE, 20)
    cam.start()
    try:
        f = cam.read()
        assert f.bgr.shape == (240, 320, 3) and f.bgr.dtype == np.uint8
        assert f.bgr.std() < 20  # just the wall
    finally:
        cam.stop()


@need_photo
def test_pacing_and_scene_switching(bus):
    bus.publish("camera", scene={"source": str(PHOTO), "behaviour": "live"})
    cam = SimCamera(str(bus.path), SIZE, 20)
    cam.start()
    try:
        assert _wait(lambda: cam.read().bgr.std() > 20)
        frames = [cam.read() for _ in range(20)]
        ts = np.array([f.t for f in frames])
        assert np.all(np.diff(ts) > 0)
        rate = (len(ts) - 1) / (ts[-1] - ts[0])
        assert 16 <= rate <= 22, rate
        assert all(f.bgr.shape == (240, 320, 3) for f in frames)
        # a live person moves
        assert any(np.abs(frames[0].bgr.astype(int) - f.bgr).mean() > 1 for f in frames[1:])

        bus.publish("camera", scene={"source": None, "behaviour": "none"})
        assert _wait(lambda: cam.read().bgr.std() < 20)
        bus.publish("camera", scene={"source": str(PHOTO), "behaviour": "dark"})
        assert _wait(lambda: cam.read().bgr.mean() < 20)
    finally:
        cam.stop()


def test_bad_source_gives_empty_frames(bus):
    bus.publish("camera", scene={"source": "/nonexistent/face.jpg", "behaviour": "live"})
    cam = SimCamera(str(bus.path), SIZE, 30)
    cam.start()
    try:
        time.sleep(0.3)
        assert cam.read().bgr.shape == (240, 320, 3)
    finally:
        cam.stop()


@need_photo
def test_photo_does_not_turn_live_does():
    live = SceneRenderer({"source": str(PHOTO), "behaviour": "live"}, SIZE)
    photo = SceneRenderer({"source": str(PHOTO), "behaviour": "photo"}, SIZE)
    screen = render_scene({"source": str(PHOTO), "behaviour": "screen"}, SIZE, [0.0, 0.5, 1.0])
    assert max(abs(live.yaw_at(t / 10)) for t in range(30)) >= 19
    assert all(photo.yaw_at(t / 10) == 0 for t in range(30))
    assert all(np.array_equal(screen[0], s) for s in screen[1:])


@need_photo
def test_render_is_cheap():
    r = SceneRenderer({"source": str(PHOTO), "behaviour": "live"}, (640, 480))
    t0 = time.perf_counter()
    for i in range(30):
        r.render(i / 15)
    assert (time.perf_counter() - t0) / 30 < 0.02


@need_photo
def test_video_folder(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (64, 48), (i * 80, 0, 0)).save(tmp_path / f"{i:03d}.png")
    r = SceneRenderer({"source": str(tmp_path), "behaviour": "live", "video_fps": 10}, SIZE)
    a, b = r.render(0.0), r.render(0.1)
    assert a.shape == (240, 320, 3) and not np.array_equal(a, b)
