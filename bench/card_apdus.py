#!/usr/bin/env python3
"""Every APDU of a PIN visit and of a face visit, through the real pcscd and the virtual card.

Prints one row per command (header, data length, answer length, status word, time),
then the totals next to the minimum each visit needs, so a redundant SELECT or a file
read twice shows up at once. ``--markdown FILE`` writes the same tables for the docs.

    .venv/bin/python bench/card_apdus.py [--markdown docs/card-apdus.md]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from mynad.card.session import MynaCard  # noqa: E402
from mynad.core.secret import PinBuffer  # noqa: E402
from mynasim.card import VirtualCardSlot, load_profiles  # noqa: E402
from mynasim.services import Pcscd  # noqa: E402

READER = "Virtual PCD 00 00"
NAMES = {0xA4: "SELECT", 0xB0: "READ BINARY", 0x20: "VERIFY", 0x2A: "COMPUTE SIGNATURE", 0xC0: "GET RESPONSE"}


class Recorder:
    """Wraps the pyscard transport: what was sent, how big, how long (never the data)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.rows: list[dict] = []
        self.step = ""

    def transmit(self, apdu, timeout=None):
        t0 = time.perf_counter()
        data, sw = self.inner.transmit(apdu, timeout)
        ms = (time.perf_counter() - t0) * 1000
        head = bytes(apdu[:4])
        lc = apdu[4] if len(apdu) > 5 else 0
        if head[1] == 0x20 and lc == 4:
            note = "PIN (4 digits, not shown)"
        elif head[1] == 0x20 and lc == 14:
            note = "照合番号B (not shown)"
        elif head[1] == 0xA4:
            note = bytes(apdu[5:5 + lc]).hex().upper()
        elif head[1] == 0xB0:
            note = f"offset {int.from_bytes(head[2:4], 'big')}"
        else:
            note = ""
        self.rows.append(dict(step=self.step, cmd=NAMES.get(head[1], f"INS {head[1]:02X}"), header=head.hex(" ").upper(),
                              lc=lc, resp=len(data), sw=f"{sw:04X}", ms=ms, note=note))
        return data, sw


def pin(digits: str) -> PinBuffer:
    b = PinBuffer()
    for d in digits:
        b.push(int(d))
    return b


def connect():
    from mynad.card.channel import CardChannel

    deadline = time.monotonic() + 5
    while True:
        try:
            return CardChannel.connect_pcsc(READER, timeout=5.0)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def visit(slot: VirtualCardSlot, profile, kind: str) -> tuple[Recorder, dict]:
    slot.insert(profile.key)
    rec = Recorder(connect())
    card = MynaCard(rec)
    sizes: dict = {}
    try:
        rec.step = "identify"
        card.identify()
        rec.step = "certificate"
        sizes["cert"] = len(card.auth_certificate().der)
        rec.step = "PIN counter"
        card.pin_status()
        if kind == "pin":
            rec.step = "VERIFY"
            card.verify_pin(pin(profile.pin))
            rec.step = "signature"
            card.sign(b"host challenge nonce 32 bytes....")
        else:
            rec.step = "照合番号B counter"
            card.code_b_status()  # what the daemon asks before offering 顔認証 (no try spent)
            rec.step = "face photo"
            photo = card.face_photo(bytearray(profile.code_b().encode()), reserve=3)
            sizes["photo"] = len(photo)
            sizes["record"] = slot.card.ef_data("face", 0x0002).__len__() if slot.card else 0
    finally:
        rec.inner.close()
        slot.remove()
    return rec, sizes


def minimum(kind: str, sizes: dict) -> int:
    """The fewest commands a visit can do with 256-byte short reads.

    Common: SELECT JPKI, SELECT+READ token (identify by AID and token, not ATR),
    SELECT cert + ceil(cert/256) READs, SELECT PIN EF + retry query (the counter is
    shown to the patient and guards the last try).
    PIN: VERIFY, then SELECT key + COMPUTE SIGNATURE (OpenSC's form; P2=97 naming the
    key by SFI would save the SELECT but is not in OpenSC and unverified on real cards).
    Face: SELECT 券面AP, SELECT 0012 + retry query (照合番号B locks after 10 misses, and the
    reader keeps a reserve of tries: it must know the counter before it may submit) + VERIFY
    照合番号B, SELECT 0002 + ceil(record/256) READs.
    """
    common = 1 + 2 + 1 + math.ceil(sizes["cert"] / 256) + 2
    if kind == "pin":
        return common + 1 + 2
    return common + 1 + 3 + 1 + math.ceil(sizes["record"] / 256)


def table(rec: Recorder) -> list[str]:
    lines = ["| # | step | command | header | Lc | resp | SW | ms | note |", "|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rec.rows, 1):
        lines.append(f"| {i} | {r['step']} | {r['cmd']} | `{r['header']}` | {r['lc']} | {r['resp']} | {r['sw']} | "
                     f"{r['ms']:.2f} | {r['note']} |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", type=Path, help="also write the tables to this markdown file")
    args = ap.parse_args()
    Pcscd().ensure()
    profiles = load_profiles()
    out: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        assets = REPO / "assets"
        slot = VirtualCardSlot(port=35963, state_dir=Path(tmp) / "card", assets_dir=assets, profiles=profiles)
        try:
            for kind in ("pin", "face"):
                rec, sizes = visit(slot, profiles["taro"], kind)
                sent = sum(5 + r["lc"] for r in rec.rows)
                got = sum(r["resp"] + 2 for r in rec.rows)
                total_ms = sum(r["ms"] for r in rec.rows)
                need = minimum(kind, sizes)
                reads = {}
                for r in rec.rows:
                    if r["cmd"] == "SELECT":
                        reads.setdefault(r["note"], 0)
                        reads[r["note"]] += 1
                twice = [k for k, n in reads.items() if n > 1]
                title = f"{kind.upper()} visit (profile taro; certificate {sizes['cert']} bytes" + (
                    f", card-surface record {sizes['record']} bytes, photo {sizes['photo']} bytes)" if kind == "face" else ")")
                summary = (f"**{len(rec.rows)} APDUs** (minimum {need}), {sent} bytes sent, {got} bytes received, "
                           f"{total_ms:.1f} ms on the wire (median {statistics.median(r['ms'] for r in rec.rows):.2f} ms "
                           f"per APDU); files selected twice: {', '.join(twice) if twice else 'none'}")
                print(f"\n== {title}")
                for line in table(rec):
                    print(line)
                print(summary)
                out += [f"## {title}", "", *table(rec), "", summary, ""]
        finally:
            slot.close()
    if args.markdown:
        head = ["# Card APDUs per visit", "",
                "Produced by `bench/card_apdus.py` through the real pcscd, vpcd and the virtual card "
                f"(run {time.strftime('%Y-%m-%d')}). PIN and 照合番号B data are never printed. "
                "Times are wall-clock per command on the benchmark machine; a real contactless card is "
                "slower per APDU (tens of ms), which is why the count matters.", ""]
        args.markdown.write_text("\n".join(head + out) + "\n", encoding="utf-8")
        print(f"\nwritten: {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
