"""PC/SC through pyscard's raw ``smartcard.scard`` API: reader events and APDU exchange.

Why not pyscard's ``CardMonitor``: it stops for good when pcscd restarts, dies when a
reader is unplugged, can miss a fast place/remove, and misbehaved on a Pi 3B+
(docs/sources.md §S8). ``PcscMonitor`` runs its own ``SCardGetStatusChange`` loop:
one thread, a 1 s wait so stopping is prompt, the PnP pseudo-reader for hot-plug,
pcsc-lite's per-reader event counter (high 16 bits of the event state) to notice a
remove+insert that happened between two wake-ups, and a new context with back-off
whenever pcscd goes away. Events are posted with a callback; the caller moves them
onto its loop.

``PcscTransport`` is one connection to one card. It moves bytes and nothing else:
``exchange`` sends one APDU and returns the card's whole answer (data + status word)
within a time limit, because a mute card would otherwise block SCardTransmit for as
long as pcscd likes. What the answer means (61xx GET RESPONSE, 6Cxx wrong Le, status
words) is the card layer's business (``mynad.card.channel``), so this driver imports
nothing of the daemon. Its failures are :class:`PcscError` values with a ``kind`` the
card layer translates; VERIFY data is never logged.
"""

from __future__ import annotations

import logging
import threading
import time
import queue
from dataclasses import dataclass
from typing import Callable

from smartcard import scard

log = logging.getLogger("myna.pcsc")

# SCardStatus state bits (pcsc-lite pcsclite.h; pyscard does not export them)
_STATE_ABSENT = 0x0002
_STATE_PRESENT = 0x0004
PNP = "\\\\?PnP?\\Notification"
WAIT_MS = 1000

# hresults that mean "pcscd is gone or our context is stale": start over with a new context
_SERVICE_GONE = {scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED, scard.SCARD_E_INVALID_HANDLE,
                 scard.SCARD_F_COMM_ERROR}  # COMM_ERROR: "RPC transport error", seen when pcscd dies
_CARD_GONE = {scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_RESET_CARD,
              scard.SCARD_E_READER_UNAVAILABLE, scard.SCARD_E_UNKNOWN_READER}
_CARD_MUTE = {scard.SCARD_W_UNRESPONSIVE_CARD, scard.SCARD_E_NOT_TRANSACTED, scard.SCARD_E_TIMEOUT,
              scard.SCARD_W_UNPOWERED_CARD, getattr(scard, "SCARD_E_PROTO_MISMATCH", 0x8010000F)}


class PcscError(Exception):
    """A PC/SC failure, in plain words, with a ``kind`` for whoever gives it meaning.

    kind: ``"card_gone"`` (removed or reset mid-command), ``"card_mute"`` (no answer in
    time), ``"service_gone"`` (pcscd stopped or the context went stale), ``"reader"``
    (any other reader failure), ``"malformed"`` (an answer too short to hold a status word).
    """

    kind = "reader"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class CardGone(PcscError):
    kind = "card_gone"


class CardMute(PcscError):
    kind = "card_mute"


class ServiceGone(PcscError):
    kind = "service_gone"


class MalformedAnswer(PcscError):
    kind = "malformed"


def _text(hresult: int) -> str:
    try:
        return f"{scard.SCardGetErrorMessage(hresult)} (0x{hresult & 0xFFFFFFFF:08X})"
    except Exception:
        return f"0x{hresult & 0xFFFFFFFF:08X}"


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:
        pass


@dataclass(frozen=True)
class ReaderEvent:
    kind: str  # inserted | removed | reader_lost | reader_back | service_lost | service_back
    reader: str
    atr: bytes | None = None
    message: str = ""


class PcscMonitor:
    def __init__(self, on_event: Callable[[ReaderEvent], None], reader_filter: str = "") -> None:
        self.on_event = on_event
        self.reader_filter = reader_filter
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pcsc-monitor", daemon=True)
        self._ctx = None
        self._present: dict[str, bool] = {}   # reader -> card present (as last reported)
        self._counter: dict[str, int] = {}    # reader -> pcsc-lite event counter
        self._state: dict[str, int] = {}      # reader -> last event state (for the next wait)
        self._known_readers: set[str] = set()
        self.last_beat = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        ctx = self._ctx
        if ctx is not None:
            # SCardCancel can itself wait on a pcscd that is busy with a mute card: never block on it
            threading.Thread(target=_quietly, args=(scard.SCardCancel, ctx), daemon=True).start()
        self._thread.join(3)

    def alive(self) -> bool:
        """The monitor thread runs and has woken within the last few waits."""
        return self._thread.is_alive() and time.monotonic() - self.last_beat < 10 * WAIT_MS / 1000

    # ------------------------------------------------------------ loop

    def _post(self, kind: str, reader: str, atr: bytes | None = None, message: str = "") -> None:
        try:
            self.on_event(ReaderEvent(kind, reader, atr, message))
        except Exception:
            log.exception("reader event handler failed")

    def _run(self) -> None:
        service_lost = False
        delay = 0.2
        while not self._stop.is_set():
            self.last_beat = time.monotonic()
            hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hr != scard.SCARD_S_SUCCESS:
                if not service_lost:
                    service_lost = True
                    self._lose_all(f"the PC/SC service is not available: {_text(hr)}")
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)
                continue
            self._ctx = ctx
            if service_lost:
                service_lost = False
                self._post("service_back", "", message="the PC/SC service is back")
            delay = 0.2
            try:
                reason = self._watch(ctx)
            finally:
                self._ctx = None
                try:
                    scard.SCardReleaseContext(ctx)
                except Exception:
                    pass
            if reason and not self._stop.is_set():
                service_lost = True
                self._lose_all(reason)
                self._stop.wait(delay)

    def _lose_all(self, message: str) -> None:
        """pcscd went away: every card connection is gone; say so once."""
        for reader, present in list(self._present.items()):
            if present:
                self._post("removed", reader, message="card connection lost with the PC/SC service")
        self._present.clear()
        self._counter.clear()
        self._state.clear()
        self._post("service_lost", "", message=message)

    def _readers(self, ctx) -> list[str] | None:
        hr, readers = scard.SCardListReaders(ctx, [])
        if hr in _SERVICE_GONE:
            return None
        if hr != scard.SCARD_S_SUCCESS:
            readers = []
        return [r for r in readers if r.startswith(self.reader_filter)]

    def _watch(self, ctx) -> str | None:
        """Wait for changes until stopped; return why the context had to be dropped."""
        readers = self._readers(ctx)
        if readers is None:
            return "the PC/SC service stopped"
        self._sync_readers(readers)
        pnp_state = scard.SCARD_STATE_UNAWARE
        while not self._stop.is_set():
            self.last_beat = time.monotonic()
            states = [(r, self._state.get(r, scard.SCARD_STATE_UNAWARE)) for r in readers]
            states.append((PNP, pnp_state))
            hr, new = scard.SCardGetStatusChange(ctx, WAIT_MS, states)
            if hr in (scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED):
                continue
            if hr in _SERVICE_GONE or hr == getattr(scard, "SCARD_E_SYSTEM_CANCELLED", 0x80100012):
                return f"the PC/SC service stopped: {_text(hr)}"
            if hr == scard.SCARD_E_UNKNOWN_READER:
                readers = self._readers(ctx)
                if readers is None:
                    return "the PC/SC service stopped"
                self._sync_readers(readers)
                continue
            if hr != scard.SCARD_S_SUCCESS:
                log.warning("SCardGetStatusChange: %s", _text(hr))
                self._stop.wait(0.5)
                continue
            reader_change = False
            for reader, event_state, atr in new:
                if reader == PNP:
                    if event_state & scard.SCARD_STATE_CHANGED:
                        reader_change = True
                    pnp_state = event_state & ~scard.SCARD_STATE_CHANGED
                    continue
                self._reader_state(reader, event_state, bytes(atr or b""))
            if reader_change:
                fresh = self._readers(ctx)
                if fresh is None:
                    return "the PC/SC service stopped"
                readers = fresh
                self._sync_readers(readers)
        return None

    def _sync_readers(self, readers: list[str]) -> None:
        now = set(readers)
        for gone in self._known_readers - now:
            if self._present.pop(gone, False):
                self._post("removed", gone, message="the reader disappeared with the card")
            self._counter.pop(gone, None)
            self._state.pop(gone, None)
            self._post("reader_lost", gone, message=f"card reader {gone!r} disappeared")
        for came in now - self._known_readers:
            if self._known_readers or self._present:
                self._post("reader_back", came, message=f"card reader {came!r} is available")
        self._known_readers = now

    def _reader_state(self, reader: str, event_state: int, atr: bytes) -> None:
        counter = (event_state >> 16) & 0xFFFF
        present = bool(event_state & scard.SCARD_STATE_PRESENT) and not (event_state & scard.SCARD_STATE_MUTE)
        if event_state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_IGNORE | scard.SCARD_STATE_UNAVAILABLE):
            present = False
        was = self._present.get(reader, False)
        last = self._counter.get(reader)
        self._state[reader] = event_state & ~scard.SCARD_STATE_CHANGED
        self._counter[reader] = counter
        if was and present and last is not None and counter != last and counter - last >= 2:
            # removed and placed again between two wake-ups: report both
            self._post("removed", reader, message="card removed (fast swap)")
            self._post("inserted", reader, atr)
        elif present and not was:
            self._post("inserted", reader, atr)
        elif was and not present:
            self._post("removed", reader)
        self._present[reader] = present


class PcscTransport:
    """One connection to the card in ``reader``; every command has a time limit."""

    def __init__(self, ctx, card, protocol: int, reader: str, timeout: float) -> None:
        self._ctx = ctx
        self._card = card
        self._pci = scard.SCARD_PCI_T1 if protocol == scard.SCARD_PROTOCOL_T1 else scard.SCARD_PCI_T0
        self.reader = reader
        self.timeout = timeout
        self._io = _IoThread()
        self.broken = False

    @classmethod
    def connect(cls, reader: str, timeout: float = 5.0) -> "PcscTransport":
        hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hr != scard.SCARD_S_SUCCESS:
            raise ServiceGone(f"the PC/SC service is not available: {_text(hr)}")
        hr, card, protocol = scard.SCardConnect(ctx, reader, scard.SCARD_SHARE_SHARED,
                                                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if hr != scard.SCARD_S_SUCCESS:
            scard.SCardReleaseContext(ctx)
            if hr in _CARD_GONE:
                raise CardGone(f"the card left before it could be read: {_text(hr)}")
            if hr in _CARD_MUTE:
                raise CardMute(f"the card does not answer: {_text(hr)}")
            raise PcscError(f"cannot connect to the card in {reader!r}: {_text(hr)}")
        return cls(ctx, card, protocol, reader, timeout)

    def _raw(self, apdu: list[int], timeout: float) -> bytes:
        if self.broken:
            raise CardMute("the card stopped answering earlier in this visit")
        try:
            hr, response = self._io.call(timeout, scard.SCardTransmit, self._card, self._pci, apdu)
        except TimeoutError:
            self.broken = True
            raise CardMute(f"the card did not answer within {timeout:.1f} s") from None
        if hr != scard.SCARD_S_SUCCESS:
            if hr in _CARD_GONE:
                self.broken = True
                raise CardGone(f"the card was removed during a command: {_text(hr)}")
            if hr in _CARD_MUTE:
                self.broken = True
                raise CardMute(f"the card did not answer: {_text(hr)}")
            if hr in _SERVICE_GONE:
                self.broken = True
                raise ServiceGone(f"the PC/SC service went away: {_text(hr)}")
            raise PcscError(f"the reader reported an error: {_text(hr)}")
        if not response:
            self.broken = True
            if self._card_gone():
                raise CardGone("the card was removed during a command (empty answer)")
            raise CardMute("the card gave no answer at all")
        if len(response) < 2:
            raise MalformedAnswer(f"the card answered {len(response)} byte(s), no status word")
        return bytes(response)

    def _card_gone(self, wait_s: float = 0.5) -> bool:
        """After an empty answer: did the card leave? vpcd answers empty when it is pulled,
        and pcscd may take a moment to notice, so look again for up to ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                hr, _reader, state, _proto, _atr = scard.SCardStatus(self._card)
            except Exception:
                return True
            if hr != scard.SCARD_S_SUCCESS or state & _STATE_ABSENT or not state & _STATE_PRESENT:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def exchange(self, apdu: bytes | bytearray, timeout: float | None = None) -> bytes:
        """Send one APDU; the card's whole answer (data + SW1 SW2). The list handed to
        pyscard is overwritten afterwards: it may have carried a PIN."""
        command = list(apdu)
        try:
            return self._raw(command, self.timeout if timeout is None else timeout)
        finally:
            for i in range(len(command)):
                command[i] = 0

    def close(self) -> None:
        """Power the card off (its security state is reset) and let go; never blocks on a mute card."""
        card, ctx = self._card, self._ctx
        self._card = self._ctx = None
        io = self._io

        def release() -> None:
            if card is not None:
                try:
                    scard.SCardDisconnect(card, scard.SCARD_UNPOWER_CARD)
                except Exception:
                    pass
            if ctx is not None:
                try:
                    scard.SCardReleaseContext(ctx)
                except Exception:
                    pass

        io.stop()
        if self.broken:
            # a transmit may still be blocked in pcscd; release in the background
            threading.Thread(target=release, name="pcsc-release", daemon=True).start()
        else:
            release()


class _IoThread:
    """One daemon thread that runs blocking PC/SC calls with a deadline for the caller.

    A daemon thread (not a ThreadPoolExecutor) so that a call stuck inside pcscd on a
    mute card can never hold up the daemon's exit.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="pcsc-io", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, args, box, done = job
            try:
                box.append((True, fn(*args)))
            except BaseException as e:  # handed to the caller
                box.append((False, e))
            done.set()

    def call(self, timeout: float, fn, *args):
        box: list = []
        done = threading.Event()
        self._jobs.put((fn, args, box, done))
        if not done.wait(timeout):
            raise TimeoutError
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def stop(self) -> None:
        self._jobs.put(None)
