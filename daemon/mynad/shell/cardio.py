"""The card, seen from the event loop.

All card I/O runs on ONE worker thread, so APDU sequences never interleave and the
loop never waits on pyscard. The PC/SC monitor thread only posts insert/remove
events. Per insertion we keep what the visit needs (certificate, the card object)
and drop it at removal.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from mynad.card.errors import CardError, CardRemoved as CardRemovedError, PinLocked, WrongPin
from mynad.card.session import MynaCard
from mynad.config import CardSection
from mynad.core.cert_policy import cert_state
from mynad.core.events import CardFailed, CardRead, Event, PinChecked
from mynad.core.secret import PinBuffer

log = logging.getLogger("mynad.card")


@dataclass
class CardVisit:
    card: MynaCard
    transport: Any  # myna_drivers.pcsc transport: transmit(), close()
    cert_der: bytes
    cert_serial: int
    not_after: dt.datetime


class CardIO:
    def __init__(self, cfg: CardSection, post: Callable[[Event], None], loop: asyncio.AbstractEventLoop,
                 on_reader_event: Callable[[object], None]) -> None:
        self.cfg = cfg
        self._post = post
        self._loop = loop
        self._on_reader_event = on_reader_event
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="card")
        self.visit: CardVisit | None = None
        self.reader: str | None = None
        self._monitor: Any = None  # myna_drivers.pcsc.PcscMonitor once started

    # ------------------------------------------------------------ monitor

    def start(self) -> None:
        from myna_drivers.pcsc import PcscMonitor

        def from_thread(ev: object) -> None:
            self._loop.call_soon_threadsafe(self._on_reader_event, ev)

        self._monitor = PcscMonitor(on_event=from_thread, reader_filter=self.cfg.reader)
        self._monitor.start()

    def alive(self) -> bool:
        return self._monitor is not None and self._monitor.alive()

    async def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.stop()
        await self.release()
        self._worker.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn, *args):
        return await self._loop.run_in_executor(self._worker, fn, *args)

    # ------------------------------------------------------------ visit steps

    async def read(self, reader: str) -> Event:
        """Identify the card and learn everything the flow needs without a PIN."""
        try:
            return await self.run(self._read, reader)
        except CardError as e:
            log.warning("card read failed: %s", e.message)
            return CardFailed(e.code, e.reason)
        except Exception as e:  # a driver bug must not kill the loop
            log.exception("card read failed unexpectedly")
            return CardFailed(CardError.code, f"{CardError.reason}: {type(e).__name__}")

    def _read(self, reader: str) -> Event:
        from mynad.card.channel import CardChannel

        transport = CardChannel.connect_pcsc(reader, timeout=self.cfg.apdu_timeout_s)
        card = MynaCard(transport)
        card.identify()
        cert = card.auth_certificate()
        status = card.pin_status()
        today = dt.datetime.now().astimezone().date()
        not_after = cert.not_after
        self.visit = CardVisit(card, transport, cert.der, cert.serial, not_after)
        return CardRead(
            cert_state=cert_state(not_after.date() if isinstance(not_after, dt.datetime) else not_after, today),
            has_pin=status.has_pin,
            pin_tries=status.tries_left,
            pin_locked=status.locked,
        )

    async def verify_pin(self, pin: PinBuffer) -> Event:
        v = self.visit
        if v is None:
            pin.wipe()
            return CardFailed(CardRemovedError.code, CardRemovedError.reason)  # the card left before VERIFY
        try:
            status = await self.run(v.card.verify_pin, pin)
            return PinChecked(ok=True, tries_left=status.tries_left, locked=False)
        except WrongPin as e:
            return PinChecked(ok=False, tries_left=e.tries_left, locked=e.tries_left == 0)
        except PinLocked:
            return PinChecked(ok=False, tries_left=0, locked=True)
        except CardError as e:
            return CardFailed(e.code, e.reason)
        finally:
            pin.wipe()

    async def sign(self, challenge: bytes) -> bytes:
        v = self.visit
        if v is None:
            raise CardRemovedError()
        return await self.run(v.card.sign, challenge)

    async def code_b_status(self):
        """照合番号B's counter (no try spent); None when the card cannot tell us."""
        v = self.visit
        if v is None:
            raise CardRemovedError()
        return await self.run(v.card.code_b_status)

    async def face_photo(self, code_b: bytearray, reserve: int) -> bytes:
        """One VERIFY of 照合番号B at most, then the photo; ``code_b`` is wiped by the card layer."""
        v = self.visit
        if v is None:
            code_b[:] = bytes(len(code_b))
            raise CardRemovedError()
        return await self.run(v.card.face_photo, code_b, reserve)

    async def release(self) -> None:
        """Forget the card and power it off (no verified state survives a visit)."""
        v, self.visit = self.visit, None
        if v is not None:
            try:
                await self.run(v.transport.close)
            except Exception:
                log.debug("closing the card connection failed (card already gone)")
