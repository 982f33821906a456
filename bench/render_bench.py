"""Screen drawing time: what a key press costs before the panel can change.

The daemon lays a screen out on its event loop (mynad.shell.screenio), so every millisecond
here is added to the time between a key press and its dot on the panel, and nothing else
runs meanwhile. Most of it used to be text measurement: HarfBuzz shapes a string on every
``getlength``/``getbbox``, and a PIN visit measures the same pad labels, prompt and key hints
again for each dot. ``mynad.ui.render`` now keeps those measurements; the reference in the
same run draws the same screens with the measurements not kept (what the reader did before).

Screens: 30 visits, each with a freshly shuffled pad (so the pad is new to the cache every
visit), the five dot states of a PIN, the method choice and the idle screen, in Japanese;
then the same in every language at once for large text. Both runs also check that they drew
the same pixels.

    .venv/bin/python bench/render_bench.py [--visits 30]

A Pi 4 core is several times slower than this machine's; the ratio is what carries over.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "daemon"))

from mynad.ui import render  # noqa: E402
from mynad.ui.i18n import LANG_CODES, load_all  # noqa: E402
from mynad.ui.screens import Screen  # noqa: E402
from mynad.ui.texts import content  # noqa: E402


def visits(n: int, seed: int) -> list[list[Screen]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        digits = list("0123456789")
        rng.shuffle(digits)
        pad = tuple(digits[:9] + ["取消"] + digits[9:] + ["クリア"])
        out.append([Screen("pin_entry", {"layout": pad, "entered": i, "length": 4, "tries_left": 3})
                    for i in range(5)]
                   + [Screen("method_choice", {"choices": ["face", "pin"]}), Screen("idle", {"mode": "auto"})])
    return out


def run(screens: list[list[Screen]], langs: tuple[str, ...], large: bool) -> tuple[list[float], str]:
    """Milliseconds per screen, and a hash of every pixel drawn."""
    ms: list[float] = []
    h = hashlib.sha256()
    for visit in screens:
        for lang in langs:
            for s in visit:
                t = time.perf_counter()
                pages = render.layout_content(content(s, lang), (256, 64), large)
                ms.append((time.perf_counter() - t) * 1000)
                for p in pages:
                    h.update(p.image.tobytes())
    return ms, h.hexdigest()


def uncached() -> None:
    """The reference: measure every time, as before."""
    render._length = lambda font, text: font.getlength(text)  # type: ignore[assignment]
    render._bbox = lambda font, text: render._ints(font.getbbox(text))  # type: ignore[assignment]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--visits", type=int, default=30)
    args = ap.parse_args()
    load_all()
    cases = [("PIN visits, ja, normal text", ("ja",), False), ("PIN visits, every language, large text", LANG_CODES, True)]
    kept, ref = render._length, render._bbox
    rows = []
    for label, langs, large in cases:
        screens = visits(args.visits, seed=1)
        render._length, render._bbox = kept, ref
        kept.cache_clear()
        ref.cache_clear()
        ours, h1 = run(screens, tuple(langs), large)
        saved = render._length, render._bbox
        uncached()
        before, h2 = run(screens, tuple(langs), large)
        render._length, render._bbox = saved
        if h1 != h2:
            print(f"{label}: the two runs drew different pixels", file=sys.stderr)
            return 1
        rows.append((label, len(ours), statistics.median(ours), _p95(ours), statistics.median(before), _p95(before)))
    print("| screens | n | kept: median ms | p95 ms | measured every time: median ms | p95 ms | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for label, n, m, p, mb, pb in rows:
        print(f"| {label} | {n} | {m:.2f} | {p:.2f} | {mb:.2f} | {pb:.2f} | {mb / m:.1f}x |")
    print("same pixels in both runs: yes")
    return 0


def _p95(xs: list[float]) -> float:
    return sorted(xs)[int(0.95 * (len(xs) - 1))]


if __name__ == "__main__":
    sys.exit(main())
