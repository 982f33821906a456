"""Hardware self-tests, run inside the daemon because the daemon owns the hardware.

A technician at the UART console (``mynactl console``, ``mynactl selftest NAME``) asks
the daemon over its control socket; the devices are the very objects the reception
flow uses, so a pass means the reader works as configured, not that some second
driver instance could open the part. Each test answers with one :class:`Result`:
pass/fail and a plain sentence saying why.

Rules that keep a test from hurting a patient's visit:

* tests run only while the flow is idle, one at a time (``busy_reason``);
* the keypad test takes the keys away from the flow while it runs (``take_key``); the
  card-reader test does the same for card insertions (``claims_reader_event``), so a test
  card never starts a visit;
* output devices (display pattern, buzzer/LED) cannot observe themselves: the daemon
  shows or sounds, then asks the technician, and the answer is the verdict;
* nothing read from a card or a camera leaves this module but counts and verdicts:
  no ATR beyond its hex (not personal), no token, no frame.

The conversation is line-based JSON on one control connection (``Conversation``):
the daemon sends ``{"progress": ...}`` and ``{"ask": ...}`` lines, the client answers an
ask with ``{"answer": true|false}`` and may send ``{"abort": true}`` (or hang up) at any
time; the last line is the result.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Awaitable, Callable

log = logging.getLogger("mynad.selftest")

# name -> what the console shows in its menu
TESTS: dict[str, str] = {
    "card-reader": "card reader (reader present, card ATR, JPKI select)",
    "face-camera": "face camera (frame, brightness, face found)",
    "card-face-camera": "card-face camera (frame, brightness)",
    "keypad": "keypad (press every key in turn)",
    "display": "display (test pattern)",
    "buzzer-led": "buzzer and LED",
    "host-link": "host link (round trip)",
}
# Tests that only look: any member of the control group may run them. The others move
# hardware a patient can see or hear, so they need the staff group (like visual-check).
READ_ONLY_TESTS = ("card-reader", "face-camera", "card-face-camera", "host-link")
HARDWARE_TESTS = ("keypad", "display", "buzzer-led")

KEY_ORDER = tuple(range(1, 13))
KEY_TIMEOUT_S = 20.0
CARD_WAIT_S = 30.0
CONFIRM_TIMEOUT_S = 60.0
FACE_SEARCH_S = 4.0
PING_TIMEOUT_S = 3.0
BRIGHTNESS_OK = (30.0, 225.0)  # mean grey level 0..255 a usable picture lies within


@dataclass
class Result:
    name: str
    ok: bool
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0  # unix time

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Aborted(Exception):
    """The technician pressed the abort key or hung up."""


class Conversation:
    """One self-test's line conversation on a control connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.aborted = asyncio.Event()
        self._pump = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(msg, dict) or msg.get("abort"):
                    break
                await self._answers.put(msg)
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        self.aborted.set()

    async def send(self, msg: dict[str, Any]) -> None:
        self._writer.write((json.dumps(msg, ensure_ascii=False, default=str) + "\n").encode())
        await self._writer.drain()

    async def progress(self, text: str, **extra: Any) -> None:
        await self.send({"progress": text, **extra})

    async def ask(self, question: str, timeout: float = CONFIRM_TIMEOUT_S) -> bool | None:
        """The technician's yes/no; None when no answer came in time. Raises Aborted."""
        await self.send({"ask": question})
        answer = await self.wait(self._answers.get(), timeout)
        if answer is None:
            return None
        return bool(answer.get("answer"))

    async def wait(self, aw: Awaitable[Any], timeout: float) -> Any:
        """``aw``'s value, None on timeout; Aborted when the technician aborts first."""
        task = asyncio.ensure_future(aw)
        stop = asyncio.ensure_future(self.aborted.wait())
        try:
            done, _ = await asyncio.wait({task, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if task in done:
            return task.result()
        task.cancel()
        if stop in done:
            raise Aborted()
        return None

    def close(self) -> None:
        self._pump.cancel()


class SelfTests:
    """The daemon's self-tests over the devices ``app`` (a ``mynad.app.App``) holds."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last: dict[str, Result] = {}
        self._running: str | None = None
        self._keys: asyncio.Queue[int] | None = None
        self._card_hold = False

    # ------------------------------------------------------------ hooks the shell calls

    def take_key(self, pos: int) -> bool:
        """True when the keypad test takes this key (the flow never sees it)."""
        if self._keys is None:
            return False
        self._keys.put_nowait(pos)
        return True

    def claims_reader_event(self, event: Any) -> bool:
        """True when a card insertion must not start a visit: the card-reader test's test card,
        or any card placed while a test has a device the visit would use (camera, keys, panel)."""
        return (self._card_hold or self._running is not None) and getattr(event, "kind", "") == "inserted"

    # ------------------------------------------------------------ entry

    def busy_reason(self) -> str | None:
        if self._running is not None:
            return f"the {self._running} self-test is running; wait for it or abort it"
        state = self.app.flow.state
        if state != "idle":
            return f"a visit is in progress (reader state {state}); self-tests run only while the reader is idle"
        return None

    def results(self) -> dict[str, Any]:
        return {name: r.as_dict() for name, r in sorted(self.last.items())}

    async def run(self, name: str, talk: Conversation) -> dict[str, Any]:
        if name not in TESTS:
            return {"ok": False, "error": f"unknown self-test {str(name)[:40]!r}; known: {', '.join(TESTS)}"}
        busy = self.busy_reason()
        if busy is not None:
            return {"ok": False, "error": busy}
        self._running = name
        fn: Callable[[Conversation], Awaitable[Result]] = getattr(self, "_" + name.replace("-", "_"))
        log.info("self-test %s started", name)
        try:
            result = await fn(talk)
        except Aborted:
            result = Result(name, False, "aborted by the technician")
        except Exception as e:  # a test must answer with a sentence, never leave the console hanging
            log.exception("self-test %s failed unexpectedly", name)
            result = Result(name, False, f"the test itself failed: {getattr(e, 'message', None) or e}")
        finally:
            self._running = None
            self._keys = None
            self._card_hold = False
        result.at = time.time()
        self.last[name] = result
        log.log(logging.INFO if result.ok else logging.WARNING, "self-test %s: %s: %s", name,
                "pass" if result.ok else "FAIL", result.reason)
        return {"ok": True, "result": result.as_dict()}

    # ------------------------------------------------------------ the tests

    async def _card_reader(self, talk: Conversation) -> Result:
        name = "card-reader"
        wanted = self.app.cfg.card.reader
        self._card_hold = True
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        card = self.app.card

        def announce(text: str) -> None:
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(talk.progress(text)))

        fut = card.run(_probe_card, wanted, CARD_WAIT_S, stop.is_set, announce,
                       self.app.cfg.card.apdu_timeout_s)
        try:
            outcome = await talk.wait(fut, CARD_WAIT_S + 15)
        except Aborted:
            stop.set()
            raise
        if outcome is None:
            stop.set()
        return _from_worker(name, outcome, "the card reader did not answer in time")

    async def _face_camera(self, talk: Conversation) -> Result:
        name = "face-camera"
        cam = self.app.devices.camera
        if cam is None:
            return Result(name, False, "no face camera is configured")
        engine = getattr(self.app.face, "engine", None)
        await talk.progress("looking through the face camera: stand in front of it")
        outcome = await talk.wait(asyncio.to_thread(_look_for_face, cam, engine, FACE_SEARCH_S), FACE_SEARCH_S + 20)
        return _from_worker(name, outcome, "the face camera gave no frame in time")

    async def _card_face_camera(self, talk: Conversation) -> Result:
        name = "card-face-camera"
        cam = self.app.devices.card_face
        if cam is None:
            return Result(name, False, "this reader has no card-face camera ([card_face] backend = \"none\")")
        await talk.progress("taking a picture of the card tray")
        outcome = await talk.wait(asyncio.to_thread(_capture_still, cam), 20)
        return _from_worker(name, outcome, "the card-face camera gave no picture in time")

    async def _keypad(self, talk: Conversation) -> Result:
        name = "keypad"
        self._keys = keys = asyncio.Queue[int]()
        wrong: list[tuple[int, int]] = []
        for i, want in enumerate(KEY_ORDER):
            await talk.progress(f"press key {want} ({i + 1} of {len(KEY_ORDER)})", key=want)
            while True:
                got = await talk.wait(keys.get(), KEY_TIMEOUT_S)
                if got is None:
                    return Result(name, False, f"key {want} was not pressed within {KEY_TIMEOUT_S:.0f} s "
                                               f"({i} of {len(KEY_ORDER)} keys worked)",
                                  {"keys_ok": i, "wrong": wrong})
                if got == want:
                    break
                wrong.append((want, got))
                await talk.progress(f"key {got} came instead of key {want}: press key {want}", key=want, got=got)
        if wrong:
            return Result(name, False, f"every key answered, but {len(wrong)} press(es) reported the wrong key "
                                       f"(expected, got): {wrong}", {"keys_ok": len(KEY_ORDER), "wrong": wrong})
        return Result(name, True, f"all {len(KEY_ORDER)} keys answered in turn", {"keys_ok": len(KEY_ORDER)})

    async def _display(self, talk: Conversation) -> Result:
        name = "display"
        screen = self.app.screen
        size = (screen.cfg.width, screen.cfg.height)
        screen._push(pattern_image(size), "selftest_pattern", "display test pattern", {})
        try:
            seen = await talk.ask("Does the display show a checkerboard on the left, 16 grey bars on the right, "
                                  "and a bright frame around the edge?")
        finally:
            if screen.current is not None:
                screen.show(screen.current)  # the flow's screen again
        if seen is None:
            return Result(name, False, "no answer from the technician in time")
        return Result(name, seen, "the technician saw the test pattern" if seen
                      else "the technician did not see the test pattern correctly")

    async def _buzzer_led(self, talk: Conversation) -> Result:
        name = "buzzer-led"
        ind = self.app.indicators
        ind.indicate(buzzer="ok", led="blink")
        try:
            ok = await talk.ask("Did the buzzer sound two rising beeps, and is the LED blinking?")
        finally:
            ind.indicate(led="off")  # the idle state's LED
        if ok is None:
            return Result(name, False, "no answer from the technician in time")
        return Result(name, ok, "the technician heard the buzzer and saw the LED" if ok
                      else "the technician did not hear the buzzer or see the LED blink")

    async def _host_link(self, talk: Conversation) -> Result:
        """A HELLO asking for a reply, answered by the host's HELLO: a signed round trip that
        stores nothing (a DATA message would add to what is owed to the host)."""
        name = "host-link"
        link: Any = getattr(self.app.host, "link", None)
        engine: Any = getattr(link, "engine", None)
        if link is None or engine is None or not link.alive():
            return Result(name, False, "the host link is not running")
        await talk.progress("sending a keep-alive to the host and waiting for its answer")
        rtt_s = await talk.wait(engine.ping(PING_TIMEOUT_S), PING_TIMEOUT_S + 1)
        if rtt_s is not None:
            rtt = rtt_s * 1000
            return Result(name, True, f"the host answered in {rtt:.0f} ms", {"rtt_ms": round(rtt, 1)})
        st = link.status()
        return Result(name, False, f"the host did not answer within {PING_TIMEOUT_S:.0f} s "
                                   f"({st.get('last_error') or 'no error recorded'})", {"transport": st.get("transport")})


# ---------------------------------------------------------------- worker-thread parts

def _from_worker(name: str, outcome: tuple[bool, str, dict[str, Any]] | None, late: str) -> Result:
    """A worker thread's (ok, reason, detail) as the test's result; ``late`` when it gave none in time."""
    if outcome is None:
        return Result(name, False, late)
    ok, reason, detail = outcome
    return Result(name, ok, reason, detail)



def _probe_card(wanted: str, wait_s: float, stopped: Callable[[], bool], announce: Callable[[str], None],
                apdu_timeout: float) -> tuple[bool, str, dict[str, Any]]:
    """Card worker thread: reader present, a card's ATR, then SELECT of the JPKI application."""
    from smartcard import scard

    from mynad.card.channel import CardChannel
    from mynad.card.errors import CardError
    from mynad.card.session import MynaCard

    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hr != scard.SCARD_S_SUCCESS:
        return False, f"the PC/SC service (pcscd) is not available: {scard.SCardGetErrorMessage(hr)}", {}
    try:
        hr, readers = scard.SCardListReaders(ctx, [])
        readers = [r for r in (readers or []) if r.startswith(wanted)] if hr == scard.SCARD_S_SUCCESS else []
        if not readers:
            return False, ("no card reader is connected" + (f" whose name starts with {wanted!r}" if wanted else "")
                           + " (PC/SC lists none)"), {}
        reader = readers[0]
        detail: dict[str, Any] = {"reader": reader}
        deadline = time.monotonic() + wait_s
        asked = False
        state = scard.SCARD_STATE_UNAWARE
        while True:
            hr, states = scard.SCardGetStatusChange(ctx, 500, [(reader, state)])
            if hr == scard.SCARD_S_SUCCESS and states:
                _, state, atr = states[0]
                if state & scard.SCARD_STATE_PRESENT and atr:
                    break
            elif hr not in (scard.SCARD_E_TIMEOUT,):
                return False, f"the card reader stopped answering: {scard.SCardGetErrorMessage(hr)}", detail
            if stopped():
                return False, "aborted by the technician", detail
            if time.monotonic() > deadline:
                return False, f"reader {reader!r} is present, but no card was placed within {wait_s:.0f} s", detail
            if not asked:
                announce(f"reader found ({reader}); place a My Number card (a test card) on it")
                asked = True
            state = state & ~scard.SCARD_STATE_CHANGED
        detail["atr"] = bytes(atr).hex(" ")
    finally:
        scard.SCardReleaseContext(ctx)
    try:
        channel = CardChannel.connect_pcsc(reader, timeout=apdu_timeout)
    except CardError as e:
        return False, f"a card is present (ATR {detail['atr']}) but cannot be connected: {e.message}", detail
    try:
        token = MynaCard(channel).identify()
        detail["jpki"] = token.token.split()[0] if token.token else ""
        return True, f"reader present, card ATR read, JPKI application selected ({detail['jpki']})", detail
    except CardError as e:
        return False, f"a card answers (ATR {detail['atr']}) but the JPKI application is not usable: {e.message}", \
            detail
    finally:
        try:
            channel.close()
        except Exception:
            pass


def _brightness(bgr: Any) -> float:
    import numpy as np

    arr = np.asarray(bgr, dtype=np.float32)
    return float(arr.mean())


def _brightness_problem(level: float) -> str | None:
    lo, hi = BRIGHTNESS_OK
    if level < lo:
        return f"the picture is too dark (mean level {level:.0f} of 255; covered lens or no light?)"
    if level > hi:
        return f"the picture is too bright (mean level {level:.0f} of 255; facing a window or a lamp?)"
    return None


def _look_for_face(cam: Any, engine: Any, search_s: float) -> tuple[bool, str, dict[str, Any]]:
    """Face worker: frames until a face is found or ``search_s`` passes; no frame is kept."""
    cam.start()
    try:
        frame = cam.read()
        h, w = frame.bgr.shape[:2]
        level = _brightness(frame.bgr)
        detail: dict[str, Any] = {"size": f"{w}x{h}", "brightness": round(level, 1)}
        bad = _brightness_problem(level)
        if bad:
            return False, bad, detail
        if engine is None:
            return False, "frames arrive, but the face models are not loaded (face authentication disabled)", detail
        deadline = time.monotonic() + search_s
        frames = 0
        while True:
            faces = engine.detect(frame.bgr)
            frames += 1
            if faces:
                detail.update(frames=frames, faces=len(faces))
                return True, f"frame {w}x{h}, brightness {level:.0f}, a face found", detail
            if time.monotonic() > deadline:
                detail["frames"] = frames
                return False, f"frames arrive ({w}x{h}, brightness {level:.0f}) but no face was found in " \
                              f"{frames} frames: stand in front of the camera and test again", detail
            del frame
            frame = cam.read()
    finally:
        cam.stop()


def _capture_still(cam: Any) -> tuple[bool, str, dict[str, Any]]:
    still = cam.capture()
    h, w = still.shape[:2]
    level = _brightness(still)
    del still
    detail = {"size": f"{w}x{h}", "brightness": round(level, 1)}
    bad = _brightness_problem(level)
    if bad:
        return False, bad, detail
    return True, f"picture {w}x{h}, brightness {level:.0f}", detail


def pattern_image(size: tuple[int, int]) -> Any:
    """Checkerboard (pixel defects, focus), 16 grey bars (greyscale levels), a frame (edges)."""
    from PIL import Image, ImageDraw

    w, h = size
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    half = w // 2
    cell = 8
    for y in range(0, h, cell):
        for x in range(0, half, cell):
            if (x // cell + y // cell) % 2 == 0:
                draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=255)
    bar = max(1, (w - half) // 16)
    for i in range(16):
        draw.rectangle((half + i * bar, 0, half + (i + 1) * bar - 1, h - 1), fill=i * 17)
    draw.rectangle((0, 0, w - 1, h - 1), outline=255)
    return img
