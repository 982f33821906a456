"""The virtual card through the REAL pcscd/vpcd, read with pyscard and with unchanged OpenSC."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from mynasim.card import VirtualCardSlot

pytestmark = pytest.mark.pcscd

READER = "Virtual PCD 00 00"
SELECT_JPKI = [0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01]


def _select_ef(fid: int) -> list[int]:
    return [0x00, 0xA4, 0x02, 0x0C, 0x02, fid >> 8, fid & 0xFF]


def _reader():
    from smartcard.System import readers

    return next(r for r in readers() if str(r) == READER)


def _wait_card(present: bool, timeout: float = 5.0) -> bool:
    from smartcard.Exceptions import CardConnectionException, NoCardException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = _reader().createConnection()
        try:
            conn.connect()
            ok = present
            conn.disconnect()
        except (NoCardException, CardConnectionException):
            ok = not present
        if ok:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def slot(pcscd, tmp_path, assets_dir, profiles):
    log: list[tuple[bytes, bytes]] = []
    s = VirtualCardSlot(port=35963, state_dir=tmp_path / "card-state", assets_dir=assets_dir,
                        on_apdu=lambda t, c, r: log.append((c, r)), profiles=profiles)
    s.log = log  # type: ignore[attr-defined]
    yield s
    s.close()
    assert _wait_card(False), "pcscd still sees a card after removal"


def _transmit(conn, apdu):
    data, sw1, sw2 = conn.transmit(list(apdu))
    return bytes(data), (sw1 << 8) | sw2


def test_pyscard_reads_jpki_and_removal(slot):
    from smartcard.Exceptions import CardConnectionException, NoCardException

    slot.insert("taro")
    assert slot.inserted
    assert _wait_card(True)
    conn = _reader().createConnection()
    conn.connect()
    try:
        assert _transmit(conn, SELECT_JPKI)[1] == 0x9000
        assert _transmit(conn, _select_ef(0x0006))[1] == 0x9000
        token, sw = _transmit(conn, [0x00, 0xB0, 0x00, 0x00, 0x20])
        assert sw == 0x9000 and token.rstrip(b"\0") == b"JPKIAPICCTOKEN"
        assert _transmit(conn, _select_ef(0x000A))[1] == 0x9000
        head, sw = _transmit(conn, [0x00, 0xB0, 0x00, 0x00, 0x04])
        assert sw == 0x9000 and head[:2] == b"\x30\x82"
        size = (head[2] << 8 | head[3]) + 4
        der = b""
        while len(der) < size:
            n = min(256, size - len(der))
            chunk, sw = _transmit(conn, [0x00, 0xB0, len(der) >> 8, len(der) & 0xFF, n & 0xFF])
            assert sw == 0x9000
            der += chunk
        from cryptography import x509

        cert = x509.load_der_x509_certificate(der)
        assert cert.serial_number == slot.pki.issue(slot.profiles["taro"])[0].serial_number
        assert _transmit(conn, _select_ef(0x0018))[1] == 0x9000
        assert _transmit(conn, [0x00, 0x20, 0x00, 0x80])[1] == 0x63C3
    finally:
        try:
            conn.disconnect()
        except Exception:
            pass
    assert len(slot.log) >= 8
    slot.remove()
    assert not slot.inserted
    assert _wait_card(False)
    conn = _reader().createConnection()
    with pytest.raises((NoCardException, CardConnectionException)):
        conn.connect()


def _opensc(tmp_path, *args: str) -> str:
    conf = tmp_path / "opensc.conf"
    conf.write_text("app default {\n  card_drivers = jpki;\n}\n")
    env = dict(os.environ, OPENSC_CONF=str(conf))
    out = subprocess.run(["pkcs15-tool", "--reader", "0", *args], capture_output=True, text=True, env=env,
                         timeout=30)
    return out.stdout + out.stderr


def test_opensc_lists_certificates_and_pins(slot, tmp_path):
    slot.insert("taro")
    assert _wait_card(True)
    certs = _opensc(tmp_path, "--list-certificates")
    assert "User Authentication Certificate" in certs, certs
    assert "000a" in certs.lower() or "000A" in certs
    pins = _opensc(tmp_path, "--list-pins")
    assert "User Authentication PIN" in pins, pins
    assert "Tries left" in pins and "3" in pins.split("User Authentication PIN", 1)[1].split("Tries left", 1)[1][:10]


def test_lasttry_card_tries_left_1_over_pcscd(slot):
    slot.insert("lasttry")
    assert _wait_card(True)
    conn = _reader().createConnection()
    conn.connect()
    try:
        _transmit(conn, SELECT_JPKI)
        _transmit(conn, _select_ef(0x0018))
        assert _transmit(conn, [0x00, 0x20, 0x00, 0x80])[1] == 0x63C1
    finally:
        conn.disconnect()


def test_pull_fault_looks_like_removal(slot):
    from mynasim.card import FaultPlan
    from smartcard.Exceptions import CardConnectionException

    slot.insert("taro", FaultPlan(pull_at_apdu=2))
    assert _wait_card(True)
    conn = _reader().createConnection()
    conn.connect()
    assert _transmit(conn, SELECT_JPKI)[1] == 0x9000
    with pytest.raises(CardConnectionException):
        _transmit(conn, _select_ef(0x0006))
    try:
        conn.disconnect()
    except Exception:
        pass
    assert _wait_card(False)
