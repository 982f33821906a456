"""Screens, seen from the event loop: render a Screen value, push it to the panel.

Rendering is pure and fast; the panel write (SPI on the Pi, a PNG in the
simulator) runs on a single display thread so the loop never waits on it and
frames keep their order. A screen too long for one page is cycled page by page.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from mynad.config import DisplaySection, SimSection
from mynad.ui.screens import Screen

log = logging.getLogger("mynad.display")


class ScreenIO:
    def __init__(self, cfg: DisplaySection, sim: SimSection, loop: asyncio.AbstractEventLoop) -> None:
        self.cfg = cfg
        self.sim = sim
        self._loop = loop
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="display")
        self._pager: asyncio.Task | None = None
        self.current: Screen | None = None
        self.display = None

    def open(self) -> None:
        from myna_drivers.display import open_display

        self.display = open_display(self.cfg, self.sim)

    def show(self, screen: Screen) -> None:
        from mynad.ui.render import render
        from mynad.ui.texts import screen_text

        self.current = screen
        pages = render(screen, size=(self.cfg.width, self.cfg.height))
        text = screen_text(screen)
        if self._pager is not None:
            self._pager.cancel()
            self._pager = None
        self._push(pages[0], screen.id, text)
        if len(pages) > 1:
            self._pager = asyncio.ensure_future(self._cycle(pages, screen.id, text))

    async def _cycle(self, pages, screen_id: str, text: str) -> None:
        i = 0
        while True:
            await asyncio.sleep(self.cfg.page_s)
            i = (i + 1) % len(pages)
            self._push(pages[i], screen_id, text)

    def _push(self, image, screen_id: str, text: str) -> None:
        fut = self._loop.run_in_executor(self._worker, self.display.show, image, screen_id, text)
        fut.add_done_callback(_log_failure)

    async def close(self) -> None:
        if self._pager is not None:
            self._pager.cancel()
        if self.display is not None:
            await self._loop.run_in_executor(self._worker, self.display.close)
        self._worker.shutdown(wait=True)


def _log_failure(fut: asyncio.Future) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("display write failed: %s", fut.exception())
