"""The shuffled PIN pad: which digit sits on which key this time.

Positions follow docs/architecture.md ("Keys"): digits go on 1..9 and 11 (the
leaflet's bottom row is 取消 0 クリア, with every digit moved each time:
「注）番号位置は入れ替わります」), 取消 is fixed at 10 and クリア at 12.
The shuffle uses the OS random source (``secrets.SystemRandom``); Fisher–Yates
over it gives each of the 10! orders the same chance, so a shoulder-surfer who
saw which keys were pressed learns nothing about the digits. The layout is not
itself secret (it is on the screen); the digits typed are.
"""

from __future__ import annotations

import secrets

from mynad.ui.texts import PIN_CANCEL, PIN_CLEAR

DIGIT_POSITIONS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 11)
CANCEL_POS = 10
CLEAR_POS = 12

_rng = secrets.SystemRandom()


def new_layout() -> tuple[str, ...]:
    """12 labels by position (index 0 = key 1): shuffled digits, 取消 at 10, クリア at 12."""
    digits = [str(d) for d in range(10)]
    _rng.shuffle(digits)  # Fisher–Yates with randbelow: uniform over all 10! orders
    labels = [""] * 12
    for pos, d in zip(DIGIT_POSITIONS, digits):
        labels[pos - 1] = d
    labels[CANCEL_POS - 1] = PIN_CANCEL
    labels[CLEAR_POS - 1] = PIN_CLEAR
    return tuple(labels)
