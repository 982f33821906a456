"""Voice guidance, seen from the event loop: each screen shown is spoken, each chime sounded.

``observe(action)`` is called for every action the flow emits (``App._execute``):
``Show`` speaks the screen's prompt (``mynad.voice.prompts``, secrets withheld),
``Indicate(buzzer=...)`` sounds the same pattern on the speaker as on the piezo.
Synthesis runs on one low-priority worker thread (a cache miss costs 0.2–0.6 s of
CPU here, more on a Pi 4) and playback on the driver's own thread, so the loop only
builds the prompt text (well under a millisecond) and hands it over.

* A new screen cuts the prompt playing at once; the new one follows when ready.
* The same screen redrawn with the same words (a PIN digit typed: the spoken text
  leaves the dots out) is not spoken again; with new words (a face hint) the new
  words follow the ones playing, and only the latest waits.
* Work overtaken by a newer screen is dropped before it is synthesized.
* Key ``REPEAT_KEY`` (8, centre column, just below the tactile 5) repeats the current
  prompt on every screen without the digit pad. The shell takes it before the flow
  (``App._on_key``), so the flow stays pure and unaware of the speaker; on the pad
  screens key 8 is a digit and goes to the PIN buffer as before. Without a speaker the
  key is not taken.

Language: the prompt is in the language of the flow's last ``SetDisplay(lang=...)`` (sent
before the Show it applies to; Japanese by default and again when the card is removed), or
``lang_of()`` when given, or a ``lang`` parameter of the screen.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from mynad.core import events as ev
from mynad.ui.screens import Screen
from mynad.voice.prompts import REPEAT_KEY, is_pad_screen, spoken_parts
from mynad.voice.tts import Speech, SpeechError, default_cache_dir

log = logging.getLogger("mynad.voice")

TTS_NICE = 10  # synthesis is background work: the keypad scanner and the loop come first


class VoiceIO:
    def __init__(self, cfg: Any, voice: Any, loop: asyncio.AbstractEventLoop | None = None, *,
                 state_dir: Path | None = None, lang_of: Callable[[], str] | None = None,
                 speech: Speech | None = None) -> None:
        self.cfg = cfg
        self.voice = voice  # the driver (myna_drivers.voice), opened and closed by myna_drivers.devices
        self.visit_lang = "ja"  # from the flow's SetDisplay(lang=...): back to "ja" when the card leaves
        self.lang_of = lang_of or (lambda: self.visit_lang)
        self.enabled = voice is not None
        self._loop = loop
        if speech is None and self.enabled:
            from mynad.voice.cache import PromptCache

            folder = getattr(cfg, "cache_dir", None) or default_cache_dir(state_dir or Path("."))
            speech = Speech(PromptCache(folder))
        self.speech: Speech = speech if speech is not None else Speech(None)  # None only without a speaker
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voice-tts", initializer=_background)
        self._lock = threading.Lock()  # orders "a newer prompt was asked for" against "this one is ready"
        self._gen = 0
        self._last: tuple[str, str, str] | None = None  # (screen id, text, voice language) last asked for
        self._screen: Screen | None = None
        self._lang = "ja"
        self._closed = False
        self._failed: set[str] = set()
        self.spoken: list[tuple[str, str, str]] = []  # (screen id, voice language, text) handed to the driver

    # ------------------------------------------------------------ from the loop

    def observe(self, action: Any) -> None:
        """Speak a Show, sound an Indicate's buzzer pattern, follow SetDisplay's language."""
        if not self.enabled:
            return
        try:
            if isinstance(action, ev.Show):
                self.say(action.screen)
            elif isinstance(action, ev.Indicate) and action.buzzer:
                self.voice.chime(action.buzzer)
            elif isinstance(action, ev.SetDisplay):  # the visit's language, sent before its Show
                self.visit_lang = action.lang or "ja"
        except Exception:  # the speaker is guidance: a fault in it must never stop the screen or the flow
            log.exception("voice: %s not voiced", type(action).__name__)

    def say(self, screen: Screen, lang: str | None = None, *, again: bool = False) -> Future | None:
        """Speak ``screen``'s prompt; returns the synthesis job (None when nothing new is said)."""
        if not self.enabled or self._closed:
            return None
        lang = lang or str((screen.params or {}).get("lang") or "") or self.lang_of() or "ja"
        parts = tuple(spoken_parts(screen, lang))
        text, voice_lang = " ".join(t for t, _ in parts), parts[0][1]
        key = (screen.id, text, voice_lang)
        self._screen, self._lang = screen, lang
        with self._lock:
            if key == self._last and not again:
                return None  # redrawn with the same words
            cut = again or self._last is None or self._last[0] != screen.id
            self._last = key
            self._gen += 1
            gen = self._gen
            if cut:
                self.voice.cut_prompt()
        return self._worker.submit(self._make, gen, screen.id, parts, cut)

    def handle_key(self, pos: int, pin_entry_active: bool) -> bool:
        """True when ``pos`` was the repeat key and the prompt is said again (the flow never sees it)."""
        if not self.enabled or pos != REPEAT_KEY or pin_entry_active:
            return False
        if self._screen is None or is_pad_screen(self._screen):
            return False
        self.repeat()
        return True

    def repeat(self) -> Future | None:
        if self._screen is None:
            return None
        return self.say(self._screen, self._lang, again=True)

    async def close(self) -> None:
        """Stop speaking and drop waiting work (the driver itself is closed by the device set)."""
        self._closed = True
        if self.enabled:
            self.voice.cut_prompt()
        self._worker.shutdown(wait=False, cancel_futures=True)
        self.speech.close()  # the Japanese worker process, if one is running

    def warm_up(self) -> Future | None:
        """Load the Japanese engine now (0.7 s here, seconds on a Pi), not on the first card."""
        if not self.enabled or self._closed:
            return None
        return self._worker.submit(self._warm)

    # ------------------------------------------------------------ the worker thread

    def _current(self, gen: int) -> bool:
        return gen == self._gen and not self._closed

    def _make(self, gen: int, screen_id: str, parts: tuple[tuple[str, str], ...], cut: bool) -> bool:
        if not self._current(gen):
            return False  # a newer screen came while this waited
        text, lang = " ".join(t for t, _ in parts), parts[0][1]
        try:
            clip = self.speech.clips(parts)
        except SpeechError as e:
            if lang not in self._failed:  # once per language: the journal stays readable
                self._failed.add(lang)
                log.error("voice: %s", e)
            return False
        with self._lock:
            if not self._current(gen):
                return False
            self.voice.say(clip, screen=screen_id, lang=lang, text=text, cut=cut)
            self.spoken.append((screen_id, lang, text))
        return True

    def _warm(self) -> None:
        try:
            self.speech.engine("ja")
        except SpeechError as e:
            self._failed.add("ja")
            log.error("voice: %s", e)


def _background() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), TTS_NICE)
    except (OSError, AttributeError):
        pass
