"""HostLink (the reader) against VirtualHost over a real pty pair, and over a real mosquitto."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from myna_drivers.serial_link import SerialPort
from mynad.config import HostSection, ReaderSection
from mynad.hostlink.factory import make_host_link
from mynad.hostlink.link import HostLink
from mynasim.host import VirtualHost, pty_pair
from tests.hostlink.peer import KEY, key_file

FAST = {"ack_timeout": 0.2, "max_backoff": 0.5, "keepalive_s": 1.0, "reconnect_min": 0.05, "reconnect_max": 0.3}


class Reader:
    """A HostLink plus a queue of what the host said."""

    def __init__(self, link: HostLink) -> None:
        self.link = link
        self.inbox: asyncio.Queue[dict] = asyncio.Queue()
        link._on_message = self.inbox.put_nowait

    async def next(self, type_: str, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            msg = await asyncio.wait_for(self.inbox.get(), max(0.01, deadline - time.monotonic()))
            if msg["type"] == type_:
                return msg


def started(pki, visit_id: str, cert=None) -> dict:
    cert = cert or pki.cert
    return {"type": "visit.started", "visit_id": visit_id, "cert_state": "valid",
            "cert_der": base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode(),
            "cert_serial": str(cert.serial_number), "cert_not_after": cert.not_valid_after_utc.date().isoformat()}


def result(visit_id: str, n: int = 0, surgery: str = "1") -> dict:
    return {"type": "visit.result", "visit_id": visit_id, "ProcessingResultStatus": 1, "method": "pin",
            "proxy": False, "cert_state": "valid", "qualification_only": False, "n": n,
            "consents": {"OperationInfoConsFlg": surgery, "DiagnosisInfoConsFlg": "1", "PharmacistsInfoConsFlg": "1",
                         "SpecificHealthCheckupsInfoConsFlg": "0", "ComprehensiveConsFlg": "1"},
            "ConsTime": "20261122093000"}


def patients(pki):
    def lookup(serial: int):
        if serial == pki.serial:
            return {"name": "山田 太郎", "name_kana": "ヤマダ タロウ", "age": 52, "registered": True}
        return None
    return lookup


@pytest.fixture
def pair(tmp_path):
    r, h, close = pty_pair(tmp_path)
    yield r, h, close
    close()


def make_host(pki, path: str, tmp_path: Path, events: list | None = None) -> VirtualHost:
    return VirtualHost(path, lookup_patient=patients(pki), ca_certificate=pki.ca,
                       on_event=(lambda k, m: events.append((k, m))) if events is not None else None,
                       state_dir=tmp_path / "host-state", key=KEY, ack_timeout=0.2, max_backoff=0.5,
                       keepalive_s=1.0).start()


async def pin_visit(reader: Reader, pki, visit_id: str, key=None, cert=None) -> dict:
    await reader.link.send(started(pki, visit_id, cert))
    ch = await reader.next("visit.challenge")
    assert ch["visit_id"] == visit_id and len(base64.b64decode(ch["nonce"])) == 32
    sig = (key or pki.key).sign(base64.b64decode(ch["nonce"]), padding.PKCS1v15(), hashes.SHA256())
    await reader.link.send({"type": "visit.authenticated", "visit_id": visit_id, "method": "pin", "proxy": False,
                            "signature": base64.b64encode(sig).decode()})
    return await reader.next("visit.qualification")


def test_pin_visit_challenge_signature_qualification_and_consent_carry_over(pki, pair, tmp_path):
    r, h, _ = pair
    events: list = []
    host = make_host(pki, h, tmp_path, events)

    async def main():
        reader = Reader(HostLink(SerialPort(r), tmp_path / "state", print, key=KEY, reader_id="r1", **FAST))
        await reader.link.start()
        try:
            q = await pin_visit(reader, pki, "v1")
            assert q["ok"] is True and q["name"] == "山田 太郎" and q["age"] == 52
            assert q["previous_consents"] is None
            await reader.link.send(result("v1"))
            await asyncio.to_thread(host.wait_for, "visit.result", 5)
            q2 = await pin_visit(reader, pki, "v2")
            assert q2["previous_consents"] == {"surgery": True, "care_medicine": True, "checkup": False,
                                               "comprehensive": True}
            # a wrong key: the signature does not verify
            other_key, _ = pki.issue(999, 365)
            bad = await pin_visit(reader, pki, "v3", key=other_key)
            assert bad["ok"] is False and bad["error"]["code"] == "023"
            # a card from another CA
            k4, c4 = pki.issue(pki.serial, 365, signer=other_key)
            bad = await pin_visit(reader, pki, "v4", key=k4, cert=c4)
            assert bad["ok"] is False and bad["error"]["code"] == "024"
            for _ in range(100):  # the last ACK may still be on its way to the outbox
                st = reader.link.status()
                if st["pending"] == 0:
                    break
                await asyncio.sleep(0.02)
            assert st["connected"] and st["pending"] == 0 and st["last_error"] is None
        finally:
            await reader.link.stop()

    try:
        asyncio.run(main())
    finally:
        host.stop()
    auths = [m for k, m in events if k == "received" and m["type"] == "visit.authenticated"]
    assert [a["signature_valid"] for a in auths] == [True, True, False, False]
    assert any(k == "received" and m["type"] == "visit.result" and m["ProcessingResultStatus"] == 1 for k, m in events)
    assert (tmp_path / "host-state" / "consents.json").exists()


def test_unknown_patient_is_refused(pki, pair, tmp_path):
    r, h, _ = pair
    host = make_host(pki, h, tmp_path)
    _, cert = pki.issue(42, 365)

    async def main():
        reader = Reader(HostLink(SerialPort(r), tmp_path / "state", print, key=KEY, **FAST))
        await reader.link.start()
        try:
            await reader.link.send(started(pki, "v9", cert))
            await reader.next("visit.challenge")
            await reader.link.send({"type": "visit.authenticated", "visit_id": "v9", "method": "face",
                                    "proxy": False, "face_score": 0.93})
            q = await reader.next("visit.qualification")
            assert q["ok"] is False and q["error"]["code"] == "021"
        finally:
            await reader.link.stop()

    try:
        asyncio.run(main())
    finally:
        host.stop()


def test_deaf_host_then_back_every_result_once_in_order(pki, pair, tmp_path):
    r, h, _ = pair
    host = make_host(pki, h, tmp_path)

    async def main():
        reader = Reader(HostLink(SerialPort(r), tmp_path / "state", print, key=KEY, **FAST))
        await reader.link.start()
        try:
            await reader.link.send(started(pki, "v1"))
            await reader.next("visit.challenge")
            host.go_deaf(1.5)
            ids = [await reader.link.send(result("v1", n)) for n in range(12)]
            await asyncio.sleep(1.0)
            assert reader.link.status()["pending"] >= 11
            deadline = time.monotonic() + 10
            while reader.link.status()["pending"] and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert reader.link.status()["pending"] == 0
            assert reader.link.status()["retries"] > 0
            return ids
        finally:
            await reader.link.stop()

    try:
        ids = asyncio.run(main())
    finally:
        host.stop()
    assert [m["id"] for m in host.results] == ids  # exactly once, in order
    assert [m["n"] for m in host.results] == list(range(12))


def test_corrupt_frames_are_resynced(pki, pair, tmp_path):
    r, h, _ = pair
    host = make_host(pki, h, tmp_path)

    async def main():
        reader = Reader(HostLink(SerialPort(r), tmp_path / "state", print, key=KEY, **FAST))
        await reader.link.start()
        try:
            host.corrupt_next(4)  # ACKs and the challenge get mangled on the way
            q = await pin_visit(reader, pki, "v1")
            assert q["ok"] is True
            # garbage straight onto the line between frames
            fd = os.open(h, os.O_WRONLY | os.O_NOCTTY)
            os.write(fd, b"\x00\xfe\xff\x01noise\xfe" * 20)
            os.close(fd)
            q = await pin_visit(reader, pki, "v2")
            assert q["ok"] is True
            return reader.link.status()
        finally:
            await reader.link.stop()

    try:
        st = asyncio.run(main())
    finally:
        host.stop()
    assert st["dropped"], st
    assert sum(1 for m in host.received if m["type"] == "visit.started") == 2  # duplicates dropped


def test_outbox_survives_reader_restart_with_host_away(pki, pair, tmp_path):
    r, h, _ = pair

    async def first():
        link = HostLink(SerialPort(r), tmp_path / "state", print, key=KEY, **FAST)
        await link.start()
        ids = [await link.send(result("v1", n)) for n in range(3)]
        await asyncio.sleep(0.3)
        assert link.status()["pending"] == 3 and not link.status()["connected"]
        await link.stop()
        return ids

    ids = asyncio.run(first())
    host = make_host(pki, h, tmp_path)

    async def second():
        link = HostLink(SerialPort(r), tmp_path / "state", print, key=KEY, **FAST)
        await link.start()
        try:
            deadline = time.monotonic() + 5
            while link.status()["pending"] and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert link.status()["pending"] == 0
        finally:
            await link.stop()

    try:
        asyncio.run(second())
    finally:
        host.stop()
    assert [m["id"] for m in host.results] == ids


def test_serial_device_vanishes_and_comes_back(pki, tmp_path):
    r, h, close = pty_pair(tmp_path)
    host = make_host(pki, h, tmp_path)

    async def main():
        nonlocal r, h, close, host
        link = HostLink(SerialPort(r), tmp_path / "state", print, key=KEY, **FAST)
        await link.start()
        try:
            await asyncio.sleep(0.3)
            assert link.status()["connected"]
            host.stop()
            close()  # the cable is pulled: both pty ends disappear
            ids = [await link.send(result("v1", n)) for n in range(2)]
            await asyncio.sleep(0.5)
            st = link.status()
            assert not st["open"] and st["pending"] == 2 and st["last_error"], st
            r2, h2, close = pty_pair(tmp_path)  # plugged back in, same paths
            assert r2 == r
            host = make_host(pki, h2, tmp_path)
            deadline = time.monotonic() + 5
            while link.status()["pending"] and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert link.status()["pending"] == 0
            return ids
        finally:
            await link.stop()

    try:
        ids = asyncio.run(main())
        assert [m["id"] for m in host.results] == ids
    finally:
        host.stop()
        close()


def test_host_messages_are_validated_and_deduplicated(pki, pair, tmp_path):
    r, h, _ = pair
    host = make_host(pki, h, tmp_path)
    got: list = []

    async def main():
        link = HostLink(SerialPort(r), tmp_path / "state", got.append, key=KEY, **FAST)
        await link.start()
        try:
            await asyncio.sleep(0.3)
            host.send({"type": "visit.bogus"})
            host.send({"v": 7, "id": "x1", "type": "staff.visual_check", "ts": "2026-01-01T00:00:00+09:00"})
            host.send({"v": 1, "id": "x2", "type": "visit.challenge", "ts": "2026-01-01T00:00:00+09:00",
                       "visit_id": "v1"})  # no nonce
            dup = {"v": 1, "id": "same", "type": "staff.visual_check", "ts": "2026-01-01T00:00:00+09:00",
                   "reason": "r"}
            host.send(dup)
            host.send(dict(dup))
            host.send_staff_visual_check()
            await asyncio.sleep(1.0)
        finally:
            await link.stop()
        return host.status()

    try:
        st = asyncio.run(main())
    finally:
        host.stop()
    assert [m["type"] for m in got] == ["staff.visual_check", "staff.visual_check"]
    assert st["rejected"] == 3 and st["pending"] == 0


def test_factory_and_status_shape(tmp_path):
    link = make_host_link(HostSection(transport="serial", serial_path=str(tmp_path / "nope"),
                                      key_file=key_file(tmp_path)),
                          ReaderSection(id="r9", state_dir=tmp_path / "s"), print, **FAST)

    async def main():
        await link.start()
        await asyncio.sleep(0.2)
        mid = await link.send({"type": "reader.event", "kind": "fault", "code": "001", "message": "x"})
        st = link.status()
        await link.stop()
        return mid, st

    mid, st = asyncio.run(main())
    assert len(mid) == 32 and st["pending"] == 1 and st["connected"] is False
    assert "does not exist" in st["last_error"]


@pytest.mark.mqtt
def test_same_over_mqtt(pki, mosquitto, tmp_path):
    host_, port = mosquitto
    reader_cfg = ReaderSection(id="mq-reader", state_dir=tmp_path / "state")
    host = make_host(pki, f"mqtt://{host_}:{port}/mq-reader", tmp_path)

    async def main():
        link = make_host_link(HostSection(transport="mqtt", mqtt_host=host_, mqtt_port=port,
                                          key_file=key_file(tmp_path, KEY)), reader_cfg,
                              print, **FAST)
        reader = Reader(link)
        await link.start()
        try:
            q = await pin_visit(reader, pki, "m1")
            assert q["ok"] is True
            host.go_deaf(1.0)
            ids = [await link.send(result("m1", n)) for n in range(5)]
            deadline = time.monotonic() + 10
            while link.status()["pending"] and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert link.status()["pending"] == 0 and link.status()["connected"]
            return ids
        finally:
            await link.stop()

    try:
        ids = asyncio.run(main())
    finally:
        host.stop()
    assert [m["id"] for m in host.results] == ids
    assert any(m["type"] == "visit.authenticated" and m["signature_valid"] for m in host.received)
