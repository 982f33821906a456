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
import sys
import time
import uuid
from typing import Any, Callable

from mynad import __version__
from mynad.card.errors import CardError
from mynad.config import DaemonConfig
from mynad.core import codes
from mynad.core import events as ev
from mynad.core.flow import ReceptionFlow
from mynad.core.secret import PinBuffer
from mynad.memory import release_free_memory
from mynad.shell.cardio import CardIO
from mynad.shell.describe import describe_action, describe_event
from mynad.shell.cardfaceio import CardFaceIO, CodeB
from mynad.shell.faceio import FaceIO
from mynad.shell.hostio import HostIO, HostQueueFull, cons_time
from mynad.shell.openvisit import ABORT_CODE, ABORT_REASON, OpenVisitError, OpenVisitRecord
from mynad.shell.pinentry import PinEntry
from mynad.shell.screenio import ScreenIO
from mynad.staffauth import StaffGate

log = logging.getLogger("mynad")


class StartupError(Exception):
    """A part the daemon needs is missing or refused (model hash, device, state dir).

    Raised with a plain sentence naming the part, so a technician reading the
    journal sees what to fix instead of a traceback.
    """


def _opening(part: str, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except StartupError:
        raise
    except Exception as e:
        text = getattr(e, "message", None) or str(e) or type(e).__name__
        if getattr(e, "part", None):  # the error names its part already (myna_drivers.devices.DeviceError)
            raise StartupError(text) from e
        raise StartupError(f"{part}: {text}") from e


class App:
    def __init__(self, cfg: DaemonConfig, *, simulator: bool = False) -> None:
        self.cfg = cfg
        self.simulator = simulator  # simulated device backends are allowed only then
        self.flow = ReceptionFlow(cfg.flow)
        self.pin = PinEntry()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._stopping = asyncio.Event()
        self._reader: str | None = None
        self._tasks: set[asyncio.Task] = set()
        self._code_b: CodeB | None = None
        self.devices: Any = None  # myna_drivers.devices.Devices once started
        from mynad.selftest import SelfTests  # hardware self-tests for the technician (control socket)

        self.selftests = SelfTests(self)
        self.started_at = time.time()  # for the uptime in status
        self.last_error: dict[str, Any] | None = None  # the last reader code sent to the host

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> int:
        self.loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._stopping.set)
        try:
            await self._start()
        except BaseException:
            await self._shutdown()  # a failed start closes what it opened, in reverse
            raise

        from mynad.sdnotify import Notifier, watchdog_loop

        notifier = Notifier.from_env()
        notifier.ready("reader idle")
        watchdog = asyncio.create_task(watchdog_loop(notifier, self._healthy))
        log.info("mynad %s ready (reader %s, host via %s, running from %s)", __version__, self.cfg.reader.id,
                 self.cfg.host.transport, sys.prefix)
        # A release on trial confirms itself once healthy; past its deadline unconfirmed, mynad
        # exits 1 so systemd restarts it and the boot check rolls it back (docs/update.md).
        from mynad.release.confirm import confirm_when_healthy

        expired: list[bool] = []

        def give_up() -> None:
            expired.append(True)
            self._stopping.set()

        self._spawn(confirm_when_healthy(lambda: self._healthy() and (self.face.enabled or not self.cfg.face.enabled),
                                         on_expired=give_up))

        await self._stopping.wait()
        log.info("stopping")
        notifier.stopping()
        watchdog.cancel()
        await self._shutdown()
        return 1 if expired else 0

    async def _start(self) -> None:
        """Open every part in order; each one opened is registered for _shutdown at once."""
        from myna_drivers.devices import open_devices

        cfg = self.cfg
        self._closers: list[tuple[str, Any]] = []
        self.devices = _opening("devices", open_devices, cfg, simulator=self.simulator,
                                on_key=lambda pos: self.loop.call_soon_threadsafe(self._on_key, pos))
        self._closers.append(("devices", self.devices.close))
        d = self.devices
        self.indicators = d.indicators
        self.screen = ScreenIO(cfg.display, d.display, self.loop)
        self._closers.append(("display", self.screen.close))
        from mynad.shell.voiceio import VoiceIO  # spoken prompts and chimes (docs/voice.md)

        self.voice = VoiceIO(cfg.voice, d.voice, self.loop, state_dir=cfg.reader.state_dir)
        self._closers.append(("voice", self.voice.close))
        self.voice.warm_up()
        self.face = FaceIO(cfg.face, d.camera, self.post, self.loop,
                           calibration=cfg.reader.state_dir / "face-calibration.toml")
        self._closers.append(("face", self.face.close))
        _opening("face models", self.face.load)
        self.cardface = CardFaceIO(cfg.card_face, d.card_face, self.loop)
        self._closers.append(("card-face reader", self.cardface.close))
        _opening("card-face reader", self.cardface.load)
        self.host = HostIO(cfg.host, cfg.reader, self.post)
        self._closers.append(("host link", self.host.stop))
        try:
            await self.host.start()
        except Exception as e:
            raise StartupError(f"host link: {getattr(e, 'message', None) or e}") from e
        self.open_visit = OpenVisitRecord(cfg.reader.state_dir)
        self._closing: set[str] = set()  # visits whose end is queued, not yet durable in the outbox
        self.staff = StaffGate.for_config(cfg)
        self._close_interrupted_visit()
        self.card = CardIO(cfg.card, self.post, self.loop, self._on_reader_event)
        self._closers.append(("card reader", self.card.stop))
        _opening("card reader (PC/SC)", self.card.start)
        from mynad.control import ControlServer

        self.control = ControlServer(cfg.reader.runtime_dir / "control.sock", self.status,
                                     lambda: self.post(ev.HostVisualCheck()),
                                     staff_group=cfg.reader.staff_group, socket_group=cfg.reader.control_group,
                                     selftests=self.selftests)
        self._closers.append(("control socket", self.control.stop))
        await self.control.start()
        self._execute_all(self.flow.start())
        self.post(ev.StaffPasswordState(self._staff_available()))
        if self.host.storage_error is not None:
            self.post(ev.StorageChanged(False, self.host.storage_error))

    def _staff_available(self) -> bool:
        return self.staff.is_set()

    def _healthy(self) -> bool:
        """What the systemd watchdog ping stands for: the card monitor and the host link
        (its sender and line tasks) are all running. A dead task stops the pings, so systemd
        restarts the daemon instead of a reader that looks alive and owes the host results."""
        return self.card.alive() and self.host.alive()

    def problems(self) -> list[str]:
        """Why the reader is degraded, in plain words (empty: all is well). ``mynactl status``
        exits non-zero when this is not empty, so a monitoring script or a technician sees it."""
        out = []
        if not self.card.alive():
            out.append("the card reader monitor is not running")
        host = self.host.status()
        if not self.host.alive():
            out.append("the host link task is not running")
        elif not host.get("connected"):
            out.append(f"the clinic host is not answering ({host.get('last_error') or 'no reply yet'})")
        if host.get("storage", "ok") != "ok":
            out.append(f"results cannot be stored: {host['storage']}")
        if self.cfg.face.enabled and not self.face.enabled:
            out.append("face authentication is configured but its models are not loaded")
        return out

    def status(self) -> dict[str, Any]:
        """What mynactl status shows: snapshots only, never a secret."""
        from mynad import __version__

        return {
            "version": __version__,
            "problems": self.problems(),
            "reader": self.cfg.reader.id,
            **self.flow.status(),
            "screen": self.screen.current.id if self.screen.current else None,
            "card_reader": self._reader or "(none seen yet)",
            "card_monitor": "alive" if self.card.alive() else "down",
            "face": "ready" if self.face.enabled else "disabled",
            "card_face": "ready" if self.cardface.enabled else "none",
            "host": self.host.status(),
            "uptime_s": round(time.time() - self.started_at),
            "last_error": self.last_error,
        }

    async def _shutdown(self) -> None:
        """Close what _start opened, last opened first; one failing part does not stop the rest."""
        self.pin.end()
        self._forget_code_b()
        for part, close in reversed(getattr(self, "_closers", [])):
            try:
                result = close()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("closing the %s failed", part)
        self._closers = []

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
        if self.selftests.claims_reader_event(event):
            self._reader = event.reader  # a test card for the card-reader self-test: no visit
            return
        if kind == "inserted":
            self._reader = event.reader
            if self.flow.state == "idle":
                self.post(ev.StaffPasswordState(self._staff_available()))  # set or cleared since
            self.post(ev.CardInserted(uuid.uuid4().hex[:12]))
        elif kind == "removed":
            if self.flow.visit is not None:
                self.post(ev.CardRemoved())
            self._spawn(self.card.release())
        elif kind in ("reader_lost", "service_lost"):
            log.warning("card reader: %s", getattr(event, "message", kind))
            if self.flow.visit is not None:
                self.post(ev.CardRemoved())
            cause = codes.READER_LOST if kind == "reader_lost" else codes.PCSCD_DOWN
            self._queue_host("reader.event", kind="fault", code=cause.code, message=f"card reader: {kind}")
        elif kind == "service_back":
            log.info("card reader service is back")

    def _on_key(self, pos: int) -> None:
        if self.selftests.take_key(pos):
            return  # the keypad self-test has the keys while it runs
        if self.voice.handle_key(pos, self.flow.pin_entry_active):
            return  # the repeat-prompt key: said again, the flow never sees it
        if not self.flow.pin_entry_active and self.screen.page_key(pos):
            return  # the page key (9) turned a long screen's page; the flow never sees it
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
        self.voice.observe(a)  # Show: its prompt spoken; Indicate: its chime on the speaker (never raises)
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
            # scrypt on a worker thread (wipes the digits); outcome: ok | wrong | locked | not_set
            self.staff.submit(self.pin.take().take_ascii(), self.loop,
                              lambda v: self.post(ev.StaffPasswordChecked(v.ok, v.outcome)))
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
        elif isinstance(a, ev.SetDisplay):
            self.screen.set_display(a.lang, a.toggle_large)  # the patient's language and text size
        elif isinstance(a, ev.EndVisit):
            self.pin.end()
            self.face.forget()
            self._forget_code_b()
            release_free_memory()
            if self.flow.visit is not None:
                self.host.forget(self.flow.visit.visit_id)

    async def _read_card(self) -> None:
        """Read the chip and, at the same time, the printed card face; offer 顔認証 only when
        照合番号B was read with confidence and the card has tries to spare."""
        visit = self.flow.visit
        code_task = asyncio.ensure_future(self.cardface.read()) if self.face.enabled and self.cardface.enabled \
            else None
        result = await self.card.read(self._reader or "")
        code = await code_task if code_task is not None else None
        if not isinstance(result, ev.CardRead) or self.flow.visit is not visit:
            if code is not None:
                code.wipe()
            self.post(result)
            return
        photo, note = False, None
        if code is not None:
            photo, note = await self._check_code_b(code)
            if photo:
                self._forget_code_b()
                self._code_b = code
            else:
                code.wipe()
        self.post(dataclasses.replace(result, photo=photo, face_note=note))
        if photo:
            reserve = self.cfg.card.code_b_reserve
            self.face.prepare(lambda: self.card.face_photo(self._take_code_b(), reserve))

    async def _check_code_b(self, code: CodeB) -> tuple[bool, str | None]:
        """(offer face, note for the screen) for a card-face read; asks the card's counter
        (no try spent) so that the reserve is kept whatever other readers did before."""
        if code.digits is None:
            log.info("face authentication not offered: the card face could not be read (%s)", code.reason)
            return False, "card_face_unreadable"
        try:
            status = await self.card.code_b_status()
        except CardError as e:
            log.warning("face authentication not offered: 照合番号B counter unreadable: %s", e.message)
            return False, "card_face_unreadable"
        if status.locked:
            log.info("face authentication not offered: 照合番号B is locked on this card")
            return False, "code_b_locked"
        if status.tries_left is not None and status.tries_left <= self.cfg.card.code_b_reserve:
            log.info("face authentication not offered: 照合番号B has %d tries left (reserve %d)",
                     status.tries_left, self.cfg.card.code_b_reserve)
            return False, "code_b_reserve"
        return True, None

    def _take_code_b(self) -> bytearray:
        code, self._code_b = self._code_b, None
        return code.take() if code is not None else bytearray()

    def _forget_code_b(self) -> None:
        code, self._code_b = self._code_b, None
        if code is not None:
            code.wipe()

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
            self.post(ev.AuthFailed(codes.HOST_UNREACHABLE.code, codes.HOST_UNREACHABLE.reason))
            return
        except asyncio.CancelledError:
            if self.flow.visit is visit and not self._stopping.is_set():
                self.post(ev.AuthFailed(codes.CHALLENGE_CONFLICT.code, codes.CHALLENGE_CONFLICT.reason))
            return
        except CardError as e:
            self.post(ev.AuthFailed(e.code, getattr(e, "reason", type(e).__name__)))
            return
        if self.flow.visit is not visit or visit.finished or self.flow.state != "authenticating":
            # the visit ended meanwhile (card pulled, a conflicting challenge): its signature is not sent
            log.info("visit %s ended before its authentication was sent; not sending it", visit.visit_id)
            return
        await self.host.submit("visit.authenticated", **fields)  # waits for room rather than refusing

    def _send_host(self, a: ev.SendHost) -> None:
        fields = dict(a.fields)
        if a.type == "visit.started":
            self._note_visit_open(str(fields.get("visit_id")))  # on disk before the host can open it
        if a.type == "visit.started" and self.card.visit is not None:
            cv = self.card.visit
            fields.update(cert_der=base64.b64encode(cv.cert_der).decode(), cert_serial=str(cv.cert_serial),
                          cert_not_after=cv.not_after.isoformat())
        elif a.type == "visit.result":
            fields["ConsTime"] = cons_time()
        stored = self._queue_host(a.type, **fields)
        if stored is None:
            return
        visit_id = str(fields.get("visit_id"))
        if a.confirm:  # the flow tells the patient 「完了」 only once the result is durable
            self._when_stored(stored, lambda: self.post(ev.ResultStored(visit_id)))
        if a.type in ("visit.result", "visit.aborted"):  # the open-visit note goes once the end is durable
            self._closing_until_stored(visit_id, stored)

    @staticmethod
    def _when_stored(stored: asyncio.Future[str], then: Callable[[], None]) -> None:
        """Run ``then`` on the loop once the message is durable in the outbox (never if the daemon
        stops first: the open-visit note then stays and the next start closes the visit)."""
        def done(f: asyncio.Future[str]) -> None:
            if not f.cancelled() and f.exception() is None:
                then()

        stored.add_done_callback(done)

    def _queue_host(self, type_: str, **fields: Any) -> asyncio.Future[str] | None:
        if fields.get("code"):  # for status: the last reader code (mynad.core.codes), no message text
            self.last_error = {"code": str(fields["code"]), "at": time.time(), "type": type_}
        try:
            return self.host.send(type_, **fields)
        except HostQueueFull as e:
            # Only when the outbox has stopped storing for a long time (disk full and no reserve
            # left): new visits are refused by then, so this is a reader event or an abort.
            log.error("%s", e)
            return None

    # ------------------------------------------------------------ visits a crash interrupted

    def _close_interrupted_visit(self) -> None:
        """Tell the host how the visits the last run left open ended (kill -9, watchdog, power cut)."""
        try:
            left = self.open_visit.load_all()
        except OpenVisitError as e:
            log.warning("%s; removing it", e.message)
            self._note_visit_closed(None)
            return
        for visit in left:
            self._close_left_visit(visit.visit_id, visit.started)

    def _close_left_visit(self, visit_id: str, started: str) -> None:
        """A recorded visit that is not this run's: closed unless its end is already durable."""
        if self.host.visit_closed(visit_id):
            # killed after the visit's result (or abort) was stored and before its note went:
            # the outbox delivers that; an abort now would contradict it (found by the soak)
            log.info("visit %s ended before the restart; its end is in the outbox", visit_id)
            self._note_visit_closed(visit_id)
            return
        log.warning("visit %s was interrupted by a restart (started %s); telling the host", visit_id,
                    started or "at an unknown time")
        stored = self._queue_host("visit.aborted", visit_id=visit_id, reason=ABORT_REASON, code=ABORT_CODE)
        if stored is not None:  # the note stays until the abort is durable: a second crash repeats it
            self._closing_until_stored(visit_id, stored)

    def _closing_until_stored(self, visit_id: str, stored: asyncio.Future[str]) -> None:
        self._closing.add(visit_id)

        def closed() -> None:
            self._closing.discard(visit_id)
            self._note_visit_closed(visit_id)

        self._when_stored(stored, closed)

    def _note_visit_open(self, visit_id: str) -> None:
        try:
            left = self.open_visit.load_all()
        except OpenVisitError:
            left = []
        for visit in left:
            # an earlier visit whose end is queued stays recorded until that end is durable;
            # one with no end at all (the flow was reset mid-visit) is closed now
            if visit.visit_id != visit_id and visit.visit_id not in self._closing:
                if self.host.visit_closed(visit.visit_id):
                    self._note_visit_closed(visit.visit_id)
                else:
                    stored = self._queue_host("visit.aborted", visit_id=visit.visit_id, reason=ABORT_REASON,
                                              code=ABORT_CODE)
                    if stored is not None:
                        self._closing_until_stored(visit.visit_id, stored)
        try:
            self.open_visit.record(visit_id)
        except OpenVisitError as e:
            log.warning("%s: a crash during this visit would leave it open at the host", e.message)

    def _note_visit_closed(self, visit_id: str | None) -> None:
        try:
            self.open_visit.clear(visit_id)
        except OpenVisitError as e:
            log.warning("%s", e.message)
