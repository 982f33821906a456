"""Open JTalk in a child process: the daemon itself never maps the Japanese dictionary.

pyopenjtalk-plus maps ~100 MB of dictionary and voice into the process that imports it, and
Python cannot unload a module. Nearly every prompt comes from the on-disk cache (filled at
install by ``mynad.voice.warm``), so the engine is needed only for a sentence the cache does
not hold (a new number of seconds, say). The daemon therefore starts this worker when such a
sentence comes, keeps it while prompts keep coming, and the worker exits by itself after
``IDLE_S`` without a request, giving the memory back. The daemon's resident size stays
within its budget (bench/daemon_rss.py); the worker's cost is paid only while it speaks.

Protocol on stdin/stdout, one request at a time: a JSON line ``{"text": ..., "speed": ...}``
in; a JSON line ``{"rate": R, "n": N}`` followed by N little-endian int16 samples out, or
``{"error": "..."}``. Prompts hold no secrets (mynad.voice.prompts), and pipes stay on the device.
"""

from __future__ import annotations

import json
import select
import sys

IDLE_S = 60.0


def main() -> int:
    import numpy as np
    import pyopenjtalk

    out = sys.stdout.buffer
    inp = sys.stdin.buffer
    while True:
        ready, _, _ = select.select([inp], [], [], IDLE_S)
        if not ready:
            return 0  # idle: exit and free the dictionary
        line = inp.readline()
        if not line:
            return 0  # the daemon closed the pipe
        try:
            req = json.loads(line)
            x, rate = pyopenjtalk.tts(str(req["text"]), speed=float(req.get("speed", 1.0)), run_marine=False,
                                      use_tsqyomi=False)
            samples = np.clip(np.round(np.asarray(x, dtype=np.float64)), -32768, 32767).astype("<i2")
            out.write(json.dumps({"rate": int(rate), "n": int(samples.size)}).encode() + b"\n")
            out.write(samples.tobytes())
        except Exception as e:  # one bad prompt must not end the worker
            out.write(json.dumps({"error": f"{type(e).__name__}: {e}"}).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    sys.exit(main())
