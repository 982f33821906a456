"""The My Number card application, pure: bytes in, bytes out (no sockets).

Models the three applications the reader uses: 公的個人認証AP (JPKI), 券面事項入力補助AP
(text) and 券面AP (face), with SELECT / READ BINARY / VERIFY / COMPUTE DIGITAL SIGNATURE
and the status words of docs/virtual-card.md (sources: docs/sources.md §S6, §S7).
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, utils

from mynasim.card.faults import FaultPlan
from mynasim.card.pki import TestPKI
from mynasim.card.profiles import Profile
from mynasim.card.state import CardState

AID_JPKI = bytes.fromhex("D392F000260100000001")
AID_FACE = bytes.fromhex("D3921000310001010402")   # 券面AP (券面事項確認AP)
AID_TEXT = bytes.fromhex("D3921000310001010408")   # 券面事項入力補助AP
AIDS = {AID_JPKI: "jpki", AID_FACE: "face", AID_TEXT: "text"}

# JPKI-looking T=1 ATR (OpenSC card-jpki.c:32); OpenSC/daemon identify the card by AID anyway.
ATR = bytes.fromhex("3BE000FF8131FE4514")

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_SECURITY = b"\x69\x82"
SW_BLOCKED = b"\x69\x84"
SW_NOT_ALLOWED = b"\x69\x86"
SW_WRONG_DATA = b"\x6A\x80"
SW_NOT_FOUND = b"\x6A\x82"
SW_WRONG_P1P2 = b"\x6A\x86"
SW_WRONG_OFFSET = b"\x6B\x00"
SW_BAD_INS = b"\x6D\x00"
SW_BAD_CLA = b"\x6E\x00"

TOKEN_LABEL = b"JPKIAPICCTOKEN"

# DigestInfo prefixes (RFC 8017 §9.2 note 1) -> hash algorithm
DIGEST_INFO = {
    bytes.fromhex("3021300906052b0e03021a05000414"): hashes.SHA1(),
    bytes.fromhex("302d300d06096086480165030402040500041c"): hashes.SHA224(),
    bytes.fromhex("3031300d060960864801650304020105000420"): hashes.SHA256(),
    bytes.fromhex("3041300d060960864801650304020205000430"): hashes.SHA384(),
    bytes.fromhex("3051300d060960864801650304020305000440"): hashes.SHA512(),
}


def sw_tries(n: int) -> bytes:
    return bytes([0x63, 0xC0 | max(0, min(15, n))])


def ber_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    if n < 0x10000:
        return bytes([0x82, n >> 8, n & 0xFF])
    return bytes([0x83, n >> 16, (n >> 8) & 0xFF, n & 0xFF])


def tlv(tag: int, value: bytes) -> bytes:
    t = tag.to_bytes(2 if tag > 0xFF else 1, "big")
    return t + ber_len(len(value)) + value


def template_ff20(items: list[tuple[int, bytes]]) -> bytes:
    """``FF20 L { DF21 offsets, items... }``; offsets are from the start of the EF to each item's tag."""
    n = len(items)
    head_len_guess = 0
    body_items = [tlv(tag, v) for tag, v in items]
    offsets_tlv_len = len(tlv(0xDF21, b"\0" * (2 * n)))
    content_len = offsets_tlv_len + sum(len(b) for b in body_items)
    head_len_guess = 2 + len(ber_len(content_len))
    pos = head_len_guess + offsets_tlv_len
    offs = b""
    for b in body_items:
        offs += struct.pack(">H", pos)
        pos += len(b)
    content = tlv(0xDF21, offs) + b"".join(body_items)
    return b"\xFF\x20" + ber_len(len(content)) + content


# ---------------------------------------------------------------- photo

_photo_cache: dict[tuple[str, str], bytes] = {}
_photo_lock = threading.Lock()


def card_photo_bytes(assets_dir: Path, photo: str) -> bytes:
    """The chip form of ``<assets>/faces/<photo>`` (cached per file)."""
    path = Path(assets_dir) / "faces" / photo
    key = (str(path.resolve()), "card")
    with _photo_lock:
        hit = _photo_cache.get(key)
    if hit is not None:
        return hit
    from PIL import Image
    from myna_models.cardphoto import encode_card_photo

    with Image.open(path) as im:
        data = encode_card_photo(im)
    with _photo_lock:
        _photo_cache[key] = data
    return data


@functools.lru_cache(maxsize=1)
def photo_bomb_bytes(claim: int = 40000) -> bytes:
    """A tiny JPEG 2000 (JP2) whose SIZ marker and ihdr box claim ``claim`` x ``claim`` pixels."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (16, 16), 128).save(out, format="JPEG2000", no_jp2=False)
    data = bytearray(out.getvalue())
    i = data.find(b"ihdr")
    if i >= 0:
        struct.pack_into(">II", data, i + 4, claim, claim)  # height, width
    s = data.find(b"\xFF\x51")
    if s < 0:
        raise RuntimeError("no SIZ marker in the encoded JPEG 2000")
    # FF51 Lsiz(2) Rsiz(2) Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz (4 bytes each)
    struct.pack_into(">II", data, s + 6, claim, claim)
    struct.pack_into(">II", data, s + 22, claim, claim)
    return bytes(data)


# ---------------------------------------------------------------- files


@dataclass
class PinSpec:
    ref: str                   # counter name in CardState, e.g. "jpki/0018"
    max_tries: int
    initial: int
    value: str | None          # None: no PIN on this card -> 6984


@dataclass
class EF:
    data: Callable[[], bytes] | None = None     # None for PIN/key EFs (not readable)
    read_needs: tuple[str, ...] = ()            # any of these verified refs opens the EF
    pin: PinSpec | None = None
    key: bool = False                           # the auth private key (COMPUTE DIGITAL SIGNATURE)
    sign_needs: tuple[str, ...] = ()


class VirtualMynaCard:
    """One card (profile + PKI + persistent counters). ``process(apdu)`` returns response + SW."""

    def __init__(self, profile: Profile, pki: TestPKI, state: CardState, assets_dir: Path | str,
                 faults: FaultPlan | None = None) -> None:
        self.profile = profile
        self.pki = pki
        self.state = state
        self.assets_dir = Path(assets_dir)
        self.faults = faults or FaultPlan()
        self.atr = ATR
        self._cache: dict[str, bytes] = {}
        self._files = self._build_files()
        self.reset()

    # ------------------------------------------------------------ security state

    def reset(self) -> None:
        """Power on / reset: clears selection and verified flags, never the counters."""
        self.current_ap: str | None = None
        self.current_ef: int | None = None
        self.verified: set[str] = set()

    power_off = reset

    def tries_left(self, ref: str) -> int:
        spec = self._pin_specs[ref]
        return self.state.tries(self.profile.key, ref, spec.initial)

    # ------------------------------------------------------------ contents

    def _cached(self, name: str, make: Callable[[], bytes]) -> Callable[[], bytes]:
        def get() -> bytes:
            if name not in self._cache:
                self._cache[name] = make()
            return self._cache[name]
        return get

    def _auth_cert_der(self) -> bytes:
        cert, _ = self.pki.issue(self.profile)
        der = cert.public_bytes(serialization.Encoding.DER)
        if self.faults.invalid_cert:
            rnd = hashlib.sha256(b"invalid-cert" + self.profile.key.encode()).digest() * 8
            return b"\x30\x82\x01\x00" + rnd[:256]  # says SEQUENCE of 256 bytes, content is noise
        if self.faults.oversized_cert:
            return b"\x30\x82\xFF\xFF" + der[4:]
        return der

    def _ca_cert_der(self) -> bytes:
        return self.pki.ca_certificate.public_bytes(serialization.Encoding.DER)

    def _token(self) -> bytes:
        # 160-byte CK_TOKEN_INFO-like blob; the first 32 bytes are what readers check.
        label = TOKEN_LABEL.ljust(32, b"\0")
        manufacturer = b"mynasim virtual card".ljust(32, b" ")
        model = b"JPKI".ljust(16, b" ")
        serial = f"{self.pki_serial():016X}".encode()[:16]
        rest = bytes(160 - 32 - 32 - 16 - 16)
        return label + manufacturer + model + serial + rest

    def pki_serial(self) -> int:
        from mynasim.card.pki import serial_for
        return serial_for(self.profile.key)

    def _cert_availability(self) -> bytes:
        # DESIGN ASSUMPTION (real encoding UNVERIFIED): byte 0 = 署名用 cert present (01/00),
        # byte 1 = 利用者証明用 cert present, byte 2 = auth PIN set (01) / no PIN 顔認証カード (00).
        has_pin = self.profile.has_pin
        return bytes([0x01 if has_pin else 0x00, 0x01, 0x01 if has_pin else 0x00])

    def _basic4(self) -> bytes:
        p = self.profile
        return template_ff20([
            (0xDF22, p.name.encode("utf-8")),
            (0xDF23, p.address.encode("utf-8")),
            (0xDF24, p.birth_date.strftime("%Y%m%d").encode()),
            (0xDF25, p.sex.encode()),
        ])

    def _my_number(self) -> bytes:
        return b"\xFF\x10\x0C" + self.profile.my_number.encode() + b"\xFF\xFF"

    def _photo(self) -> bytes:
        if self.faults.photo_not_image:
            return os.urandom(4000)
        if self.faults.photo_bomb:
            return photo_bomb_bytes()
        return card_photo_bytes(self.assets_dir, self.profile.photo)

    def _face(self) -> bytes:
        p = self.profile
        expiry = f"{p.card_expiry_year:04d}{p.birth_date.month:02d}{p.birth_date.day:02d}"
        return template_ff20([
            (0xDF22, p.birth_date.strftime("%Y%m%d").encode()),
            (0xDF23, p.sex.encode()),
            (0xDF27, self._photo()),
            (0xDF29, expiry.encode()),
        ])

    def _build_files(self) -> dict[tuple[str, int], EF]:
        p = self.profile
        pin_value = p.pin
        specs = [
            PinSpec("jpki/0018", 3, p.pin_tries, pin_value),
            PinSpec("jpki/001B", 5, 5, "MYNASIM1" if p.has_pin else None),  # 署名用パスワード (not used)
            PinSpec("text/0011", 3, p.pin_tries, pin_value),
            PinSpec("text/0012", 10, 0, None),                                 # blocked on every card
            PinSpec("text/0014", 10, 10, p.my_number),                         # 照合番号A
            PinSpec("text/0015", 10, 10, p.code_b()),                          # 照合番号B
            PinSpec("face/0012", 10, 10, p.code_b()),                          # 照合番号B
            PinSpec("face/0013", 10, 10, p.my_number),                         # 照合番号A
        ]
        self._pin_specs = {s.ref: s for s in specs}
        files: dict[tuple[str, int], EF] = {}
        for s in specs:
            ap, fid = s.ref.split("/")
            files[(ap, int(fid, 16))] = EF(pin=s)
        c = self._cached
        files[("jpki", 0x0006)] = EF(data=c("token", self._token))
        files[("jpki", 0x0008)] = EF(data=c("avail", self._cert_availability))
        files[("jpki", 0x000A)] = EF(data=c("auth_cert", self._auth_cert_der))
        files[("jpki", 0x000B)] = EF(data=c("ca_cert", self._ca_cert_der))
        files[("jpki", 0x0017)] = EF(key=True, sign_needs=("jpki/0018",))
        # signature side (never used by the daemon; present so OpenSC's pkcs15 binding succeeds)
        files[("jpki", 0x0001)] = EF(data=c("auth_cert", self._auth_cert_der), read_needs=("jpki/001B",))
        files[("jpki", 0x0002)] = EF(data=c("ca_cert", self._ca_cert_der))
        files[("jpki", 0x001A)] = EF(key=True, sign_needs=("jpki/001B",))
        files[("text", 0x0001)] = EF(data=c("my_number", self._my_number), read_needs=("text/0011", "text/0014"))
        files[("text", 0x0002)] = EF(data=c("basic4", self._basic4), read_needs=("text/0011", "text/0015"))
        files[("face", 0x0002)] = EF(data=c("face", self._face), read_needs=("face/0012", "face/0013"))
        return files

    def ef_data(self, ap: str, fid: int) -> bytes:
        """Raw EF contents (for tests and tools; ignores access conditions)."""
        ef = self._files[(ap, fid)]
        assert ef.data is not None
        return ef.data()

    # ------------------------------------------------------------ APDU

    def process(self, apdu: bytes) -> bytes:
        apdu = bytes(apdu)
        if len(apdu) < 4:
            return SW_WRONG_LENGTH
        cla, ins, p1, p2 = apdu[0], apdu[1], apdu[2], apdu[3]
        parsed = _parse_body(apdu[4:])
        if parsed is None:
            return SW_WRONG_LENGTH
        data, le = parsed
        if ins == 0x2A:
            if cla != 0x80:
                return SW_BAD_CLA
            return self._sign(p1, p2, data)
        if cla != 0x00:
            return SW_BAD_CLA
        if ins == 0xA4:
            return self._select(p1, p2, data)
        if ins == 0xB0:
            return self._read(p1, p2, data, le)
        if ins == 0x20:
            return self._verify(p1, p2, data)
        return SW_BAD_INS

    def _select(self, p1: int, p2: int, data: bytes) -> bytes:
        if p2 not in (0x0C, 0x00):
            return SW_WRONG_P1P2
        if p1 == 0x04:
            ap = AIDS.get(data)
            if ap is None:
                return SW_NOT_FOUND
            self.current_ap, self.current_ef = ap, None
            return SW_OK
        if p1 == 0x02:
            if len(data) != 2:
                return SW_WRONG_LENGTH
            if self.current_ap is None:
                return SW_NOT_FOUND
            fid = int.from_bytes(data, "big")
            if (self.current_ap, fid) not in self._files:
                return SW_NOT_FOUND
            self.current_ef = fid
            return SW_OK
        return SW_WRONG_P1P2

    def _current(self) -> EF | None:
        if self.current_ap is None or self.current_ef is None:
            return None
        return self._files.get((self.current_ap, self.current_ef))

    def _read(self, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        if p1 & 0x80:
            return SW_WRONG_P1P2  # short-EF-identifier addressing is not modelled
        if data or le is None:
            return SW_WRONG_LENGTH
        ef = self._current()
        if ef is None:
            return SW_NOT_ALLOWED
        if ef.data is None:
            return SW_SECURITY
        if ef.read_needs and not (self.verified & set(ef.read_needs)):
            return SW_SECURITY
        content = ef.data()
        offset = (p1 << 8) | p2
        if offset >= len(content):
            return SW_WRONG_OFFSET
        return content[offset:offset + le] + SW_OK

    def _verify(self, p1: int, p2: int, data: bytes) -> bytes:
        if p1 != 0x00 or p2 != 0x80:
            return SW_WRONG_P1P2
        ef = self._current()
        if ef is None or ef.pin is None:
            return SW_NOT_ALLOWED
        spec = ef.pin
        tries = self.state.tries(self.profile.key, spec.ref, spec.initial)
        if spec.value is None or tries <= 0:
            return SW_BLOCKED
        if not data:
            return sw_tries(tries)
        if data == spec.value.encode("ascii"):
            if tries != spec.max_tries:
                self.state.set_tries(self.profile.key, spec.ref, spec.max_tries)
            self.verified.add(spec.ref)
            return SW_OK
        tries -= 1
        self.state.set_tries(self.profile.key, spec.ref, tries)
        self.verified.discard(spec.ref)
        return sw_tries(tries)

    def _sign(self, p1: int, p2: int, data: bytes) -> bytes:
        if p1 != 0x00:
            return SW_WRONG_P1P2
        if p2 == 0x80:
            ef = self._current()
        elif p2 == 0x97 and self.current_ap == "jpki":   # P2 = 0x80|SFI names the key EF 0017 directly
            ef = self._files[("jpki", 0x0017)]
        else:
            return SW_WRONG_P1P2
        if ef is None or not ef.key:
            return SW_NOT_ALLOWED
        if not (self.verified & set(ef.sign_needs)):
            return SW_SECURITY
        if ef is not self._files[("jpki", 0x0017)]:
            return SW_SECURITY  # the signature key is not modelled
        algo = None
        for prefix, h in DIGEST_INFO.items():
            if data.startswith(prefix) and len(data) == len(prefix) + h.digest_size:
                algo = h
                digest = data[len(prefix):]
                break
        if algo is None:
            return SW_WRONG_DATA
        _, key = self.pki.issue(self.profile)
        sig = key.sign(digest, padding.PKCS1v15(), utils.Prehashed(algo))
        return sig + SW_OK


def _parse_body(body: bytes) -> tuple[bytes, int | None] | None:
    """ISO 7816-3 cases 1-4 (short and extended). Returns (data, Ne) or None if malformed."""
    n = len(body)
    if n == 0:
        return b"", None                                  # case 1
    if n == 1:
        return b"", body[0] or 256                        # case 2S
    if body[0] != 0:
        lc = body[0]
        if n == 1 + lc:
            return body[1:], None                         # case 3S
        if n == 2 + lc:
            return body[1:1 + lc], body[-1] or 256        # case 4S
        return None
    # extended length (body[0] == 0)
    if n == 3:
        return b"", int.from_bytes(body[1:3], "big") or 65536   # case 2E
    lc = int.from_bytes(body[1:3], "big") if n >= 3 else 0
    if lc and n == 3 + lc:
        return body[3:], None                             # case 3E
    if lc and n == 5 + lc:
        return body[3:3 + lc], int.from_bytes(body[-2:], "big") or 65536  # case 4E
    return None
