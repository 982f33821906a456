"""Fill the prompt cache before the first patient: every screen state, every language.

A whole prompt synthesized on a Pi 4 while the patient waits would take seconds
(bench/voice_bench.py: ~1 s here for a 13 s prompt, 3-5x that on the Pi). Run once at
install or after an update (the cache is keyed by engine version, so an update misses):

    python -m mynad.voice.warm --config /etc/myna-reader/mynad.toml [--langs ja,en,...]

It speaks (into the cache only) the prompt of every state of ``mynasim.gallery``'s
gallery (which covers every screen id) plus the PIN back-off of this config, in each
language. Run-time synthesis is then left for the rare sentence holding a number the
gallery does not show (a throttle's minutes), one sentence at a time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Iterable

from mynad.ui.screens import Screen
from mynad.voice.prompts import LANGS, spoken_parts
from mynad.voice.tts import Speech, SpeechError, default_cache_dir, sentences


def screens(pin_backoff_s: float | None = None) -> list[Screen]:
    """Every state worth caching: the gallery's, plus this reader's PIN back-off."""
    try:
        from mynasim.gallery import gallery_states
    except ImportError as e:  # pragma: no cover - the gallery ships in the same distribution
        raise SystemExit(f"mynad.voice.warm needs mynasim.gallery (same package): {e}") from e
    out = [s for _, s in gallery_states()]
    if pin_backoff_s:
        out.append(Screen("pin_backoff", {"seconds": int(round(pin_backoff_s))}))
    return out


def warm(speech: Speech, states: Iterable[Screen], langs: Iterable[str]) -> tuple[int, int]:
    """Synthesize what is missing; returns (sentences seen, sentences synthesized)."""
    seen: set[tuple[str, str]] = set()
    before = speech.synthesized
    for lang in langs:
        for screen in states:
            for text, voice in spoken_parts(screen, lang):
                for sentence in sentences(text, voice):
                    if (sentence, voice) in seen:
                        continue
                    seen.add((sentence, voice))
                    speech.clip(sentence, voice)
    return len(seen), speech.synthesized - before


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fill the voice prompt cache (docs/voice.md).")
    ap.add_argument("--config", type=Path, help="mynad config: its [voice] cache_dir or <state_dir>/voice-cache")
    ap.add_argument("--cache", type=Path, help="the cache folder (instead of --config)")
    ap.add_argument("--langs", default=",".join(LANGS), help="comma-separated (default: all)")
    args = ap.parse_args(argv)
    backoff = None
    if args.cache is not None:
        folder = args.cache
    elif args.config is not None:
        from mynad.config import load_config

        cfg = load_config(args.config)
        folder = cfg.voice.cache_dir or default_cache_dir(cfg.reader.state_dir)
        backoff = cfg.flow.pin_backoff_s
    else:
        ap.error("give --config or --cache")
    from mynad.voice.cache import PromptCache

    speech = Speech(PromptCache(folder))
    t = time.perf_counter()
    try:
        n, made = warm(speech, screens(backoff), [x for x in args.langs.split(",") if x])
    except SpeechError as e:
        print(f"mynad.voice.warm: {e}", file=sys.stderr)
        return 1
    print(f"voice cache {folder}: {n} sentences, {made} synthesized now, {time.perf_counter() - t:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
