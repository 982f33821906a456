"""The reader's camera (Raspberry Pi camera module through picamera2).

Frames go from the camera to the caller as numpy arrays and nowhere else: nothing is
saved, encoded or previewed. ``read`` blocks until the next frame the sensor delivers.

Colour order: picamera2's ``"RGB888"`` format is, despite its name, stored as
[B, G, R] bytes per pixel (picamera2 manual, "Image formats": RGB888 is "24 bits per
pixel, ordered [B, G, R]"; "BGR888" is [R, G, B]). A ``capture_array()`` of an
``RGB888`` stream is therefore the BGR array OpenCV-style code (and our face engine)
expects, with no conversion.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("myna.camera")


@dataclass
class Frame:
    bgr: np.ndarray   # (H, W, 3) uint8, BGR
    t: float          # time.monotonic() seconds when the frame was captured


class CameraError(RuntimeError):
    """The camera is missing or cannot be started."""


class PiCamera:
    def __init__(self, size: tuple[int, int], fps: int) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.fps = max(1, int(fps))
        self._cam = None

    def start(self) -> None:
        try:
            from picamera2 import Picamera2  # lazily: only the real reader has it
        except ImportError as e:
            raise CameraError("picamera2 is not installed: install python3-picamera2 from Raspberry Pi OS "
                              "(apt), or set [camera] backend = \"sim\" "
                              f"({e})") from None
        try:
            cam = Picamera2()
            frame_us = int(1_000_000 / self.fps)
            config = cam.create_video_configuration(
                main={"size": self.size, "format": "RGB888"},
                controls={"FrameDurationLimits": (frame_us, frame_us)},
                buffer_count=4,
            )
            cam.configure(config)
            cam.start()
        except Exception as e:  # libcamera raises many types (RuntimeError, IndexError when no camera)
            raise CameraError(f"camera cannot be started: {type(e).__name__}: {e}") from None
        self._cam = cam
        log.info("camera started %dx%d @ %d fps", *self.size, self.fps)

    def read(self):
        if self._cam is None:
            raise CameraError("camera not started")
        arr = self._cam.capture_array("main")  # blocks until the next completed frame
        t = time.monotonic()
        return Frame(bgr_frame(arr, self.size), t)

    def stop(self) -> None:
        cam, self._cam = self._cam, None
        release_picamera(cam)


def bgr_frame(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A picamera2 ``RGB888`` buffer as a contiguous (h, w, 3) BGR frame of ``size``."""
    if arr.ndim == 3 and arr.shape[2] == 4:  # XRGB8888-style padding, if a pipeline gives it
        arr = arr[:, :, :3]
    w, h = size
    if arr.shape[0] != h or arr.shape[1] != w:  # stride-aligned buffers can be wider
        arr = arr[:h, :w]
    return np.ascontiguousarray(arr)


def release_picamera(cam) -> None:
    """Stop and close a picamera2 camera (None: nothing to do)."""
    if cam is None:
        return
    try:
        cam.stop()
    finally:
        try:
            cam.close()
        except Exception:  # closing a half-started camera must not hide the original error
            log.debug("camera close failed", exc_info=True)
