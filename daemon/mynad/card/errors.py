"""Everything that can go wrong talking to a My Number card, as typed errors.

Each error carries the reader error code the host and the screen show (staff look
codes up on the counter sheet), a short ``reason`` key the UI has a Japanese text
for, and a plain English ``message`` for the journal. No error ever carries PIN
digits: the VERIFY data is never part of an error.
"""

from __future__ import annotations

CODE_UNREADABLE = "001"  # the card could not be read (removed, mute, garbage)
CODE_NOT_MYNA = "002"    # not a My Number card / JPKI application missing
CODE_PIN_LOCKED = "011"

REASONS: dict[str, str] = {
    "removed": "the card was removed during a command",
    "mute": "the card did not answer in time",
    "timeout": "the card did not answer in time",
    "not_myna": "this is not a My Number card (no JPKI application)",
    "bad_response": "the card sent a malformed answer",
    "cert_invalid": "the user-authentication certificate on the card is unreadable",
    "security": "the card refused: security status not satisfied",
    "not_found": "a file the visit needs is not on the card",
    "locked": "the PIN is locked",
    "wrong_pin": "the PIN was wrong",
    "photo_invalid": "the face photo on the card is unusable",
    "reader": "the card reader is not available",
    "code_b_wrong": "the card refused the 照合番号B read from the card face",
    "code_b_locked": "照合番号B is locked on this card",
    "code_b_reserve": "照合番号B has too few tries left on this card to risk one",
    "unexpected": "the card answered with an unexpected status",
}


class CardError(Exception):
    code = CODE_UNREADABLE
    reason = "unexpected"

    def __init__(self, message: str | None = None, *, sw: int | None = None) -> None:
        self.sw = sw
        text = message or REASONS.get(self.reason, "card error")
        if sw is not None:
            text = f"{text} (SW {sw:04X})"
        self.message = text
        super().__init__(text)


class CardRemoved(CardError):
    reason = "removed"


class CardMute(CardError):
    reason = "mute"


class ReaderGone(CardError):
    reason = "reader"


class NotMynaCard(CardError):
    code = CODE_NOT_MYNA
    reason = "not_myna"


class BadResponse(CardError):
    reason = "bad_response"


class CertificateInvalid(CardError):
    reason = "cert_invalid"


class SecurityNotSatisfied(CardError):
    reason = "security"


class FileNotFound(CardError):
    reason = "not_found"


class PhotoInvalid(CardError):
    reason = "photo_invalid"


class PinLocked(CardError):
    code = CODE_PIN_LOCKED
    reason = "locked"


class NoPinSet(CardError):
    """A 顔認証マイナンバーカード: the card has no PIN, so VERIFY is never possible."""

    code = CODE_PIN_LOCKED
    reason = "locked"

    def __init__(self, message: str | None = None, *, sw: int | None = None) -> None:
        super().__init__(message or "this card has no PIN (face-authentication-only card)", sw=sw)


class WrongPin(CardError):
    reason = "wrong_pin"

    def __init__(self, tries_left: int, *, sw: int | None = None) -> None:
        self.tries_left = tries_left
        super().__init__(f"wrong PIN, {tries_left} tries left", sw=sw)


class CodeBRejected(CardError):
    """The card refused the 照合番号B read off the card face (a misread, or a worn card)."""

    reason = "code_b_wrong"

    def __init__(self, tries_left: int, *, sw: int | None = None) -> None:
        self.tries_left = tries_left
        super().__init__(f"the card refused 照合番号B, {tries_left} tries left", sw=sw)


class CodeBLocked(CardError):
    """照合番号B is locked: the face photo cannot be opened until the city office resets it."""

    reason = "code_b_locked"


class CodeBReserve(CardError):
    """Too few 照合番号B tries are left to spend one: the reader leaves them to the city office."""

    reason = "code_b_reserve"

    def __init__(self, tries_left: int) -> None:
        self.tries_left = tries_left
        super().__init__(f"照合番号B has only {tries_left} tries left; none spent")


def error_for_sw(sw: int, context: str) -> CardError:
    """The typed error for a status word that is not success, in words naming the step."""
    if 0x63C0 <= sw <= 0x63CF:
        n = sw & 0x0F
        return PinLocked(f"{context}: PIN locked", sw=sw) if n == 0 else WrongPin(n, sw=sw)
    if sw in (0x6983, 0x6984):
        return PinLocked(f"{context}: PIN locked or not usable", sw=sw)
    if sw == 0x6982:
        return SecurityNotSatisfied(f"{context}: security status not satisfied", sw=sw)
    if sw == 0x6A82:
        return FileNotFound(f"{context}: file or application not found", sw=sw)
    if sw in (0x6D00, 0x6E00):
        return NotMynaCard(f"{context}: command not supported by this card", sw=sw)
    if sw == 0x6F00:
        return BadResponse(f"{context}: the card reported an internal error", sw=sw)
    return CardError(f"{context}: unexpected status", sw=sw)
