"""Everything that can go wrong talking to a My Number card, as typed errors.

Each error class names one cause of the reader-code table (``mynad.core.codes``)
and takes its ``code`` (what the host and the screen show; staff look it up on
docs/error-codes.md) and its ``reason`` key (what the screen text is chosen by)
from that table, so a code is never written twice. ``message`` is a plain English
sentence for the journal. No error ever carries PIN digits: the VERIFY data is
never part of an error.
"""

from __future__ import annotations

from typing import ClassVar

from mynad.core import codes
from mynad.core.codes import ReaderCode


class CardError(Exception):
    """A card failure; subclasses set ``cause`` and get ``code`` and ``reason`` from it."""

    cause: ClassVar[ReaderCode] = codes.CARD_UNEXPECTED
    code: ClassVar[str] = cause.code
    reason: ClassVar[str] = cause.reason

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = cls.cause.code
        cls.reason = cls.cause.reason

    def __init__(self, message: str | None = None, *, sw: int | None = None) -> None:
        self.sw = sw
        text = message or self.cause.meaning_en
        if sw is not None:
            text = f"{text} (SW {sw:04X})"
        self.message = text
        super().__init__(text)


class CardRemoved(CardError):
    cause = codes.CARD_REMOVED_MID_COMMAND


class CardMute(CardError):
    cause = codes.CARD_MUTE


class ReaderGone(CardError):
    cause = codes.READER_LOST


class NotMynaCard(CardError):
    cause = codes.NOT_MYNA


class BadResponse(CardError):
    cause = codes.BAD_RESPONSE


class CertificateInvalid(CardError):
    cause = codes.CERT_UNREADABLE


class SecurityNotSatisfied(CardError):
    cause = codes.SECURITY_NOT_SATISFIED


class FileNotFound(CardError):
    cause = codes.FILE_NOT_FOUND


class PhotoInvalid(CardError):
    cause = codes.FACE_UNAVAILABLE


class PinLocked(CardError):
    cause = codes.PIN_LOCKED


class NoPinSet(CardError):
    """A 顔認証マイナンバーカード: the card has no PIN, so VERIFY is never possible."""

    cause = codes.NO_PIN

    def __init__(self, message: str | None = None, *, sw: int | None = None) -> None:
        super().__init__(message or "this card has no PIN (face-authentication-only card)", sw=sw)


class WrongPin(CardError):
    cause = codes.WRONG_PIN

    def __init__(self, tries_left: int, *, sw: int | None = None) -> None:
        self.tries_left = tries_left
        super().__init__(f"wrong PIN, {tries_left} tries left", sw=sw)


class CodeBRejected(CardError):
    """The card refused the 照合番号B read off the card face (a misread, or a worn card)."""

    cause = codes.CODE_B_WRONG

    def __init__(self, tries_left: int, *, sw: int | None = None) -> None:
        self.tries_left = tries_left
        super().__init__(f"the card refused 照合番号B, {tries_left} tries left", sw=sw)


class CodeBLocked(CardError):
    """照合番号B is locked: the face photo cannot be opened until the city office resets it."""

    cause = codes.CODE_B_LOCKED


class CodeBReserve(CardError):
    """Too few 照合番号B tries are left to spend one: the reader leaves them to the city office."""

    cause = codes.CODE_B_RESERVE

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
