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
@need_photo
def test_video_folder(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (64, 48), (i * 80, 0, 0)).save(tmp_path / f"{i:03d}.png")
    r = SceneRenderer({"source": str(tmp_path), "behaviour": "live", "video_fps": 10}, SIZE)
    a, b = r.render(0.0), r.render(0.1)
    assert a.shape == (240, 320, 3) and not np.array_equal(a, b)


# ------------------------------------------------------------------ poses, followers, attack scenes

def test_pose_of_is_a_smooth_move_between_two_poses():
    from myna_drivers.camera_sim import pose_of

    move = {"t0": 10.0, "dur": 0.5, "from": {"yaw": 0.0}, "to": {"yaw": 30.0}, "slide": "left", "slide_t": 10.0,
            "prev_slide": "front"}
    ys = [pose_of(move, 9.9 + i * 0.05)["yaw"] for i in range(14)]
    assert ys[0] == 0.0 and ys[-1] == 30.0 and all(b >= a for a, b in zip(ys, ys[1:]))
    assert pose_of(move, 9.9)["slide"] == "front" and pose_of(move, 10.1)["slide"] == "left"
    assert pose_of(None, 1.0) == {}


def test_follower_reads_the_screen_like_a_person():
    import random

    from mynasim.patient import Follower, read_prompt

    assert read_prompt("ゆっくり顔を左に向けてください") == "left"
    assert read_prompt("ゆっくり顔を右に向けてください\n顔認証（1/2回目）") == "right"
    assert read_prompt("正面を向いてください") == "front"
    assert read_prompt("そのまま動かないでください") == "hold"
    f = Follower("patient", random.Random(0))
    move = f.see("ゆっくり顔を左に向けてください", 1.0)
    assert 1.3 <= move["t0"] <= 1.8 and 25 <= move["to"]["yaw"] <= 38
    assert f.see("ゆっくり顔を左に向けてください", 1.2) is None          # the same screen: nothing new
    assert f.pose_at(1.0)["yaw"] == 0.0 and f.pose_at(5.0)["yaw"] == move["to"]["yaw"]
    back = f.see("正面を向いてください", 5.0)
    assert back["from"]["yaw"] == move["to"]["yaw"] and abs(back["to"]["yaw"]) <= 1.0
    r = Follower("print_rotated", random.Random(0)).see("ゆっくり顔を右に向けてください", 0.0)
    assert r["to"]["roll"] < -10 and r["to"]["yaw"] == 0.0


@need_photo
def test_screen_follower_turns_the_sim_camera_head(bus):
    """Through the bus: a display frame on the timeline -> the patient's move -> the camera's head."""
    import random

    from mynasim.patient import ScreenFollower

    follower = ScreenFollower(bus.timeline, bus, "patient", random.Random(1))
    try:
        bus.publish("camera", scene={"source": str(PHOTO), "behaviour": "live", "follow": True})
        cam = SimCamera(str(bus.path), SIZE, 20)
        cam.start()
        try:
            assert _wait(lambda: cam.read().bgr.std() > 20)
            bus.timeline.add("display", "frame", screen="face_guide",
                             text="ゆっくり顔を左に向けてください")
            assert _wait(lambda: cam._renderer.yaw_at(time.monotonic() - cam._since) > 20, timeout=5.0)
        finally:
            cam.stop()
    finally:
        follower.stop()


@need_photo
@pytest.mark.parametrize("behaviour", ["print_stand", "print_wave", "print_rotated", "print_turned", "print_bent",
                                       "replay", "slideshow"])
def test_attack_scenes_render(behaviour):
    r = SceneRenderer({"source": str(PHOTO), "behaviour": behaviour}, (640, 480))
    frames = [r.render(t) for t in (0.0, 0.7, 1.4)]
    assert all(f.shape == (480, 640, 3) and f.dtype == np.uint8 for f in frames)
    assert frames[0].std() > 20                                     # something is in front of the wall
    assert not np.array_equal(frames[0], frames[1])                 # sensor noise at least


@need_photo
def test_rotated_print_follows_the_pose_in_plane():
    """roll > 0 moves what is below the face centre to the image right (the nose of a print)."""
    base = SceneRenderer({"source": str(PHOTO), "behaviour": "print_rotated", "follow": True}, (640, 480),
                         pose=lambda t: {})
    rolled = SceneRenderer({"source": str(PHOTO), "behaviour": "print_rotated", "follow": True}, (640, 480),
                           pose=lambda t: {"roll": 20.0})
    a, b = base.render(0.0).astype(int), rolled.render(0.0).astype(int)
    lower = slice(300, 420)
    cols = np.arange(640)
    wa = (np.abs(a[lower] - a[lower, :, :1].mean()).sum(axis=(0, 2)))
    wb = (np.abs(b[lower] - b[lower, :, :1].mean()).sum(axis=(0, 2)))
    assert (wb * cols).sum() / wb.sum() > (wa * cols).sum() / wa.sum()
