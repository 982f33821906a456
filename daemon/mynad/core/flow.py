"""The reception flow (受付の流れ) as a pure state machine.

``ReceptionFlow.handle(event, now)`` returns the actions the shell must carry out;
it never does I/O, reads a clock or draws random numbers, so every visit can be
replayed from its event list, and property tests can drive it through millions of
event sequences. ``now`` is the loop's monotonic time, used only for the
device-wide PIN throttle.

The flow follows docs/reception-flow.md row by row:
card → certificate check → method choice → face / PIN / staff check → host
qualification (registration on the spot if needed) → consents (carried over if
the patient keeps the previous answers) → 受付完了 → card removal.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from mynad.core import codes
from mynad.core.cert_policy import CertState
from mynad.core.config import FlowConfig
from mynad.core.events import (
    Action,
    AuthFailed,
    Authenticate,
    CancelTimer,
    CardFailed,
    CardInserted,
    CardRead,
    CardRemoved,
    ChallengeConflict,
    CheckStaffPassword,
    ClearPin,
    EndVisit,
    Event,
    FaceDone,
    FaceHint,
    FaceUnavailable,
    HostQualification,
    HostVisualCheck,
    Indicate,
    KeyPressed,
    PinChecked,
    PinDigit,
    PinLayoutReady,
    ReadCard,
    ResultStored,
    SendHost,
    SetDisplay,
    Show,
    StaffPasswordChecked,
    StaffPasswordState,
    StartFace,
    StartPinEntry,
    StartTimer,
    StopFace,
    StorageChanged,
    TimerFired,
    VerifyPin,
)
from mynad.core.secret import PIN_LENGTH
from mynad.ui.i18n import DEFAULT_LANG, LANG_CODES
from mynad.ui.screens import Screen

NEG = 10  # 終了する / 同意しない / 戻る / 取消
POS = 12  # 次に進む / 同意する / 決定 / クリア (on the PIN pad)
CHOICE_KEYS = (1, 2, 3, 4)
LANG_KEY = 11  # on the first screen after the card is read: the language menu (docs/languages.md)

# Reader error codes sent to the host with every abort and shown on every error screen
# (field practice: staff read the code and call support). One code per cause, all from
# the one table in mynad.core.codes (docs/error-codes.md is generated from it).
CODE_NOT_MYNA = codes.NOT_MYNA.code
CODE_CERT_EXPIRED = codes.CERT_EXPIRED.code
CODE_WRONG_PIN = codes.WRONG_PIN.code
CODE_PIN_LOCKED = codes.PIN_LOCKED.code
CODE_FACE_FAILED = codes.FACE_FAILED.code
CODE_PIN_THROTTLED = codes.PIN_THROTTLED.code
CODE_FACE_UNAVAILABLE = codes.FACE_UNAVAILABLE.code
CODE_HOST_TIMEOUT = codes.HOST_UNREACHABLE.code
CODE_QUALIFICATION = codes.QUALIFICATION_FAILED.code
CODE_NOT_REGISTERED = codes.NOT_REGISTERED.code
CODE_CANCELLED = codes.CANCELLED.code
CODE_TIMEOUT = codes.SCREEN_TIMEOUT.code
CODE_CARD_REMOVED = codes.CARD_REMOVED.code
CODE_STAFF_REJECTED = codes.STAFF_REJECTED.code
CODE_CHALLENGE_CONFLICT = codes.CHALLENGE_CONFLICT.code
CODE_STAFF_NOT_SET = codes.STAFF_PASSWORD_NOT_SET.code
CODE_STAFF_WRONG = codes.STAFF_PASSWORD_WRONG.code
CODE_STAFF_LOCKED = codes.STAFF_PASSWORD_LOCKED.code
CODE_STORAGE = codes.STORAGE_FULL.code

# Consent item -> OQS result-file flag names (docs/reception-flow.md §10, docs/sources.md §S5).
CONSENT_FLAGS: dict[str, tuple[str, ...]] = {
    "surgery": ("OperationInfoConsFlg",),
    "care_medicine": ("DiagnosisInfoConsFlg", "PharmacistsInfoConsFlg"),
    "checkup": ("SpecificHealthCheckupsInfoConsFlg",),
    "comprehensive": ("ComprehensiveConsFlg",),
    "limit": ("LimitApplicationCertificateRelatedConsFlg",),
}

# States in which the patient (or staff) is expected to act; each has a timeout.
_INTERACTIVE = {
    "cert_notice", "method", "face", "face_failed", "pin_entry", "pin_last_try", "pin_locked",
    "staff_password", "staff_confirm", "staff_refused", "registration_offer", "registration_done", "carryover", "consent",
    "language",
}


@dataclass
class Visit:
    visit_id: str
    card: CardRead | None = None
    qualification_only: bool = False
    pin_tries: int | None = None
    pin_locked: bool = False
    has_pin: bool = True
    face_possible: bool = True
    face_note: str | None = None  # why 顔認証 is not offered (shown under the method choice)
    face_unavailable: tuple[str, str] | None = None  # (code, reason) of why the photo could not be used
    face_attempt: int = 0
    face_score: float | None = None
    method: str | None = None
    proxy: bool = False
    choices: tuple[str, ...] = ()  # the method choices as shown: keys never shift under a finger
    last_try_confirmed: bool = False
    layout: tuple[str, ...] = ()
    entered: int = 0
    wrong: bool = False
    staff_wrong: int = 0
    staff_from_host: bool = False
    qualification: HostQualification | None = None
    consent_queue: list[str] = field(default_factory=list)
    consent_index: int = 0
    consents: dict[str, bool] = field(default_factory=dict)
    previous: dict[str, bool] | None = None
    finished: bool = False  # a visit.result or visit.aborted has been queued
    abort_code: str | None = None  # the code sent with visit.aborted: the last screen shows the same
    reminded: bool = False
    lang: str = DEFAULT_LANG  # the patient's language for this visit (language menu, key 11)
    large_toggled: bool = False  # the patient switched the text size for this visit
    lang_from: str = ""  # the state the language menu returns to ("method" | "cert_notice")


class ReceptionFlow:
    def __init__(self, config: FlowConfig | None = None) -> None:
        self.cfg = config or FlowConfig()
        self.state = "idle"
        self.visit: Visit | None = None
        self.visual_armed = False
        self._tokens: dict[str, int] = {}
        self._next_token = 0
        self._wrong_pins: deque[float] = deque()
        self._throttled_until = 0.0
        self._out: list[Action] = []
        self.storage_ok = True  # False: results cannot be stored (disk full), no new visit starts
        self.staff_available = True  # a staff password is set: 目視確認 can be used

    # ------------------------------------------------------------ public

    @property
    def pin_entry_active(self) -> bool:
        """True while digit keys belong to the shell's secret buffer."""
        v = self.visit
        if v is None or not v.layout:
            return False
        if self.state == "pin_entry":
            return v.entered < PIN_LENGTH
        if self.state == "staff_password":
            return v.entered < self.cfg.staff_password_length
        return False

    @property
    def pin_length(self) -> int:
        return self.cfg.staff_password_length if self.state == "staff_password" else PIN_LENGTH

    def start(self) -> list[Action]:
        self._out = []
        self._emit(SetDisplay())  # after a restart of the flow, too: Japanese, default size
        self._show("idle", mode="auto")
        return self._flush()

    def status(self) -> dict[str, object]:
        """A snapshot for logs, mynactl and the host: no secrets by construction."""
        v = self.visit
        return {
            "state": self.state,
            "visual_armed": self.visual_armed,
            "visit_id": v.visit_id if v else None,
            "method": v.method if v else None,
            "pin_entered": v.entered if v else 0,
            "storage_ok": self.storage_ok,
        }

    def handle(self, event: Event, now: float) -> list[Action]:
        self._out = []
        self._now = now
        if isinstance(event, TimerFired):
            if self._tokens.get(event.name) != event.token:
                return []  # a stale timer: cancelled or replaced since
            del self._tokens[event.name]
        if isinstance(event, CardRemoved):
            self._card_removed()
        elif isinstance(event, StorageChanged):
            self._storage_changed(event)
        elif isinstance(event, StaffPasswordState):
            self.staff_available = event.available
        elif isinstance(event, ChallengeConflict):
            v = self.visit
            if v is not None and event.visit_id == v.visit_id and self.state == "authenticating":
                self._cancel_timer("host")
                self._fail("host_error", "challenge_conflict", CODE_CHALLENGE_CONFLICT, code=CODE_CHALLENGE_CONFLICT,
                           reason=codes.CHALLENGE_CONFLICT.reason)
        elif isinstance(event, HostVisualCheck):
            self._host_visual_check()
        elif isinstance(event, TimerFired) and event.name == "visual_mode":
            self._disarm_visual("timeout")
        elif isinstance(event, TimerFired) and event.name == "screen" and self.state in _INTERACTIVE:
            self._cancel("timeout")
        elif isinstance(event, (CardFailed, AuthFailed)) and self.visit is not None \
                and self.state not in ("reading", "ended", "remove", "done", "idle"):
            # the card went mute or answered garbage in the middle of a step
            self._cancel_timer("host")
            self._fail("card_error", "card_error", event.code, code=event.code, reason=event.reason)
        else:
            handler = getattr(self, f"_on_{self.state}", None)
            if handler is not None:
                handler(event)
        return self._flush()

    # ------------------------------------------------------------ helpers

    def _flush(self) -> list[Action]:
        out, self._out = self._out, []
        return out

    def _emit(self, *actions: Action) -> None:
        self._out.extend(actions)

    def _show(self, screen_id: str, **params: object) -> None:
        self._emit(Show(Screen(screen_id, params)))

    def _timer(self, name: str, seconds: float) -> None:
        self._next_token += 1
        self._tokens[name] = self._next_token
        self._emit(StartTimer(name, seconds, self._next_token))

    def _cancel_timer(self, name: str) -> None:
        if self._tokens.pop(name, None) is not None:
            self._emit(CancelTimer(name))

    def _enter(self, state: str) -> None:
        """Move to ``state``; interactive states get a fresh screen timeout."""
        self.state = state
        if state in _INTERACTIVE:
            self._timer("screen", self.cfg.screen_timeout_s)
        else:
            self._cancel_timer("screen")

    def _send(self, type_: str, confirm: bool = False, **fields: object) -> None:
        self._emit(SendHost(type_, fields, confirm))

    def _abort(self, reason: str, code: str) -> None:
        v = self.visit
        if v is not None and not v.finished:
            v.finished = True
            v.abort_code = code
            self._send("visit.aborted", visit_id=v.visit_id, reason=reason, code=code)

    def _leave_pin(self) -> None:
        v = self.visit
        if v is not None and v.layout:
            v.layout = ()
            v.entered = 0
            self._emit(ClearPin())

    def _stop_face(self) -> None:
        if self.state == "face":
            self._emit(StopFace())

    # ------------------------------------------------------------ global events

    def _card_removed(self) -> None:
        v = self.visit
        if v is None:
            return
        self._stop_face()
        self._leave_pin()
        self._abort("card_removed", CODE_CARD_REMOVED)
        for name in list(self._tokens):
            if name != "visual_mode" or v.staff_from_host:
                self._cancel_timer(name)
        self._emit(EndVisit(), Indicate(led="off"))
        if v.lang != DEFAULT_LANG or v.large_toggled:
            self._emit(SetDisplay())  # the next patient starts in Japanese, at the default size
        self.visit = None
        self.state = "idle"
        if v.staff_from_host or self.visual_armed:
            # 目視確認 returns to automatic mode by itself after the visit
            # (forgetting to switch back is a known field complaint).
            self._disarm_visual("visit_over")
        self._idle_screen()

    def _host_visual_check(self) -> None:
        """The host asks for 目視確認. It only ever leads to the staff password at the reader:
        a message on the host link alone never lets a patient through."""
        if not self.staff_available:
            self._send("reader.event", kind="visual_check_refused", code=CODE_STAFF_NOT_SET,
                       message="目視確認 refused: no staff password is set on this reader")
            return
        if self.state in ("method", "face_failed", "pin_locked", "language") and self.visit is not None:
            self._leave_pin()
            self.visit.staff_from_host = True
            self._send("reader.event", kind="mode_changed", mode="visual", code="", message="目視確認 started by staff")
            self._start_staff()
            return
        if not self.visual_armed:
            self.visual_armed = True
            self._send("reader.event", kind="mode_changed", mode="visual", code="", message="目視確認 armed by staff")
        self._timer("visual_mode", self.cfg.visual_mode_timeout_s)
        if self.state == "idle":
            self._idle_screen()

    def _disarm_visual(self, why: str) -> None:
        self._cancel_timer("visual_mode")
        if self.visual_armed or why == "visit_over":
            self.visual_armed = False
            self._send("reader.event", kind="mode_changed", mode="auto", code="", message=f"automatic mode ({why})")
        if self.state == "idle":
            self._idle_screen()

    def _cancel(self, reason: str) -> None:
        """End the visit early; the card stays until the patient takes it. The screen shows the
        code the host got: the cause's own when the visit was already aborted for one (PIN
        locked, not registered, staff could not confirm...), else 030 / 031."""
        code = {"timeout": CODE_TIMEOUT, "user": CODE_CANCELLED}.get(reason, CODE_CANCELLED)
        self._stop_face()
        self._leave_pin()
        self._abort({"user": "cancelled"}.get(reason, reason), code)
        v = self.visit
        self._show("cancelled", reason=reason, code=(v.abort_code if v is not None and v.abort_code else code))
        self._enter("ended")
        self._timer("notice", self.cfg.notice_s)

    def _fail(self, screen_id: str, abort_reason: str, err_code: str, **params: object) -> None:
        self._stop_face()
        self._leave_pin()
        self._abort(abort_reason, err_code)
        self._show(screen_id, **params)
        self._emit(Indicate(buzzer="error"))
        self._enter("ended")
        self._timer("notice", self.cfg.notice_s)

    # ------------------------------------------------------------ idle / reading

    def _idle_screen(self) -> None:
        if not self.storage_ok:
            self._show("fault", code=CODE_STORAGE, reason="storage_full")
        else:
            self._show("idle", mode="visual" if self.visual_armed else "auto")

    def _storage_changed(self, event: StorageChanged) -> None:
        """A visit in progress goes on (its messages wait in memory); only new visits are refused."""
        if event.ok == self.storage_ok:
            return
        self.storage_ok = event.ok
        if self.state == "idle":
            self._idle_screen()
        elif self.state == "saving":
            self._show("saving", code=None if event.ok else CODE_STORAGE)

    def _on_idle(self, event: Event) -> None:
        if isinstance(event, CardInserted) and not self.storage_ok:
            self._show("fault", code=CODE_STORAGE, reason="storage_full")  # no visit: nothing can be stored
            self._emit(Indicate(buzzer="error"))
        elif isinstance(event, CardInserted):
            self.visit = Visit(event.visit_id)
            if self.visual_armed:
                self.visit.staff_from_host = True
                self.visual_armed = False
                self._cancel_timer("visual_mode")
            self._show("reading")
            self._emit(ReadCard(), Indicate(buzzer="key", led="on"))
            self._enter("reading")

    def _on_reading(self, event: Event) -> None:
        v = self.visit
        assert v is not None
        if isinstance(event, CardFailed):
            reason = event.reason
            self._fail("card_error", "card_error", event.code, code=event.code, reason=reason)
        elif isinstance(event, CardRead):
            v.card = event
            v.has_pin = event.has_pin
            v.pin_tries = event.pin_tries
            v.pin_locked = event.pin_locked
            v.face_possible = event.photo
            v.face_note = event.face_note if not event.photo else None
            self._send("visit.started", visit_id=v.visit_id, cert_state=event.cert_state.value)
            if event.cert_state is CertState.EXPIRED:
                self._fail("cert_expired", "cert_expired", CODE_CERT_EXPIRED, code=CODE_CERT_EXPIRED)
            elif event.cert_state is CertState.GRACE:
                v.qualification_only = True
                self._show("cert_grace")
                self._enter("cert_notice")
            elif event.cert_state is CertState.EXPIRING:
                self._show("cert_expiring")
                self._enter("cert_notice")
            else:
                self._to_method()

    def _on_cert_notice(self, event: Event) -> None:
        if isinstance(event, KeyPressed) and event.pos == POS:
            self._to_method()
        elif isinstance(event, KeyPressed) and event.pos == LANG_KEY:
            self._language_menu()
        elif isinstance(event, FaceUnavailable):
            self._face_unavailable(event)

    # ------------------------------------------------------------ method choice

    def _choices(self) -> list[str]:
        v = self.visit
        assert v is not None
        choices = []
        if v.face_possible:
            choices.append("face")
        if v.has_pin:
            choices.append("pin")
            if self.cfg.offer_proxy:
                choices.append("proxy")
        if self.staff_available:
            choices.append("staff")
        return choices

    def _to_method(self) -> None:
        v = self.visit
        assert v is not None
        if v.staff_from_host:
            self._start_staff()
            return
        v.choices = tuple(self._choices())
        if v.face_note:
            self._show("method_choice", choices=v.choices, note=v.face_note)
        else:
            self._show("method_choice", choices=v.choices)
        self._enter("method")

    def _choice(self, event: Event, choices: list[str]) -> str | None:
        if isinstance(event, KeyPressed) and event.pos in CHOICE_KEYS:
            i = CHOICE_KEYS.index(event.pos)
            if i < len(choices):
                return choices[i]
        return None

    def _on_method(self, event: Event) -> None:
        if isinstance(event, FaceUnavailable):
            # The screen stays as it is: redrawing would move the keys under the patient's
            # finger. Choosing 顔認証 now leads to the face-failed screen (PIN or staff).
            self._face_unavailable(event)
            return
        if isinstance(event, KeyPressed) and event.pos == NEG:
            self._cancel("user")
            return
        if isinstance(event, KeyPressed) and event.pos == LANG_KEY:
            self._language_menu()
            return
        v = self.visit
        assert v is not None
        self._go(self._choice(event, list(v.choices or self._choices())))

    # ------------------------------------------------------------ language and text size (key 11)

    def _language_menu(self) -> None:
        v = self.visit
        assert v is not None
        v.lang_from = self.state
        self._show("language", current=v.lang)
        self._enter("language")

    def _on_language(self, event: Event) -> None:
        """1..7 choose a language, 12 switches the text size, 10 (or 11 again) goes back
        unchanged; then the screen the menu was opened from, in the new language."""
        v = self.visit
        assert v is not None
        if isinstance(event, FaceUnavailable):
            self._face_unavailable(event)
            return
        if not isinstance(event, KeyPressed):
            return
        if 1 <= event.pos <= len(LANG_CODES):
            v.lang = LANG_CODES[event.pos - 1]
            self._emit(SetDisplay(v.lang, v.large_toggled))
        elif event.pos == POS:
            v.large_toggled = not v.large_toggled
            self._emit(SetDisplay(v.lang, v.large_toggled))
        elif event.pos not in (NEG, LANG_KEY):
            return
        if v.lang_from == "cert_notice":
            self._show("cert_grace" if v.qualification_only else "cert_expiring")
            self._enter("cert_notice")
        elif v.face_note:  # the same choices on the same keys as before the menu
            self._show("method_choice", choices=v.choices, note=v.face_note)
            self._enter("method")
        else:
            self._show("method_choice", choices=v.choices)
            self._enter("method")

    def _go(self, choice: str | None) -> None:
        v = self.visit
        assert v is not None
        if choice == "face":
            v.face_attempt = 0
            self._start_face()
        elif choice in ("pin", "proxy"):
            v.proxy = choice == "proxy"
            self._start_pin()
        elif choice == "staff":
            self._start_staff()

    # ------------------------------------------------------------ face

    def _face_unavailable(self, event: FaceUnavailable) -> None:
        v = self.visit
        assert v is not None
        v.face_possible = False
        if event.code:  # the cause's own code on the face-failed screen and in the abort
            v.face_unavailable = (event.code, event.abort_reason or "photo_invalid")

    def _start_face(self) -> None:
        v = self.visit
        assert v is not None
        if not v.face_possible:
            self._face_failed()
            return
        v.face_attempt += 1
        self._show("face_guide", hint="ok" if v.face_attempt == 1 else "retry",
                   attempt=v.face_attempt, attempts=self.cfg.face_attempts)
        self._emit(StartFace(v.face_attempt))
        self._enter("face")

    def _face_code(self) -> str:
        """012 when faces did not match; 015 when face authentication could not be used at all."""
        v = self.visit
        assert v is not None
        if v.face_possible:
            return CODE_FACE_FAILED
        return v.face_unavailable[0] if v.face_unavailable else CODE_FACE_UNAVAILABLE

    def _face_failed(self) -> None:
        v = self.visit
        assert v is not None
        choices = [c for c in ("pin", "staff") if c != "pin" or v.has_pin]
        self._show("face_failed", choices=tuple(choices), attempts_left=0, code=self._face_code())
        self._emit(Indicate(buzzer="error"))
        self._enter("face_failed")

    def _on_face(self, event: Event) -> None:
        v = self.visit
        assert v is not None
        if isinstance(event, FaceHint):
            self._show("face_guide", hint=event.hint, attempt=v.face_attempt, attempts=self.cfg.face_attempts)
        elif isinstance(event, FaceDone):
            self._emit(StopFace())
            if event.match:
                v.method = "face"
                v.face_score = event.score
                self._authenticate(Authenticate("face", face_score=event.score))
            elif v.face_attempt < self.cfg.face_attempts:
                self.state = "face_retry"  # StopFace already sent; _start_face re-enters "face"
                self._start_face()
            else:
                self.state = "face_retry"
                self._face_failed()
        elif isinstance(event, FaceUnavailable):
            self._emit(StopFace())
            self._face_unavailable(event)
            self.state = "face_retry"
            self._face_failed()
        elif isinstance(event, KeyPressed) and event.pos == NEG:
            self._emit(StopFace())
            self.state = "face_retry"
            self._to_method()

    def _on_face_failed(self, event: Event) -> None:
        v = self.visit
        assert v is not None
        if isinstance(event, KeyPressed) and event.pos == NEG:
            self._abort("face_failed" if v.face_possible else
                        (v.face_unavailable[1] if v.face_unavailable else "photo_invalid"), self._face_code())
            self._cancel("user")
            return
        choices = [c for c in ("pin", "staff") if c != "pin" or v.has_pin]
        self._go(self._choice(event, choices))

    # ------------------------------------------------------------ PIN

    def _throttled(self) -> bool:
        return self._now < self._throttled_until

    def _record_wrong_pin(self) -> None:
        window = self.cfg.throttle_window_s
        self._wrong_pins.append(self._now)
        while self._wrong_pins and self._wrong_pins[0] < self._now - window:
            self._wrong_pins.popleft()
        if len(self._wrong_pins) >= self.cfg.throttle_max_wrong:
            self._throttled_until = self._now + self.cfg.throttle_block_s
            self._wrong_pins.clear()
            self._send("reader.event", kind="pin_throttled", code=CODE_PIN_THROTTLED,
                       message="too many wrong PINs on this reader; PIN entry paused")

    def _start_pin(self) -> None:
        v = self.visit
        assert v is not None
        if not v.has_pin:
            self._to_method()
        elif v.pin_locked or v.pin_tries == 0:
            v.pin_locked = True
            self._pin_locked()
        elif self._throttled():
            seconds = int(self._throttled_until - self._now + 0.999)
            self._show("pin_throttled", seconds=seconds, code=CODE_PIN_THROTTLED)
            self.state = "pin_throttled"
            self._timer("throttle", seconds)
        elif v.pin_tries == 1 and self.cfg.warn_last_try and not v.last_try_confirmed:
            self._show("pin_last_try")
            self._enter("pin_last_try")
        else:
            v.layout = ()
            v.entered = 0
            self._emit(StartPinEntry())
            self._enter("pin_entry")

    def _pin_locked(self) -> None:
        v = self.visit
        assert v is not None
        choices = tuple(c for c in ("face", "staff") if c != "face" or v.face_possible)
        self._show("pin_locked", choices=choices, code=CODE_PIN_LOCKED)
        self._emit(Indicate(buzzer="error"))
        self._send("reader.event", kind="pin_locked", code=CODE_PIN_LOCKED,
                   message="the card's PIN is locked; unlock at the municipal office", visit_id=v.visit_id)
        self._enter("pin_locked")

    def _show_pin(self) -> None:
        v = self.visit
        assert v is not None
        self._show("pin_entry", layout=v.layout, entered=v.entered, tries_left=v.pin_tries,
                   wrong=v.wrong, proxy=v.proxy)

    def _on_pin_entry(self, event: Event) -> None:
        v = self.visit
        assert v is not None
        if isinstance(event, PinLayoutReady):
            v.layout = event.layout
            self._show_pin()
        elif isinstance(event, PinDigit) and v.layout and v.entered < PIN_LENGTH:
            v.entered += 1
            if v.entered == PIN_LENGTH:
                self._emit(VerifyPin())
                self._show("verifying")
                self._enter("pin_verifying")
            else:
                self._show_pin()
                self._timer("screen", self.cfg.screen_timeout_s)
        elif isinstance(event, KeyPressed) and event.pos == POS:  # クリア
            v.entered = 0
            self._emit(ClearPin())
            self._show_pin()
        elif isinstance(event, KeyPressed) and event.pos == NEG:  # 取消
            self._leave_pin()
            self._to_method()

    def _on_pin_last_try(self, event: Event) -> None:
        v = self.visit
        assert v is not None
        if isinstance(event, KeyPressed) and event.pos == POS:
            v.last_try_confirmed = True
            self._start_pin()
        elif isinstance(event, KeyPressed) and event.pos == NEG:
            self._to_method()

    def _on_pin_verifying(self, event: Event) -> None:
        v = self.visit
        assert v is not None
        if not isinstance(event, PinChecked):
            return
        v.layout = ()
        v.entered = 0
        if event.ok:
            v.method = "pin"
            v.pin_tries = event.tries_left
            self._authenticate(Authenticate("pin", proxy=v.proxy))
            return
        self._record_wrong_pin()
        v.wrong = True
        v.pin_tries = event.tries_left
        v.last_try_confirmed = False
        if event.locked or event.tries_left == 0:
            v.pin_locked = True
            self._pin_locked()
            return
        self._show("pin_backoff", seconds=int(self.cfg.pin_backoff_s + 0.999), code=CODE_WRONG_PIN)
        self._emit(Indicate(buzzer="error"))
        self.state = "pin_backoff"
        self._timer("backoff", self.cfg.pin_backoff_s)

    def _on_pin_backoff(self, event: Event) -> None:
        if isinstance(event, TimerFired) and event.name == "backoff":
            self._start_pin()

    def _on_pin_throttled(self, event: Event) -> None:
        if isinstance(event, TimerFired) and event.name == "throttle":
            self._to_method()
        elif isinstance(event, KeyPressed) and event.pos == NEG:
            self._cancel_timer("throttle")
            self._cancel("user")

    def _on_pin_locked(self, event: Event) -> None:
        v = self.visit
        assert v is not None
        if isinstance(event, KeyPressed) and event.pos == NEG:
            self._abort("pin_locked", CODE_PIN_LOCKED)
            self._cancel("user")
            return
        choices = [c for c in ("face", "staff") if c != "face" or v.face_possible]
        choice = self._choice(event, choices)
        if choice == "face":
            v.face_attempt = 0
        self._go(choice)

    # ------------------------------------------------------------ staff visual check (目視確認)

    def _start_staff(self) -> None:
        v = self.visit
        assert v is not None
        v.layout = ()
        v.entered = 0
        self._emit(StartPinEntry())
        self._show("visual_check", stage="password", entered=0)
        self._enter("staff_password")

    def _on_staff_password(self, event: Event) -> None:
        v = self.visit
        assert v is not None
        n = self.cfg.staff_password_length
        if isinstance(event, PinLayoutReady):
            v.layout = event.layout
            self._show("visual_check", stage="password", entered=0, layout=v.layout, length=n)
        elif isinstance(event, PinDigit) and v.layout and v.entered < n:
            v.entered += 1
            if v.entered == n:
                self._emit(CheckStaffPassword())
                v.layout = ()
                self.state = "staff_checking"
                self._cancel_timer("screen")
            else:
                self._show("visual_check", stage="password", entered=v.entered, layout=v.layout, length=n)
        elif isinstance(event, KeyPressed) and event.pos == POS:
            v.entered = 0
            self._emit(ClearPin())
            self._show("visual_check", stage="password", entered=0, layout=v.layout, length=n)
        elif isinstance(event, KeyPressed) and event.pos == NEG:
            self._leave_pin()
            v.staff_from_host = False
            self._to_method()

    def _on_staff_checking(self, event: Event) -> None:
        v = self.visit
        assert v is not None
        if not isinstance(event, StaffPasswordChecked):
            return
        v.entered = 0
        if event.ok:
            self._staff_confirm()
            return
        if event.reason in ("locked", "not_set"):
            # no try counted against this visit: the device-wide lockout (or a missing
            # password) is the staff's matter; the patient goes back to the other methods
            self.staff_available = event.reason != "not_set"
            v.staff_from_host = False
            code = CODE_STAFF_NOT_SET if event.reason == "not_set" else CODE_STAFF_LOCKED
            self._send("reader.event", kind="visual_check_refused", code=code,
                       message=f"目視確認 refused: staff password {event.reason.replace('_', ' ')}",
                       visit_id=v.visit_id)
            self._show("visual_check", stage=event.reason, code=code)
            self._enter("staff_refused")
            return
        v.staff_wrong += 1
        if v.staff_wrong >= 3:
            self._send("reader.event", kind="staff_password_failed", code=CODE_STAFF_WRONG,
                       message="three wrong staff passwords", visit_id=v.visit_id)
            self._abort(codes.STAFF_PASSWORD_WRONG.reason, CODE_STAFF_WRONG)
            self._cancel("user")
        else:
            self._start_staff()

    def _on_staff_refused(self, event: Event) -> None:
        if isinstance(event, KeyPressed) and event.pos in (NEG, POS):
            self._to_method()

    def _staff_confirm(self) -> None:
        self._show("visual_check", stage="confirm", entered=0)
        self._enter("staff_confirm")

    def _on_staff_confirm(self, event: Event) -> None:
        v = self.visit
        assert v is not None
        if isinstance(event, KeyPressed) and event.pos == POS:
            v.method = "visual"
            self._authenticate(Authenticate("visual"))
        elif isinstance(event, KeyPressed) and event.pos == NEG:
            self._abort("staff_rejected", CODE_STAFF_REJECTED)
            self._cancel("user")

    # ------------------------------------------------------------ host

    def _authenticate(self, action: Authenticate) -> None:
        self._emit(action)
        self._show("verifying")
        self._enter("authenticating")
        self._timer("host", self.cfg.host_timeout_s)

    def _on_authenticating(self, event: Event) -> None:
        self._host_answer(event)

    def _on_registering(self, event: Event) -> None:
        self._host_answer(event)

    def _host_answer(self, event: Event) -> None:
        v = self.visit
        assert v is not None
        if isinstance(event, TimerFired) and event.name == "host":
            self._fail("host_error", "host_unreachable", CODE_HOST_TIMEOUT, code=CODE_HOST_TIMEOUT,
                       reason=codes.HOST_UNREACHABLE.reason)
        elif isinstance(event, HostQualification) and event.visit_id == v.visit_id:
            self._cancel_timer("host")
            v.qualification = event
            if not event.ok:
                code = event.error_code or CODE_QUALIFICATION
                known = codes.by_code(code)  # the host's own codes are shown as they came
                self._fail("host_error", "qualification_failed", code, code=code,
                           reason=known.reason if known is not None else codes.QUALIFICATION_FAILED.reason)
            elif not event.registered:
                self._show("registration_offer")
                self._enter("registration_offer")
            elif self.state == "registering":
                self._show("registration_done")
                self._enter("registration_done")
            else:
                self._after_qualification()

    def _on_registration_offer(self, event: Event) -> None:
        v = self.visit
        assert v is not None
        if isinstance(event, KeyPressed) and event.pos == POS:
            self._send("visit.registration", visit_id=v.visit_id)
            self._show("host_wait")
            self._enter("registering")
            self._timer("host", self.cfg.host_timeout_s)
        elif isinstance(event, KeyPressed) and event.pos == NEG:
            self._abort("not_registered", CODE_NOT_REGISTERED)
            self._cancel("user")

    def _on_registration_done(self, event: Event) -> None:
        if isinstance(event, KeyPressed) and event.pos == POS:
            self._after_qualification()

    # ------------------------------------------------------------ consents

    def _after_qualification(self) -> None:
        v = self.visit
        assert v is not None and v.qualification is not None
        if v.qualification_only:
            self._finish()
            return
        age = v.qualification.age
        queue = [
            item for item in self.cfg.consent_items
            if not (item == "checkup" and age is not None and age < self.cfg.checkup_min_age)
        ]
        v.consent_queue = queue
        v.consent_index = 0
        prev = dict(v.qualification.previous_consents or {})
        v.previous = prev or None
        if self.cfg.carry_over_consents and queue and all(item in prev for item in queue):
            self._show("consent_carryover", previous={k: prev[k] for k in queue})
            self._enter("carryover")
        elif queue:
            self._show_consent()
        else:
            self._finish()

    def _show_consent(self) -> None:
        v = self.visit
        assert v is not None
        item = v.consent_queue[v.consent_index]
        prev = v.previous.get(item) if v.previous else None
        self._show("consent", item=item, index=v.consent_index + 1, total=len(v.consent_queue), previous=prev)
        self._enter("consent")

    def _on_carryover(self, event: Event) -> None:
        v = self.visit
        assert v is not None and v.previous is not None
        if isinstance(event, KeyPressed) and event.pos == POS:  # keep
            v.consents = {k: v.previous[k] for k in v.consent_queue}
            self._finish()
        elif isinstance(event, KeyPressed) and event.pos == NEG:  # change
            self._show_consent()

    def _on_consent(self, event: Event) -> None:
        v = self.visit
        assert v is not None
        if isinstance(event, KeyPressed) and event.pos in (POS, NEG):
            v.consents[v.consent_queue[v.consent_index]] = event.pos == POS
            v.consent_index += 1
            if v.consent_index < len(v.consent_queue):
                self._show_consent()
            else:
                self._finish()

    # ------------------------------------------------------------ completion and card removal

    def _finish(self) -> None:
        v = self.visit
        assert v is not None and v.qualification is not None
        flags: dict[str, str] = {}
        for item in self.cfg.consent_items:
            for flag in CONSENT_FLAGS[item]:
                flags[flag] = "1" if v.consents.get(item) else "0"
        v.finished = True
        self._send(
            "visit.result",
            confirm=True,
            visit_id=v.visit_id,
            ProcessingResultStatus=1,
            method=v.method,
            proxy=v.proxy,
            cert_state=v.card.cert_state.value if v.card else None,
            qualification_only=v.qualification_only,
            consents=flags,
        )
        # 「確認が完了しました」 only once the result is durable (ResultStored): the last
        # screen stays meanwhile (normally a few milliseconds), then a saving notice.
        self._enter("saving")
        self._timer("saving", self.cfg.saving_notice_s)

    def _on_saving(self, event: Event) -> None:
        v = self.visit
        assert v is not None and v.qualification is not None
        if isinstance(event, ResultStored) and event.visit_id == v.visit_id:
            self._cancel_timer("saving")
            self._show("done", name=v.qualification.name, qualification_only=v.qualification_only)
            self._emit(Indicate(buzzer="ok"))
            self._enter("done")
            self._timer("done", self.cfg.done_s)
        elif isinstance(event, TimerFired) and event.name == "saving":
            self._show("saving", code=None if self.storage_ok else CODE_STORAGE)

    def _on_done(self, event: Event) -> None:
        if isinstance(event, TimerFired) and event.name == "done":
            self._remove_card_screen()

    def _on_ended(self, event: Event) -> None:
        if isinstance(event, TimerFired) and event.name == "notice":
            self._remove_card_screen()

    def _remove_card_screen(self) -> None:
        self._show("remove_card", reminder=False)
        self.state = "remove"
        self._timer("card_left", self.cfg.card_left_s)

    def _on_remove(self, event: Event) -> None:
        v = self.visit
        assert v is not None
        if isinstance(event, TimerFired) and event.name == "card_left":
            self._show("remove_card", reminder=True)
            self._emit(Indicate(buzzer="remind", led="blink"))
            if not v.reminded:
                v.reminded = True
                self._send("reader.event", kind="card_left", code="", message="the card was left on the reader",
                           visit_id=v.visit_id)
            self._timer("card_left", self.cfg.card_left_repeat_s)
