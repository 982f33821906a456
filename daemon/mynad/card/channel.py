"""The card layer's view of a reader connection: whole answers, typed errors.

The PC/SC driver (``myna_drivers.pcsc``) only moves bytes. This module gives those
bytes their ISO 7816-4 meaning before :class:`mynad.card.session.MynaCard` sees them:

* ``61xx``: more data waits on the card; fetch it with GET RESPONSE until the card
  says ``9000`` (T=0 readers pass this through; pyscard does not chain for us);
* ``6Cxx``: wrong Le; the card names the right one, so resend the command once with it;
* driver failures (card pulled, mute card, pcscd gone, malformed answer) become the
  card layer's typed :class:`~mynad.card.errors.CardError` values, so the flow and the
  screens deal with one family of errors and one table of reader codes.

Command buffers are wiped after use: a VERIFY carries a PIN or 照合番号B.
"""

from __future__ import annotations

from typing import Protocol

from mynad.card import apdu as A
from mynad.card.errors import BadResponse, CardError, CardMute, CardRemoved, ReaderGone

# Far more than any file of the card needs (the certificate is ~1.3 kB, 256 bytes a round).
MAX_GET_RESPONSE_ROUNDS = 64

# driver error kind (myna_drivers.pcsc.PcscError.kind) -> the card layer's error type
_BY_KIND: dict[str, type[CardError]] = {
    "card_gone": CardRemoved,
    "card_mute": CardMute,
    "service_gone": ReaderGone,
    "malformed": BadResponse,
    "reader": ReaderGone,
}


class Link(Protocol):
    """What a reader driver offers: one APDU out, the whole answer (data + SW) back."""

    def exchange(self, apdu: bytes | bytearray, timeout: float | None = None) -> bytes: ...

    def close(self) -> None: ...


def translate(error: Exception) -> CardError:
    """The card layer's error for a driver failure (duck-typed on ``kind``/``message``)."""
    if isinstance(error, CardError):
        return error
    kind = getattr(error, "kind", None)
    cls = _BY_KIND.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return CardError(f"the reader failed: {type(error).__name__}: {error}")
    return cls(getattr(error, "message", None) or str(error))


class CardChannel:
    """``transmit(apdu) -> (data, sw)`` over a driver link, with 61xx/6Cxx handled."""

    def __init__(self, link: Link) -> None:
        self.link = link

    @classmethod
    def connect_pcsc(cls, reader: str, timeout: float = 5.0) -> "CardChannel":
        """Connect to the card in a PC/SC reader; driver failures come back as CardError."""
        from myna_drivers.pcsc import PcscError, PcscTransport

        try:
            return cls(PcscTransport.connect(reader, timeout=timeout))
        except PcscError as e:
            raise translate(e) from None

    def _exchange(self, command: bytes | bytearray, timeout: float | None) -> tuple[bytes, int]:
        try:
            r = self.link.exchange(command, timeout)
        except CardError:
            raise
        except Exception as e:
            if getattr(e, "kind", None) is None:
                raise
            raise translate(e) from None
        if len(r) < 2:
            raise BadResponse(f"the card answered {len(r)} byte(s), no status word")
        return bytes(r[:-2]), (r[-2] << 8) | r[-1]

    def transmit(self, apdu: bytes | bytearray, timeout: float | None = None) -> tuple[bytes, int]:
        data, sw = self._exchange(apdu, timeout)
        # wrong Le: resend once with the length the card asked for; never a VERIFY that carries
        # a PIN or 照合番号B (a card answering 6Cxx to it would be sent the secret twice, and a
        # second VERIFY is a second try the patient did not decide on)
        if (sw >> 8) == 0x6C and not (len(apdu) > 4 and apdu[1] == 0x20):
            fixed = bytearray(A.with_le(apdu, sw & 0xFF))
            try:
                data, sw = self._exchange(fixed, timeout)
            finally:
                fixed[:] = bytes(len(fixed))
        parts = [data]
        rounds = 0
        while (sw >> 8) == 0x61:
            rounds += 1
            if rounds > MAX_GET_RESPONSE_ROUNDS:
                raise BadResponse("the card kept announcing more data (61xx) without end")
            more, sw = self._exchange(bytes([0x00, 0xC0, 0x00, 0x00, sw & 0xFF]), timeout)
            parts.append(more)
        return b"".join(parts), sw

    def close(self) -> None:
        self.link.close()

    @property
    def broken(self) -> bool:
        return bool(getattr(self.link, "broken", False))
