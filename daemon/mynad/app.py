"""The daemon: one asyncio loop that owns the reception flow and every device.

Drivers post events here (from their threads via ``call_soon_threadsafe``); the
pure ``ReceptionFlow`` turns each event into actions; ``_execute`` carries them
out without ever blocking the loop. Each step is logged as one readable line,
and nothing secret reaches a log line: PIN digits never leave ``PinBuffer``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import signal
import uuid
from typing import Any

from mynad.card.errors import CardError
from mynad.config import DaemonConfig
from mynad.core import events as ev
from mynad.core.flow import ReceptionFlow
from mynad.core.secret import PinBuffer
from mynad.shell.cardio import CardIO
from mynad.shell.describe import describe_action, describe_event
from mynad.shell.faceio import FaceIO
from mynad.shell.hostio import HostIO, cons_time
from mynad.shell.pinentry import PinEntry
from mynad.shell.screenio import ScreenIO

log = logging.getLogger("mynad")


class StartupError(Exception):
    """A part the daemon needs is missing or refused (model hash, device, state dir).

    Raised with a plain sentence naming the part, so a technician reading the
    journal sees what to fix instead of a traceback.
    """


def _opening(part: str, fn, *args):
    try:
        return fn(*args)
    except StartupError:
        raise
    except Exception as e:
        text = getattr(e, "message", None) or str(e) or type(e).__name__
        raise StartupError(f"{part}: {text}") from e


class App:
    def __init__(self, cfg: DaemonConfig) -> None:
        self.cfg = cfg
        self.flow = ReceptionFlow(cfg.flow)
        self.pin = PinEntry()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._stopping = asyncio.Event()
        self._reader: str | None = None
        self._card_face_code: str | None = None
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> int:
        self.loop = asyncio.get_running_loop()
        cfg = self.cfg
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._stopping.set)

        self.keypad = None
        self.screen = ScreenIO(cfg.display, cfg.sim, self.loop)
        _opening("display", self.screen.open)
        self.face = FaceIO(cfg.face, cfg.camera, cfg.sim, self.post, self.loop)
        _opening("face models", self.face.load)
        self.host = HostIO(cfg.host, cfg.reader, self.post)
        try:
            await self.host.start()
        except Exception as e:
            raise StartupError(f"host link: {getattr(e, 'message', None) or e}") from e
        self.card = CardIO(cfg.card, self.post, self.loop, self._on_reader_event)
        _opening("keypad", self._open_keypad)
        _opening("indicators", self._open_indicators)
        _opening("card face reader", self._open_card_face)
        _opening("card reader (PC/SC)", self.card.start)
        from mynad.control import ControlServer

        self.control = ControlServer(cfg.reader.runtime_dir / "control.sock", self.status,
                                     lambda: self.post(ev.HostVisualCheck()))
        await self.control.start()
        self._execute_all(self.flow.start())

        from mynad.sdnotify import Notifier, watchdog_loop

        notifier = Notifier.from_env()
        notifier.ready("reader idle")
        watchdog = asyncio.create_task(watchdog_loop(notifier, self._healthy))
        log.info("mynad ready (reader %s, host via %s)", cfg.reader.id, cfg.host.transport)

        await self._stopping.wait()
        log.info("stopping")
        notifier.stopping()
        watchdog.cancel()
        await self._shutdown()
        return 0

    def _healthy(self) -> bool:
        return self.card.alive()

    def status(self) -> dict[str, Any]:
        """What mynactl status shows: snapshots only, never a secret."""
        return {
            "reader": self.cfg.reader.id,
            **self.flow.status(),
            "screen": self.screen.current.id if self.screen.current else None,
            "card_reader": self._reader or "(none seen yet)",
            "card_monitor": "alive" if self.card.alive() else "down",
            "face": "ready" if self.face.enabled else "disabled",
            "host": self.host.status(),
        }

    async def _shutdown(self) -> None:
        self.pin.end()
        await self.control.stop()
        if self.keypad is not None:
            self.keypad.close()
        if getattr(self, "indicators", None) is not None:
            self.indicators.close()
        await self.card.stop()
        await self.face.close()
        await self.host.stop()
        await self.screen.close()

    def _open_keypad(self) -> None:
        from myna_drivers.keypad import MatrixKeypad

        kcfg = self.cfg.keypad
        if kcfg.backend == "sim":
            from myna_drivers.gpio_sim import SimGPIO

            gpio: Any = SimGPIO(self.cfg.sim.bus, rows=kcfg.rows, cols=kcfg.cols)
        else:
            import RPi.GPIO as gpio  # type: ignore[import-not-found,no-redef]
        self.keypad = MatrixKeypad(gpio, kcfg.rows, kcfg.cols,
                                   on_key=lambda pos: self.loop.call_soon_threadsafe(self._on_key, pos),
                                   scan_hz=kcfg.scan_hz, debounce_ms=kcfg.debounce_ms)

    def _open_indicators(self) -> None:
        from myna_drivers.indicators import open_indicators

        self.indicators = open_indicators(self.cfg.indicators, self.cfg.sim)

    def _open_card_face(self) -> None:
        """Where 照合番号B comes from (the printed card face)."""
        if self.cfg.card.card_face == "sim":
            from myna_drivers.simbus import SimBus

            def on_face(msg: dict[str, Any]) -> None:
                code = msg.get("code_b")
                self.loop.call_soon_threadsafe(setattr, self, "_card_face_code", code if code else None)

            SimBus.shared(self.cfg.sim.bus).subscribe("cardface", on_face)

    # ------------------------------------------------------------ events in

    def post(self, event: ev.Event) -> None:
        """Feed one event to the flow and carry out what it decides (loop thread only)."""
        line = describe_event(event, self.flow)
        if line:
            log.info(line)
        try:
            actions = self.flow.handle(event, self.loop.time())
        except Exception:
            # The core is pure and property-tested; if it still fails, say so and
            # return to a known state rather than dying at the counter.
            log.exception("reception flow failed on %s; returning to idle", type(event).__name__)
            self.flow = ReceptionFlow(self.cfg.flow)
            actions = self.flow.start()
        self._execute_all(actions)

    def _on_reader_event(self, event: Any) -> None:
        kind = getattr(event, "kind", "")
        if kind == "inserted":
            self._reader = event.reader
            self.post(ev.CardInserted(uuid.uuid4().hex[:12]))
        elif kind == "removed":
            if self.flow.visit is not None:
                self.post(ev.CardRemoved())
            self._spawn(self.card.release())
        elif kind in ("reader_lost", "service_lost"):
            log.warning("card reader: %s", getattr(event, "message", kind))
            if self.flow.visit is not None:
                self.post(ev.CardRemoved())
            self.host.send("reader.event", kind="fault", code="001", message=f"card reader: {kind}")
        elif kind == "service_back":
            log.info("card reader service is back")

    def _on_key(self, pos: int) -> None:
        event = self.pin.route(self.flow, pos)
        if event is not None:
            self.post(event)

    # ------------------------------------------------------------ actions out

    def _execute_all(self, actions: list[ev.Action]) -> None:
        for action in actions:
            line = describe_action(action)
            if line:
                log.info(line)
            try:
                self._execute(action)
            except Exception:
                log.exception("action %s failed", type(action).__name__)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _execute(self, a: ev.Action) -> None:
        if isinstance(a, ev.Show):
            self.screen.show(a.screen)
        elif isinstance(a, ev.StartTimer):
            old = self._timers.pop(a.name, None)
            if old is not None:
                old.cancel()
            self._timers[a.name] = self.loop.call_later(a.seconds, self.post, ev.TimerFired(a.name, a.token))
        elif isinstance(a, ev.CancelTimer):
            old = self._timers.pop(a.name, None)
            if old is not None:
                old.cancel()
        elif isinstance(a, ev.ReadCard):
            self._spawn(self._read_card())
        elif isinstance(a, ev.StartPinEntry):
            from mynad.ui.pinpad import new_layout

            self.loop.call_soon(self.post, self.pin.start(self.flow.pin_length, new_layout()))
        elif isinstance(a, ev.ClearPin):
            self.pin.clear()
        elif isinstance(a, ev.VerifyPin):
            self._spawn(self._verify(self.pin.take()))
        elif isinstance(a, ev.CheckStaffPassword):
            secret = self.pin.take().take_ascii()
            ok = self.cfg.staff.check(secret)
            for i in range(len(secret)):
                secret[i] = 0
            self.loop.call_soon(self.post, ev.StaffPasswordChecked(ok))
        elif isinstance(a, ev.StartFace):
            self.face.start(a.attempt)
        elif isinstance(a, ev.StopFace):
            self.face.stop()
        elif isinstance(a, ev.Authenticate):
            self._spawn(self._authenticate(a))
        elif isinstance(a, ev.SendHost):
            self._send_host(a)
        elif isinstance(a, ev.Indicate):
            self.indicators.indicate(buzzer=a.buzzer, led=a.led)
        elif isinstance(a, ev.EndVisit):
            self.pin.end()
            self.face.forget()
            if self.flow.visit is not None:
                self.host.forget(self.flow.visit.visit_id)
            # _card_face_code is not cleared here: it belongs to the card lying on the reader
            # (the card-face reader clears it when the card leaves), and a late removal
            # event must not erase the code of the next card already placed.

    async def _read_card(self) -> None:
        result = await self.card.read(self._reader or "")
        code = self._card_face_code
        if isinstance(result, ev.CardRead) and not (self.face.enabled and code):
            # no face models or no 照合番号B: 顔認証 is not offered at all (never shown, then withdrawn)
            if self.face.enabled:
                log.info("face authentication not offered: the card face could not be read")
            result = dataclasses.replace(result, photo=False)
        self.post(result)
        if isinstance(result, ev.CardRead) and result.photo and code:
            self.face.prepare(lambda: self.card.face_photo(code))

    async def _verify(self, pin: PinBuffer) -> None:
        self.post(await self.card.verify_pin(pin))

    async def _authenticate(self, a: ev.Authenticate) -> None:
        visit = self.flow.visit
        if visit is None:
            return
        fields: dict[str, Any] = {"visit_id": visit.visit_id, "method": a.method, "proxy": a.proxy}
        try:
            if a.method == "pin":
                nonce = await self.host.challenge(visit.visit_id, self.cfg.flow.host_timeout_s)
                signature = await self.card.sign(nonce)
                fields["signature"] = base64.b64encode(signature).decode()
            elif a.method == "face":
                fields["face_score"] = a.face_score
        except asyncio.TimeoutError:
            self.post(ev.AuthFailed("020", "host_timeout"))
            return
        except CardError as e:
            self.post(ev.AuthFailed(e.code, getattr(e, "reason", type(e).__name__)))
            return
        self.host.send("visit.authenticated", **fields)

    def _send_host(self, a: ev.SendHost) -> None:
        fields = dict(a.fields)
        if a.type == "visit.started" and self.card.visit is not None:
            cv = self.card.visit
            fields.update(cert_der=base64.b64encode(cv.cert_der).decode(), cert_serial=str(cv.cert_serial),
                          cert_not_after=cv.not_after.isoformat())
        elif a.type == "visit.result":
            fields["ConsTime"] = cons_time()
        self.host.send(a.type, **fields)
