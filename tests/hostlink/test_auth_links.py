"""The authenticated link over a real pty pair and a real mosquitto: attacks are refused.

An attacker who can write on the serial line, or publish on the reader's MQTT ``down`` topic,
but has no key (or a wrong one), sends a forged ``staff.visual_check``, pre-seeds a
``visit.challenge``, forges a ``visit.qualification``, replays a captured (byte-identical)
genuine frame, and sends an old unauthenticated version-1 frame. None of it reaches the
reader's code, none of it is answered, and each is counted by reason. Then counters survive
a restart of either end (with the clock floor off, so only the counter files carry them).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from pathlib import Path

import pytest

from myna_drivers.serial_link import SerialPort
from mynad.config import HostSection, ReaderSection
from mynad.hostlink import auth, codec, messages
from mynad.hostlink.codec import Decoder, Frame, FrameType
from mynad.hostlink.factory import make_host_link
from mynad.hostlink.link import HostLink
from mynasim.host import VirtualHost, pty_pair
from tests.hostlink.peer import KEY, Peer, key_file
from tests.hostlink.test_link import FAST, patients, started

WRONG_KEY = os.urandom(32)
NO_CLOCK = {"counter_floor": lambda: 0}  # counters come from the counter files alone


async def until(cond, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.005)


class Inbox:
    def __init__(self) -> None:
        self.got: list[dict] = []

    def __call__(self, msg: dict) -> None:
        self.got.append(msg)

    def of(self, type_: str) -> list[dict]:
        return [m for m in self.got if m["type"] == type_]


def genuine(captured: list[bytes], type_: str, **fields) -> bytes:
    """The exact bytes of a genuine host frame captured on the line."""
    for chunk in captured:
        for f in Decoder().feed(chunk):
            if f.type == FrameType.DATA:
                m = f.json()
                if m.get("type") == type_ and all(m.get(k) == v for k, v in fields.items()):
                    return chunk
    raise AssertionError(f"no {type_} {fields} captured")


def attack_frames(visit_id: str) -> dict[str, bytes]:
    """What an attacker without the key can send (each a well-formed frame with a valid CRC)."""
    wrong = Peer("host", key=WRONG_KEY, floor=2**62)  # a huge counter, to try to push the mark
    nonce = base64.b64encode(b"\xa5" * 32).decode()
    visual = messages.staff_visual_check("forged")
    challenge = {**messages.envelope({"type": "visit.challenge"}), "visit_id": visit_id, "nonce": nonce}
    qualification = messages.visit_qualification(visit_id, True, name="攻撃 太郎", name_kana="コウゲキ タロウ",
                                                 age=30, registered=True, previous_consents=None)
    old_v1 = Frame.of(FrameType.DATA, 1, messages.staff_visual_check("forged, old format"))
    v1 = codec.HEADER.pack(codec.SYNC, 1, int(FrameType.DATA), 1, len(old_v1.payload)) + old_v1.payload
    return {
        "visual_check_no_key": codec.encode(Frame.of(FrameType.DATA, 1, visual)),  # zero tag
        "visual_check_wrong_key": wrong.data(visual),
        "challenge_wrong_key": wrong.data(challenge),
        "qualification_wrong_key": wrong.data(qualification),
        "hello_wrong_key": wrong.frame(FrameType.HELLO, 2, {"type": "hello", "reply": False}),
        "v1_visual_check": v1 + codec.crc16(v1[2:]).to_bytes(2, "big"),
    }


async def attack_and_check(link: HostLink, inbox: Inbox, host: VirtualHost, captured: list[bytes],
                           inject) -> None:
    """The common scenario; ``inject(bytes)`` puts one frame on the line as the attacker."""
    engine = link.engine
    assert engine is not None
    await until(lambda: link.status()["connected"], "the link is up")
    host.send_staff_visual_check("genuine")
    await until(lambda: inbox.of("staff.visual_check"), "the genuine visual check arrives")
    await until(lambda: any(b"genuine" in c for c in captured), "the genuine frame was captured")
    replay = genuine(captured, "staff.visual_check", reason="genuine")
    hwm_before = engine.auth.peer_hwm
    frames = attack_frames("v-next")
    for raw in frames.values():
        await inject(raw)
    await inject(replay)
    bad = len(frames) - 1  # all but the v1 frame fail the tag (v1 is dropped by the decoder)
    await until(lambda: engine.auth_refused[auth.R_BAD_TAG] >= bad and engine.auth_refused[auth.R_REPLAY] >= 1,
                f"the attack is refused and counted ({engine.auth_refused})")
    await until(lambda: link.status()["dropped"].get(codec.R_UNAUTHENTICATED), "the v1 frame is dropped")
    # the genuine visit goes on: the pre-seeded challenge did not take the visit's place
    await link.send(started_for(host, "v-next"))
    await until(lambda: inbox.of("visit.challenge"), "the host's own challenge arrives")
    host.send_staff_visual_check("marker")  # behind everything the attacker sent
    await until(lambda: len(inbox.of("staff.visual_check")) == 2, "the marker arrives")

    assert [m["reason"] for m in inbox.of("staff.visual_check")] == ["genuine", "marker"]
    (challenge,) = inbox.of("visit.challenge")
    assert base64.b64decode(challenge["nonce"]) == host._visits["v-next"]["nonce"]  # the host's nonce, not ours
    assert inbox.of("visit.qualification") == []
    st = link.status()
    assert st["auth_refused"][auth.R_BAD_TAG] == bad and st["auth_refused"][auth.R_REPLAY] == 1, st
    assert engine.counters["refused"] == 0 and engine.counters["duplicates"] == 0  # nothing answered
    assert engine.auth.peer_hwm < 2**62 and engine.auth.peer_hwm > hwm_before  # moved only by the host
    assert st["connected"] and st["last_error"] is None


def started_for(host: VirtualHost, visit_id: str) -> dict:
    return started(host.pki_for_tests, visit_id)  # type: ignore[attr-defined]


def make_host(pki, where: str, tmp_path: Path, captured: list[bytes] | None = None, **options) -> VirtualHost:
    host = VirtualHost(where, lookup_patient=patients(pki), ca_certificate=pki.ca, state_dir=tmp_path / "host-state",
                       key=KEY, tap=captured.append if captured is not None else None,
                       # a slow ACK on a busy machine (the reader fsyncs the counter first) must not
                       # turn into a retransmission: the tests count every frame the reader answers
                       ack_timeout=5.0, max_backoff=5.0, keepalive_s=1.0, **options)
    host.pki_for_tests = pki  # type: ignore[attr-defined]
    return host.start()


def test_attacks_over_serial_are_refused_and_never_delivered(pki, tmp_path):
    r, h, close = pty_pair(tmp_path)
    captured: list[bytes] = []  # a line analyser on the host's end
    host = make_host(pki, h, tmp_path, captured)
    inbox = Inbox()
    fd = os.open(h, os.O_WRONLY | os.O_NOCTTY)  # the attacker on the same wire

    async def inject(raw: bytes) -> None:
        os.write(fd, raw)

    async def main():
        link = HostLink(SerialPort(r), tmp_path / "state", inbox, key=KEY, reader_id="r1", **FAST)
        await link.start()
        try:
            await attack_and_check(link, inbox, host, captured, inject)
        finally:
            await link.stop()

    try:
        asyncio.run(main())
    finally:
        os.close(fd)
        host.stop()
        close()


@pytest.mark.mqtt
def test_attacks_over_mqtt_are_refused_and_never_delivered(pki, mosquitto, tmp_path):
    import aiomqtt

    broker, port_no = mosquitto
    reader_id = "auth-reader"
    down, up = f"myna/{reader_id}/down", f"myna/{reader_id}/up"
    host = make_host(pki, f"mqtt://{broker}:{port_no}/{reader_id}", tmp_path)
    inbox = Inbox()

    async def main():
        captured: list[bytes] = []  # what the attacker's subscription sees on both topics
        reader_frames: list[bytes] = []
        async with aiomqtt.Client(broker, port_no, identifier="attacker") as attacker:
            await attacker.subscribe(down, qos=1)
            await attacker.subscribe(up, qos=1)

            async def listen() -> None:
                async for m in attacker.messages:
                    (captured if str(m.topic) == down else reader_frames).append(bytes(m.payload))

            listener = asyncio.ensure_future(listen())

            async def inject(raw: bytes) -> None:
                await attacker.publish(down, raw, qos=1)

            link = make_host_link(HostSection(transport="mqtt", mqtt_host=broker, mqtt_port=port_no,
                                              key_file=key_file(tmp_path, KEY)),
                                  ReaderSection(id=reader_id, state_dir=tmp_path / "state"), inbox, **FAST)
            await link.start()
            try:
                await attack_and_check(link, inbox, host, captured, inject)
                # reflection: a frame the reader itself published on up, sent back down to it
                await until(lambda: reader_frames, "a reader frame was captured")
                before = link.engine.auth_refused[auth.R_BAD_TAG]
                await inject(reader_frames[-1])
                await until(lambda: link.engine.auth_refused[auth.R_BAD_TAG] == before + 1, "reflection refused")
            finally:
                await link.stop()
                listener.cancel()

    try:
        asyncio.run(main())
    finally:
        host.stop()


def test_counters_survive_a_restart_of_either_end(pki, tmp_path):
    """Clock floor off: without the counter files, a restarted end would start again at 1 and
    every frame it sent would be refused as a replay."""
    r, h, close = pty_pair(tmp_path)
    captured: list[bytes] = []
    host = make_host(pki, h, tmp_path, captured, **NO_CLOCK)
    fd = os.open(h, os.O_WRONLY | os.O_NOCTTY)

    def reader(inbox: Inbox) -> HostLink:
        return HostLink(SerialPort(r), tmp_path / "state", inbox, key=KEY, reader_id="r1", **FAST, **NO_CLOCK)

    async def round_trip(link: HostLink, inbox: Inbox, visit_id: str) -> None:
        """One exchange each way: the host accepts the reader's frames and the reader the host's."""
        n = len(inbox.of("visit.challenge"))
        await link.send(started(pki, visit_id))
        await until(lambda: len(inbox.of("visit.challenge")) > n, f"challenge for {visit_id}")
        await until(lambda: link.status()["pending"] == 0, "visit.started acknowledged")

    async def first() -> bytes:
        inbox = Inbox()
        link = reader(inbox)
        await link.start()
        try:
            await round_trip(link, inbox, "a1")
            return genuine(captured, "visit.challenge", visit_id="a1")
        finally:
            await link.stop()

    async def again(old_frame: bytes, visit_id: str) -> dict:
        inbox = Inbox()
        link = reader(inbox)
        await link.start()
        try:
            await round_trip(link, inbox, visit_id)
            os.write(fd, old_frame)  # a frame from before the restart, replayed
            await until(lambda: link.status()["auth_refused"].get(auth.R_REPLAY), "the old frame is refused")
            return link.status()
        finally:
            await link.stop()

    try:
        old = asyncio.run(first())
        st = asyncio.run(again(old, "a2"))  # the reader restarted
        assert st["auth_refused"] == {auth.R_REPLAY: 1} and st["last_error"] is None
        host.stop()
        host = make_host(pki, h, tmp_path, captured, **NO_CLOCK)  # the host restarted, same state folder
        st = asyncio.run(again(old, "a3"))
        assert st["auth_refused"] == {auth.R_REPLAY: 1}
        assert host.status()["auth_refused"] == {}  # the host never refused a reader frame either
    finally:
        os.close(fd)
        host.stop()
        close()
