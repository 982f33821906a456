"""The five fuzz targets: what each is fed, its contract, and the oracle that checks it.

Shared by the hypothesis properties in ``tests/fuzz`` (short, derandomized, in CI) and
the mutational benchmark ``bench/fuzz.py`` (a million inputs per target). Every target
takes **bytes**, so one set of byte mutators serves all five and any crashing input can
be saved to a file and replayed as it is.

The contract of every target is the same sentence: *whatever the bytes, the module
raises nothing but its own documented error, and what it returns keeps the module's
invariants*. ``run(data)`` returns a short outcome label (used to count distinct
behaviours) when the contract holds; a documented error is an ordinary outcome. Any
other exception escapes ``run`` unchanged, and a broken invariant raises
:class:`ContractViolation`: both are the findings the fuzzers look for.

Pure apart from the config target, which writes each input to one file in a scratch
folder because the contract covers ``load_config`` itself (UTF-8 decoding included).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mynad.card import tlv
from mynad.card.channel import CardChannel
from mynad.card.errors import CardError
from mynad.card.session import AuthCertificate, Basic4, CardIdentity, MynaCard, PinStatus
from mynad.config import ConfigError, DaemonConfig, load_config
from mynad.core.secret import PinBuffer
from mynad.hostlink import auth, codec, messages
from mynad.hostlink.codec import Decoder, Frame, FrameType, PayloadError
from mynad.hostlink.messages import MessageError

REPO = Path(__file__).resolve().parents[2]
SEEDS = Path(__file__).resolve().parent / "seeds"
MAX_REASON_CHARS = 200  # a validate() sentence is logged and echoed in a NAK: it must stay short


class ContractViolation(AssertionError):
    """The target returned without its documented error but broke one of its invariants."""


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise ContractViolation(what)


def shape(text: str) -> str:
    """An error sentence with its data blanked (quoted values, numbers, hex), for counting kinds."""
    text = re.sub(r"\(got .*", "(got #)", text)
    text = re.sub(r"unknown section\(s\) [^;]*", "unknown section(s) #", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"|\b[0-9A-F]{2,}\b|\d+", "#", text)
    return text[:80]


@dataclass(frozen=True)
class Target:
    name: str
    contract: str
    documented: tuple[type[BaseException], ...]
    run: Callable[[bytes], str]
    seeds: Callable[[], list[bytes]]


# ------------------------------------------------------------------ host frames


FUZZ_KEY = bytes(range(auth.KEY_LEN))  # the host key of the fuzzed link (a test key, nothing secret)


def _host_sealer() -> auth.LinkAuth:
    sealer = auth.LinkAuth(FUZZ_KEY, "host")
    sealer.send.reserved(sealer.send.reservation_needed() or 0)
    return sealer


_READER_AUTH = auth.LinkAuth(FUZZ_KEY, "reader")  # reused: deriving the direction keys costs more than a frame


def frame_seeds() -> list[bytes]:
    """Valid wire streams, sealed by the host: every frame type, host and reader messages, escapes."""
    sealer = _host_sealer()
    host = [messages.visit_challenge("v1", bytes(range(32))), messages.staff_visual_check("目視"),
            messages.visit_qualification("v1", True, name="山田 太郎", name_kana="ヤマダ タロウ", age=42,
                                         previous_consents={"surgery": True})]
    out = []
    for i, msg in enumerate(host + message_objects()[:4]):
        out.append(codec.encode(sealer.seal(Frame.of(FrameType.DATA, i, msg))))
    out.append(codec.encode(sealer.seal(Frame.of(FrameType.ACK, 7, {"id": "a" * 32}))))
    out.append(codec.encode(sealer.seal(Frame.of(FrameType.NAK, 8, {"id": "b", "reason": "unknown type 'x'"}))))
    out.append(codec.encode(sealer.seal(Frame(FrameType.HELLO, 0))))
    out.append(b"".join(out[:3]))
    out.append(b"garbage\xfe" + out[-2] + b"\xfe\xff\x01")
    # a first byte chooses the chunking (see run_frames; 0 = the whole stream in one feed)
    return [bytes([i * 37 % 64]) + s for i, s in enumerate(out)]


def frame_bytes(ver: int, typ: int, seq: int, payload: bytes, length: int | None = None,
                trailer: bytes | None = None) -> bytes:
    """A frame with a correct CRC, even with fields ``encode`` refuses (non-ASCII, wrong length).

    ``trailer`` is what the codec puts between payload and CRC (the authentication counter
    and tag, where the codec has them); by default the codec's own for an unsealed frame.
    """
    n = len(payload) if length is None else length
    if trailer is None:
        trailer = codec_trailer(Frame(FrameType.HELLO, 0))
    head = codec.HEADER.pack(codec.SYNC, ver & 0xFF, typ & 0xFF, seq & 0xFFFF, n & 0xFFFF)
    body = head[2:] + payload + trailer
    return codec.SYNC + body + codec.crc16(body).to_bytes(2, "big")


def codec_trailer(f: Frame) -> bytes:
    """The bytes of an encoded frame between payload and CRC (empty for the version-1 codec)."""
    raw = codec.encode(f)
    return raw[codec.HEADER_LEN + len(f.payload):-codec.CRC_LEN]


def run_frames(data: bytes) -> str:
    """Decoder over the stream (chunked as byte 0 says); each frame's tag and JSON; the payload path.

    Contract: ``feed``/``flush`` never raise; ``Frame.json`` raises only PayloadError;
    every frame returned was present byte for byte in the stream; the decoder holds at
    most one maximal frame; every byte is either in a returned frame or counted as dropped;
    ``LinkAuth.check`` never raises, and accepts each counter at most once (no replay).
    """
    if not data:
        return "empty"
    ctl, stream = data[0], data[1:]
    # small chunks exercise the resumable parse; beyond 4 KiB only coarse ones (speed)
    chunk = max((ctl & 0x3F) or len(stream), len(stream) // 64, 1)
    dec = Decoder(max_payload=64 if ctl & 0x40 else codec.MAX_PAYLOAD)
    limit = codec.OVERHEAD + dec.max_payload
    frames: list[Frame] = []
    for i in range(0, len(stream), chunk):
        frames += dec.feed(stream[i:i + chunk])
        _require(dec.pending <= limit, f"decoder holds {dec.pending} bytes, more than one frame")
    frames += dec.flush()
    _require(dec.pending == 0, "bytes left after flush")
    used = 0
    kinds = set()
    reader = _READER_AUTH
    reader.peer_hwm = 0  # a fresh link: what the counter store holds for a new key
    accepted: list[int] = []
    for f in frames:
        raw = codec.encode(f)
        _require(raw in stream, "the decoder returned a frame that is not in the stream")
        used += len(raw)
        refused = reader.check(f)
        if refused is None:
            _require(not accepted or f.counter > accepted[-1], "a frame's counter was accepted twice")
            accepted.append(f.counter)
            reader.accept(f)
        kinds.add("authentic" if refused is None else refused[:12])
        try:
            body = f.json()
            kinds.add(type(body).__name__)
            if isinstance(body, dict):
                why = messages.validate(body, messages.HOST_TO_READER)
                kinds.add("valid" if why is None else "refused")
        except PayloadError:
            kinds.add("payload-error")
    _require(used + dec.dropped_bytes == len(stream),
             f"{len(stream)} bytes in, {used} in frames + {dec.dropped_bytes} dropped")
    try:  # the same bytes as a payload that reached Frame.json (non-ASCII included)
        Frame(FrameType.DATA, 0, stream).json()
        kinds.add("raw-json")
    except PayloadError:
        pass
    return f"frames={min(len(frames), 3)} drops={','.join(sorted(dec.dropped))[:60]} {sorted(kinds)}"


# ------------------------------------------------------------------ messages


def message_objects() -> list[dict[str, Any]]:
    """One valid message of every type, built by the module's own constructors."""
    cons = {f: "1" for f in messages.CONSENT_FLAGS}
    return [
        messages.hello("reader-01", "0.1.0"),
        messages.visit_started("v1", "valid", b"\x30\x82\x01\x00" + bytes(40), 1234567890123, dt.date(2030, 1, 31)),
        messages.visit_authenticated("v1", "pin", signature=bytes(256)),
        messages.visit_authenticated("v1", "face", face_score=0.61),
        messages.build("visit.registration", visit_id="v1"),
        messages.visit_result("v1", method="face", proxy=False, cert_state="valid", qualification_only=False,
                              consents=cons, cons_time="20260401093000"),
        messages.build("visit.aborted", visit_id="v1", reason="card removed", code="001"),
        messages.build("reader.event", kind="disk", code="E31", message="disk full"),
        messages.visit_challenge("v1", bytes(range(32))),
        messages.visit_qualification("v1", False, error={"code": "E1", "message": "資格なし"}),
        messages.staff_visual_check("patient has no card photo"),
    ]


def message_seeds() -> list[bytes]:
    return [codec.dumps(m) for m in message_objects()]


def run_messages(data: bytes) -> str:
    """Bytes -> JSON (the codec's parser) -> ``validate`` for each direction, and ``envelope``.

    Contract: ``validate`` never raises and returns None or one sentence of at most
    MAX_REASON_CHARS characters; a message it accepts has a type of the allowed set;
    ``envelope`` raises only MessageError and returns a message with v, id, type and ts.
    """
    try:
        msg = Frame(FrameType.DATA, 0, data).json()
    except PayloadError:
        return "not-json"
    outs = []
    for allowed in (None, messages.HOST_TO_READER, messages.READER_TO_HOST):
        why = messages.validate(msg, allowed)
        _require(why is None or isinstance(why, str), f"validate returned {type(why).__name__}")
        if why is None:
            _require(allowed is None or msg["type"] in allowed, "validate accepted a type outside the allowed set")
            outs.append("ok")
        else:
            _require(0 < len(why) <= MAX_REASON_CHARS, f"validate's sentence is {len(why)} characters long")
            outs.append(re.sub(r"(bad value|message type|version) .*", r"\1 #", why)[:70])
    try:
        env = messages.envelope(msg)
        _require(all(k in env for k in ("v", "id", "type", "ts")), "envelope lacks v/id/type/ts")
        outs.append("envelope")
    except MessageError:
        outs.append("envelope-refused")
    return " | ".join(outs)


# ------------------------------------------------------------------ BER-TLV


def tlv_seeds() -> list[bytes]:
    """Card-surface and text records (with and without a prefix), DER headers, fillers."""
    def item(tag: int, value: bytes) -> bytes:
        n = len(value)
        length = bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else b"\x82" + n.to_bytes(2, "big")
        return tag.to_bytes(2, "big") + length + value

    basic = (item(0xDF21, b"\x00" * 3) + item(0xDF22, "山田 太郎".encode()) + item(0xDF23, "東京都千代田区1-1".encode())
             + item(0xDF24, b"19800101") + item(0xDF25, b"1"))
    face = item(0xDF21, b"\x01") + item(0xDF27, b"\x00\x00\x00\x0cjP  " + bytes(300)) + item(0xDF28, b"x" * 10)
    return [item(0xFF20, basic), b"\x00\x00" + item(0xFF20, face), item(0xFF20, basic + b"\x00\x00\xff\xff"),
            bytes.fromhex("308204D2") + bytes(16), bytes.fromhex("9F1F8101AA"), bytes.fromhex("5F2003414243"),
            item(0xFF20, b"")]


def run_tlv(data: bytes) -> str:
    """``read_header``, ``total_length``, ``children`` and ``find_record`` on the same bytes.

    Contract: only ValueError; a header's value offset lies inside the buffer; every
    value returned is a slice of the input, and together they are no longer than it.
    """
    outs = []
    try:
        tag, length, at = tlv.read_header(data)
        _require(0 < at <= len(data) and length >= 0 and tag >= 0, "read_header returned an impossible header")
        _require(tlv.total_length(data) == at + length, "total_length disagrees with read_header")
        outs.append(f"hdr{min(at, 6)}")
    except ValueError as e:
        outs.append(shape(str(e)))
    for fn in (lambda: tlv.children(data), lambda: tlv.find_record(data), lambda: tlv.find_record(data, 0xDF27)):
        try:
            items = fn()
            _require(all(isinstance(v, bytes) and v in data for v in items.values()), "a value is not in the input")
            _require(sum(len(v) for v in items.values()) <= len(data), "values longer than the input")
            outs.append(f"items{min(len(items), 5)}")
        except ValueError as e:
            outs.append(shape(str(e)))
    return " | ".join(outs)


# ------------------------------------------------------------------ card session

# A card script is the sequence of raw answers (data + SW) a card gives, one per command:
#   u16 length, then that many bytes       an answer
#   u16 0xFFFF, then one byte k            the driver fails with DRIVER_KINDS[k % n]
# When the script runs out the card is pulled (driver error "card_gone").
DRIVER_KINDS = ("card_gone", "card_mute", "service_gone", "malformed", "reader", "unknown-kind")
FUZZ_PIN = "1234"
FUZZ_CODE_B = "56051220311234"
CHALLENGE = b"host nonce for the fuzzer......."


class DriverFailure(Exception):
    """What the PC/SC driver raises (duck-typed like myna_drivers.pcsc.PcscError)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.message = f"driver failure {kind}"
        super().__init__(self.message)


def encode_script(answers: list[bytes | str]) -> bytes:
    """A script from answers (bytes) and driver failures (a kind name)."""
    out = bytearray()
    for a in answers:
        if isinstance(a, str):
            out += b"\xff\xff" + bytes([DRIVER_KINDS.index(a)])
        else:
            out += len(a).to_bytes(2, "big") + a
    return bytes(out)


def decode_script(data: bytes) -> list[bytes | str]:
    """Lenient: a length past the end takes what is left (mutated scripts stay playable)."""
    out: list[bytes | str] = []
    pos = 0
    while pos + 2 <= len(data):
        n = int.from_bytes(data[pos:pos + 2], "big")
        pos += 2
        if n == 0xFFFF:
            out.append(DRIVER_KINDS[data[pos] % len(DRIVER_KINDS)] if pos < len(data) else "card_gone")
            pos += 1
        else:
            out.append(data[pos:pos + n])
            pos += n
    return out


class ScriptedCard:
    """A driver link that answers from a script and records what the reader sent."""

    def __init__(self, answers: list[bytes | str]) -> None:
        self.answers = answers
        self.i = 0
        self.sent: list[bytes] = []

    def exchange(self, apdu: bytes | bytearray, timeout: float | None = None) -> bytes:
        self.sent.append(bytes(apdu))
        if self.i >= len(self.answers):
            raise DriverFailure("card_gone")
        a = self.answers[self.i]
        self.i += 1
        if isinstance(a, str):
            raise DriverFailure(a)
        return a

    def close(self) -> None:
        pass


class WatchedChannel:
    """Between MynaCard and CardChannel: checks that no VERIFY with data follows a counter
    query whose final answer said the secret is blocked (63C0, 6983, 6984)."""

    def __init__(self, channel: CardChannel) -> None:
        self.channel = channel
        self.blocked = False

    def transmit(self, apdu: bytes | bytearray, timeout: float | None = None) -> tuple[bytes, int]:
        is_verify = bytes(apdu[:4]) == b"\x00\x20\x00\x80"
        if is_verify and len(apdu) > 4:
            _require(not self.blocked, "a VERIFY was sent after the card said the secret is blocked")
        data, sw = self.channel.transmit(apdu, timeout)
        if is_verify and len(apdu) == 4:
            self.blocked = sw in (0x63C0, 0x6983, 0x6984)
        return data, sw


def _pin() -> PinBuffer:
    b = PinBuffer()
    for d in FUZZ_PIN:
        b.push(int(d))
    return b


def _session_steps(card: MynaCard, pin: Callable[[], PinBuffer], code_b: str) -> list[Callable[[], Any]]:
    """The commands of a visit, in the order the daemon uses them (PIN visit, then face visit)."""
    return [card.identify, card.auth_certificate, card.pin_status, lambda: card.verify_pin(pin()),
            lambda: card.sign(CHALLENGE), card.code_b_status,
            lambda: card.face_photo(bytearray(code_b.encode()), reserve=3), lambda: card.basic4(pin())]


STEP_RESULTS = (CardIdentity, AuthCertificate, PinStatus, PinStatus, bytes, PinStatus, bytes, Basic4)


def run_session(data: bytes) -> str:
    """Every session command against a card that answers from the script.

    Contract: each command raises only CardError (its subclasses); a command that
    returns gives a value of its declared type; VERIFYs carrying a secret are at most
    one per call that may send one (never repeated on the reader's own), 照合番号B at
    most once per insertion, and none after the card said the secret is blocked.
    """
    link = ScriptedCard(decode_script(data))
    card = MynaCard(WatchedChannel(CardChannel(link)))
    outs = []
    for step, want in zip(_session_steps(card, _pin, FUZZ_CODE_B), STEP_RESULTS):
        try:
            got = step()
            _require(isinstance(got, want) and (not isinstance(got, bytes) or got),
                     f"a command returned {type(got).__name__}, not {want.__name__}")
            outs.append("ok")
        except CardError as e:
            outs.append(type(e).__name__)
    verifies = [c for c in link.sent if c[:4] == b"\x00\x20\x00\x80" and len(c) > 5]
    pin_verifies = sum(1 for c in verifies if c[4] == 4)
    code_b_verifies = sum(1 for c in verifies if c[4] == 14)
    _require(pin_verifies <= 2, f"{pin_verifies} PIN VERIFYs for 2 calls that may send one")
    _require(code_b_verifies <= 1, f"{code_b_verifies} 照合番号B VERIFYs in one insertion")
    return " ".join(outs)


def record_session_script(card_process: Callable[[bytes], bytes], pin: str, code_b: str) -> bytes:
    """The answers a card (``process(apdu) -> data+SW``) gives to the fixed command sequence."""
    answers: list[bytes | str] = []

    class Recorder:
        def exchange(self, apdu: bytes | bytearray, timeout: float | None = None) -> bytes:
            r = card_process(bytes(apdu))
            answers.append(r)
            return r

        def close(self) -> None:
            pass

    def real_pin() -> PinBuffer:
        b = PinBuffer()
        for d in pin:
            b.push(int(d))
        return b

    card = MynaCard(CardChannel(Recorder()))
    for step in _session_steps(card, real_pin, code_b):
        try:
            step()
        except CardError:
            pass
    return encode_script(answers)


def session_seeds() -> list[bytes]:
    """Scripts recorded from the virtual card (``bench/fuzz.py --record-seeds``), plus a few by hand."""
    out = [p.read_bytes() for p in sorted((SEEDS / "session").glob("*.bin"))]
    ok = b"\x90\x00"
    out.append(encode_script([ok, ok, b"JPKIAPICCTOKEN2" + bytes(17) + ok, "card_gone"]))
    out.append(encode_script([b"\x61\x10", b"\x6c\x20", ok, b"\x63\xc0", "card_mute"]))
    return out


# ------------------------------------------------------------------ config


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v), ensure_ascii=False)  # a JSON string is a TOML basic string


def full_config_text() -> str:
    """Every section and key at its default: new keys are fuzzed as soon as they exist."""
    default = DaemonConfig()
    lines = []
    for f in dataclasses.fields(DaemonConfig):
        section = getattr(default, f.name)
        if not dataclasses.is_dataclass(section):
            continue
        lines.append(f"[{f.name}]")
        for g in dataclasses.fields(section):
            v = getattr(section, g.name)
            if v is not None:
                lines.append(f"{g.name} = {_toml_value(v)}")
        lines.append("")
    return "\n".join(lines)


def config_seeds() -> list[bytes]:
    out = [full_config_text().encode(), (REPO / "hw-sim/mynasim/mynad-sim.toml").read_bytes(), b""]
    out.append(b'[reader]\nid = "r"\nstate_dir = "state"\n[host]\ntransport = "mqtt"\nmqtt_port = 8883\n'
               b'[keypad]\nrows = [1, 2]\n[flow]\nconsent_items = ["surgery"]\nscreen_timeout_s = 30\n')
    return out


class ConfigRunner:
    """Writes each input to one scratch file (tmpfs when there is one) and loads it."""

    def __init__(self) -> None:
        shm = Path("/dev/shm")
        self._dir = tempfile.TemporaryDirectory(prefix="myna-fuzz-", dir=shm if shm.is_dir() else None)
        self.path = Path(self._dir.name) / "mynad.toml"

    def __call__(self, data: bytes) -> str:
        """Contract: ``load_config`` raises only ConfigError; a config it returns has finite,
        non-negative numbers, list options of the element type they declare, absolute paths."""
        self.path.write_bytes(data)
        try:
            cfg = load_config(self.path)
        except ConfigError as e:
            return shape(str(e))
        for f in dataclasses.fields(cfg):
            section = getattr(cfg, f.name)
            if dataclasses.is_dataclass(section):
                _check_section(f.name, section)
        return "loaded"


def _check_section(name: str, section: Any) -> None:
    for f in dataclasses.fields(section):
        v = getattr(section, f.name)
        where = f"[{name}] {f.name} = {v!r:.40}"
        kind = str(f.type)
        if isinstance(v, float):
            _require(math.isfinite(v) and v >= 0, f"{where}: not a finite non-negative number")
        elif isinstance(v, int) and not isinstance(v, bool):
            _require(v >= 0, f"{where}: negative")
        elif isinstance(v, Path) and v != f.default:  # a default may be relative ([display] out_dir)
            _require(v.is_absolute() and "\x00" not in str(v), f"{where}: not a usable absolute path")
        elif isinstance(v, tuple):
            want = int if "tuple[int" in kind else str if "tuple[str" in kind else object
            _require(all(isinstance(x, want) and not isinstance(x, bool) for x in v),
                     f"{where}: an element is not {want.__name__}")


# ------------------------------------------------------------------ registry


def targets(config_runner: ConfigRunner | None = None) -> dict[str, Target]:
    runner = config_runner or ConfigRunner()
    return {t.name: t for t in (
        Target("frames", "Decoder.feed/flush never raise; Frame.json raises only PayloadError; frames are exact "
               "copies from the stream; every byte is framed or counted as dropped",
               (PayloadError,), run_frames, frame_seeds),
        Target("messages", "validate never raises and returns None or one short sentence; envelope raises only "
               "MessageError", (PayloadError, MessageError), run_messages, message_seeds),
        Target("tlv", "read_header/total_length/children/find_record raise only ValueError; values are slices "
               "of the input", (ValueError,), run_tlv, tlv_seeds),
        Target("session", "every MynaCard command over a hostile card raises only CardError; no VERIFY repeated, "
               "none after the card said blocked", (CardError,), run_session, session_seeds),
        Target("config", "load_config raises only ConfigError; a loaded config has finite non-negative numbers, "
               "typed lists and absolute paths", (ConfigError,), runner, config_seeds),
    )}

