"""The acknowledged, authenticated host-link protocol machine on the asyncio loop.

``LinkEngine`` is shared by the reader (``link.HostLink``) and the simulator's virtual
host: it (re)opens a *port* (serial or MQTT driver), frames messages with ``codec``,
seals every frame it writes and checks every frame it reads with ``auth`` (frames that
fail are counted and dropped, never answered), sends the oldest unacknowledged message
from its *store* (stop-and-wait: one message in flight, so order is kept), retries with
exponential backoff until the peer ACKs the id, ACKs what it receives, drops duplicates
by id, answers HELLO, and sends HELLO as a keep-alive.

A received message is handed to ``deliver`` first, then its id is remembered, then it
is ACKed: a message is never acknowledged without having been acted on (a failed
delivery is not ACKed, so the peer resends it; a lost ACK makes the peer resend and the
duplicate is ACKed without being acted on twice). A refused message is NAKed and not
remembered. Whatever an authenticated but hostile peer sends (JSON nested 30 000 deep, a
65 000-character type or id), the frame is refused with a NAK that fits in a frame, and
the link stays up.

**Neither task ever dies.** Port errors mean "the line is down": the port is closed and
reopened after a growing pause. Store errors (the outbox or the counter file raising, e.g.
``sqlite3.OperationalError: database or disk is full``) are logged once with a plain
sentence, shown in ``status()["store_error"]``/``last_error``, and retried with exponential
backoff until the store works again; nothing owed is dropped. ``tried`` failing is only a
lost statistic, not a failed send. ``alive()`` tells the daemon's watchdog whether both
tasks still run.

A port has ``open()``, ``read() -> bytes``, ``write(bytes)``, ``close()``, ``describe``
and ``stream`` (True: byte stream, False: one frame per read), and may have a
``dropped`` counter. Nothing here blocks the loop; the SQLite stores run in one dedicated
worker thread (``store_in_thread``).
"""

from __future__ import annotations

import asyncio
import os
import concurrent.futures
import functools
import inspect
import logging
import time
from collections import Counter
from typing import Any, Callable, Protocol

from mynad.hostlink import auth, codec, messages
from mynad.hostlink.codec import Frame, FrameType
from mynad.hostlink.counters import CounterStore, MemoryCounterStore
from mynad.hostlink.outbox import MemoryOutbox, Outbox

log = logging.getLogger("mynad.hostlink")

MAX_REASON_LEN = 200  # characters of a NAK reason


class Port(Protocol):
    stream: bool

    @property
    def describe(self) -> str: ...
    async def open(self) -> None: ...
    async def read(self) -> bytes: ...
    async def write(self, data: bytes) -> None: ...
    async def close(self) -> None: ...


class StoreFailure(Exception):
    """A store call failed (outbox or counters); ``what`` says which step, the cause is chained."""

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(f"could not {what}: {cause}")
        self.what = what
        self.cause = cause


def unix_time_us() -> int:
    """The default counter floor: a sender that lost its counters but not its clock still goes up."""
    return time.time_ns() // 1000


class LinkEngine:
    def __init__(
        self,
        port: Port,
        store: Outbox | MemoryOutbox,
        *,
        key: bytes,
        role: str,
        counters: CounterStore | MemoryCounterStore,
        hello: Callable[[bool], dict[str, Any]],
        accept: Callable[[dict[str, Any]], str | None],
        deliver: Callable[[dict[str, Any]], Any],
        name: str = "host link",
        peer_name: str = "the host",
        ack_timeout: float = 1.0,
        max_backoff: float = 5.0,
        reconnect_min: float = 0.2,
        reconnect_max: float = 5.0,
        keepalive_s: float = 5.0,
        quiet_s: float = 0.5,
        store_retry_min: float = 0.25,
        store_retry_max: float = 10.0,
        hwm_flush_s: float = 1.0,
        counter_floor: Callable[[], int] = unix_time_us,
        counter_block: int = auth.BLOCK,
        store_in_thread: bool = True,
        logger: logging.Logger | None = None,
    ) -> None:
        self.port = port
        self.store = store
        self.counter_store = counters
        self.role = role
        self._key: bytes | None = auth.check_key(key)  # dropped once the direction keys are derived
        self._counter_floor = counter_floor
        self._counter_block = counter_block
        self.auth: auth.LinkAuth | None = None
        self._hello = hello
        self._accept = accept
        self._deliver = deliver
        self.name = name
        self.peer_name = peer_name  # in sentences: "the host has not acknowledged ..."
        self.ack_timeout = ack_timeout
        self.max_backoff = max_backoff
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.keepalive_s = keepalive_s
        self.quiet_s = quiet_s
        self.store_retry_min = store_retry_min
        self.store_retry_max = store_retry_max
        self.hwm_flush_s = hwm_flush_s
        self.log = logger or log
        self._store_in_thread = store_in_thread
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._wake: asyncio.Event | None = None  # something to send (new message, line open)
        self._kick: asyncio.Event | None = None  # the peer is (back) on line: resend now
        self._write_lock: asyncio.Lock | None = None
        self._waiters: dict[str, asyncio.Future] = {}
        self._pings: dict[str, asyncio.Future] = {}  # ping() token -> its caller, until the echo comes
        self._seq = 0
        self._open = False
        self._last_rx: float | None = None
        self._last_tx = 0.0
        self._last_chunk = 0.0
        self._decoder = codec.Decoder()
        self._stopping = False
        self._hwm_saved = 0
        self._hwm_flush: asyncio.Task | None = None
        self.last_error: str | None = None
        self.store_error: str | None = None  # set while a store call keeps failing
        self.counters: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.auth_refused: Counter[str] = Counter()
        self.pending_count = 0

    # ------------------------------------------------------------ lifecycle

    async def _io(self, fn: Callable, *args: Any) -> Any:
        if self._executor is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._store_in_thread and self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox")
        self._wake = asyncio.Event()
        self._kick = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._stopping = False
        if self.auth is None:
            assert self._key is not None
            key_id = auth.fingerprint(self._key)
            saved = await self._io(self.counter_store.load, key_id)
            send_limit, peer_hwm = saved or (0, 0)
            self.auth = auth.LinkAuth(self._key, self.role, send_limit=send_limit, peer_hwm=peer_hwm,
                                      floor=self._counter_floor(), block=self._counter_block)
            self._key = None
            self._hwm_saved = peer_hwm
            self.log.info("%s: host key %s (%s)", self.name, key_id,
                          "counters restored" if saved else "no counters stored for this key yet: a new key, "
                          "or this end's state was lost (then re-key both ends)")
        self.pending_count = await self._io(self.store.count)
        self._tasks = [
            asyncio.create_task(self._connection(), name=f"{self.name}: connection"),
            asyncio.create_task(self._sender(), name=f"{self.name}: sender"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        tasks = self._tasks + ([self._hwm_flush] if self._hwm_flush is not None else [])
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []
        self._hwm_flush = None
        for fut in self._waiters.values():
            if not fut.done():
                fut.cancel()
        self._waiters.clear()
        try:
            await self.port.close()
        except Exception:
            pass
        self._open = False
        await self._save_hwm()  # what was accepted lazily (ACK, NAK, HELLO) is on disk at a clean stop
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # ------------------------------------------------------------ public

    async def submit(self, msg: dict[str, Any]) -> str:
        """Store a complete message (with id) for delivery; returns its id. Raises OutboxFull
        (or the store's own error, e.g. disk full: then the message was not stored)."""
        await self._io(self.store.put, msg)
        self._queued()
        return msg["id"]

    def put_nowait(self, msg: dict[str, Any]) -> str:
        """``submit`` for a store that never blocks (in memory: the virtual host), from the loop."""
        self.store.put(msg)
        self._queued()
        return msg["id"]

    def _queued(self) -> None:
        self.pending_count += 1
        self.counters["queued"] += 1
        if self._wake is not None:
            self._wake.set()

    def connected(self) -> bool:
        if not self._open or self._last_rx is None or self._loop is None:
            return False
        return self._loop.time() - self._last_rx < 3 * self.keepalive_s

    def alive(self) -> bool:
        """True while the connection and sender tasks both run (for the daemon's watchdog)."""
        return bool(self._tasks) and all(not t.done() for t in self._tasks)

    def status(self) -> dict[str, Any]:
        return {
            "transport": self.port.describe,
            "open": self._open,
            "connected": self.connected(),
            "alive": self.alive(),
            "pending": self.pending_count,
            "last_error": self.last_error,
            "store_error": self.store_error,
            "sent": self.counters["sent"],
            "acked": self.counters["acked"],
            "retries": self.counters["retries"],
            "rejected": self.counters["rejected"],
            "received": self.counters["received"],
            "duplicates": self.counters["duplicates"],
            "dropped": {**dict(self.dropped), **dict(getattr(self.port, "dropped", None) or {})},
            "auth_refused": dict(self.auth_refused),
            "delivery_failed": self.counters["delivery_failed"],
            "key": self.auth.key_id if self.auth is not None else None,
        }

    # ------------------------------------------------------------ store calls

    def _store_failed(self, failure: StoreFailure) -> None:
        """Log the first failure of a streak (a full disk must not flood the log too)."""
        text = str(failure)
        if self.store_error is None:
            self.log.error("%s: %s; everything owed stays in the outbox and this is tried again with a "
                           "growing pause", self.name, text)
        self.store_error = text
        self.last_error = text
        self.counters["store_errors"] += 1

    def _store_ok(self) -> None:
        if self.store_error is not None:
            self.log.info("%s: the store works again (after: %s)", self.name, self.store_error)
            if self.last_error == self.store_error:
                self.last_error = None
            self.store_error = None

    async def _store_once(self, what: str, fn: Callable, *args: Any) -> Any:
        try:
            out = await self._io(fn, *args)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            raise StoreFailure(what, e) from e
        self._store_ok()
        return out

    async def _store_retry(self, what: str, fn: Callable, *args: Any) -> Any:
        """``fn(*args)`` in the store thread, retried with exponential backoff until it works."""
        pause = self.store_retry_min
        while True:
            try:
                return await self._store_once(what, fn, *args)
            except StoreFailure as f:
                self._store_failed(f)
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.store_retry_max)

    # ------------------------------------------------------------ connection

    async def _connection(self) -> None:
        assert self._loop is not None and self._wake is not None and self._kick is not None
        pause = self.reconnect_min
        reported = None
        while not self._stopping:
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
                done, _ = await asyncio.wait({read}, timeout=self._read_timeout())
                now = self._loop.time()
                if read in done:
                    data = read.result()  # raises when the line is down
                    read = None
                    frames = self._decoder.feed(data)
                    if not self.port.stream:
                        frames += self._decoder.flush()
                    self._last_chunk = now
                elif self._decoder.pending and now - self._last_chunk >= self.quiet_s:
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

    def _read_timeout(self) -> float:
        """How long the read may wait: until a partial frame is due to be dropped, else until
        the next keep-alive is due. An idle line wakes the loop once per keep-alive, not twice
        a second (the idle reader must not poll)."""
        assert self._loop is not None
        now = self._loop.time()
        if self._decoder.pending:
            return max(0.0, self.quiet_s - (now - self._last_chunk))
        last = max(self._last_tx, self._last_rx or 0.0)
        return max(0.01, min(self.keepalive_s, last + self.keepalive_s - now))

    # ------------------------------------------------------------ frames out

    async def _write(self, frame: Frame) -> None:
        """Seal and write one frame. Raises StoreFailure if the next counter block cannot be
        reserved on disk (nothing written), anything else if the line failed."""
        assert self._write_lock is not None and self._loop is not None and self.auth is not None
        async with self._write_lock:  # counters go onto the line in the order they are taken
            need = self.auth.send.reservation_needed()
            if need is not None:
                await self._store_once("reserve frame counters", self.counter_store.save_send_limit,
                                       self.auth.key_id, need)
                self.auth.send.reserved(need)
            data = codec.encode(self.auth.seal(frame))
            await self.port.write(data)
        self._last_tx = self._loop.time()

    async def ping(self, timeout: float) -> float | None:
        """A signed HELLO asking for the peer's HELLO reply, matched by a token the peer echoes:
        the round trip in seconds, or None when no echo came within ``timeout``. Stores nothing
        and owes nothing (unlike a DATA message), so a technician's link test never adds to
        what the host is owed."""
        assert self._loop is not None
        token = os.urandom(8).hex()
        fut: asyncio.Future = self._loop.create_future()
        self._pings[token] = fut
        t0 = self._loop.time()
        try:
            await self._send_hello(reply=False, ping=token)
            return await asyncio.wait_for(fut, timeout) - t0
        except asyncio.TimeoutError:
            return None
        finally:
            self._pings.pop(token, None)

    async def _send_hello(self, reply: bool, ping: str | None = None) -> None:
        self._seq = (self._seq + 1) & 0xFFFF
        body = self._hello(reply)
        if ping is not None:
            body = {**body, "ping": ping}
        try:
            await self._write(Frame.of(FrameType.HELLO, self._seq, body))
        except StoreFailure as f:  # no counter: no hello this time; the keep-alive tries again
            self._store_failed(f)

    async def _sender(self) -> None:
        """Never returns: every failure is handled, logged and retried with a growing pause."""
        while True:
            try:
                await self._send_loop()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug, not a store or line error: keep sending anyway
                self.counters["sender_errors"] += 1
                self.log.exception("%s: the sender hit an unexpected error; it goes on after a pause", self.name)
                await asyncio.sleep(self.store_retry_max)

    async def _send_loop(self) -> None:
        assert self._wake is not None and self._kick is not None and self._loop is not None
        backoff = self.ack_timeout
        line_pause = self.reconnect_min
        current: str | None = None
        seq = 0
        while True:
            if not self._open:
                self._wake.clear()
                await self._wake.wait()
                continue
            head = await self._store_retry("read the next message from the outbox", self.store.head)
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
            except asyncio.CancelledError:
                self._waiters.pop(msg_id, None)
                raise
            except StoreFailure as f:
                self._waiters.pop(msg_id, None)
                self._store_failed(f)
                await asyncio.sleep(line_pause)
                line_pause = min(line_pause * 2, self.store_retry_max)
                continue
            except Exception as e:  # the line failed while writing: close it, the connection task reopens
                self._waiters.pop(msg_id, None)
                self._error(f"could not send {_clip(head.get('type'))} to {self.peer_name}: {e}")
                asyncio.ensure_future(self._close_quietly())
                await asyncio.sleep(line_pause)
                line_pause = min(line_pause * 2, self.reconnect_max)
                continue
            line_pause = self.reconnect_min
            self.counters["sent"] += 1
            try:  # only a statistic: a failure here is not a failed send (no resend)
                await self._store_once("count a try in the outbox", self.store.tried, msg_id)
            except StoreFailure as f:
                self._store_failed(f)
            wake = asyncio.ensure_future(self._kick.wait())
            try:
                await asyncio.wait({fut, wake}, timeout=backoff, return_when=asyncio.FIRST_COMPLETED)
            finally:
                wake.cancel()
                self._waiters.pop(msg_id, None)
            if fut.done() and not fut.cancelled():
                kind, reason = fut.result()
                if kind == "ack":
                    await self._store_retry("delete an acknowledged message from the outbox", self.store.ack, msg_id)
                    self.counters["acked"] += 1
                    self.pending_count = max(0, self.pending_count - 1)
                    current = None
                    if self.last_error and self.last_error.startswith(f"{self.peer_name} has not acknowledged"):
                        self.last_error = None
                    continue
                if kind == "nak":
                    await self._store_retry("move a refused message to the rejected table", self.store.reject,
                                            msg_id, reason or "refused")
                    self.counters["rejected"] += 1
                    self.pending_count = max(0, self.pending_count - 1)
                    current = None
                    self._error(f"{self.peer_name} refused {_clip(head.get('type'))} {msg_id}: {reason} (kept in the "
                                f"outbox's rejected table)")
                    continue
                continue  # "down": resend when the line is back
            if self._kick.is_set():
                backoff = self.ack_timeout  # peer said hello / line came back: resend now
                continue
            self._error(f"{self.peer_name} has not acknowledged {_clip(head.get('type'))} {msg_id} "
                        f"(waited {backoff:.1f} s); trying again", quiet=backoff < self.max_backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def _close_quietly(self) -> None:
        try:
            await self.port.close()
        except Exception:
            pass

    # ------------------------------------------------------------ frames in

    def _refused_by_auth(self, f: Frame, reason: str) -> None:
        """Count and log (rate-limited) a frame that failed authentication. Never answered."""
        self.auth_refused[reason] += 1
        n = self.auth_refused[reason]
        if n <= 10 or n % 100 == 0:
            self.log.warning("%s: refused a %s frame: %s (%d so far)", self.name, _frame_name(f), reason, n)
        if reason == auth.R_BAD_TAG and not self.connected():
            self.last_error = (f"frames on the line fail authentication ({n} so far): is the same host key "
                               f"installed at both ends? (compare `mynactl host-key show-fingerprint`)")

    async def _on_frame(self, f: Frame) -> None:
        assert self._loop is not None and self._wake is not None and self._kick is not None
        assert self.auth is not None
        why = self.auth.check(f)
        if why:
            self._refused_by_auth(f, why)
            return
        if f.type == FrameType.DATA:
            # The high-water mark is on disk before a DATA frame is acted on, so a replay of it
            # is refused even after a crash. If it cannot be written, the frame is not taken
            # (not ACKed): the peer sends it again, sealed with a new counter.
            try:
                await self._store_once("remember the peer's frame counter", self.counter_store.save_peer_hwm,
                                       self.auth.key_id, f.counter)
            except StoreFailure as e:
                self._store_failed(e)
                return
            self._hwm_saved = max(self._hwm_saved, f.counter)
        self.auth.accept(f)
        if f.type != FrameType.DATA:
            self._save_hwm_soon()
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
            token = body.get("ping") if isinstance(body, dict) else None
            token = token if isinstance(token, str) and len(token) <= 32 else None
            if not (isinstance(body, dict) and body.get("reply")):
                await self._send_hello(reply=True, ping=token)  # echoed: the asker matches its ping
                self._kick.set()  # the peer (re)opened its end: resend what is pending now
            elif token is not None:
                fut = self._pings.pop(token, None)
                if fut is not None and not fut.done():
                    fut.set_result(self._loop.time())
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
        try:
            seen = await self._store_once("look up a received message id", self.store.seen, msg_id)
        except StoreFailure as e:  # not taken now; the peer resends it
            self._store_failed(e)
            return
        if seen:
            self.counters["duplicates"] += 1
            await self._answer(Frame.of(FrameType.ACK, f.seq, {"id": msg_id}))
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
            await self._store_once("remember a received message id", self.store.remember, msg_id)
        except StoreFailure as e:  # delivered already: ACK anyway, or the retry would be acted on twice
            self._store_failed(e)
        await self._answer(Frame.of(FrameType.ACK, f.seq, {"id": msg_id}))

    async def _answer(self, frame: Frame) -> None:
        """Write an ACK/NAK. Without a counter (store failing) it is not sent: the peer resends."""
        try:
            await self._write(frame)
        except StoreFailure as e:
            self._store_failed(e)

    async def _refuse(self, seq: int, msg_id: str | None, why: str) -> None:
        """NAK a DATA frame; what is echoed is clipped so the NAK always fits in a frame,
        whatever the peer sent (a 65 000-character type or id must not take the link down)."""
        self.counters["refused"] += 1
        why = _clip(why, MAX_REASON_LEN)
        self.log.warning("%s: refused a message from the peer: %s", self.name, why)
        echo = msg_id if msg_id is None or len(msg_id) <= messages.MAX_ID_LEN else _clip(msg_id, messages.MAX_ID_LEN)
        await self._answer(Frame.of(FrameType.NAK, seq, {"id": echo, "reason": why}))

    # ------------------------------------------------------------ high-water mark (lazy part)

    def _save_hwm_soon(self) -> None:
        """ACK, NAK and HELLO frames move the mark in memory; it reaches the disk within
        ``hwm_flush_s`` (or with the next DATA frame). A replay of one of those in the window
        after a crash is harmless: an ACK or NAK for an id stays true, a HELLO only makes us
        resend."""
        if self._hwm_flush is None or self._hwm_flush.done():
            self._hwm_flush = asyncio.ensure_future(self._save_hwm_later())

    async def _save_hwm_later(self) -> None:
        await asyncio.sleep(self.hwm_flush_s)
        await self._save_hwm()

    async def _save_hwm(self) -> None:
        if self.auth is None or self.auth.peer_hwm <= self._hwm_saved:
            return
        hwm = self.auth.peer_hwm
        try:
            await self._store_once("remember the peer's frame counter", self.counter_store.save_peer_hwm,
                                   self.auth.key_id, hwm)
            self._hwm_saved = max(self._hwm_saved, hwm)
        except StoreFailure as e:
            self._store_failed(e)


def _clip(x: Any, n: int = 40) -> str:
    """``x`` as text of at most ``n`` characters, for logs and echoed fields."""
    r = x if isinstance(x, str) else repr(x)
    return r if len(r) <= n else r[:n - 3] + "..."


def _frame_name(f: Frame) -> str:
    try:
        return FrameType(f.type).name
    except ValueError:
        return str(f.type)


__all__ = ["LinkEngine", "Port", "StoreFailure", "MAX_REASON_LEN", "unix_time_us"]
