"""Events the reception flow reacts to, and actions it asks the shell to carry out.

Both are small frozen dataclasses so that a visit can be replayed, logged and
property-tested as a plain list. None of them can carry a PIN digit: the digit
keys reach the core as ``PinDigit()`` with no value (see docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from mynad.core.cert_policy import CertState
from mynad.ui.screens import Screen

# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class CardInserted(Event):
    visit_id: str


@dataclass(frozen=True)
class CardRead(Event):
    """What the shell learnt from the card without any PIN."""

    cert_state: CertState
    has_pin: bool
    pin_tries: int | None  # None: the card gave no counter
    pin_locked: bool
    photo: bool = True  # the face photo can be read (照合番号B known)
    # Why 顔認証 is not offered when the unit could offer it ("card_face_unreadable",
    # "code_b_reserve", "code_b_locked"), shown under the method choice; None = no note.
    face_note: str | None = None


@dataclass(frozen=True)
class CardFailed(Event):
    code: str
    reason: str


@dataclass(frozen=True)
class CardRemoved(Event):
    pass


@dataclass(frozen=True)
class KeyPressed(Event):
    pos: int  # 1..12, see docs/architecture.md


@dataclass(frozen=True)
class PinDigit(Event):
    """A digit went into the shell's PIN buffer; its value stays there."""


@dataclass(frozen=True)
class PinLayoutReady(Event):
    layout: tuple[str, ...]


@dataclass(frozen=True)
class PinChecked(Event):
    ok: bool
    tries_left: int | None
    locked: bool


@dataclass(frozen=True)
class StaffPasswordChecked(Event):
    ok: bool
    # why not ok: "wrong" | "locked" (device-wide lockout after repeated wrong passwords)
    # | "not_set" (no staff password on this reader: 目視確認 cannot be used)
    reason: str = "wrong"


@dataclass(frozen=True)
class StaffPasswordState(Event):
    """Whether a staff password is set on this reader; without one, 目視確認 is refused
    (a host-armed 目視確認 must never let a patient through without the staff at the reader)."""

    available: bool


@dataclass(frozen=True)
class FaceHint(Event):
    hint: str


@dataclass(frozen=True)
class FaceDone(Event):
    match: bool
    reason: str
    score: float | None = None


@dataclass(frozen=True)
class FaceUnavailable(Event):
    """The card photo could not be read or has no usable face."""

    reason: str
    code: str | None = None  # the cause's reader code (照合番号B refused 019, locked 017, ...); None: 015
    abort_reason: str | None = None  # the cause's reason key for the host (None: photo_invalid)


@dataclass(frozen=True)
class HostChallenge(Event):
    visit_id: str


@dataclass(frozen=True)
class HostQualification(Event):
    visit_id: str
    ok: bool
    name: str = ""
    age: int | None = None
    registered: bool = True
    previous_consents: Mapping[str, bool] | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class ChallengeConflict(Event):
    """The host sent a second, different nonce for the visit waiting for one: someone else may
    be on the host link, so the visit is aborted rather than signing either nonce's answer."""

    visit_id: str


@dataclass(frozen=True)
class ResultStored(Event):
    """The visit's result is in the durable outbox (committed with fsync): only now may the
    patient be told 「確認が完了しました」. A crash after this point cannot lose the result."""

    visit_id: str


@dataclass(frozen=True)
class StorageChanged(Event):
    """The state directory can (ok=True) or cannot (ok=False: disk full, I/O error) store
    messages for the host. While it cannot, no new visit starts; owed messages wait in memory
    and are written as soon as space returns."""

    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class HostVisualCheck(Event):
    """Staff armed 目視確認 from the clinic host."""


@dataclass(frozen=True)
class AuthFailed(Event):
    """Signing the challenge or sending the authentication failed."""

    code: str
    reason: str


@dataclass(frozen=True)
class TimerFired(Event):
    name: str
    token: int


# ---------------------------------------------------------------- actions


@dataclass(frozen=True)
class Action:
    pass


@dataclass(frozen=True)
class Show(Action):
    screen: Screen


@dataclass(frozen=True)
class ReadCard(Action):
    pass


@dataclass(frozen=True)
class StartPinEntry(Action):
    """Wipe the PIN buffer and draw a fresh layout (answered by PinLayoutReady)."""


@dataclass(frozen=True)
class ClearPin(Action):
    pass


@dataclass(frozen=True)
class VerifyPin(Action):
    pass


@dataclass(frozen=True)
class CheckStaffPassword(Action):
    pass


@dataclass(frozen=True)
class StartFace(Action):
    attempt: int


@dataclass(frozen=True)
class StopFace(Action):
    pass


@dataclass(frozen=True)
class Authenticate(Action):
    """Prove the identity to the host: sign its challenge (PIN) or report the method."""

    method: str  # "pin" | "face" | "visual"
    proxy: bool = False
    face_score: float | None = None


@dataclass(frozen=True)
class SendHost(Action):
    type: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    # the shell answers ResultStored(visit_id) once the message is durable in the outbox
    confirm: bool = False


@dataclass(frozen=True)
class StartTimer(Action):
    name: str
    seconds: float
    token: int


@dataclass(frozen=True)
class CancelTimer(Action):
    name: str


@dataclass(frozen=True)
class Indicate(Action):
    buzzer: str | None = None  # "ok" | "error" | "remind" | "key"
    led: str | None = None  # "off" | "on" | "blink"


@dataclass(frozen=True)
class EndVisit(Action):
    """Forget everything about the visit (PIN buffer, photo embedding, challenge)."""


@dataclass(frozen=True)
class SetDisplay(Action):
    """How the screens are drawn from now on: the patient's language (mynad.ui.i18n.LANG_CODES)
    and whether the patient switched the text size (large text = the ``[display] large_text``
    default, flipped when ``toggle_large``). Sent before the Show it applies to; back to
    Japanese and the default size when the card is removed (docs/languages.md)."""

    lang: str = "ja"
    toggle_large: bool = False
