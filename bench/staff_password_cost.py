#!/usr/bin/env python3
"""What the staff password check costs: scrypt at the shipped parameters and its neighbours.

Prints, per parameter set, the best of ``--repeat`` timings of one ``StaffGate``-style
derivation (one core; hashlib releases the GIL) and the memory scrypt needs, beside a
reference measured in the same run: one SHA-256 of the same bytes (the old config hash), so
the figure can be scaled to a Pi by the ratio of a reference measured there.

    .venv/bin/python bench/staff_password_cost.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time

from mynad.staffauth import DEFAULT_PARAMS, ScryptParams, derive


def best(fn, repeat: int) -> float:
    out = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    secret, salt = bytearray(b"246810"), os.urandom(16)
    ref = best(lambda: [hashlib.sha256(b"salt:" + secret).digest() for _ in range(1000)], args.repeat) / 1000
    print(f"reference: sha256 of the password, {ref * 1e6:.2f} us")
    print(f"{'scrypt':<16} {'memory':>8} {'time':>9} {'x sha256':>10}")
    for ln in (14, 15, 16):
        p = ScryptParams(ln, DEFAULT_PARAMS.r, DEFAULT_PARAMS.p)
        t = best(lambda: derive(secret, salt, p), args.repeat)
        mark = "  <- shipped" if p == DEFAULT_PARAMS else ""
        print(f"{p.encode():<16} {128 * p.r * p.n / 2**20:>6.0f} MiB {t * 1000:>7.1f} ms {t / ref:>10.0f}{mark}")


if __name__ == "__main__":
    main()
