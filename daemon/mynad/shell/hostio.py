"""The clinic host, seen from the event loop.

Outgoing messages go through one queue and one sender task so that their order is
kept (visit.started before visit.authenticated before visit.result); the host link
stores each in its persistent outbox before trying to deliver it. Incoming host
messages become flow events; a challenge is kept per visit for the PIN signature.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
from typing import Any, Callable

from mynad.config import HostSection, ReaderSection
from mynad.core.events import Event, HostQualification, HostVisualCheck

log = logging.getLogger("mynad.host")


class HostIO:
    def __init__(self, cfg: HostSection, reader: ReaderSection, post: Callable[[Event], None]) -> None:
        self.cfg = cfg
        self.reader = reader
        self._post = post
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._challenges: dict[str, asyncio.Future[bytes]] = {}
        self._sender: asyncio.Task | None = None
        self.link = None

    async def start(self) -> None:
        from mynad.hostlink.factory import make_host_link

        self.reader.state_dir.mkdir(parents=True, exist_ok=True)
        self.link = make_host_link(self.cfg, self.reader, on_message=self._on_message)
        await self.link.start()
        self._sender = asyncio.create_task(self._send_loop(), name="host-sender")

    async def stop(self) -> None:
        if self._sender is not None:
            # drain what is queued into the persistent outbox before stopping
            while not self._queue.empty():
                await asyncio.sleep(0.01)
            self._sender.cancel()
        if self.link is not None:
            await self.link.stop()

    def send(self, type_: str, **fields: Any) -> None:
        self._queue.put_nowait({"type": type_, **fields})

    async def _send_loop(self) -> None:
        while True:
            msg = await self._queue.get()
            try:
                msg_id = await self.link.send(msg)
                log.info("host: %s queued (id %s)", msg["type"], msg_id)
            except Exception:
                log.exception("host: could not queue %s", msg.get("type"))

    # ------------------------------------------------------------ incoming

    def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "visit.challenge":
            fut = self._challenge_future(str(msg.get("visit_id")))
            try:
                nonce = base64.b64decode(msg["nonce"], validate=True)
            except (KeyError, ValueError, TypeError):
                log.warning("host: challenge without a valid nonce ignored")
                return
            if not fut.done():
                fut.set_result(nonce)
        elif kind == "visit.qualification":
            log.info("host: qualification for visit %s: %s", msg.get("visit_id"),
                     "ok" if msg.get("ok") else f"refused ({(msg.get('error') or {}).get('code')})")
            err = msg.get("error") or {}
            prev = msg.get("previous_consents")
            self._post(HostQualification(
                visit_id=str(msg.get("visit_id")), ok=bool(msg.get("ok")), name=str(msg.get("name") or ""),
                age=msg.get("age") if isinstance(msg.get("age"), int) else None,
                registered=bool(msg.get("registered", True)),
                previous_consents={str(k): bool(v) for k, v in prev.items()} if isinstance(prev, dict) else None,
                error_code=str(err.get("code")) if err.get("code") else None,
            ))
        elif kind == "staff.visual_check":
            log.info("host: staff asked for 目視確認")
            self._post(HostVisualCheck())
        else:
            log.info("host: message %s ignored", kind)

    def _challenge_future(self, visit_id: str) -> asyncio.Future[bytes]:
        fut = self._challenges.get(visit_id)
        if fut is None:
            fut = self._challenges[visit_id] = asyncio.get_running_loop().create_future()
        return fut

    async def challenge(self, visit_id: str, timeout: float) -> bytes:
        return await asyncio.wait_for(asyncio.shield(self._challenge_future(visit_id)), timeout)

    def forget(self, visit_id: str) -> None:
        fut = self._challenges.pop(visit_id, None)
        if fut is not None and not fut.done():
            fut.cancel()

    def status(self) -> dict[str, Any]:
        return self.link.status() if self.link is not None and hasattr(self.link, "status") else {}


def cons_time(now: dt.datetime | None = None) -> str:
    """OQS ConsTime format: local time YYYYMMDDhhmmss."""
    return (now or dt.datetime.now().astimezone()).strftime("%Y%m%d%H%M%S")
