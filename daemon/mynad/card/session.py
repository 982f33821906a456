"""One inserted My Number card: the commands a visit needs, over any transport.

Pure logic over ``transport.transmit(apdu) -> (data, sw)``: the daemon runs it in the
card worker thread against pyscard, tests run it against the virtual card in-process.
Rules that protect the patient are enforced here, where no caller can skip them:

* a VERIFY is never sent when the card's counter is known to be 0, and never
  repeated on our own (each VERIFY is one patient decision);
* the retry query (VERIFY without data) is the only way the counter is learnt;
* 照合番号B is tried at most once per insertion (it locks after 10 misses);
* each file is read once per insertion and nothing is re-selected that is selected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509

from mynad.card import apdu as A
from mynad.card import tlv
from mynad.card.errors import (BadResponse, CardError, CertificateInvalid, CodeBLocked, CodeBRejected, CodeBReserve,
                               NoPinSet, NotMynaCard, PhotoInvalid,
                               PinLocked, SecurityNotSatisfied, WrongPin, error_for_sw)
from mynad.core.secret import PinBuffer, wipe

JST = dt.timezone(dt.timedelta(hours=9), "JST")
MAX_CERT_BYTES = 4096        # a JPKI auth certificate is ~1.2 KB; more is a broken card
MAX_RECORD_BYTES = A.READ_REACH  # the card-surface record (photo ~2-4 KB); 15-bit offsets reach 32 KiB
TOKEN_LABELS = (b"JPKIAPICCTOKEN", b"JPKIAPGPSETOKEN")
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


class Transport(Protocol):
    def transmit(self, apdu: bytes | bytearray, timeout: float | None = None) -> tuple[bytes, int]: ...


@dataclass(frozen=True)
class CardIdentity:
    token: str  # JPKIAPICCTOKEN (card) or JPKIAPGPSETOKEN (smartphone)


@dataclass(frozen=True)
class AuthCertificate:
    der: bytes
    serial: int
    subject: str
    not_before: dt.datetime
    not_after: dt.datetime  # in JST: the expiry rule counts Japanese calendar days


@dataclass(frozen=True)
class PinStatus:
    tries_left: int | None  # None: the card did not say (already verified, or no limit)
    locked: bool
    has_pin: bool


@dataclass(frozen=True)
class Basic4:
    name: str
    address: str
    birth_date: str  # YYYYMMDD as on the card
    sex: str         # "male" | "female" | "not_applicable" | "unknown"

    def __repr__(self) -> str:  # personal data stays out of logs and tracebacks
        return "<Basic4 hidden>"


def _ok_sw(sw: int) -> bool:
    return sw == A.SW_OK


def _plausible_sw(sw: int) -> bool:
    return (sw >> 8) in (0x90, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D,
                         0x6E, 0x6F)


class MynaCard:
    def __init__(self, transport: Transport) -> None:
        self.t = transport
        self._ap: bytes | None = None
        self._ef: int | None = None
        self._cert: AuthCertificate | None = None
        self._pin: PinStatus | None = None
        self._code_b_tried = False
        self._code_b: PinStatus | None = None  # last counter query; only our VERIFY changes it
        self._photo: bytes | None = None
        self.apdus = 0  # commands sent during this insertion (for the benchmark and the log)

    # ------------------------------------------------------------ plumbing

    def _send(self, apdu: bytes | bytearray, what: str) -> tuple[bytes, int]:
        self.apdus += 1
        data, sw = self.t.transmit(apdu)
        if not _plausible_sw(sw):
            raise BadResponse(f"{what}: the card sent a malformed answer", sw=sw)
        return data, sw

    def _expect_ok(self, apdu: bytes | bytearray, what: str) -> bytes:
        data, sw = self._send(apdu, what)
        if not _ok_sw(sw):
            raise error_for_sw(sw, what)
        return data

    def _select_ap(self, aid: bytes, what: str) -> None:
        if self._ap == aid:
            return
        self._ap = self._ef = None
        _, sw = self._send(A.select_df(aid), f"select {what}")
        if sw == 0x6A82 and aid == A.AID_JPKI:
            raise NotMynaCard("the JPKI application is not on this card", sw=sw)
        if not _ok_sw(sw):
            raise error_for_sw(sw, f"select {what}")
        self._ap = aid

    def _select_ef(self, fid: int) -> None:
        if self._ef == fid:
            return
        self._ef = None
        self._expect_ok(A.select_ef(fid), f"select EF {fid:04X}")
        self._ef = fid

    def _read_tlv_file(self, fid: int, limit: int, what: str, first: int = A.MAX_SHORT_LE) -> bytes:
        """Read a file holding one TLV: its length comes from the header in the first chunk.

        The size is the card's claim, so it is checked before any further command: more
        than ``limit`` or more than READ BINARY's 15-bit offset can reach (32 KiB) is a
        broken or hostile card, refused as a ``BadResponse`` rather than read part-way.
        """
        limit = min(limit, A.READ_REACH)
        self._select_ef(fid)
        head = self._expect_ok(A.read_binary(0, first), f"read {what}")
        if len(head) < 4:
            raise BadResponse(f"read {what}: only {len(head)} bytes")
        try:
            start = next(i for i in range(min(8, len(head))) if head[i] != 0x00)
            size = start + tlv.total_length(head, start)
        except (ValueError, StopIteration) as e:
            raise BadResponse(f"read {what}: no valid TLV header ({e})") from None
        if size > limit:
            raise BadResponse(f"read {what}: the card claims {size} bytes, more than the {limit} a reader may read")
        buf = bytearray(head[:size])
        while len(buf) < size:
            n = min(A.MAX_SHORT_LE, size - len(buf))
            chunk = self._expect_ok(A.read_binary(len(buf), n), f"read {what} at {len(buf)}")
            if not chunk:
                raise BadResponse(f"read {what}: file ended at {len(buf)} of {size} bytes")
            buf += chunk[:n]
        return bytes(buf)

    # ------------------------------------------------------------ JPKI

    def identify(self) -> CardIdentity:
        """A My Number card is one with the JPKI application and its token file (not an ATR)."""
        self._select_ap(A.AID_JPKI, "the JPKI application")
        self._select_ef(A.EF_TOKEN)
        data = self._expect_ok(A.read_binary(0, 0x20), "read the JPKI token")
        label = bytes(data).rstrip(b"\x00 ")
        if not any(label.startswith(t) for t in TOKEN_LABELS):
            raise NotMynaCard("the JPKI token file does not name a JPKI card")
        return CardIdentity(label.decode("ascii", "replace"))

    def auth_certificate(self) -> AuthCertificate:
        """The 利用者証明用電子証明書, read once per insertion (it needs no PIN)."""
        if self._cert is not None:
            return self._cert
        self._select_ap(A.AID_JPKI, "the JPKI application")
        try:
            der = self._read_tlv_file(A.EF_AUTH_CERT, MAX_CERT_BYTES, "the authentication certificate")
        except BadResponse as e:
            raise CertificateInvalid(f"the authentication certificate is unreadable: {e.message}") from None
        try:
            cert = x509.load_der_x509_certificate(der)
            nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
            subject = cert.subject.rfc4514_string()
            # 9999-12-31T23:59:59Z (RFC 5280's "no expiry") has no JST equivalent: OverflowError
            self._cert = AuthCertificate(der, cert.serial_number, subject, nb.astimezone(JST), na.astimezone(JST))
        except (ValueError, OverflowError, x509.InvalidVersion) as e:  # InvalidVersion is no ValueError
            raise CertificateInvalid(f"the authentication certificate is not valid DER X.509 ({e})") from None
        return self._cert

    def pin_status(self) -> PinStatus:
        """The auth PIN's counter from the retry query: costs no try."""
        self._select_ap(A.AID_JPKI, "the JPKI application")
        self._select_ef(A.EF_AUTH_PIN)
        _, sw = self._send(A.verify_query(), "query the PIN counter")
        if 0x63C0 <= sw <= 0x63CF:
            n = sw & 0x0F
            status = PinStatus(n, n == 0, True)
        elif sw == 0x9000:  # already verified in this power cycle
            status = PinStatus(None, False, True)
        elif sw == 0x6300:  # no retry limit
            status = PinStatus(None, False, True)
        elif sw in (0x6983, 0x6984):
            status = PinStatus(0, True, True) if self._has_pin() else PinStatus(None, False, False)
        else:
            raise error_for_sw(sw, "query the PIN counter")
        self._pin = status
        return status

    def _has_pin(self) -> bool:
        """EF 0008 byte 2: auth PIN set (01) or not (00, 顔認証マイナンバーカード).

        Read only when the counter query cannot tell "locked" from "no PIN".
        """
        self._select_ef(A.EF_CERT_AVAILABILITY)
        data = self._expect_ok(A.read_binary(0, 3), "read the certificate availability")
        self._ef = A.EF_CERT_AVAILABILITY
        return not (len(data) >= 3 and data[2] == 0x00)

    def verify_pin(self, pin: PinBuffer) -> PinStatus:
        """One VERIFY of the auth PIN, as the patient typed it; the buffer is wiped either way."""
        secret = bytearray()
        command = bytearray()
        try:
            status = self._pin if self._pin is not None else self.pin_status()
            if not status.has_pin:
                raise NoPinSet()
            if status.locked or status.tries_left == 0:
                raise PinLocked("the PIN is locked; VERIFY was not sent")
            if len(pin) != 4:
                raise CardError("the PIN must be 4 digits; VERIFY was not sent")
            self._select_ap(A.AID_JPKI, "the JPKI application")
            self._select_ef(A.EF_AUTH_PIN)
            secret = pin.take_ascii()
            command = A.verify(secret)
            _, sw = self._send(command, "verify the PIN")
        finally:
            pin.wipe()
            wipe(secret)
            wipe(command)
        if sw == A.SW_OK:
            self._pin = PinStatus(3, False, True)
            return self._pin
        if 0x63C0 <= sw <= 0x63CF:
            n = sw & 0x0F
            self._pin = PinStatus(n, n == 0, True)
            if n == 0:
                raise PinLocked("wrong PIN; the card is now locked", sw=sw)
            raise WrongPin(n, sw=sw)
        if sw in (0x6983, 0x6984):
            self._pin = PinStatus(0, True, True)
            raise PinLocked(sw=sw)
        raise error_for_sw(sw, "verify the PIN")

    def sign(self, challenge: bytes) -> bytes:
        """RSA PKCS#1 v1.5 over SHA-256(challenge) with the auth key (needs a verified PIN)."""
        if not challenge or len(challenge) > 1024:
            raise CardError("the host challenge must be 1..1024 bytes")
        digest_info = SHA256_DIGEST_INFO + hashlib.sha256(challenge).digest()
        self._select_ap(A.AID_JPKI, "the JPKI application")
        self._select_ef(A.EF_AUTH_KEY)
        sig = self._expect_ok(A.compute_signature(digest_info), "sign the host challenge")
        if len(sig) != 256:
            raise BadResponse(f"sign the host challenge: {len(sig)}-byte signature (want 256)")
        return bytes(sig)

    # ------------------------------------------------------------ card-surface AP

    def code_b_status(self) -> PinStatus:
        """照合番号B's counter in the card-surface AP from the retry query: costs no try.

        The counter is card-wide and only the city office can reset it, so it is read
        before every submission (a misread by some other reader counts here too).
        """
        self._select_ap(A.AID_FACE, "the card-surface application")
        self._select_ef(A.EF_FACE_CODE_B)
        _, sw = self._send(A.verify_query(), "query the 照合番号B counter")
        if 0x63C0 <= sw <= 0x63CF:
            n = sw & 0x0F
            status = PinStatus(n, n == 0, True)
        elif sw in (0x9000, 0x6300):  # already open in this power cycle / no limit
            status = PinStatus(None, False, True)
        elif sw in (0x6983, 0x6984):
            status = PinStatus(0, True, True)
        else:
            raise error_for_sw(sw, "query the 照合番号B counter")
        self._code_b = status
        return status

    def face_photo(self, code_b: bytearray | str, reserve: int = 0) -> bytes:
        """The chip's face photo (JPEG 2000), opened by 照合番号B read off the printed card face.

        At most one VERIFY per insertion, and none at all while the card has ``reserve``
        tries or fewer left: a wrong code costs one of ten tries for good. The caller's
        bytearray is wiped here either way.
        """
        secret = code_b if isinstance(code_b, bytearray) else bytearray(str(code_b).encode("utf-8"))
        command = bytearray()
        try:
            if self._photo is not None:
                return self._photo
            if self._code_b_tried:
                raise SecurityNotSatisfied("照合番号B was already tried on this insertion; not trying again")
            if len(secret) != 14 or any(not 0x30 <= b <= 0x39 for b in secret):
                raise SecurityNotSatisfied("照合番号B from the card face is not 14 ASCII digits; "
                                           "not sent to the card")
            status = self._code_b if self._code_b is not None else self.code_b_status()
            if status.locked:
                raise CodeBLocked()
            if status.tries_left is not None and status.tries_left <= reserve:
                raise CodeBReserve(status.tries_left)
            self._code_b_tried = True
            command = A.verify(secret)
            _, sw = self._send(command, "verify 照合番号B")
        finally:
            wipe(secret)
            wipe(command)
        if 0x63C1 <= sw <= 0x63CF:
            raise CodeBRejected(sw & 0x0F, sw=sw)
        if sw in (0x63C0, 0x6983, 0x6984):
            raise CodeBLocked(sw=sw)
        if sw != A.SW_OK:
            raise error_for_sw(sw, "verify 照合番号B")
        record = self._read_tlv_file(A.EF_FACE_DATA, MAX_RECORD_BYTES, "the card-surface record")
        try:
            items = tlv.find_record(record)
        except ValueError as e:
            raise BadResponse(f"the card-surface record is malformed ({e})") from None
        photo = items.get(0xDF27)
        if not photo:
            raise PhotoInvalid("the card-surface record has no photo (DF27)")
        self._photo = photo
        return photo

    # ------------------------------------------------------------ text AP

    def basic4(self, pin: PinBuffer) -> Basic4:
        """Name, address, birth date and sex, opened by the 券面事項入力補助 PIN."""
        secret = bytearray()
        command = bytearray()
        try:
            self._select_ap(A.AID_TEXT, "the card-info-input-support application")
            self._select_ef(A.EF_TEXT_PIN)
            _, sw = self._send(A.verify_query(), "query the text PIN counter")
            if sw in (0x6983, 0x6984) or sw == 0x63C0:
                raise PinLocked("the card-info PIN is locked; VERIFY was not sent", sw=sw)
            if len(pin) != 4:
                raise CardError("the PIN must be 4 digits; VERIFY was not sent")
            secret = pin.take_ascii()
            command = A.verify(secret)
            _, sw = self._send(command, "verify the card-info PIN")
        finally:
            pin.wipe()
            wipe(secret)
            wipe(command)
        if sw != A.SW_OK:
            raise error_for_sw(sw, "verify the card-info PIN")
        record = self._read_tlv_file(A.EF_TEXT_BASIC4, MAX_RECORD_BYTES, "the basic four items")
        try:
            items = tlv.find_record(record)
            name = items[0xDF22].decode("utf-8")
            address = items[0xDF23].decode("utf-8")
            birth = items[0xDF24].decode("ascii")
            sex_digit = items[0xDF25].decode("ascii")
        except (ValueError, KeyError, UnicodeDecodeError) as e:
            raise BadResponse(f"the basic four items are malformed ({type(e).__name__})") from None
        sex = {"1": "male", "2": "female", "9": "not_applicable"}.get(sex_digit, "unknown")
        return Basic4(name, address, birth, sex)
