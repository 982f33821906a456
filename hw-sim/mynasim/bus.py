"""Server side of the sim bus: hw-sim's end of the daemon's simulated devices.

Messages to the daemon (keys held, camera scene, card-face code) are broadcast to
every connected sim driver and remembered, so a driver that connects late gets
the current state. Messages from the daemon (display frames, buzzer, LED) go to
the timeline. Protocol: docs/architecture.md, "Sim bus".
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

from mynasim.timeline import Timeline

log = logging.getLogger("mynasim.bus")


class SimBusServer:
    def __init__(self, path: Path, timeline: Timeline) -> None:
        self.path = Path(path)
        self.timeline = timeline
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._state: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._srv.bind(str(self.path))
        os.chmod(self.path, 0o666)
        self._srv.listen(8)
        self._thread = threading.Thread(target=self._accept, name="simbus-server", daemon=True)
        self._thread.start()

    def publish(self, dev: str, **fields: Any) -> None:
        msg = {"dev": dev, **fields}
        data = (json.dumps(msg, ensure_ascii=False) + "\n").encode()
        with self._lock:
            self._state[dev] = msg
            for c in list(self._clients):
                try:
                    c.sendall(data)
                except OSError:
                    self._clients.remove(c)

    def connected(self) -> int:
        with self._lock:
            return len(self._clients)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            with self._lock:
                self._clients.append(conn)
                for msg in self._state.values():
                    try:
                        conn.sendall((json.dumps(msg, ensure_ascii=False) + "\n").encode())
                    except OSError:
                        pass
            threading.Thread(target=self._read, args=(conn,), name="simbus-conn", daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                    dev = msg.pop("dev")
                except (ValueError, KeyError, AttributeError):
                    log.warning("sim bus: malformed message from the daemon: %r", line[:80])
                    continue
                if dev == "display":
                    self.timeline.add("display", "frame", **msg)
                elif dev in ("buzzer", "led"):
                    self.timeline.add(dev, "output", **msg)
                elif dev == "voice":  # a spoken prompt / chime (kind "prompt" | "chime" | "cut"), its WAV in "file"
                    self.timeline.add("voice", str(msg.pop("kind", "prompt")), **msg)
                elif dev == "hello":
                    self.timeline.add("rig", "driver_connected", **msg)
                else:
                    self.timeline.add(dev, "message", **msg)
        with self._lock:
            if conn in self._clients:
                self._clients.remove(conn)
        conn.close()

    def close(self) -> None:
        self._stop.set()
        try:
            self._srv.close()
        finally:
            with self._lock:
                for c in self._clients:
                    try:
                        c.close()
                    except OSError:
                        pass
                self._clients.clear()
            if self.path.exists():
                self.path.unlink()
