"""``mynactl console``: the technician's menu on the UART, for a stock serial terminal.

Two halves, so that the menu can be tested without a terminal:

* :mod:`mynad.console.model` — pure: the console's state, a key or a result in, the screen
  text (80x24, plain lines) and the effects to carry out back out. No I/O, no clock.
* :mod:`mynad.console.keys` — pure: VT100/xterm input bytes to key names.
* :mod:`mynad.console.terminal` — the thin shell: raw tty, VT100 clear-and-draw, running the
  effects (control socket, journal, ``sz``/``rz``, ``mynactl update``) and feeding results back.

Plain VT100 (clear screen, cursor home, no colours needed) survives any serial terminal, a
reconnect (Ctrl-L or ``r`` redraws; the state lives in this process, not in the terminal) and
a line at 115200 baud: a full screen is under 2 KB, about 0.2 s.
"""
