"""Screens, seen from the event loop: render a Screen value, push it to the panel.

Rendering is pure and fast; the panel write (SPI on the Pi, a PNG in the
simulator) runs on a single display thread so the loop never waits on it and
frames keep their order. A screen too long for one page is paged:

* normal text: each page shows for ``[display] page_s`` seconds, then the next;
* large text (docs/languages.md): the page stays until the patient presses the page
  key (9), or turns every ``[display] large_page_s`` seconds when that is set. PIN pad
  screens have no free key (every key is a digit there), so their pages turn by
  themselves at ``large_page_s`` or, when that is 0, at twice ``page_s``.

The language and the text size are set by the flow's ``SetDisplay`` (the patient's choice
for one visit) and hold until the next one; every catalogue is loaded when the display
opens, so a missing one stops the start, not a visit.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from mynad.config import DisplaySection
from mynad.ui.i18n import DEFAULT_LANG, load_all, normalise
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
        self.lang = DEFAULT_LANG
        self.large = bool(cfg.large_text)
        self.page = 0  # index of the page on the panel
        self._pages: list = []
        self._pad = False
        self._meta: tuple[str, str, dict] = ("", "", {})
        load_all()

    def set_display(self, lang: str, toggle_large: bool = False) -> None:
        """The visit's language and text size (``toggle_large`` flips the configured default);
        the next ``show`` draws with them."""
        self.lang = normalise(lang)
        self.large = bool(self.cfg.large_text) != bool(toggle_large)

    def show(self, screen: Screen) -> None:
        from mynad.ui.render import is_pad_screen, layout_content
        from mynad.ui.texts import content, content_text

        self.current = screen
        c = content(screen, self.lang)
        pages = [p.image for p in layout_content(c, (self.cfg.width, self.cfg.height), self.large)]
        text = content_text(c)
        if self._pager is not None:
            self._pager.cancel()
            self._pager = None
        params = _json_safe(dict(screen.params))
        self._pages, self.page, self._pad = pages, 0, is_pad_screen(c)
        self._meta = (screen.id, text, params)
        self._push(pages[0], screen.id, text, params)
        pace = self._pace()
        if len(pages) > 1 and pace > 0:
            self._pager = asyncio.ensure_future(self._cycle(pace))

    def _pace(self) -> float:
        """Seconds per page; 0 = the page waits for the page key."""
        if not self.large:
            return float(self.cfg.page_s)
        slow = float(self.cfg.large_page_s)
        if self._pad:
            return slow or 2.0 * float(self.cfg.page_s)
        return slow

    @property
    def pages(self) -> int:
        return len(self._pages)

    def page_key(self, pos: int) -> bool:
        """True when ``pos`` is the page key (9) and it turned the page: the screen has several
        pages and is not a PIN pad (where 9 is a digit). The flow never sees it."""
        from mynad.ui.render import PAGE_KEY

        if pos != PAGE_KEY or len(self._pages) < 2 or self._pad:
            return False
        self.page = (self.page + 1) % len(self._pages)
        sid, text, params = self._meta
        self._push(self._pages[self.page], sid, text, params)
        if self._pager is not None:  # turned by hand: the next automatic turn waits a full period
            self._pager.cancel()
            self._pager = asyncio.ensure_future(self._cycle(self._pace()))
        return True

    async def _cycle(self, pace: float) -> None:
        while True:
            await asyncio.sleep(pace)
            self.page = (self.page + 1) % len(self._pages)
            sid, text, params = self._meta
            self._push(self._pages[self.page], sid, text, params)

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
