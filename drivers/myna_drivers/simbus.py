"""Client side of the sim bus: how the daemon's simulated drivers reach hw-sim.

One Unix stream socket per process, newline-delimited JSON objects tagged with
``"dev"`` (see docs/architecture.md). A reader thread dispatches incoming
messages to per-device subscribers; subscribers are called on that thread and
must hand work to their own loop or lock (like a GPIO edge interrupt would).
If hw-sim is not there yet the bus keeps retrying, so start order does not matter.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from typing import Any, Callable

log = logging.getLogger("myna.simbus")

Handler = Callable[[dict[str, Any]], None]


class SimBus:
    _instances: dict[str, "SimBus"] = {}
    _instances_lock = threading.Lock()

    @classmethod
    def shared(cls, path: str) -> "SimBus":
        """The one connection for this socket path in this process."""
        with cls._instances_lock:
            bus = cls._instances.get(path)
            if bus is None:
                bus = cls._instances[path] = cls(path)
                bus.start()
            return bus

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._subs: dict[str, list[Handler]] = {}
        self._last: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simbus", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def subscribe(self, dev: str, handler: Handler) -> None:
        """Receive messages for ``dev``; the last one seen is replayed at once."""
        self._subs.setdefault(dev, []).append(handler)
        last = self._last.get(dev)
        if last is not None:
            handler(last)

    def send(self, dev: str, **fields: Any) -> bool:
        """Send one message; returns False (and drops it) while hw-sim is absent.

        Outputs to the simulator are observations, not data we owe anyone, so
        dropping them while disconnected is the right trade-off.
        """
        msg = json.dumps({"dev": dev, **fields}, ensure_ascii=False) + "\n"
        with self._send_lock:
            sock = self._sock
            if sock is None:
                return False
            try:
                sock.sendall(msg.encode())
                return True
            except OSError:
                return False

    def _run(self) -> None:
        # The bus carries the simulated keys' levels: on a real reader those are wires, which
        # no CPU load can delay, so the thread that stands for them is preferred like the scanner.
        from myna_drivers.priority import prefer_this_thread

        prefer_this_thread("the sim bus")
        delay = 0.05
        while not self._stop.is_set():
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(self.path)
            except OSError:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            delay = 0.05
            self._sock = sock
            self._connected.set()
            self.send("hello", pid=_pid())
            try:
                self._read(sock)
            except OSError:
                pass  # hw-sim reset the socket: reconnect like a cable plugged back in
            finally:
                self._connected.clear()
                with self._send_lock:
                    self._sock = None
                sock.close()
                if not self._stop.is_set():
                    log.warning("sim bus %s closed; reconnecting", self.path)

    def _read(self, sock: socket.socket) -> None:
        buf = b""
        while not self._stop.is_set():
            chunk = sock.recv(65536)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                try:
                    msg = json.loads(line)
                    dev = msg["dev"]
                except (ValueError, KeyError, TypeError):
                    log.warning("sim bus: ignoring malformed message %r", line[:80])
                    continue
                self._last[dev] = msg
                for handler in list(self._subs.get(dev, ())):
                    try:
                        handler(msg)
                    except Exception:  # a broken subscriber must not kill the bus
                        log.exception("sim bus handler for %s failed", dev)


def _pid() -> int:
    import os

    return os.getpid()
