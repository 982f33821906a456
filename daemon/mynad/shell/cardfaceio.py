"""照合番号B from the printed card face, seen from the event loop.

When a card is placed, the tray camera takes a still and the on-device reader
(:mod:`myna_models.cardface`) finds the card, rectifies it and reads the birth
date, the expiry year and the security code. This runs on its own worker thread
while the card worker reads the chip, so the method choice waits for neither.

What leaves this module is a :class:`CodeB`: the 14 digits in a bytearray that the
card layer wipes after its one VERIFY, or the plain reason why there is none.
The digits are never logged, never sent to the host and never kept past the
visit; the camera frame is dropped as soon as it has been read. (Python cannot
wipe the reader's intermediate ``str`` values; they live for the length of one
``read`` call and are not referenced afterwards.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mynad.core.secret import wipe

log = logging.getLogger("mynad.cardface")

# A card being placed: the hand may still be over it, or it is still sliding into the
# tray. Captures this far apart give the patient's hand time to leave the tray.
CAPTURE_GAP_S = 0.3


@dataclass
class CodeB:
    """The outcome of reading one card face."""

    digits: bytearray | None = field(default=None, repr=False)
    confidence: float = 0.0
    reason: str | None = None  # plain words when there are no digits

    def take(self) -> bytearray:
        """Hand the digits over (the receiver wipes them); this object keeps nothing."""
        d, self.digits = self.digits, None
        return d if d is not None else bytearray()

    def wipe(self) -> None:
        if self.digits is not None:
            wipe(self.digits)
            self.digits = None


class CardFaceIO:
    def __init__(self, cfg: Any, camera: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.cfg = cfg
        self.camera = camera
        self._loop = loop
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cardface")
        self.reader: Any = None

    def load(self) -> None:
        """Load the OCR models at start (a missing or damaged model stops the daemon)."""
        if self.camera is None:
            return
        from myna_models.cardface.reader import THRESHOLD, CardFaceReader

        configured = float(self.cfg.min_confidence)  # 0 = the reader's calibrated threshold
        self.reader = CardFaceReader(threads=max(1, int(self.cfg.threads)),
                                     threshold=configured if configured > 0 else THRESHOLD)
        log.info("card-face reader loaded (minimum confidence %.2f)", self.reader.threshold)

    @property
    def enabled(self) -> bool:
        return self.camera is not None and self.reader is not None

    async def read(self) -> CodeB:
        if not self.enabled:
            return CodeB(reason="this reader has no card-face camera")
        try:
            return await self._loop.run_in_executor(self._worker, self._read)
        except Exception as e:  # a camera or model failure must not end the visit
            log.exception("card-face read failed")
            return CodeB(reason=f"card-face read failed: {type(e).__name__}")

    def _read(self) -> CodeB:
        """Worker thread: capture and read until a confident read or the captures run out."""
        last = CodeB(reason="no capture")
        for i in range(max(1, int(self.cfg.captures))):
            if i:
                time.sleep(CAPTURE_GAP_S)
            t0 = time.monotonic()
            try:
                frame = self.camera.capture()
            except Exception as e:
                last = CodeB(reason=getattr(e, "message", None) or str(e))
                continue
            result = self.reader.read(frame)
            del frame
            ms = (time.monotonic() - t0) * 1000
            if result.ok:  # the reader refuses reads below its confidence threshold itself
                digits = bytearray(result.code_b().encode("ascii"))
                conf = float(result.confidence)
                del result
                log.info("card face read (capture %d, confidence %.2f, %.0f ms)", i + 1, conf, ms)
                return CodeB(digits, conf)
            reason = result.reason or "unreadable"
            last = CodeB(confidence=float(result.confidence), reason=reason)
            del result
            log.info("card face not read (capture %d, %.0f ms): %s", i + 1, ms, reason)
        return last

    async def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
