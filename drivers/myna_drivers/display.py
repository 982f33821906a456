"""The patient display: a 256x64 SSD1322 OLED (4-bit greyscale) on SPI, or a PNG per frame.

Both classes offer ``show(image, screen_id, text, params)`` and ``close()`` (the
``Display`` interface of ``myna_drivers.devices``, which chooses between them); the
shell calls both from its single display thread.

* real: ``luma.oled.device.ssd1322`` over ``luma.core.interface.serial.spi``
  (imported only here, so the daemon imports fine off the Pi).
* sim: ``luma.emulator.device.capture`` writes each frame to
  ``<out_dir>/NNNN-<screen_id>.png`` (scaled x3, nearest neighbour, so pixels
  stay crisp), then tells hw-sim over the sim bus what was shown. pygame is
  used headless (``SDL_VIDEODRIVER=dummy``); no screen is needed. Without
  pygame a plain PIL writer produces the same files.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from myna_drivers.numbered_files import NumberedFiles

log = logging.getLogger("myna.display")

SIM_SCALE = 3


class OledDisplay:
    """The real panel."""

    def __init__(self, cfg: Any, gpio: Any = None) -> None:
        """``gpio``: the RPi.GPIO API that drives DC and RST (None: luma's own choice)."""
        from luma.core.interface.serial import spi  # lazy: only on the device
        from luma.oled.device import ssd1322

        if gpio is not None:
            gpio.setmode(gpio.BCM)  # luma sets the numbering only on the RPi.GPIO it imports itself
        serial = spi(gpio=gpio, port=cfg.spi_port, device=cfg.spi_device, gpio_DC=cfg.gpio_dc,
                     gpio_RST=cfg.gpio_rst)
        self.device = ssd1322(serial, width=cfg.width, height=cfg.height, rotate=cfg.rotate, mode="RGB")
        self.device.contrast(max(0, min(255, int(cfg.contrast))))

    def show(self, image, screen_id: str, text: str, params: dict) -> None:
        self.device.display(_fit(image, self.device.size).convert(self.device.mode))

    def close(self) -> None:
        try:
            self.device.clear()
        finally:
            self.device.cleanup()


class SimDisplay:
    """One PNG per frame in ``out_dir``, announced on the sim bus."""

    def __init__(self, cfg: Any, bus_path: str = "") -> None:
        self.size = (int(cfg.width), int(cfg.height))
        self.out_dir = Path(cfg.out_dir)
        self.files = NumberedFiles(self.out_dir, ".png", keep=int(getattr(cfg, "keep_files", 0)))
        self.bus = None
        if bus_path:
            from myna_drivers.simbus import SimBus

            self.bus = SimBus.shared(bus_path)
        self.device = None
        try:
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
            os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
            from luma.emulator.device import capture

            self.device = capture(width=self.size[0], height=self.size[1], rotate=0,
                                  mode="RGB", transform="identity", scale=SIM_SCALE)
        except (ImportError, RuntimeError) as e:  # no pygame: same files via PIL
            log.info("luma.emulator unavailable (%s); writing PNGs with PIL", e)

    def show(self, image, screen_id: str, text: str, params: dict) -> None:
        path = self.files.next(screen_id)
        frame = _fit(image, self.size).convert("RGB")
        if self.device is not None:
            # capture numbers frames itself; point its template at our name for this frame
            self.device._file_template = str(path).replace("{", "{{").replace("}", "}}")
            self.device.display(frame)
        else:
            from PIL import Image

            frame.resize((self.size[0] * SIM_SCALE, self.size[1] * SIM_SCALE), Image.Resampling.NEAREST).save(path)
        if self.bus is not None:
            self.bus.send("display", screen=screen_id, png=str(path), text=text, params=params)

    def close(self) -> None:
        if self.device is not None:
            self.device.cleanup()


def _fit(image, size: tuple[int, int]):
    if image.size != tuple(size):
        from PIL import Image

        canvas = Image.new(image.mode, (size[0], size[1]), 0)
        canvas.paste(image.crop((0, 0, min(image.width, size[0]), min(image.height, size[1]))), (0, 0))
        return canvas
    return image
