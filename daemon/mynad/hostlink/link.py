"""The acknowledged host link on the asyncio loop.

``LinkEngine`` is the protocol machine shared by the reader (``HostLink``) and the
simulator's virtual host: it (re)opens a *port* (serial or MQTT driver), frames
messages with ``codec``, sends the oldest unacknowledged message from its *store*
(stop-and-wait: one message in flight, so order is kept), retries with exponential
backoff until the peer ACKs the id, ACKs what it receives, drops duplicates by id,
answers HELLO, and sends HELLO as a keep-alive.

A received message is handed to ``deliver`` first, then its id is remembered, then it
is ACKed: a message is never acknowledged without having been acted on (a failed
delivery is not ACKed, so the peer resends it; a lost ACK makes the peer resend and the
duplicate is ACKed without being acted on twice). A refused message is NAKed and not
remembered. Whatever a hostile peer sends (JSON nested 30 000 deep, a 65 000-character
type or id), the frame is refused with a NAK that fits in a frame, and the link stays up.

A port has ``open()``, ``read() -> bytes``, ``write(bytes)``, ``close()``,
``describe`` and ``stream`` (True: byte stream, False: one frame per read). Any
exception from a port means "the line is down": the engine closes it and reopens
it after a growing pause. Nothing here blocks the loop; the SQLite outbox runs in a
dedicated worker thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
from collections import Counter
from typing import Any, Callable, Protocol

from mynad.hostlink import codec, messages
from mynad.hostlink.codec import Frame, FrameType
from mynad.hostlink.outbox import MemoryOutbox, Outbox, OutboxFull

log = logging.getLogger("mynad.hostlink")


class Port(Protocol):
    stream: bool

    @property
    def describe(self) -> str: ...
    async def open(self) -> None: ...
    async def read(self) -> bytes: ...
    async def write(self, data: bytes) -> None: ...
    async def close(self) -> None: ...


class LinkEngine:
    def __init__(
        self,
        port: Port,
        store: Outbox | MemoryOutbox,
        *,
        hello: Callable[[bool], dict[str, Any]],
        accept: Callable[[dict[str, Any]], str | None],
        deliver: Callable[[dict[str, Any]], None],
        name: str = "host link",
        ack_timeout: float = 1.0,
        max_backoff: float = 5.0,
        reconnect_min: float = 0.2,
        reconnect_max: float = 5.0,
        keepalive_s: float = 5.0,
        quiet_s: float = 0.5,
        store_in_thread: bool = True,
        logger: logging.Logger | None = None,
    ) -> None:
        self.port = port
        self.store = store
        self._hello = hello
        self._accept = accept
        self._deliver = deliver
        self.name = name
        self.ack_timeout = ack_timeout
        self.max_backoff = max_backoff
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.keepalive_s = keepalive_s
        self.quiet_s = quiet_s
        self.log = logger or log
        self._executor = (concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox")
                          if store_in_thread else None)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._wake: asyncio.Event | None = None  # something to send (new message, line open)
        self._kick: asyncio.Event | None = None  # the peer is (back) on line: resend now
        self._write_lock: asyncio.Lock | None = None
        self._waiters: dict[str, asyncio.Future] = {}
        self._seq = 0
        self._open = False
        self._last_rx: float | None = None
        self._last_tx = 0.0
        self._decoder = codec.Decoder()
        self._stopping = False
        self.last_error: str | None = None
        self.counters: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.pending_count = 0
        # faults (used by the virtual host)
        self.deaf_until: float | None = None  # loop time; math.inf = until told otherwise
        self.corrupt_next = 0
        self._hold_until = 0.0

    # ------------------------------------------------------------ lifecycle

    async def _io(self, fn: Callable, *args: Any) -> Any:
        if self._executor is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._kick = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._stopping = False
        self.pending_count = await self._io(self.store.count)
        self._tasks = [
            asyncio.create_task(self._connection(), name=f"{self.name}: connection"),
            asyncio.create_task(self._sender(), name=f"{self.name}: sender"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []
        for fut in self._waiters.values():
            if not fut.done():
                fut.cancel()
        self._waiters.clear()
        try:
            await self.port.close()
        except Exception:
            pass
        self._open = False
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    # ------------------------------------------------------------ public

    async def submit(self, msg: dict[str, Any]) -> str:
        """Store a complete message (with id) for delivery; returns its id. Raises OutboxFull."""
        await self._io(self.store.put, msg)
        self.pending_count += 1
        self.counters["queued"] += 1
        if self._wake is not None:
            self._wake.set()
        return msg["id"]

    def connected(self) -> bool:
        if not self._open or self._last_rx is None or self._loop is None:
            return False
        return self._loop.time() - self._last_rx < 3 * self.keepalive_s

    def status(self) -> dict[str, Any]:
        return {
            "transport": self.port.describe,
            "open": self._open,
            "connected": self.connected(),
            "pending": self.pending_count,
            "last_error": self.last_error,
            "sent": self.counters["sent"],
            "acked": self.counters["acked"],
            "retries": self.counters["retries"],
            "rejected": self.counters["rejected"],
            "received": self.counters["received"],
            "duplicates": self.counters["duplicates"],
            "dropped": {**dict(self.dropped), **dict(getattr(self.port, "dropped", None) or {})},
            "delivery_failed": self.counters["delivery_failed"],
        }

    def drop_link(self, hold_s: float = 1.0) -> None:
        """Fault: close the port now and keep it closed for ``hold_s`` seconds."""
        assert self._loop is not None
        self._hold_until = self._loop.time() + hold_s
        asyncio.ensure_future(self.port.close())

    # ------------------------------------------------------------ connection

    async def _connection(self) -> None:
        assert self._loop is not None
        pause = self.reconnect_min
        reported = None
        while not self._stopping:
            hold = self._hold_until - self._loop.time()
            if hold > 0:
                await asyncio.sleep(hold)
            try:
                await self.port.open()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._error(str(e) or type(e).__name__, quiet=(str(e) == reported))
                reported = str(e)
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.reconnect_max)
                continue
            pause = self.reconnect_min
            reported = None
            self._decoder = codec.Decoder()
            self._open = True
            self._last_rx = None
            self.log.info("%s: %s open", self.name, self.port.describe)
            try:
                await self._send_hello(reply=False)
                self._wake.set()
                self._kick.set()
                await self._read_loop()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._error(str(e) or type(e).__name__)
            finally:
                self._open = False
                self._merge_dropped()
                for fut in self._waiters.values():
                    if not fut.done():
                        fut.set_result(("down", None))
                try:
                    await self.port.close()
                except Exception:
                    pass
            if not self._stopping:
                await asyncio.sleep(self.reconnect_min)

    def _error(self, text: str, quiet: bool = False) -> None:
        self.last_error = text
        if not quiet:
            self.log.warning("%s: %s", self.name, text)

    def _merge_dropped(self) -> None:
        if self._decoder.dropped:
            self.dropped.update(self._decoder.dropped)
            self._decoder.dropped.clear()

    async def _read_loop(self) -> None:
        assert self._loop is not None
        read: asyncio.Task | None = None
        try:
            while True:
                if read is None:
                    read = asyncio.ensure_future(self.port.read())
                done, _ = await asyncio.wait({read}, timeout=min(self.quiet_s, self.keepalive_s))
                now = self._loop.time()
                if read in done:
                    data = read.result()  # raises when the line is down
                    read = None
                    frames = self._decoder.feed(data)
                    if not self.port.stream:
                        frames += self._decoder.flush()
                    self._last_chunk = now
                elif self._decoder.pending and now - getattr(self, "_last_chunk", now) >= self.quiet_s:
                    frames = self._decoder.flush()  # the rest of a frame never came
                else:
                    frames = []
                if self._decoder.dropped:
                    self._merge_dropped()
                for f in frames:
                    await self._on_frame(f)
                idle_tx = now - self._last_tx >= self.keepalive_s
                idle_rx = self._last_rx is None or now - self._last_rx >= self.keepalive_s
                if idle_tx and idle_rx:
                    await self._send_hello(reply=False)
        finally:
            if read is not None and not read.done():
                read.cancel()

    # ------------------------------------------------------------ frames out

    async def _write(self, frame: Frame) -> None:
        assert self._write_lock is not None and self._loop is not None
        data = codec.encode(frame)
        if self.corrupt_next > 0:
            self.corrupt_next -= 1
            b = bytearray(data)
            b[len(b) // 2] ^= 0x5A  # a flipped byte in the payload: the CRC no longer matches
            data = bytes(b)
            self.counters["corrupted"] += 1
        async with self._write_lock:
            await self.port.write(data)
        self._last_tx = self._loop.time()

    async def _send_hello(self, reply: bool) -> None:
        self._seq = (self._seq + 1) & 0xFFFF
        await self._write(Frame.of(FrameType.HELLO, self._seq, self._hello(reply)))

    async def _sender(self) -> None:
        assert self._wake is not None and self._loop is not None
        backoff = self.ack_timeout
        current: str | None = None
        seq = 0
        while True:
            if not self._open:
                self._wake.clear()
                await self._wake.wait()
                continue
            head = await self._io(self.store.head)
            if head is None:
                self.pending_count = 0
                self._wake.clear()
                await self._wake.wait()
                continue
            msg_id = str(head["id"])
            if msg_id != current:
                current, backoff = msg_id, self.ack_timeout
                self._seq = (self._seq + 1) & 0xFFFF
                seq = self._seq
            else:
                self.counters["retries"] += 1
            fut = self._loop.create_future()
            self._waiters[msg_id] = fut
            self._kick.clear()
            try:
                await self._write(Frame(FrameType.DATA, seq, codec.dumps(head)))
                self.counters["sent"] += 1
                await self._io(self.store.tried, msg_id)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._waiters.pop(msg_id, None)
                self._error(f"could not send {head.get('type')} to the host: {e}")
                await asyncio.sleep(0.1)
                continue
            wake = asyncio.ensure_future(self._kick.wait())
            try:
                done, _ = await asyncio.wait({fut, wake}, timeout=backoff, return_when=asyncio.FIRST_COMPLETED)
            finally:
                wake.cancel()
                self._waiters.pop(msg_id, None)
            if fut.done() and not fut.cancelled():
                kind, reason = fut.result()
                if kind == "ack":
                    await self._io(self.store.ack, msg_id)
                    self.counters["acked"] += 1
                    self.pending_count = max(0, self.pending_count - 1)
                    current = None
                    if self.last_error and self.last_error.startswith("the host has not acknowledged"):
                        self.last_error = None
                    continue
                if kind == "nak":
                    await self._io(self.store.reject, msg_id, reason or "refused")
                    self.counters["rejected"] += 1
                    self.pending_count = max(0, self.pending_count - 1)
                    current = None
                    self._error(f"the host refused {head.get('type')} {msg_id}: {reason} (kept in the outbox's "
                                f"rejected table)")
                    continue
                continue  # "down": resend when the line is back
            if self._kick.is_set():
                backoff = self.ack_timeout  # peer said hello / line came back: resend now
                continue
            self._error(f"the host has not acknowledged {head.get('type')} {msg_id} "
                        f"(waited {backoff:.1f} s); trying again", quiet=backoff < self.max_backoff)
            backoff = min(backoff * 2, self.max_backoff)

    # ------------------------------------------------------------ frames in

    def is_deaf(self) -> bool:
        if self.deaf_until is None or self._loop is None:
            return False
        if self._loop.time() >= self.deaf_until:
            self.deaf_until = None
            return False
        return True

    async def _on_frame(self, f: Frame) -> None:
        assert self._loop is not None and self._wake is not None
        if self.is_deaf():
            self.counters["ignored_deaf"] += 1
            return
        self._last_rx = self._loop.time()
        try:
            body = f.json()
            bad_payload = "the payload is not a JSON object"
        except codec.PayloadError as e:
            body, bad_payload = None, str(e)
        if f.type == FrameType.ACK or f.type == FrameType.NAK:
            msg_id = body.get("id") if isinstance(body, dict) else None
            fut = self._waiters.get(str(msg_id)) if msg_id is not None else None
            if fut is not None and not fut.done():
                if f.type == FrameType.ACK:
                    fut.set_result(("ack", None))
                else:
                    fut.set_result(("nak", _clip(body.get("reason") or "no reason given", MAX_REASON_LEN)))
            return
        if f.type == FrameType.HELLO:
            if not (isinstance(body, dict) and body.get("reply")):
                await self._send_hello(reply=True)
                self._kick.set()  # the peer (re)opened its end: resend what is pending now
            self._wake.set()
            return
        # DATA
        self.counters["received"] += 1
        if not isinstance(body, dict):
            await self._refuse(f.seq, None, bad_payload)
            return
        msg_id = body.get("id")
        if not isinstance(msg_id, str) or not msg_id:
            await self._refuse(f.seq, None, f"the {_clip(body.get('type'))} message has no id")
            return
        if len(msg_id) > messages.MAX_ID_LEN:
            await self._refuse(f.seq, msg_id, f"the message id is longer than {messages.MAX_ID_LEN} characters")
            return
        if await self._io(self.store.seen, msg_id):
            self.counters["duplicates"] += 1
            await self._write(Frame.of(FrameType.ACK, f.seq, {"id": msg_id}))
            return
        try:
            why = self._accept(body)
        except Exception:
            self.log.exception("%s: checking a %s message failed", self.name, _clip(body.get("type")))
            why = "the receiver could not check the message"
        if why:
            # not remembered: a retry (after a lost NAK) is checked and refused again, never ACKed
            await self._refuse(f.seq, msg_id, why)
            return
        # Deliver first, then remember the id, then ACK. If delivery fails the message is
        # neither remembered nor ACKed, so the sender's retry delivers it; if the ACK is lost
        # the retry is ACKed as a duplicate and not acted on twice.
        try:
            handled = self._deliver(body)
            if inspect.isawaitable(handled):
                await handled
        except Exception:
            self.counters["delivery_failed"] += 1
            self.log.exception("%s: handling %s %s failed; not acknowledged, the peer will resend it",
                               self.name, _clip(body.get("type")), msg_id)
            return
        try:
            await self._io(self.store.remember, msg_id)
        except Exception as e:  # delivered already: ACK anyway, or the retry would be acted on twice
            self._error(f"could not remember host message id {msg_id}: {e}")
        await self._write(Frame.of(FrameType.ACK, f.seq, {"id": msg_id}))

    async def _refuse(self, seq: int, msg_id: str | None, why: str) -> None:
        """NAK a DATA frame; what is echoed is clipped so the NAK always fits in a frame,
        whatever the peer sent (a 65 000-character type or id must not take the link down)."""
        self.counters["refused"] += 1
        why = _clip(why, MAX_REASON_LEN)
        self.log.warning("%s: refused a message from the peer: %s", self.name, why)
        echo = msg_id if msg_id is None or len(msg_id) <= messages.MAX_ID_LEN else _clip(msg_id, messages.MAX_ID_LEN)
        await self._write(Frame.of(FrameType.NAK, seq, {"id": echo, "reason": why}))


MAX_REASON_LEN = 200  # characters of a NAK reason


def _clip(x: Any, n: int = 40) -> str:
    """``x`` as text of at most ``n`` characters, for logs and echoed fields."""
    r = x if isinstance(x, str) else repr(x)
    return r if len(r) <= n else r[:n - 3] + "..."


class HostLink:
    """The reader's end: persistent outbox, validation of host messages, status.

    ``await start()``, ``await stop()``, ``await send(msg) -> id``, ``status()``.
    Host messages that pass ``messages.validate`` are ACKed and handed to
    ``on_message(dict)`` on the loop; others are NAKed with a plain reason and logged.
    """

    def __init__(self, port: Port, state_dir: Any, on_message: Callable[[dict[str, Any]], None], *,
                 reader_id: str = "reader", software_version: str = "", outbox_limit: int = 10_000,
                 **engine_options: Any) -> None:
        from pathlib import Path

        self.port = port
        self.state_dir = Path(state_dir)
        self.reader_id = reader_id
        self.software_version = software_version or _version()
        self._on_message = on_message
        self._outbox_limit = outbox_limit
        self._engine_options = engine_options
        self.outbox: Outbox | None = None
        self.engine: LinkEngine | None = None

    def _hello(self, reply: bool) -> dict[str, Any]:
        msg = messages.hello(self.reader_id, self.software_version)
        msg["reply"] = reply
        return msg

    def _accept(self, msg: dict[str, Any]) -> str | None:
        return messages.validate(msg, messages.HOST_TO_READER)

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        self.outbox = await loop.run_in_executor(None, Outbox.in_state_dir, self.state_dir, self._outbox_limit)
        self.engine = LinkEngine(self.port, self.outbox, hello=self._hello, accept=self._accept,
                                 deliver=self._on_message, name="host link", **self._engine_options)
        await self.engine.start()
        pending = self.engine.pending_count
        if pending:
            log.info("host link: %d message(s) from before are waiting for the host", pending)

    async def stop(self) -> None:
        if self.engine is not None:
            await self.engine.stop()
        if self.outbox is not None:
            self.outbox.close()
            self.outbox = None

    async def send(self, msg: dict[str, Any]) -> str:
        """Persist ``msg`` (adds v, id, ts) and return its id; delivery happens in the background."""
        if self.engine is None:
            raise RuntimeError("the host link is not started")
        full = messages.envelope(msg)
        why = messages.validate(full, messages.READER_TO_HOST)
        if why:
            log.warning("host link: sending a message the host may refuse: %s", why)
        return await self.engine.submit(full)

    def status(self) -> dict[str, Any]:
        if self.engine is None:
            return {"connected": False, "pending": 0, "last_error": "the host link is not started"}
        st = self.engine.status()
        if self.outbox is not None and st["pending"] >= self._outbox_limit:
            st["last_error"] = (f"the outbox is full ({self._outbox_limit} messages): new results cannot be "
                                f"stored until the host acknowledges")
        return st


def _version() -> str:
    try:
        from mynad import __version__

        return __version__
    except Exception:
        return "0"


__all__ = ["HostLink", "LinkEngine", "OutboxFull", "Port"]
