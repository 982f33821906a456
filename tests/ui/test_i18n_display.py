"""The shell side of language and large text: ScreenIO draws in the visit's language, and
large-text pages wait for the page key (9) instead of turning every 3 seconds.

No timing: the tests look at the frames pushed and at whether a page timer exists.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest

from mynad.config import ConfigError, DisplaySection, parse_config
from mynad.shell.screenio import ScreenIO
from mynad.ui.render import PAGE_KEY
from mynad.ui.screens import Screen
from mynasim.gallery import LAYOUT

LONG = Screen("consent", {"item": "care_medicine", "index": 2, "total": 4, "previous": None})
PIN = Screen("pin_entry", {"layout": LAYOUT, "entered": 1, "tries_left": 2, "wrong": True, "proxy": True})


class FakeDisplay:
    def __init__(self) -> None:
        self.frames: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def show(self, image, screen_id: str, text: str, params: dict) -> None:
        with self.lock:
            self.frames.append((screen_id, text))


async def _flush(io: ScreenIO) -> None:
    await asyncio.get_running_loop().run_in_executor(io._worker, lambda: None)


def run(cfg: DisplaySection, body):
    async def main():
        disp = FakeDisplay()
        io = ScreenIO(cfg, disp, asyncio.get_running_loop())
        try:
            await body(io, disp)
        finally:
            await io.close()
    asyncio.run(main())


def test_large_text_pages_wait_for_the_page_key():
    async def body(io: ScreenIO, disp: FakeDisplay):
        io.set_display("en", toggle_large=True)
        assert io.large and io.lang == "en"
        io.show(LONG)
        await _flush(io)
        assert io.pages > 2 and len(disp.frames) == 1 and io._pager is None  # no automatic turn
        assert "Do you agree" in disp.frames[0][1]  # the text in the visit's language
        for i in range(1, io.pages + 1):
            assert io.page_key(PAGE_KEY)
            await _flush(io)
            assert io.page == i % io.pages and len(disp.frames) == 1 + i
        assert not io.page_key(8) and not io.page_key(12)  # only 9 turns pages
        io.show(Screen("verifying", {}))
        assert io.pages == 1 and not io.page_key(PAGE_KEY)  # one page: 9 goes to the flow

    run(DisplaySection(), body)


def test_pin_pad_pages_turn_by_themselves_and_9_stays_a_digit():
    async def body(io: ScreenIO, disp: FakeDisplay):
        io.set_display("ja", toggle_large=True)
        io.show(PIN)
        assert io.pages > 1 and io._pager is not None and io._pace() == 6.0  # twice page_s
        assert not io.page_key(PAGE_KEY)

    run(DisplaySection(), body)


def test_normal_text_keeps_its_pace_and_large_page_s_sets_a_slower_one():
    async def body(io: ScreenIO, disp: FakeDisplay):
        io.show(LONG)
        assert not io.large and io.pages > 1 and io._pager is not None and io._pace() == 3.0
        io.set_display("ja", toggle_large=True)
        io.show(LONG)
        assert io._pager is not None and io._pace() == 10.0

    run(dataclasses.replace(DisplaySection(), large_page_s=10.0), body)


def test_configured_large_text_is_the_default_and_the_key_switches_it_off():
    async def body(io: ScreenIO, disp: FakeDisplay):
        assert io.large
        io.set_display("ko", toggle_large=True)
        assert not io.large and io.lang == "ko"
        io.set_display("ja", toggle_large=False)  # card removed
        assert io.large and io.lang == "ja"

    run(dataclasses.replace(DisplaySection(), large_text=True), body)


def test_display_config_keys():
    cfg = parse_config({"display": {"large_text": True, "large_page_s": 8}})
    assert cfg.display.large_text is True and cfg.display.large_page_s == 8.0
    assert parse_config({}).display.large_text is False and parse_config({}).display.large_page_s == 0.0
    with pytest.raises(ConfigError, match="large_page_s must be between 0 and 120"):
        parse_config({"display": {"large_page_s": 500}})
    with pytest.raises(ConfigError, match="large_text must be true or false"):
        parse_config({"display": {"large_text": "yes"}})
