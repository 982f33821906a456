"""The reader's end of the host link: ``HostLink``.

It runs a ``LinkEngine`` (``engine.py``, the protocol machine it shares with the virtual
host) as the **reader**, over the persistent SQLite outbox and counter file in the state
folder, with the reader's host key. Host messages that pass ``messages.validate`` are ACKed
and handed to ``on_message(dict)`` on the loop; others are NAKed with a plain reason and
logged; frames that fail authentication are counted in ``status()["auth_refused"]`` and
never answered.

``LinkEngine``, ``Port`` and ``OutboxFull`` are re-exported here for older imports.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

from mynad.hostlink import messages
from mynad.hostlink.counters import CounterStore
from mynad.hostlink.engine import LinkEngine, Port, log
from mynad.hostlink.outbox import Outbox, OutboxFull


class HostLink:
    """``await start()``, ``await stop()``, ``await send(msg) -> id``, ``status()``, ``alive()``."""

    def __init__(self, port: Port, state_dir: Any, on_message: Callable[[dict[str, Any]], Any], *,
                 key: bytes, reader_id: str = "reader", software_version: str = "", outbox_limit: int = 10_000,
                 **engine_options: Any) -> None:
        self.port = port
        self.state_dir = Path(state_dir)
        self.reader_id = reader_id
        self.software_version = software_version or _version()
        self._on_message = on_message
        self._outbox_limit = outbox_limit
        self._key = key  # kept so that stop() + start() works; never logged (status shows the fingerprint)
        self._engine_options = engine_options
        self.outbox: Outbox | None = None
        self.counter_store: CounterStore | None = None
        self.engine: LinkEngine | None = None

    def _hello(self, reply: bool) -> dict[str, Any]:
        msg = messages.hello(self.reader_id, self.software_version)
        msg["reply"] = reply
        return msg

    def _accept(self, msg: dict[str, Any]) -> str | None:
        return messages.validate(msg, messages.HOST_TO_READER)

    def _deliver(self, msg: dict[str, Any]) -> Any:
        return self._on_message(msg)  # looked up at delivery time (tests replace on_message)

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        self.outbox = await loop.run_in_executor(None, Outbox.in_state_dir, self.state_dir, self._outbox_limit)
        self.counter_store = await loop.run_in_executor(None, CounterStore.in_state_dir, self.state_dir)
        self.engine = LinkEngine(self.port, self.outbox, key=self._key, role="reader", counters=self.counter_store,
                                 hello=self._hello, accept=self._accept, deliver=self._deliver,
                                 name="host link", peer_name="the host", **self._engine_options)
        await self.engine.start()
        pending = self.engine.pending_count
        if pending:
            log.info("host link: %d message(s) from before are waiting for the host", pending)

    async def stop(self) -> None:
        if self.engine is not None:
            await self.engine.stop()  # kept: status() still tells how it ended; alive() is now False
        if self.outbox is not None:
            self.outbox.close()
            self.outbox = None
        if self.counter_store is not None:
            self.counter_store.close()
            self.counter_store = None

    async def send(self, msg: dict[str, Any]) -> str:
        """Persist ``msg`` (adds v, id, ts) and return its id; delivery happens in the background."""
        if self.engine is None:
            raise RuntimeError("the host link is not started")
        full = messages.envelope(msg)
        why = messages.validate(full, messages.READER_TO_HOST)
        if why:
            log.warning("host link: sending a message the host may refuse: %s", why)
        return await self.engine.submit(full)

    def alive(self) -> bool:
        """True while the link's tasks run (False before start and after stop): for the watchdog."""
        return self.engine is not None and self.engine.alive()

    def status(self) -> dict[str, Any]:
        if self.engine is None:
            return {"connected": False, "alive": False, "pending": 0, "last_error": "the host link is not started"}
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
