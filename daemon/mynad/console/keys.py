"""Terminal input bytes to key names (pure).

A serial terminal sends plain ASCII for letters and digits, CR (or LF) for Enter, and
ESC sequences for arrows and paging (VT100 ``ESC [ A`` and the ``ESC O A`` application
mode; ``ESC [ 5 ~`` / ``ESC [ 6 ~`` for PgUp/PgDn). A lone ESC is the back/abort key, so a
sequence is only taken as one when its bytes arrive together; the shell passes
whatever one read() returned.
"""

from __future__ import annotations

ESC = 0x1B
_SEQ = {
    b"[A": "up", b"[B": "down", b"[C": "right", b"[D": "left",
    b"OA": "up", b"OB": "down", b"OC": "right", b"OD": "left",
    b"[5~": "pgup", b"[6~": "pgdn", b"[H": "home", b"[F": "end", b"[1~": "home", b"[4~": "end",
}


def decode(data: bytes) -> list[str]:
    """Key names for the bytes of one read: ``"1"``, ``"a"``, ``"enter"``, ``"esc"``, ``"up"``,
    ``"redraw"`` (Ctrl-L), ``"interrupt"`` (Ctrl-C), ``"eof"`` (Ctrl-D), ``"backspace"``."""
    if 0x18 in data:
        return []  # ZDLE/CAN: ZMODEM frames from the terminal's rz/sz, never a technician's key
    keys: list[str] = []
    i = 0
    while i < len(data):
        b = data[i]
        if b == ESC:
            for seq, name in _SEQ.items():
                if data.startswith(seq, i + 1):
                    keys.append(name)
                    i += 1 + len(seq)
                    break
            else:
                keys.append("esc")
                i += 1
            continue
        i += 1
        if b in (0x0D, 0x0A):
            if b == 0x0A and i >= 2 and data[i - 2] == 0x0D:
                continue  # CR LF is one Enter
            keys.append("enter")
        elif b == 0x0C:
            keys.append("redraw")
        elif b == 0x03:
            keys.append("interrupt")
        elif b == 0x04:
            keys.append("eof")
        elif b in (0x08, 0x7F):
            keys.append("backspace")
        elif 0x20 <= b < 0x7F:
            keys.append(chr(b).lower() if chr(b).isalpha() else chr(b))
        # anything else (other control bytes, 8-bit noise on a bad line) is ignored
    return keys
