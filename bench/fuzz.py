#!/usr/bin/env python3
"""Mutational fuzzer for the reader's five input parsers (no coverage feedback, pure Python).

Targets and contracts are in ``tests/fuzz/targets.py`` (the CI properties use the same
oracles). For each target this starts from a seed corpus of valid inputs and feeds the
target mutants: byte flips, sets, inserts, deletes, duplications, splices and
arithmetic on lengths, plus mutations that know the structure (JSON trees, frames with
a recomputed CRC, BER-TLV length/tag forms, card answer scripts, TOML values). An input
whose outcome has not been seen before joins the corpus, a cheap stand-in for coverage.

Any exception other than the target's documented error (or a broken invariant) is an
"unexpected" outcome: the input is saved under ``--crashes DIR`` with its traceback,
once per distinct (exception, place). The benchmark figure is ``--inputs 1000000`` per
target with 0 unexpected; the "mutator only" column is the same run's generation rate
without calling the target, as a reference for the machine's speed.

    .venv/bin/python bench/fuzz.py                                  # all targets, 1e6 each
    .venv/bin/python bench/fuzz.py --target tlv --inputs 100000 --crashes /tmp/crashes
    .venv/bin/python bench/fuzz.py --target config --replay /tmp/crashes/config-1a2b3c4d5e6f.bin
    .venv/bin/python bench/fuzz.py --record-seeds                   # card scripts from the virtual card
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.fuzz.targets: the contracts live beside the CI properties

from mynad.card import tlv  # noqa: E402
from mynad.hostlink import codec, messages  # noqa: E402
from mynad.hostlink.codec import Decoder  # noqa: E402
from tests.fuzz import targets as T  # noqa: E402

MAX_INPUT = 70_000  # bytes; a frame payload may be 65 535
CORPUS_CAP = 4_000
Mutation = Callable[[random.Random, bytes, list[bytes]], bytes]

# ------------------------------------------------------------------ byte mutations

INTERESTING_BYTES = bytes([0x00, 0x01, 0x1F, 0x20, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0xFE, 0xFF])


def _pos(rng: random.Random, data: bytes, end: bool = False) -> int:
    return rng.randrange(len(data) + (1 if end else 0)) if data or end else 0


def flip_bit(rng, data, corpus):
    if not data:
        return bytes([rng.randrange(256)])
    b = bytearray(data)
    i = _pos(rng, data)
    b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def set_byte(rng, data, corpus):
    if not data:
        return bytes([rng.choice(INTERESTING_BYTES)])
    b = bytearray(data)
    b[_pos(rng, data)] = rng.choice(INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256)
    return bytes(b)


def arith(rng, data, corpus):
    """Add a small number to a byte or a big-endian u16 (lengths, counters, SWs)."""
    if len(data) < 2:
        return flip_bit(rng, data, corpus)
    b = bytearray(data)
    i = rng.randrange(len(b) - 1)
    delta = rng.choice((-1, 1, -2, 2, 16, -16, 128, 255))
    if rng.random() < 0.5:
        b[i] = (b[i] + delta) & 0xFF
    else:
        v = (int.from_bytes(b[i:i + 2], "big") + delta * rng.choice((1, 256))) & 0xFFFF
        b[i:i + 2] = v.to_bytes(2, "big")
    return bytes(b)


def insert_random(rng, data, corpus):
    i = _pos(rng, data, end=True)
    return data[:i] + rng.randbytes(rng.choice((1, 1, 2, 4, 8, 32))) + data[i:]


def delete_range(rng, data, corpus):
    if not data:
        return data
    i = _pos(rng, data)
    n = rng.choice((1, 1, 2, 4, 16, len(data)))
    return data[:i] + data[i + n:]


def duplicate_range(rng, data, corpus):
    if not data:
        return data
    i = _pos(rng, data)
    n = rng.choice((1, 2, 8, 64, 512))
    j = _pos(rng, data, end=True)
    return data[:j] + data[i:i + n] * rng.choice((1, 1, 2, 16)) + data[j:]


def splice(rng, data, corpus):
    other = rng.choice(corpus)
    return data[:_pos(rng, data, end=True)] + other[_pos(rng, other, end=True):]


def truncate(rng, data, corpus):
    return data[:_pos(rng, data, end=True)]


BYTE_MUTATIONS: tuple[Mutation, ...] = (flip_bit, set_byte, set_byte, arith, insert_random, delete_range,
                                        duplicate_range, splice, truncate)


def token_mutation(tokens: tuple[bytes, ...]) -> Mutation:
    """Insert or overwrite with a token of the format (sometimes many times: nesting bombs)."""
    def mutate(rng, data, corpus):
        tok = rng.choice(tokens)
        tok *= rng.choice((1, 1, 1, 2, 17, 300, 5000)) if len(tok) <= 2 else 1
        i = _pos(rng, data, end=True)
        j = i + (len(tok) if rng.random() < 0.3 else 0)
        return data[:i] + tok + data[j:]
    return mutate


# ------------------------------------------------------------------ JSON (messages, frame payloads)

FIELD_NAMES = sorted({k.rstrip("?") for s in messages.SCHEMAS.values() for k in s}
                     | {"type", "v", "id", "ts", "reason"} | set(messages.FORBIDDEN_FIELDS) | {"PIN", "Image"})
JSON_VALUES: tuple[Any, ...] = (
    None, True, False, 0, 1, 2, -1, 2**63, -(2**64), 10**300, 1.5, 1e308, -0.0, "", "x", "x" * 65, "a" * 5000,
    "１２３", "²³", "٣", "0" * 14, "2026-02-30", "9999-12-31", "20261301250000", "AAAA", "AAAA=", "====", "é",
    "\u0000", "\ud800", [], {}, [[]], {"code": ""}, {"code": "E", "message": 1}, {"surgery": 1},
    {"OperationInfoConsFlg": "2"}, "pin", "face", "visual", "valid",
) + tuple(sorted(messages.SCHEMAS)) + (
    "A" * 43 + "=", "A" * 44, "ZmFrZQ==\n",
)
JSON_TOKENS = (b"[", b"{", b"]", b"}", b'"', b"\\", b"\\u0000", b"\\ud800", b"NaN", b"Infinity", b"-", b"1e999",
               b"0" * 5000, b'{"a":', b"[1,", b",", b":", b"\xff", b"\xc3", b"\x00", b"null")


def _json_paths(obj: Any, limit: int = 400) -> list[tuple]:
    """Paths to the nodes of a JSON tree (iterative: mutants may be nested 900 deep)."""
    out: list[tuple] = []
    stack: list[tuple[Any, tuple]] = [(obj, ())]
    while stack and len(out) < limit:
        node, path = stack.pop()
        out.append(path)
        if isinstance(node, dict):
            stack += [(v, path + (k,)) for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(v, path + (i,)) for i, v in enumerate(node)]
    return out


def _json_set(obj: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = obj
    for p in path[:-1]:
        parent = parent[p]
    parent[path[-1]] = value
    return obj


def _value(rng: random.Random) -> Any:
    """A fresh copy of an interesting value (the pool's lists and dicts must not be shared)."""
    return copy.deepcopy(rng.choice(JSON_VALUES))


def _deep(rng: random.Random) -> Any:
    v: Any = rng.choice(JSON_VALUES[:8])
    for _ in range(rng.choice((2, 15, 16, 17, 40))):
        v = [v] if rng.random() < 0.5 else {"a": v}
    return v


def mutate_json_obj(rng: random.Random, obj: Any) -> Any:
    paths = _json_paths(obj)
    path = rng.choice(paths)
    r = rng.random()
    if r < 0.45:
        return _json_set(obj, path, _value(rng) if rng.random() < 0.85 else _deep(rng))
    if r < 0.6 and isinstance(obj, dict):  # add or overwrite a field with a known name
        obj[rng.choice(FIELD_NAMES)] = _value(rng)
        return obj
    if r < 0.75 and isinstance(obj, dict) and obj:  # drop a field
        obj.pop(rng.choice(list(obj)))
        return obj
    if r < 0.85:  # copy one node over another
        src = obj
        for p in rng.choice(paths):
            src = src[p]
        return _json_set(obj, path, json.loads(json.dumps(src)))
    if r < 0.92 and isinstance(obj, dict):
        obj["type"] = rng.choice(sorted(messages.SCHEMAS))
        return obj
    return [obj] if rng.random() < 0.5 else {"type": obj}


def _dump(rng: random.Random, obj: Any) -> bytes:
    text = json.dumps(obj, ensure_ascii=rng.random() < 0.8, separators=rng.choice(((",", ":"), (", ", ": "))))
    return text.encode("utf-8", "surrogatepass")


def json_structured(rng, data, corpus):
    try:
        obj = json.loads(data.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):
        obj = json.loads(rng.choice(MESSAGE_SEEDS))
    try:
        for _ in range(rng.choice((1, 1, 2, 3))):
            obj = mutate_json_obj(rng, obj)
        return _dump(rng, obj)
    except RecursionError:  # json.dumps of a mutant nested past the stack: start again from a seed
        return rng.choice(MESSAGE_SEEDS)


MESSAGE_SEEDS = T.message_seeds()


# ------------------------------------------------------------------ frames


def frames_structured(rng, data, corpus):
    """Re-frame: decode the stream, mutate one frame's payload or header, re-encode with a good CRC."""
    ctl, stream = (data[:1] or b"\x00"), data[1:]
    frames = Decoder().feed(stream) if stream else []
    if not frames:
        return ctl + stream + codec.encode(codec.Frame(codec.FrameType.DATA, 0, b"{}"))
    k = rng.randrange(len(frames))
    out = []
    for i, f in enumerate(frames):
        ver, typ, seq, payload, length = f.version, int(f.type), f.seq, f.payload, None
        trailer = T.codec_trailer(f)
        if i == k:
            r = rng.random()
            if r < 0.55:
                payload = json_structured(rng, payload, corpus)
            elif r < 0.7:
                payload = rng.choice(BYTE_MUTATIONS)(rng, payload, [payload])
            elif r < 0.8:
                tok = rng.choice(JSON_TOKENS)
                payload = tok * min(rng.choice((1, 17, 100, 5000, 40000)), codec.MAX_PAYLOAD // len(tok))
            elif r < 0.9:
                ver = rng.choice((0, 1, 2, codec.VERSION, codec.VERSION, 255))
                typ = rng.choice((0, 1, 2, 3, 4, 5, 255))
                seq = rng.choice((0, 1, 0xFFFF, seq))
            elif r < 0.95:
                length = rng.choice((0, len(payload) - 1, len(payload) + 1, 0xFFFF))
            else:
                trailer = rng.choice((b"", trailer[:-1], rng.randbytes(len(trailer)), trailer + b"\x00"))
            payload = payload[:codec.MAX_PAYLOAD]
        out.append(T.frame_bytes(ver, typ, seq, payload, length, trailer))
        if rng.random() < 0.1:
            out.append(rng.choice((b"\xfe", b"\xfe\xff", b"\xfe\xff\x01", rng.randbytes(rng.randrange(1, 12)))))
    if rng.random() < 0.2:
        rng.shuffle(out)
    ctl = bytes([rng.randrange(256)]) if rng.random() < 0.3 else ctl
    return ctl + b"".join(out)


FRAME_TOKENS = (codec.SYNC, codec.SYNC + b"\x01", codec.SYNC + b"\x01\x01\x00\x00\xff\xff", b"\xfe", b"\x80")


# ------------------------------------------------------------------ BER-TLV

TLV_TOKENS = (b"\xff\x20", b"\xdf\x27", b"\xdf\x22", b"\x1f", b"\x9f\xff\xff\xff\x01", b"\x81", b"\x82\xff\xff",
              b"\x83\xff\xff\xff", b"\x84", b"\x80", b"\x00", b"\xff", b"\x30\x82")


def _tlv_items(buf: bytes, start: int, end: int, depth: int = 0) -> list[tuple[int, int, int]]:
    """(header start, length field start, value start) of each TLV in the chain, recursing into FF20."""
    out = []
    pos = start
    while pos < end:
        try:
            tag, length, at = tlv.read_header(buf, pos)
        except ValueError:
            break
        lpos = pos + 1
        if buf[pos] & 0x1F == 0x1F:
            while lpos < len(buf) and buf[lpos] & 0x80:
                lpos += 1
            lpos += 1
        out.append((pos, lpos, at))
        if tag == 0xFF20 and depth < 3:
            out += _tlv_items(buf, at, min(end, at + length), depth + 1)
        pos = at + length
    return out


def tlv_structured(rng, data, corpus):
    """Rewrite one item's length (other forms, off by one, huge) or tag, or build a random chain."""
    at = data.find(b"\xff\x20")
    items = _tlv_items(data, max(at, 0), len(data)) if data else []
    if not items or rng.random() < 0.15:
        return _random_tlv(rng, rng.choice((1, 2, 3)))
    hpos, lpos, vpos = rng.choice(items)
    n = tlv.read_header(data, hpos)[1]
    r = rng.random()
    if r < 0.7:
        new_n = rng.choice((0, n - 1, n + 1, n + 2, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0xFFFFFF, len(data)))
        new_n = max(new_n, 0)
        form = rng.choice(("short", "81", "82", "83", "84", "80"))
        if form == "short" and new_n < 0x80:
            lf = bytes([new_n])
        elif form == "81":
            lf = b"\x81" + bytes([new_n & 0xFF])
        elif form == "82":
            lf = b"\x82" + (new_n & 0xFFFF).to_bytes(2, "big")
        elif form == "83":
            lf = b"\x83" + (new_n & 0xFFFFFF).to_bytes(3, "big")
        elif form == "84":
            lf = b"\x84" + new_n.to_bytes(4, "big")
        else:
            lf = b"\x80"
        return data[:lpos] + lf + data[vpos:]
    tag = rng.choice((b"\x1f", b"\x1f\x80", b"\xdf\xff\xff\xff\x7f", b"\xff\x20", b"\x00", b"\xff", b"\xff\xff"))
    return data[:hpos] + tag + data[lpos:]


def _random_tlv(rng: random.Random, depth: int) -> bytes:
    out = bytearray(rng.randbytes(rng.choice((0, 0, 1, 4))))
    for _ in range(rng.randrange(1, 5)):
        tag = rng.choice((b"\xff\x20", b"\xdf\x21", b"\xdf\x27", b"\x30", b"\x5f\x20", b"\x9f\x80\x01"))
        value = _random_tlv(rng, depth - 1) if depth > 1 and rng.random() < 0.5 else rng.randbytes(rng.randrange(40))
        n = len(value) + rng.choice((0, 0, 0, 1, -1))
        n = max(n, 0)
        lf = bytes([n]) if n < 0x80 and rng.random() < 0.7 else b"\x82" + n.to_bytes(2, "big")
        out += tag + lf + value
    return bytes(out)


# ------------------------------------------------------------------ card session scripts

SW_POOL = (0x9000, 0x9000, 0x6100, 0x61FF, 0x6C00, 0x6C20, 0x6CFF, 0x6300, 0x63C0, 0x63C1, 0x63C2, 0x63C3, 0x63C4,
           0x63CF, 0x6983, 0x6984, 0x6982, 0x6A82, 0x6D00, 0x6E00, 0x6F00, 0x6700, 0x6B00, 0x6282, 0x0000, 0xFFFF,
           0x9001, 0x6000, 0x6400)


def session_structured(rng, data, corpus):
    """Change the card's answers: status words, data (TLV-aware), order, and driver failures."""
    answers = T.decode_script(data)
    if not answers:
        answers = [b"\x90\x00"]
    i = rng.randrange(len(answers))
    a = answers[i]
    r = rng.random()
    if isinstance(a, str) or r < 0.35:
        sw = rng.choice(SW_POOL)
        if sw >> 8 in (0x61, 0x6C) and rng.random() < 0.5:
            sw = (sw & 0xFF00) | rng.randrange(256)
        body = a[:-2] if isinstance(a, bytes) and len(a) >= 2 else b""
        answers[i] = body + sw.to_bytes(2, "big")
    elif r < 0.55:
        body, sw = a[:-2], a[-2:]
        m = tlv_structured if rng.random() < 0.5 else rng.choice(BYTE_MUTATIONS)
        answers[i] = m(rng, body, [body]) + sw
    elif r < 0.62:
        answers[i] = rng.choice(T.DRIVER_KINDS)
    elif r < 0.7:
        answers[i] = rng.choice((b"", b"\x90", b"\x61", rng.randbytes(rng.randrange(1, 300))))
    elif r < 0.8:
        del answers[i:i + rng.choice((1, 1, 3, len(answers)))]
    elif r < 0.9:
        answers.insert(i, rng.choice(answers))
    else:  # many "more data" answers in a row
        answers[i:i] = [b"\x61\x00"] * rng.choice((2, 63, 64, 65, 200))
    return T.encode_script(answers)


# ------------------------------------------------------------------ TOML (config)

TOML_VALUES = (b"nan", b"+nan", b"-inf", b"inf", b"-1", b"0", b"1e400", b"-0.0", b"99999999999999999999999999",
               b"1" + b"0" * 5000, b"0x7fffffffffffffff", b"true", b'""', b'"\\u0000"', b'"a\\u0000b"', b"[]",
               b'[1, "a"]', b"[true]", b'["x"]', b"[-1]", b"[[1]]", b"{a = 1}", b"1979-05-27T07:32:00Z",
               b"1979-05-27", b"07:32:00", b'"' + b"x" * 3000 + b'"', b"'/'", b'"relative/dir"', b'"~"',
               b'"\\uD800"', b'"mqtt"', b'"sim"', b'"none"', b'"debug"', b"3.5", b"1_000", b'["surgery", "x"]',
               b"[" * 3000 + b"]" * 3000)
TOML_TOKENS = (b"[", b"[[", b"]]", b"=", b'"', b"'''", b'"""', b"\n", b"#", b"\\", b"\x00", b"\xff", b"\r",
               b"[x]\n", b"[reader]\n", b"a.b.c = 1\n", b"[" * 3000)


def toml_structured(rng, data, corpus):
    lines = data.split(b"\n")
    keyed = [i for i, ln in enumerate(lines) if b"=" in ln and not ln.lstrip().startswith(b"#")]
    r = rng.random()
    if keyed and r < 0.55:  # a key gets a hostile value
        i = rng.choice(keyed)
        key = lines[i].split(b"=", 1)[0]
        lines[i] = key + b"= " + rng.choice(TOML_VALUES)
    elif keyed and r < 0.65:  # a key moves to another section
        i = rng.choice(keyed)
        lines.insert(rng.randrange(len(lines) + 1), lines.pop(i))
    elif r < 0.75:  # duplicate a line (duplicate key or table)
        i = rng.randrange(len(lines))
        lines.insert(rng.randrange(len(lines) + 1), lines[i])
    elif r < 0.85 and lines:
        del lines[rng.randrange(len(lines))]
    elif r < 0.92:  # an unknown key or section
        lines.insert(rng.randrange(len(lines) + 1), rng.choice((b"surprise = 1", b"[surprise]", b"[reader.sub]",
                                                                 b"reader = 1", b"[[flow]]")))
    else:  # a key from one section under another section's header
        sec = [i for i, ln in enumerate(lines) if ln.startswith(b"[")]
        if sec and keyed:
            lines.insert(rng.choice(sec) + 1, lines[rng.choice(keyed)])
    return b"\n".join(lines)


# ------------------------------------------------------------------ engine

STRUCTURED: dict[str, tuple[Mutation, tuple[bytes, ...]]] = {
    "frames": (frames_structured, FRAME_TOKENS + JSON_TOKENS),
    "messages": (json_structured, JSON_TOKENS),
    "tlv": (tlv_structured, TLV_TOKENS),
    "session": (session_structured, (b"\x90\x00", b"\x61\x00", b"\x6c\x10", b"\x63\xc0", b"\xff\xff\x00")),
    "config": (toml_structured, TOML_TOKENS + TOML_VALUES),
}


class Fuzzer:
    def __init__(self, target: T.Target, rng: random.Random, crashes: Path | None) -> None:
        self.target = target
        self.rng = rng
        self.crash_dir = crashes
        self.corpus: list[bytes] = [s[:MAX_INPUT] for s in target.seeds()]
        structured, tokens = STRUCTURED[target.name]
        self.structured = structured
        self.byte_mutations = BYTE_MUTATIONS + (token_mutation(tokens),) * 2
        self.outcomes: dict[str, int] = {}
        self.crash_kinds: dict[str, int] = {}
        self.unexpected = 0
        self.inputs = 0

    def mutant(self) -> bytes:
        rng = self.rng
        data = rng.choice(self.corpus)
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
            m = self.structured if rng.random() < 0.5 else rng.choice(self.byte_mutations)
            data = m(rng, data, self.corpus)
        return data[:MAX_INPUT]

    def one(self, data: bytes) -> None:
        self.inputs += 1
        try:
            outcome = self.target.run(data)
        except Exception as e:  # anything but the documented error (run() lets that through as an outcome)
            self.unexpected += 1
            self._save(data, e)
            return
        if outcome not in self.outcomes:
            self.outcomes[outcome] = 0
            if len(self.corpus) < CORPUS_CAP:
                self.corpus.append(data)
        self.outcomes[outcome] += 1

    def _save(self, data: bytes, e: Exception) -> None:
        tb = traceback.extract_tb(e.__traceback__)
        place = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        kind = f"{type(e).__name__} at {place}"
        first = kind not in self.crash_kinds
        self.crash_kinds[kind] = self.crash_kinds.get(kind, 0) + 1
        if first:
            print(f"\n[{self.target.name}] unexpected {kind}: {str(e)[:200]}", file=sys.stderr)
            if self.crash_dir is not None:
                self.crash_dir.mkdir(parents=True, exist_ok=True)
                name = f"{self.target.name}-{hashlib.sha1(data).hexdigest()[:12]}"
                (self.crash_dir / f"{name}.bin").write_bytes(data)
                (self.crash_dir / f"{name}.txt").write_text(
                    "".join(traceback.format_exception(type(e), e, e.__traceback__)), encoding="utf-8")


def mutator_rate(target: T.Target, seed: int, n: int = 20_000) -> float:
    """Mutants per second without running the target: the reference for this machine's speed."""
    f = Fuzzer(target, random.Random(seed), None)
    t0 = time.perf_counter()
    for _ in range(n):
        f.mutant()
    return n / (time.perf_counter() - t0)


def run_target(target: T.Target, n: int, seed: int, crashes: Path | None) -> dict[str, Any]:
    f = Fuzzer(target, random.Random(seed), crashes)
    for s in list(f.corpus):  # seeds first: each must satisfy the contract as well
        f.one(s)
    t0 = last = time.perf_counter()
    while f.inputs < n:
        f.one(f.mutant())
        if f.inputs % 256 == 0:
            now = time.perf_counter()
            if now - last >= 1.0:
                last = now
                rate = f.inputs / (now - t0)
                eta = (n - f.inputs) / rate if rate else math.inf
                print(f"\r{target.name:9} {f.inputs:>9,}/{n:,}  {rate:8,.0f}/s  outcomes {len(f.outcomes):5}  "
                      f"corpus {len(f.corpus):5}  unexpected {f.unexpected}  eta {eta:5.0f} s ",
                      end="", file=sys.stderr, flush=True)
    secs = time.perf_counter() - t0
    print(f"\r{target.name:9} {f.inputs:>9,} done in {secs:.0f} s, {f.unexpected} unexpected" + " " * 40,
          file=sys.stderr, flush=True)
    return {"target": target.name, "inputs": f.inputs, "seconds": secs, "rate": f.inputs / secs,
            "outcomes": len(f.outcomes), "corpus": len(f.corpus), "unexpected": f.unexpected,
            "kinds": f.crash_kinds}


def record_seeds() -> None:
    """Record the answers of the virtual card (hw-sim) to the fixed command sequence, per profile."""
    from mynasim.card import CardState, FaultPlan, TestPKI, VirtualMynaCard, load_profiles

    out = T.SEEDS / "session"
    out.mkdir(parents=True, exist_ok=True)
    profiles = load_profiles()
    cases = [("taro", None), ("hanako", None), ("nopin", None), ("locked", None), ("lasttry", None),
             ("taro", FaultPlan(invalid_cert=True)), ("taro", FaultPlan(oversized_cert=True)),
             ("taro", FaultPlan(photo_not_image=True))]
    with tempfile.TemporaryDirectory() as tmp:
        pki = TestPKI(Path(tmp) / "pki", profiles)
        for key, faults in cases:
            p = profiles[key]
            card = VirtualMynaCard(p, pki, CardState(Path(tmp) / f"state-{key}-{id(faults)}"), REPO / "assets", faults)
            script = T.record_session_script(card.process, p.pin or "0000", p.code_b())
            label = key + ("" if faults is None else "-" + "-".join(k for k, v in vars(faults).items() if v))
            (out / f"{label}.bin").write_bytes(script)
            print(f"{label}: {len(T.decode_script(script))} answers, {len(script)} bytes", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", choices=["all", "frames", "messages", "tlv", "session", "config"], default="all")
    ap.add_argument("--inputs", type=float, default=1e6, help="inputs per target (default 1e6)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (a run is reproducible)")
    ap.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"),
                    help="where unexpected inputs and their tracebacks are saved (default ./fuzz-crashes)")
    ap.add_argument("--replay", type=Path, nargs="+", help="run these saved inputs once, print each outcome")
    ap.add_argument("--record-seeds", action="store_true", help="re-record the card scripts from the virtual card")
    args = ap.parse_args(argv)
    if args.record_seeds:
        record_seeds()
        return 0
    all_targets = T.targets()
    names = list(all_targets) if args.target == "all" else [args.target]
    if args.replay:
        if len(names) != 1:
            ap.error("--replay needs --target")
        bad = 0
        for p in args.replay:
            try:
                print(f"{p}: {all_targets[names[0]].run(p.read_bytes())}")
            except Exception:
                bad += 1
                print(f"{p}:")
                traceback.print_exc()
        return 1 if bad else 0
    rows = []
    for name in names:
        ref = mutator_rate(all_targets[name], args.seed)
        row = run_target(all_targets[name], int(args.inputs), args.seed, args.crashes)
        row["mutator"] = ref
        rows.append(row)
    print()
    for r in rows:
        t = all_targets[r["target"]]
        print(f"{t.name}: {t.contract} (documented: {', '.join(e.__name__ for e in t.documented)})")
    print("\n| target | inputs | seconds | inputs/s | mutator only /s | distinct outcomes | corpus | unexpected |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['target']} | {r['inputs']:,} | {r['seconds']:.0f} | {r['rate']:,.0f} | {r['mutator']:,.0f} "
              f"| {r['outcomes']:,} | {r['corpus']:,} | {r['unexpected']} |")
    for r in rows:
        for kind, count in r["kinds"].items():
            print(f"{r['target']}: {count} × {kind}")
    return 1 if any(r["unexpected"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
