"""VirtualCardSlot against a fake vpcd (a local TCP server speaking the vpcd framing): fast, no pcscd."""

from __future__ import annotations

import socket
import time

import pytest

from mynasim.card import ATR, FaultPlan, VirtualCardSlot
from mynasim.card.cli import main as card_main

SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")


class FakeVpcd:
    def __init__(self) -> None:
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.srv.settimeout(5)
        self.conn, _ = self.srv.accept()
        self.conn.settimeout(2)

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(len(payload).to_bytes(2, "big") + payload)

    def recv(self) -> bytes | None:
        assert self.conn is not None
        head = b""
        while len(head) < 2:
            c = self.conn.recv(2 - len(head))
            if not c:
                return None
            head += c
        n = int.from_bytes(head, "big")
        body = b""
        while len(body) < n:
            c = self.conn.recv(n - len(body))
            if not c:
                return None
            body += c
        return body

    def apdu(self, apdu: bytes) -> bytes | None:
        self.send(apdu)
        return self.recv()

    def close(self) -> None:
        if self.conn:
            self.conn.close()
        self.srv.close()


@pytest.fixture
def vpcd():
    v = FakeVpcd()
    yield v
    v.close()


@pytest.fixture
def slot_for(tmp_path, assets_dir, profiles):
    slots = []

    def make(port: int, log=None):
        s = VirtualCardSlot(port=port, state_dir=tmp_path / "st", assets_dir=assets_dir,
                            on_apdu=(lambda t, c, r: log.append((t, c, r))) if log is not None else None,
                            profiles=profiles)
        slots.append(s)
        return s
    yield make
    for s in slots:
        s.close()


def test_controls_atr_and_apdus(vpcd, slot_for):
    log: list = []
    slot = slot_for(vpcd.port, log)
    slot.insert("taro")
    vpcd.accept()
    assert slot.inserted
    vpcd.send(b"\x04")
    assert vpcd.recv() == ATR
    vpcd.send(b"\x01")                         # power on: no answer
    assert vpcd.apdu(SELECT_JPKI) == b"\x90\x00"
    assert vpcd.apdu(bytes.fromhex("00A4020C020018")) == b"\x90\x00"
    assert vpcd.apdu(bytes.fromhex("002000800431323334")) == b"\x90\x00"
    vpcd.send(b"\x00")                         # power off clears verification
    vpcd.send(b"\x01")
    r = vpcd.apdu(SELECT_JPKI)
    assert r == b"\x90\x00"
    assert vpcd.apdu(bytes.fromhex("00A4020C020017")) == b"\x90\x00"
    r = vpcd.apdu(bytes.fromhex("802A0080330000"))  # malformed Lc
    assert r[-2:] in (b"\x67\x00", b"\x69\x82")
    # no waiting: the slot logs each APDU before its answer leaves, so the log is complete here
    assert len(log) == 6 and log[0][1] == SELECT_JPKI and log[0][2] == b"\x90\x00"
    slot.remove()
    assert not slot.inserted
    vpcd.conn.settimeout(2)
    assert vpcd.recv() is None                 # socket closed = card removed


def test_apdu_is_logged_before_its_answer_leaves(vpcd, tmp_path, assets_dir, profiles):
    """The interleaving that made test_controls_atr_and_apdus flaky, forced every time.

    The slot's send is wrapped to record when each answer leaves; the observer records
    when it sees the APDU. Logging after sending let a fast reader (the test, the daemon)
    act on the answer before the log had it; on a busy machine that happened half the time.
    """
    order: list[tuple[str, bytes]] = []
    slot = VirtualCardSlot(port=vpcd.port, state_dir=tmp_path / "st", assets_dir=assets_dir,
                           on_apdu=lambda t, c, r: order.append(("logged", c)), profiles=profiles)
    real_send = slot._send

    def send(sock, payload: bytes) -> None:
        order.append(("sent", payload))
        real_send(sock, payload)
    slot._send = send  # type: ignore[method-assign]
    try:
        slot.insert("taro")
        vpcd.accept()
        for apdu in (SELECT_JPKI, bytes.fromhex("00A4020C020018"), bytes.fromhex("00200080")):
            answer = vpcd.apdu(apdu)
            assert answer is not None
            assert order[-2:] == [("logged", apdu), ("sent", answer)]
    finally:
        slot.close()


def test_pull_fault(vpcd, slot_for):
    slot = slot_for(vpcd.port)
    slot.insert("taro", FaultPlan(pull_at_apdu=2))
    vpcd.accept()
    assert vpcd.apdu(SELECT_JPKI) == b"\x90\x00"
    assert vpcd.apdu(SELECT_JPKI) is None
    thread = slot._thread
    assert thread is not None
    thread.join(5)                             # the pulled card's serving thread ends
    assert not slot.inserted


def test_mute_truncate_garbage_slow(vpcd, slot_for):
    slot = slot_for(vpcd.port)
    slot.insert("taro", FaultPlan(truncate_at_apdu=1, garbage_at_apdu=2, mute_at_apdu=4, slow_s=0.05))
    vpcd.accept()
    t = time.monotonic()
    assert len(vpcd.apdu(SELECT_JPKI)) == 1
    assert time.monotonic() - t >= 0.05
    g = vpcd.apdu(SELECT_JPKI)
    assert len(g) >= 2 and (g[-2] >> 4) not in (6, 9)
    assert vpcd.apdu(SELECT_JPKI) == b"\x90\x00"
    vpcd.send(SELECT_JPKI)
    with pytest.raises(socket.timeout):
        vpcd.conn.settimeout(0.3)
        vpcd.recv()
    assert slot.inserted                       # muted, still "in the reader"
    slot.remove()


def test_reinsert_waits_and_keeps_counters(vpcd, slot_for):
    slot = slot_for(vpcd.port)
    slot.insert("taro")
    vpcd.accept()
    vpcd.apdu(SELECT_JPKI)
    vpcd.apdu(bytes.fromhex("00A4020C020018"))
    assert vpcd.apdu(bytes.fromhex("002000800430303030")) == b"\x63\xC2"
    slot.remove()
    t = time.monotonic()
    slot.insert("taro")
    assert time.monotonic() - t >= 0.3        # a swap faster than pcscd's poll would be missed
    vpcd.accept()
    vpcd.apdu(SELECT_JPKI)
    vpcd.apdu(bytes.fromhex("00A4020C020018"))
    assert vpcd.apdu(bytes.fromhex("00200080")) == b"\x63\xC2"


def test_unknown_profile(slot_for):
    with pytest.raises(KeyError):
        slot_for(1).insert("nobody")


def test_cli_list_profiles(capsys):
    assert card_main(["--list-profiles"]) == 0
    keys = capsys.readouterr().out.split()
    assert keys[:2] == ["taro", "hanako"] and "nopin" in keys
