"""The clinic host, seen from the event loop.

Outgoing messages go through one queue and one sender task so that their order is
kept (visit.started before visit.authenticated before visit.result); the host link
stores each in its persistent outbox before trying to deliver it. Incoming host
messages become flow events.

A ``visit.challenge`` is kept only for the visit that is waiting for one: the visit
whose ``visit.started`` this reader sent last and has not ended (``forget``). Host
challenges for any other visit id, and a second, different nonce for the waiting visit,
are dropped, counted in ``dropped`` and logged, so a forged or stale challenge can
neither pile up in memory nor replace the nonce the card is about to sign.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
from collections import Counter
from typing import Any, Callable

from mynad.config import HostSection, ReaderSection
from mynad.core.events import Event, HostQualification, HostVisualCheck

log = logging.getLogger("mynad.host")

QUEUE_LIMIT = 256  # messages waiting to be stored in the outbox (a visit sends about five)


class HostQueueFull(Exception):
    """Messages for the host are produced faster than the outbox stores them; this one was not taken."""


class HostIO:
    def __init__(self, cfg: HostSection, reader: ReaderSection, post: Callable[[Event], None]) -> None:
        self.cfg = cfg
        self.reader = reader
        self._post = post
        # Bounded. It holds messages *before* they reach the durable outbox, so nothing may be
        # dropped from it: when full, ``send`` refuses the new message with HostQueueFull (the
        # caller sees it at once) and ``submit`` waits for room (back-pressure).
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self._challenges: dict[str, asyncio.Future[bytes]] = {}  # at most one: the waiting visit's
        self._waiting: str | None = None  # the visit that may receive a challenge
        self.dropped: Counter[str] = Counter()
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
        """Queue a message for the outbox, in order. Raises HostQueueFull (counted, logged)
        when QUEUE_LIMIT messages are already waiting, i.e. the outbox has stopped taking them."""
        if self._queue.full():
            self.dropped["message refused: queue to the outbox full"] += 1
            log.error("host: %s not queued: %d messages already wait for the outbox", type_, QUEUE_LIMIT)
            raise HostQueueFull(f"{type_} was not queued: {QUEUE_LIMIT} messages already wait for the host "
                                f"outbox, which is not storing them")
        self._queue.put_nowait(self._message(type_, fields))

    async def submit(self, type_: str, **fields: Any) -> None:
        """Like ``send``, but waits for room in the queue instead of refusing (back-pressure)."""
        await self._queue.put(self._message(type_, fields))

    def _message(self, type_: str, fields: dict[str, Any]) -> dict[str, Any]:
        """The message to queue; a visit.started makes its visit the one a challenge is accepted for."""
        if type_ == "visit.started" and isinstance(fields.get("visit_id"), str):
            self._wait_for_challenge(fields["visit_id"])
        return {"type": type_, **fields}

    @property
    def backlog(self) -> int:
        """Messages queued for the outbox and not yet stored."""
        return self._queue.qsize()

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
            self._on_challenge(msg)
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

    def _drop(self, reason: str, visit_id: Any) -> None:
        self.dropped[reason] += 1
        n = self.dropped[reason]
        if n <= 10 or n % 100 == 0:  # a flood of forged messages must not flood the log too
            log.warning("host: %s dropped (visit %.40s; %d so far)", reason, visit_id, n)

    def _on_challenge(self, msg: dict[str, Any]) -> None:
        visit_id = msg.get("visit_id")
        if self._waiting is None or visit_id != self._waiting:
            self._drop("challenge for a visit that is not waiting for one", visit_id)
            return
        try:
            nonce = base64.b64decode(msg["nonce"], validate=True)
        except (KeyError, ValueError, TypeError):
            self._drop("challenge without a valid nonce", visit_id)
            return
        fut = self._challenge_future(visit_id)
        if not fut.done():
            fut.set_result(nonce)
        elif fut.cancelled() or fut.result() != nonce:
            self._drop("second, different challenge for the visit", visit_id)

    def _wait_for_challenge(self, visit_id: str) -> None:
        """``visit_id`` is now the only visit a challenge is accepted for."""
        if self._waiting != visit_id:
            for other in [v for v in self._challenges if v != visit_id]:
                self.forget(other)
            self._waiting = visit_id

    def _challenge_future(self, visit_id: str) -> asyncio.Future[bytes]:
        fut = self._challenges.get(visit_id)
        if fut is None:
            fut = self._challenges[visit_id] = asyncio.get_running_loop().create_future()
        return fut

    async def challenge(self, visit_id: str, timeout: float) -> bytes:
        """The host's nonce for ``visit_id`` (the reader's own visit), waiting up to ``timeout``."""
        self._wait_for_challenge(visit_id)
        return await asyncio.wait_for(asyncio.shield(self._challenge_future(visit_id)), timeout)

    def forget(self, visit_id: str) -> None:
        """The visit ended: its challenge (if any) is discarded and no later one is accepted."""
        if self._waiting == visit_id:
            self._waiting = None
        fut = self._challenges.pop(visit_id, None)
        if fut is not None and not fut.done():
            fut.cancel()

    def status(self) -> dict[str, Any]:
        st = dict(self.link.status()) if self.link is not None and hasattr(self.link, "status") else {}
        st["backlog"] = self.backlog
        if self.dropped:
            st["host_dropped"] = dict(self.dropped)
        return st


def cons_time(now: dt.datetime | None = None) -> str:
    """OQS ConsTime format: local time YYYYMMDDhhmmss."""
    return (now or dt.datetime.now().astimezone()).strftime("%Y%m%d%H%M%S")
