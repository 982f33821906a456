"""Routing keys while a PIN (or the staff password) is being typed.

This is the one piece of the shell that touches digit values: a digit key's
position is looked up in the on-screen layout and the digit goes straight into
the ``PinBuffer``; the core only hears ``PinDigit()``. Kept apart from the loop
so property tests can drive it with random keys and prove no digit escapes.
"""

from __future__ import annotations

from mynad.core import events as ev
from mynad.core.flow import NEG, POS, ReceptionFlow
from mynad.core.secret import PinBuffer


class PinEntry:
    def __init__(self) -> None:
        self.buffer = PinBuffer()
        self.layout: tuple[str, ...] = ()

    def start(self, length: int, layout: tuple[str, ...]) -> ev.Event:
        self.buffer.wipe()
        self.buffer = PinBuffer(length)
        self.layout = layout
        return ev.PinLayoutReady(layout)

    def route(self, flow: ReceptionFlow, pos: int) -> ev.Event | None:
        """The event for key ``pos``: a withheld digit, a plain key, or nothing."""
        if not 1 <= pos <= 12:
            return None
        if flow.pin_entry_active and pos not in (NEG, POS) and self.layout:
            label = self.layout[pos - 1]
            if label.isdigit() and not self.buffer.full:
                self.buffer.push(int(label))
                return ev.PinDigit()
            return None
        return ev.KeyPressed(pos)

    def take(self) -> PinBuffer:
        """Hand the typed digits over (to VERIFY or the staff check) and start empty."""
        buf, self.buffer = self.buffer, PinBuffer()
        self.layout = ()
        return buf

    def clear(self) -> None:
        self.buffer.wipe()

    def end(self) -> None:
        self.buffer.wipe()
        self.layout = ()
