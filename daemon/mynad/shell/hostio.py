"""The clinic host, seen from the event loop.

Outgoing messages go through one queue and one sender task so that their order is
kept (visit.started before visit.authenticated before visit.result); the host link
stores each in its persistent outbox before trying to deliver it. ``send`` returns a
future that resolves when the message is durable, which is when the flow may tell the
patient 「確認が完了しました」 (``ResultStored``). Incoming host messages become flow events.

A message that cannot be written (disk full, I/O error, outbox at its limit) is never
dropped: it stays at the head of the queue and is retried with a growing pause, the
space reserve (``storage.SpaceReserve``) is given back so that it fits, and the flow is
told (``StorageChanged``) so that no new visit starts. When writes succeed again and the
disk has room for the reserve, new visits are accepted again.

A ``visit.challenge`` is kept only for the visit that is waiting for one: the visit
whose ``visit.started`` this reader sent last and has not ended (``forget``). Host
challenges for any other visit id, and a second, different nonce for the waiting visit,
are dropped, counted in ``dropped`` and logged, so a forged or stale challenge can
neither pile up in memory nor replace the nonce the card is about to sign; a second,
different nonce also aborts the visit (``ChallengeConflict``): two parties answering for
the host means the link cannot be trusted for this patient.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
from collections import Counter
from typing import Any, Callable

from mynad.config import HostSection, ReaderSection
from mynad.core.events import ChallengeConflict, Event, HostQualification, HostVisualCheck, StorageChanged
from mynad.hostlink.link import HostLink
from mynad.hostlink.outbox import OutboxFull
from mynad.shell.storage import SpaceReserve, is_storage_error

log = logging.getLogger("mynad.host")

QUEUE_LIMIT = 256  # messages waiting to be stored in the outbox (a visit sends about five)
RETRY_MIN_S, RETRY_MAX_S = 0.25, 30.0  # pause between tries to store a message that did not fit
RECHECK_S = 5.0  # while storage is faulty: how often free space is looked at again
STOP_DRAIN_S = 5.0  # at shutdown: how long queued messages may take to reach the outbox


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
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[str]]] = asyncio.Queue(QUEUE_LIMIT)
        self._current: dict[str, Any] | None = None  # taken from the queue, not yet stored
        self.reserve = SpaceReserve(reader.state_dir)
        self.storage_error: str | None = None  # None: messages are being stored
        self._recheck: asyncio.Task | None = None
        self._challenges: dict[str, asyncio.Future[bytes]] = {}  # at most one: the waiting visit's
        self._waiting: str | None = None  # the visit that may receive a challenge
        self.dropped: Counter[str] = Counter()
        self._sender: asyncio.Task | None = None
        self.link: HostLink | None = None

    async def start(self) -> None:
        from mynad.hostlink.factory import make_host_link

        self.reader.state_dir.mkdir(parents=True, exist_ok=True)
        self.link = make_host_link(self.cfg, self.reader, on_message=self._on_message)
        await self.link.start()
        if not await self._fs(self.reserve.ensure):
            free = await self._fs(self.reserve.free_bytes)
            self._storage_fault(f"the state directory {self.reader.state_dir} has only {free // 1024} KiB free "
                                f"(the reader keeps {2 * self.reserve.size // 1024} KiB for results)")
        self._sender = asyncio.create_task(self._send_loop(), name="host-sender")

    async def stop(self) -> None:
        if self._sender is not None:
            # drain what is queued into the persistent outbox before stopping
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STOP_DRAIN_S
            while (not self._queue.empty() or self._current is not None) and loop.time() < deadline \
                    and not self._sender.done():
                await asyncio.sleep(0.01)
            self._sender.cancel()
            lost = [self._current] if self._current is not None else []
            while not self._queue.empty():
                lost.append(self._queue.get_nowait()[0])
            for m in lost:
                log.error("host: %s for visit %s could not be stored before stopping (%s)", m.get("type"),
                          m.get("visit_id", "-"), self.storage_error or "shutdown")
        if self._recheck is not None:
            self._recheck.cancel()
        if self.link is not None:
            await self.link.stop()

    def send(self, type_: str, **fields: Any) -> asyncio.Future[str]:
        """Queue a message for the outbox, in order; the future resolves with its id once it is
        durable. Raises HostQueueFull (counted, logged) when QUEUE_LIMIT messages are already
        waiting, i.e. the outbox has stopped taking them."""
        if self._queue.full():
            self.dropped["message refused: queue to the outbox full"] += 1
            log.error("host: %s not queued: %d messages already wait for the outbox", type_, QUEUE_LIMIT)
            raise HostQueueFull(f"{type_} was not queued: {QUEUE_LIMIT} messages already wait for the host "
                                f"outbox, which is not storing them")
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((self._message(type_, fields), fut))
        return fut

    async def submit(self, type_: str, **fields: Any) -> asyncio.Future[str]:
        """Like ``send``, but waits for room in the queue instead of refusing (back-pressure)."""
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        await self._queue.put((self._message(type_, fields), fut))
        return fut

    def _message(self, type_: str, fields: dict[str, Any]) -> dict[str, Any]:
        """The message to queue; a visit.started makes its visit the one a challenge is accepted for."""
        if type_ == "visit.started" and isinstance(fields.get("visit_id"), str):
            self._wait_for_challenge(fields["visit_id"])
        return {"type": type_, **fields}

    @property
    def backlog(self) -> int:
        """Messages queued for the outbox and not yet stored."""
        return self._queue.qsize() + (self._current is not None)

    def visit_closed(self, visit_id: str) -> bool:
        """The visit's result or abort is already in the durable outbox (at start, before any
        new visit: a short synchronous SQLite read)."""
        outbox = self.link.outbox if self.link is not None else None
        try:
            return bool(outbox is not None and outbox.closed(visit_id))
        except Exception as e:  # unreadable: assume not closed (an abort is the safe side)
            log.warning("host: cannot tell whether visit %s ended before the restart: %s", visit_id, e)
            return False

    def alive(self) -> bool:
        """For the watchdog: the sender task and the link's own tasks are running."""
        return self._sender is not None and not self._sender.done() and self.link is not None and self.link.alive()

    @staticmethod
    async def _fs(fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    async def _send_loop(self) -> None:
        assert self.link is not None  # started before this task
        while True:
            msg, fut = await self._queue.get()
            self._current = msg
            pause = RETRY_MIN_S
            while True:
                try:
                    msg_id = await self.link.send(msg)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # kept at the head, never dropped: retried until it fits
                    await self._store_failed(msg, e)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, RETRY_MAX_S)
            self._current = None
            if not fut.done():
                fut.set_result(msg_id)
            log.info("host: %s stored (id %s)", msg["type"], msg_id)
            await self._check_space()

    async def _store_failed(self, msg: dict[str, Any], e: Exception) -> None:
        if isinstance(e, OutboxFull):
            why = str(e)
        elif is_storage_error(e):
            why = f"the state directory cannot be written ({e})"
            if await self._fs(self.reserve.release):
                log.warning("host: gave back the %d KiB space reserve so that owed messages fit",
                            self.reserve.size // 1024)
        else:
            why = f"storing a message failed unexpectedly ({type(e).__name__}: {e})"
            log.exception("host: storing %s failed", msg.get("type"))
        if self.storage_error != why:
            log.error("host: %s not stored yet: %s; kept in memory and retried, no new visit until then",
                      msg.get("type"), why)
        self._storage_fault(why)

    def _storage_fault(self, why: str) -> None:
        was_ok = self.storage_error is None
        self.storage_error = why
        if was_ok:
            self._post(StorageChanged(False, why))
            if self._recheck is None or self._recheck.done():
                self._recheck = asyncio.ensure_future(self._recheck_loop())

    async def _check_space(self) -> None:
        """After a write: a filesystem running low starts the fault before a write fails; a
        faulty one that has room again (reserve back in place) ends it."""
        if self.storage_error is None:
            if await self._fs(self.reserve.free_bytes) < self.reserve.size:
                self._storage_fault(f"the state directory {self.reader.state_dir} is nearly full")
            return
        await self._try_recover()

    async def _try_recover(self) -> None:
        if self.storage_error is None or self._current is not None or not self._queue.empty():
            return  # a message still waits to be stored: not recovered yet
        if await self._fs(self.reserve.ensure):
            log.warning("host: the state directory can store results again (was: %s)", self.storage_error)
            self.storage_error = None
            self._post(StorageChanged(True))

    async def _recheck_loop(self) -> None:
        """Runs only while storage is faulty: space can come back without any write happening."""
        while self.storage_error is not None:
            await asyncio.sleep(RECHECK_S)
            await self._try_recover()

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
            self._post(ChallengeConflict(str(visit_id)))

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
        st: dict[str, Any] = dict(self.link.status()) if self.link is not None else {}
        st["backlog"] = self.backlog
        st["storage"] = "ok" if self.storage_error is None else self.storage_error
        if self.dropped:
            st["host_dropped"] = dict(self.dropped)
        return st


def cons_time(now: dt.datetime | None = None) -> str:
    """OQS ConsTime format: local time YYYYMMDDhhmmss."""
    return (now or dt.datetime.now().astimezone()).strftime("%Y%m%d%H%M%S")
