"""Voice guidance latency: how long each screen's prompt takes to become sound.

For every distinct Japanese prompt of the gallery (``mynasim.gallery.gallery_states``) it
times, in one run on this machine:

* the whole prompt through pyopenjtalk-plus (what the reader uses) with nothing cached (the
  worst case), its first sentence alone, the prompts in gallery order with one cache filling
  (sentences shared with earlier prompts are hits), and the prompt again, fully cached (what
  every later visit costs);
* ``debian`` (the reference): Debian's ``open_jtalk`` 1.11 binary with Debian's NAIST-jdic
  and the same Mei voice file, one process per prompt, as the alternative engine would run;

then espeak-ng for the other languages on a few prompts, and the one-off cost of loading the
Japanese engine. ``rtf`` is synthesis time over audio length (below 1: faster than speech).

    .venv/bin/python bench/voice_bench.py [--limit 20] [--all]

Figures are for this machine; a Pi 4 core (Cortex-A72, 1.5 GHz) is about 3-5x slower on this
kind of single-threaded work, so multiply the synthesis figures accordingly (docs/voice.md).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "hw-sim"))

DEBIAN_DIC = Path("/var/lib/mecab/dic/open-jtalk/naist-jdic")


def _stats(name: str, xs: list[float], unit: str = "ms") -> str:
    if not xs:
        return f"{name:28} (none)"
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]
    return (f"{name:28} n={len(xs):3d}  median {statistics.median(xs):7.1f} {unit}  p90 {p90:7.1f} {unit}  "
            f"max {xs[-1]:7.1f} {unit}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=20, help="Japanese prompts to time (default 20)")
    ap.add_argument("--all", action="store_true", help="every distinct Japanese prompt of the gallery")
    args = ap.parse_args()

    from mynasim.gallery import gallery_states
    from mynad.voice.cache import PromptCache
    from mynad.voice.prompts import spoken_text
    from mynad.voice.tts import Espeak, ESPEAK_VOICES, OpenJTalk, Speech, sentences

    texts: list[str] = []
    for _, screen in gallery_states():
        words, lang = spoken_text(screen)
        if lang == "ja" and words not in texts:
            texts.append(words)
    if not args.all:
        texts = texts[: args.limit]

    t0 = time.perf_counter()
    engine = OpenJTalk()
    engine.synthesize("はい。")
    load_ms = (time.perf_counter() - t0) * 1000

    cold, first, filling, cached, debian, rtf, audio = [], [], [], [], [], [], []
    voice_file = Path(engine._pj.DEFAULT_HTS_VOICE.decode())
    have_debian = shutil.which("open_jtalk") is not None and DEBIAN_DIC.is_dir()
    with tempfile.TemporaryDirectory() as tmp:
        shared = Speech(PromptCache(Path(tmp) / "shared"))
        shared._engines["ja"] = engine
        for i, text in enumerate(texts):
            alone = Speech(PromptCache(Path(tmp) / f"alone{i}"))  # nothing cached: the worst case
            alone._engines["ja"] = engine
            t = time.perf_counter()
            clip = alone.clips([(text, "ja")])
            dt = time.perf_counter() - t
            cold.append(dt * 1000)
            audio.append(clip.seconds)
            rtf.append(dt / clip.seconds)
            t = time.perf_counter()
            engine.synthesize(sentences(text, "ja")[0])
            first.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            shared.clips([(text, "ja")])  # gallery order: sentences shared with earlier prompts are hits
            filling.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            shared.clips([(text, "ja")])
            cached.append((time.perf_counter() - t) * 1000)
            if have_debian:
                src = Path(tmp) / "in.txt"
                src.write_text(text, encoding="utf-8")
                t = time.perf_counter()
                subprocess.run(["open_jtalk", "-x", str(DEBIAN_DIC), "-m", str(voice_file),
                                "-ow", str(Path(tmp) / "out.wav"), str(src)], check=True, capture_output=True)
                debian.append((time.perf_counter() - t) * 1000)
        others: dict[str, list[float]] = {}
        sample = ["Please place your My Number card on the reader.",
                  "Choose how to confirm your identity. Key 1: face recognition. Key 2: enter your PIN."]
        for lang, voice in sorted(ESPEAK_VOICES.items()):
            e = Espeak(voice)
            for text in sample:
                t = time.perf_counter()
                e.synthesize(text)
                others.setdefault(lang, []).append((time.perf_counter() - t) * 1000)

    print(f"voice bench: {len(texts)} Japanese prompts of the gallery, this machine")
    print(f"{'Japanese engine load + first prompt':36} {load_ms:7.0f} ms (once per daemon start, on the worker)")
    print(_stats("whole prompt, nothing cached", cold))
    print(_stats("its first sentence alone", first))
    print(_stats("gallery order, cache filling", filling))
    print(_stats("whole prompt, cached", cached))
    print(_stats("reference: Debian open_jtalk", debian) if have_debian
          else "reference: Debian open_jtalk not installed (apt-get install open-jtalk open-jtalk-mecab-naist-jdic)")
    print(_stats("audio length", audio, "s"))
    print(_stats("real-time factor (miss)", [r * 1000 for r in rtf], "‰"))
    for lang, xs in others.items():
        print(_stats(f"espeak-ng {lang}", xs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
