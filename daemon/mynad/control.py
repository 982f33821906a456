"""The technician's window into a running daemon: a Unix socket with JSON lines.

``mynactl status`` (over the Pi's serial console or ssh) asks it what the reader
is doing, how many results wait for the host, and whether the card reader is
there. It answers from status snapshots that never contain secrets. Commands that
change behaviour are limited to arming 目視確認, like the host can.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("mynad.control")


class ControlServer:
    def __init__(self, path: Path, status: Callable[[], dict[str, Any]], visual_check: Callable[[], None]) -> None:
        self.path = Path(path)
        self._status = status
        self._visual_check = visual_check
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        os.chmod(self.path, 0o660)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self.path.exists():
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            try:
                req = json.loads(line or b"{}")
                cmd = req.get("cmd")
            except (ValueError, AttributeError):
                cmd = None
            if cmd == "status":
                reply: dict[str, Any] = {"ok": True, "status": self._status()}
            elif cmd == "visual-check":
                self._visual_check()
                reply = {"ok": True}
            else:
                reply = {"ok": False, "error": f"unknown command {cmd!r}; known: status, visual-check"}
            writer.write((json.dumps(reply, ensure_ascii=False, default=str) + "\n").encode())
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
