"""Screens, seen from the event loop: render a Screen value, push it to the panel.

Rendering is pure and fast; the panel write (SPI on the Pi, a PNG in the
simulator) runs on a single display thread so the loop never waits on it and
frames keep their order. A screen too long for one page is cycled page by page.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from mynad.config import DisplaySection
from mynad.ui.screens import Screen

log = logging.getLogger("mynad.display")


class ScreenIO:
    def __init__(self, cfg: DisplaySection, display, loop: asyncio.AbstractEventLoop) -> None:
        self.cfg = cfg
        self.display = display  # opened and closed by myna_drivers.devices
        self._loop = loop
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="display")
        self._pager: asyncio.Task | None = None
        self.current: Screen | None = None

    def show(self, screen: Screen) -> None:
        from mynad.ui.render import render
        from mynad.ui.texts import screen_text

        self.current = screen
        pages = render(screen, size=(self.cfg.width, self.cfg.height))
        text = screen_text(screen)
        if self._pager is not None:
            self._pager.cancel()
            self._pager = None
        params = _json_safe(dict(screen.params))
        self._push(pages[0], screen.id, text, params)
        if len(pages) > 1:
            self._pager = asyncio.ensure_future(self._cycle(pages, screen.id, text, params))

    async def _cycle(self, pages, screen_id: str, text: str, params: dict) -> None:
        i = 0
        while True:
            await asyncio.sleep(self.cfg.page_s)
            i = (i + 1) % len(pages)
            self._push(pages[i], screen_id, text, params)

    def _push(self, image, screen_id: str, text: str, params: dict) -> None:
        fut = self._loop.run_in_executor(self._worker, self.display.show, image, screen_id, text, params)
        fut.add_done_callback(_log_failure)

    async def close(self) -> None:
        """Stop paging and let the frames already queued reach the panel (the device
        itself is closed by the device set, after this)."""
        if self._pager is not None:
            self._pager.cancel()
        await self._loop.run_in_executor(None, self._worker.shutdown, True)


def _log_failure(fut: asyncio.Future) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("display write failed: %s", fut.exception())


def _json_safe(value):
    """Screen params as plain JSON values (tuples to lists, enums to their value)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(getattr(value, "value", value))
