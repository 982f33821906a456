"""Hypothesis strategies for hostile inputs of each fuzz target (structure-aware, shrinkable)."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from mynad.hostlink import codec, messages
from tests.fuzz import targets as T

FIELD_NAMES = sorted({k.rstrip("?") for s in messages.SCHEMAS.values() for k in s}
                     | {"type", "v", "id", "ts"} | set(messages.FORBIDDEN_FIELDS) | {"PIN", "Photo"})
TRICKY_STRINGS = ["", "x" * 65, "a" * 3000, "１２３", "²", "٣", "0" * 14, "2026-02-30", "9999-12-31",
                  "20261301250000", "AAAA=", "A" * 43 + "=", "\u0000", "é", "pin"] + sorted(messages.SCHEMAS)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                         st.text(max_size=30), st.sampled_from(TRICKY_STRINGS))
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4)
                           | st.dictionaries(st.text(max_size=8) | st.sampled_from(FIELD_NAMES), c, max_size=4),
                           max_leaves=16)


@st.composite
def nested(draw) -> bytes:
    """Brackets nested from harmless to far past the parser's recursion limit."""
    depth = draw(st.sampled_from([1, 15, 16, 17, 18, 100, 999, 5000]))
    if draw(st.booleans()):
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@st.composite
def message_like(draw) -> dict:
    """An object that looks like a message: a real type, a chosen version, fields of known names."""
    msg = {"type": draw(st.sampled_from(sorted(messages.SCHEMAS)) | st.text(max_size=5)),
           "v": draw(st.sampled_from([1, 1, 1.0, True, "1", 2, None]) | json_values),
           "id": draw(st.sampled_from(["a" * 32, "", "x" * 65]) | json_values),
           "ts": draw(st.sampled_from(["2026-04-01T09:00:00+09:00"]) | json_values)}
    for name in draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=8)):
        msg[name] = draw(json_values)
    return msg


def dumps(obj) -> bytes:
    return json.dumps(obj).encode()


message_bytes = st.one_of(st.builds(dumps, message_like()), st.sampled_from(T.message_seeds()),
                          st.builds(dumps, json_values), nested(), st.binary(max_size=200))


@st.composite
def frame_streams(draw) -> bytes:
    """Control byte (chunking), then frames with good CRCs (some with bad fields) and garbage."""
    parts = [bytes([draw(st.integers(0, 255))])]
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["frame", "frame", "odd-frame", "garbage"]))
        if kind == "garbage":
            parts.append(draw(st.binary(max_size=24) | st.sampled_from([codec.SYNC, b"\xfe", codec.SYNC + b"\x01"])))
            continue
        payload = draw(message_bytes | st.binary(max_size=64))
        ver, typ, length, trailer = codec.VERSION, draw(st.integers(1, 4)), None, None
        if kind == "odd-frame":
            ver = draw(st.sampled_from([0, 1, 2, 3, 255]))
            typ = draw(st.integers(0, 255))
            length = draw(st.none() | st.integers(0, 0xFFFF))
            trailer = draw(st.none() | st.binary(max_size=30))
        parts.append(T.frame_bytes(ver, typ, draw(st.integers(0, 0xFFFF)), payload[:codec.MAX_PAYLOAD], length,
                                   trailer))
    return b"".join(parts)


@st.composite
def tlv_chains(draw, depth: int = 2) -> bytes:
    """TLVs whose tags and length fields are chosen to be awkward (wrong, long-form, huge)."""
    out = bytearray(draw(st.sampled_from([b"", b"\x00", b"\x00\x00", b"\xff"])))
    for _ in range(draw(st.integers(0, 4))):
        tag = draw(st.sampled_from([b"\xff\x20", b"\xdf\x22", b"\xdf\x27", b"\x30", b"\x1f", b"\x9f\x80",
                                    b"\x9f\xff\xff\xff\x01", b"\x00", b"\xff\xff"]))
        value = draw(tlv_chains(depth - 1)) if depth > 0 and draw(st.booleans()) else draw(st.binary(max_size=40))
        n = len(value) + draw(st.sampled_from([0, 0, 0, 1, -1, 200, 0x10000]))
        n = max(n, 0)
        form = draw(st.sampled_from(["short", "81", "82", "83", "84", "80"]))
        length = (bytes([n]) if form == "short" and n < 0x80 else
                  b"\x81" + bytes([n & 0xFF]) if form == "81" else
                  b"\x82" + (n & 0xFFFF).to_bytes(2, "big") if form == "82" else
                  b"\x83" + (n & 0xFFFFFF).to_bytes(3, "big") if form == "83" else
                  b"\x84" + (n & 0xFFFFFFFF).to_bytes(4, "big") if form == "84" else b"\x80")
        out += tag + length + value
    return bytes(out)


SW_POOL = [0x9000, 0x6100, 0x61FF, 0x6C00, 0x6C20, 0x6300, 0x63C0, 0x63C1, 0x63C3, 0x63CF, 0x6983, 0x6984, 0x6982,
           0x6A82, 0x6D00, 0x6E00, 0x6F00, 0x6700, 0x0000, 0xFFFF, 0x9001]
SESSION_SEEDS = T.session_seeds()


@st.composite
def card_scripts(draw) -> bytes:
    """A recorded card's answers with a few of them made hostile."""
    answers = T.decode_script(draw(st.sampled_from(SESSION_SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        if not answers:
            break
        i = draw(st.integers(0, len(answers) - 1))
        a = answers[i]
        body = a[:-2] if isinstance(a, bytes) else b""
        kind = draw(st.sampled_from(["sw", "sw", "data", "tlv", "driver", "drop", "short", "chain"]))
        if kind == "sw":
            answers[i] = body + draw(st.sampled_from(SW_POOL) | st.integers(0, 0xFFFF)).to_bytes(2, "big")
        elif kind == "data":
            answers[i] = draw(st.binary(max_size=300)) + (a[-2:] if isinstance(a, bytes) else b"\x90\x00")
        elif kind == "tlv":
            answers[i] = draw(tlv_chains()) + b"\x90\x00"
        elif kind == "driver":
            answers[i] = draw(st.sampled_from(T.DRIVER_KINDS))
        elif kind == "drop":
            del answers[i:]
        elif kind == "short":
            answers[i] = draw(st.binary(max_size=2))
        else:
            answers[i:i] = [b"\x61\x00"] * draw(st.sampled_from([1, 64, 65]))
    return T.encode_script(answers)


CONFIG_TEXT = T.full_config_text()
TOML_VALUES = ["nan", "-inf", "inf", "-1", "0", "1e400", "99999999999999999999999999", "1" + "0" * 5000, "true",
               '""', '"\\u0000"', '"a\\u0000b"', "[]", '[1, "a"]', "[true]", "[-1]", "[[1]]", "{a = 1}",
               "1979-05-27T07:32:00Z", "07:32:00", "'/'", '"relative/dir"', "3.5", "[" * 2000 + "]" * 2000,
               '["surgery", "x"]', '"mqtt"', '"sim"', "4", "255", "65536"]
toml_values = st.one_of(st.sampled_from(TOML_VALUES), st.integers(-2**70, 2**70).map(str),
                        st.floats().map(repr), st.text(max_size=20).map(json.dumps))


@st.composite
def config_texts(draw) -> bytes:
    """The complete default config with a few values replaced, lines repeated or dropped."""
    lines = CONFIG_TEXT.splitlines()
    keyed = [i for i, ln in enumerate(lines) if " = " in ln]
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.sampled_from(keyed))
        op = draw(st.sampled_from(["value", "value", "value", "repeat", "drop", "unknown"]))
        if op == "value":
            lines[i] = lines[i].split(" = ")[0] + " = " + draw(toml_values)
        elif op == "repeat":
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
        elif op == "drop":
            lines[i] = ""
        else:
            lines.insert(i, draw(st.sampled_from(["surprise = 1", "[surprise]", "[[flow]]", "a.b = 1"])))
    return "\n".join(lines).encode()
