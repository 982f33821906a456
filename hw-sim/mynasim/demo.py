"""``mynasim demo``: one scripted patient visit through the real daemon.

The patient (profile ``taro``) places the card, chooses 暗証番号, types the PIN on
the shuffled pad, agrees to every consent, reads 「〇〇様 確認が完了しました」 and
takes the card. The host's view and every screen are printed at the end.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from mynasim.rig import SimRig


def run_demo(run_dir: Path, profile: str = "taro", echo: bool = True) -> int:
    t0 = time.monotonic()
    print(f"mynasim demo: starting pcscd, the virtual host and mynad in {run_dir}", flush=True)
    with SimRig(run_dir, echo=echo) as rig:
        prof = rig.profiles[profile]
        mark = rig.mark()
        print(f"mynasim demo: patient places the card of {prof.name} ({profile})", flush=True)
        rig.place_card(profile)
        choice = rig.wait_screen("method_choice", timeout=20, after=mark)
        choices = list(choice.data["params"]["choices"])
        rig.press(choices.index("pin") + 1)
        rig.wait_screen("pin_entry", after=mark)
        print("mynasim demo: patient types the PIN on the shuffled pad", flush=True)
        seen = rig.mark()
        rig.type_digits(prof.pin)
        while True:
            e = rig.timeline.wait_for(
                lambda e: e.source == "display" and e.data.get("screen") in ("consent", "done", "consent_carryover",
                                                                             "host_error", "card_error", "cancelled"),
                timeout=20, after=seen, what="a consent or the completion screen")
            seen = rig.timeline.entries().index(e) + 1
            screen = e.data["screen"]
            if screen in ("consent", "consent_carryover"):
                item = (e.data.get("params") or {}).get("item", "previous answers")
                print(f"mynasim demo: patient agrees ({item})", flush=True)
                rig.press(12)
                continue
            if screen != "done":
                raise SystemExit(f"mynasim demo: the visit failed on screen {screen}: {e.data}")
            break
        rig.wait_screen("remove_card", timeout=20, after=mark)
        print("mynasim demo: patient takes the card", flush=True)
        rig.remove_card()
        rig.wait_screen("idle", after=mark)
        result = rig.wait_host("visit.result", timeout=10, after=mark)
        frames = rig.screens()
        print()
        print("== The clinic host received:")
        for e in rig.timeline.entries("host", "received"):
            d = {k: v for k, v in e.data.items() if k not in ("cert_der", "signature")}
            print("  " + json.dumps(d, ensure_ascii=False))
        print()
        print(f"== {len(frames)} screens were shown; PNGs in {rig.screens_dir}:")
        for e in frames:
            print(f"  {e.t:7.2f}s  {e.data.get('screen'):18} {e.data.get('png')}")
        ok = result.data.get("ProcessingResultStatus") == 1
        print()
        print(f"mynasim demo: {'PASSED' if ok else 'FAILED'} in {time.monotonic() - t0:.1f}s "
              f"(timeline: {rig.run_dir / 'timeline.jsonl'}, daemon log: {rig.run_dir / 'mynad.log'})")
        return 0 if ok else 1
