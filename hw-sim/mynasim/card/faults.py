"""Fault injection for the virtual card.

Transport faults (pull/mute/slow/truncate/garbage) are applied by ``VirtualCardSlot``
and count command APDUs only (1-based, per insertion; vpcd control bytes do not count).
Data faults (invalid/oversized cert, broken photo) change the card's EF contents.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class FaultPlan:
    pull_at_apdu: int | None = None      # the n-th APDU arrives -> close the socket (card pulled), no answer
    mute_at_apdu: int | None = None      # from the n-th APDU on, read but never answer (card hangs)
    slow_s: float = 0.0                  # delay before every answer
    truncate_at_apdu: int | None = None  # the n-th APDU is answered with 1 byte
    garbage_at_apdu: int | None = None   # the n-th APDU is answered with random bytes, no valid SW
    invalid_cert: bool = False           # EF 000A = DER garbage
    oversized_cert: bool = False         # EF 000A header claims 64 KiB (30 82 FF FF ...)
    photo_not_image: bool = False        # DF27 = random bytes
    photo_bomb: bool = False             # DF27 = JPEG 2000 whose headers claim 40000 x 40000 pixels

    @classmethod
    def from_dict(cls, d: dict | None) -> "FaultPlan":
        names = {f.name for f in fields(cls)}
        unknown = set(d or {}) - names
        if unknown:
            raise ValueError(f"unknown fault(s): {sorted(unknown)}")
        return cls(**(d or {}))

    def active(self) -> bool:
        return self != FaultPlan()
