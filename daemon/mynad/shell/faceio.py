"""Face authentication, seen from the event loop.

The card photo is embedded in the background as soon as the card is read, so the
embedding is ready when the patient picks 顔認証. The camera runs only while the
flow is in face authentication; frames go straight from the camera to the
verification session on one worker thread and are never stored or written.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from mynad.config import FaceSection
from mynad.memory import release_free_memory
from mynad.core.events import Event, FaceDone, FaceHint, FaceUnavailable

if TYPE_CHECKING:
    from myna_models.antispoof import AntiSpoof
    from myna_models.engine import FaceEngine

log = logging.getLogger("mynad.face")


class FaceIO:
    def __init__(self, cfg: FaceSection, camera, post: Callable[[Event], None],
                 loop: asyncio.AbstractEventLoop, calibration=None) -> None:
        self.cfg = cfg
        self.camera = camera  # opened and closed by myna_drivers.devices; streams only during an attempt
        self.calibration = calibration
        self._post = post
        self._loop = loop
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="face")
        self.engine: FaceEngine | None = None
        self.pad: AntiSpoof | None = None  # when [face] pad is on
        self._embedding_task: asyncio.Future[Any] | None = None
        self._stop = threading.Event()
        self._session_future = None

    def load(self) -> None:
        """Load and verify the models at start: a tampered model stops the daemon."""
        if not self.cfg.enabled:
            return
        from myna_models.engine import FaceEngine

        self.engine = FaceEngine(self.cfg.models_dir, self.cfg.manifest, threads=self.cfg.threads,
                                 calibration=self.calibration)
        if self.cfg.pad:
            from myna_models.antispoof import AntiSpoof

            self.pad = AntiSpoof(self.cfg.models_dir, self.cfg.manifest, threads=1)
        log.info("face models loaded and verified (threshold %.3f, presentation-attack model %s)",
                 self.engine.threshold, "on" if self.pad is not None else "off")

    @property
    def enabled(self) -> bool:
        return self.engine is not None

    def prepare(self, read_photo: Callable[[], Awaitable[bytes]]) -> None:
        """Start reading and embedding the card photo in the background."""
        if self.engine is None:
            return
        self._embedding_task = asyncio.ensure_future(self._prepare(read_photo))

    async def _prepare(self, read_photo: Callable[[], Awaitable[bytes]]):
        try:
            engine = self.engine
            assert engine is not None  # prepare() checked
            jp2 = await read_photo()
            emb = await self._loop.run_in_executor(self._worker, engine.embed_card_photo, jp2)
            del jp2
            release_free_memory()  # the still's canvas and the decoded photo are not needed again
            log.info("card photo embedded")
            return emb
        except Exception as e:
            reason = getattr(e, "message", None) or f"{type(e).__name__}"
            log.warning("card photo unusable for face authentication: %s", reason)
            # a card error carries its cause (照合番号B refused: 019, locked: 017); others are 015
            from mynad.card.errors import CardError

            card = e if isinstance(e, CardError) else None
            self._post(FaceUnavailable(str(reason), code=card.code if card else None,
                                       abort_reason=card.reason if card else None))
            return None

    def start(self, attempt: int) -> None:
        if self.engine is None or self._embedding_task is None:
            self._post(FaceUnavailable("face authentication is not available on this reader"))
            return
        self._stop.clear()
        # the task is handed over now: the visit may end (forget()) before _run first runs
        asyncio.ensure_future(self._run(self._embedding_task, attempt))

    async def _run(self, embedding_task: asyncio.Future, attempt: int) -> None:
        emb = await embedding_task
        if emb is None:
            return  # FaceUnavailable already posted
        if self._stop.is_set():
            return
        await self._loop.run_in_executor(self._worker, self._session, emb, attempt)

    def _session(self, embedding, attempt: int) -> None:
        """Worker thread: camera frames → verification, until a decision or stop."""
        from myna_models.session import FaceVerification

        post = lambda ev: self._loop.call_soon_threadsafe(self._post, ev)  # noqa: E731
        cam = self.camera
        cam.start()
        try:
            first = cam.read()
            session = FaceVerification(self.engine, embedding, time_limit_s=self.cfg.time_limit_s,
                                       frames_needed=self.cfg.frames_needed, liveness=self.cfg.liveness,
                                       clock_start=first.t, pad=self.pad)
            frame = first
            last_hint = None
            while not self._stop.is_set():
                update = session.feed(frame.bgr, frame.t)
                del frame
                if update.hint != last_hint and not update.done:
                    last_hint = update.hint
                    post(FaceHint(update.hint or "ok"))  # no hint: the plain "face the camera" text
                if update.done:
                    log.info("face attempt %d: %s (match score %s%s)", attempt, update.reason,
                             f"{update.score:.3f}" if update.score is not None else "-",
                             f"; {update.detail}" if update.detail else "")
                    post(FaceDone(bool(update.match), update.reason or "", update.score))
                    return
                frame = cam.read()
        except Exception as e:
            log.exception("face session failed")
            post(FaceDone(False, f"error: {type(e).__name__}", None))
        finally:
            cam.stop()

    def stop(self) -> None:
        self._stop.set()

    def forget(self) -> None:
        """Drop the card's embedding at the end of the visit."""
        self._stop.set()
        task, self._embedding_task = self._embedding_task, None
        if task is not None and not task.done():
            task.cancel()

    async def close(self) -> None:
        self.forget()
        self._worker.shutdown(wait=False, cancel_futures=True)
