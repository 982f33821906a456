"""The card-face camera: a still of the card lying printed side up in the reader's tray.

Certified readers read 照合番号B (birth date, expiry year, security code) off the
printed card face with a camera of their own; this is that camera. ``capture()``
returns one BGR frame (numpy, uint8) or raises :class:`CardFaceCameraError`. The
frame goes to the card-face reader in memory and nowhere else: nothing is saved.

* real: a second camera through picamera2 (``camera_num``: a CSI module on the Pi 5's
  second port, or a USB UVC camera, which libcamera drives through its uvcvideo
  pipeline). The camera streams from ``open`` to ``close`` so that a capture right
  after a card is placed costs one frame time, not a sensor start (~0.5 s).
* sim: the simulator renders the printed card face as the tray camera would see it
  (position, angle, blur, glare, a sleeve...) and publishes the rendered image's path
  on the sim bus: ``{"dev": "cardface", "image": "/run/dir/cardface-0003.png"}``, or
  ``"image": null`` when the tray is empty. It never sends what is printed: the
  daemon's own reading path does the work, as on the device.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from myna_drivers.camera import bgr_frame, release_picamera

log = logging.getLogger("myna.cardface")


class CardFaceCameraError(RuntimeError):
    """The card-face camera is missing, not started, or gave no usable frame."""


class PiStillCamera:
    """picamera2 camera ``camera_num`` streaming full frames at a low rate."""

    def __init__(self, camera_num: int, size: tuple[int, int]) -> None:
        self.camera_num = int(camera_num)
        self.size = (int(size[0]), int(size[1]))
        self._cam: Any = None
        self._lock = threading.Lock()

    def open(self) -> None:
        try:
            from picamera2 import Picamera2  # lazily: only the real reader has it
        except ImportError as e:
            raise CardFaceCameraError("picamera2 is not installed: install python3-picamera2 from Raspberry Pi "
                                      f"OS (apt), or set [card_face] backend = \"none\" ({e})") from None
        try:
            cam = Picamera2(self.camera_num)
            config = cam.create_still_configuration(main={"size": self.size, "format": "RGB888"},
                                                    buffer_count=2)
            cam.configure(config)
            cam.start()
        except Exception as e:  # libcamera raises many types (IndexError when there is no such camera)
            raise CardFaceCameraError(f"card-face camera {self.camera_num} cannot be started: "
                                      f"{type(e).__name__}: {e}") from None
        self._cam = cam
        log.info("card-face camera %d started %dx%d", self.camera_num, *self.size)

    def capture(self) -> np.ndarray:
        with self._lock:
            if self._cam is None:
                raise CardFaceCameraError("card-face camera not started")
            try:
                arr = self._cam.capture_array("main")  # RGB888 is stored [B, G, R]: already BGR
            except Exception as e:
                raise CardFaceCameraError(f"card-face camera capture failed: {type(e).__name__}: {e}") from None
        return bgr_frame(arr, self.size)

    def close(self) -> None:
        cam, self._cam = self._cam, None
        release_picamera(cam)


class SimCardFaceCamera:
    """Frames from the simulator's rendering of the card in the tray."""

    def __init__(self, bus_path: str) -> None:
        self.bus_path = str(bus_path)
        self._lock = threading.Lock()
        self._image: str | None = None
        self._seen = False

    def open(self) -> None:
        from myna_drivers.simbus import SimBus

        SimBus.shared(self.bus_path).subscribe("cardface", self._on_message)

    def _on_message(self, msg: dict[str, Any]) -> None:
        image = msg.get("image")
        with self._lock:
            self._image = image if isinstance(image, str) and image else None
            self._seen = True

    def capture(self) -> np.ndarray:
        from PIL import Image

        with self._lock:
            path = self._image
            seen = self._seen
        if not seen:
            raise CardFaceCameraError("the simulated card-face camera has no picture yet (is mynasim running?)")
        if path is None:
            return np.zeros((960, 1280, 3), np.uint8)  # an empty, unlit tray
        try:
            with Image.open(Path(path)) as img:
                rgb = np.asarray(img.convert("RGB"))
        except (OSError, ValueError) as e:
            raise CardFaceCameraError(f"the simulated card-face picture cannot be read: {e}") from None
        return np.ascontiguousarray(rgb[:, :, ::-1])

    def close(self) -> None:
        with self._lock:
            self._image = None
