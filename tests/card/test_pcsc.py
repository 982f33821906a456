"""The card layer through the real pcscd, vpcd and the virtual card: events, commands,
the never-waste-a-try rules, and faults turned into typed errors."""

from __future__ import annotations

import queue
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography import x509

from mynad.card.errors import BadResponse, CardError, CardMute, CardRemoved, CertificateInvalid, PinLocked, WrongPin
from mynad.card.session import MynaCard
from mynad.core import codes
from mynad.core.secret import PinBuffer
from mynasim.card import FaultPlan, VirtualCardSlot

pytestmark = pytest.mark.pcscd
READER = "Virtual PCD 00 00"


def pin(digits: str) -> PinBuffer:
    b = PinBuffer()
    for d in digits:
        b.push(int(d))
    return b


@pytest.fixture
def slot(pcscd, tmp_path, assets_dir, profiles):
    apdus: list[bytes] = []
    s = VirtualCardSlot(port=35963, state_dir=tmp_path / "card", assets_dir=assets_dir,
                        on_apdu=lambda t, c, r: apdus.append(c), profiles=profiles)
    s.apdus = apdus
    yield s
    s.close()


@pytest.fixture
def events(pcscd):
    from myna_drivers.pcsc import PcscMonitor

    q: queue.Queue = queue.Queue()
    m = PcscMonitor(q.put, reader_filter=READER)
    m.start()
    yield q
    m.stop()


def wait_kind(q: queue.Queue, kind: str, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            e = q.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if e.kind == kind:
            return e
    raise AssertionError(f"no {kind} event within {timeout} s")


def connect():
    from mynad.card.channel import CardChannel

    deadline = time.monotonic() + 5
    while True:
        try:
            return CardChannel.connect_pcsc(READER, timeout=2.0)
        except CardError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_insert_and_remove_events_arrive(slot, events):
    slot.insert("taro")
    e = wait_kind(events, "inserted")
    assert e.reader == READER and e.atr == bytes.fromhex("3BE000FF8131FE4514")
    slot.remove()
    wait_kind(events, "removed")


def test_a_whole_pin_visit_through_pcscd(slot, events, profiles):
    slot.insert("taro")
    wait_kind(events, "inserted")
    t = connect()
    try:
        card = MynaCard(t)
        assert card.identify().token == "JPKIAPICCTOKEN"
        cert = card.auth_certificate()
        assert card.auth_certificate() is cert  # read once per insertion
        status = card.pin_status()
        assert status.tries_left == 3 and status.has_pin
        photo = card.face_photo(profiles["taro"].code_b())
        assert photo[:12] == bytes.fromhex("0000000c6a5020200d0a870a")  # JPEG 2000 signature box
        card.verify_pin(pin(profiles["taro"].pin))
        sig = card.sign(b"host challenge")
        pub = x509.load_der_x509_certificate(cert.der).public_key()
        pub.verify(sig, b"host challenge", padding.PKCS1v15(), hashes.SHA256())
    finally:
        t.close()


def test_three_wrong_pins_lock_and_no_fourth_verify_is_sent(slot, events):
    slot.insert("hanako")
    wait_kind(events, "inserted")
    t = connect()
    try:
        card = MynaCard(t)
        card.identify()
        assert card.pin_status().tries_left == 3
        assert card.pin_status().tries_left == 3  # the query never spends a try
        with pytest.raises(WrongPin) as e1:
            card.verify_pin(pin("0000"))
        assert e1.value.tries_left == 2
        with pytest.raises(WrongPin) as e2:
            card.verify_pin(pin("0000"))
        assert e2.value.tries_left == 1
        with pytest.raises(PinLocked):
            card.verify_pin(pin("0000"))
        before = len(slot.apdus)
        with pytest.raises(PinLocked):
            card.verify_pin(pin("5678"))  # even the right PIN: not sent to a locked card
        assert len(slot.apdus) == before
    finally:
        t.close()
    verifies = [c for c in slot.apdus if c[:4] == bytes.fromhex("00200080") and len(c) > 5]
    assert len(verifies) == 3
    # the counter persists across removal
    slot.remove()
    wait_kind(events, "removed")
    slot.insert("hanako")
    wait_kind(events, "inserted")
    t = connect()
    try:
        card = MynaCard(t)
        card.identify()
        s = card.pin_status()
        assert s.locked and s.tries_left == 0 and s.has_pin
    finally:
        t.close()


def test_fast_remove_and_insert_is_seen_as_both(slot, events):
    slot.insert("taro")
    wait_kind(events, "inserted")
    slot.remove()
    slot.insert("hanako")  # the slot keeps the minimum absence pcscd needs to notice
    wait_kind(events, "removed")
    wait_kind(events, "inserted")


@pytest.mark.parametrize("n", range(1, 11))
def test_card_pulled_at_apdu_n_is_a_clear_card_error(slot, events, n, profiles):
    slot.insert("taro", faults=FaultPlan(pull_at_apdu=n))
    wait_kind(events, "inserted")
    t = connect()
    try:
        card = MynaCard(t)
        with pytest.raises(CardError) as e:
            card.identify()
            card.auth_certificate()
            card.pin_status()
            card.verify_pin(pin(profiles["taro"].pin))
            card.sign(b"x")
            raise AssertionError("the pulled card answered everything")
        assert isinstance(e.value, (CardRemoved, CardMute)), e.value
        assert e.value.code == codes.code_for(e.value.reason) and e.value.message  # 050 pulled, 001 mute
    finally:
        t.close()


def test_mute_card_times_out(slot, events):
    slot.insert("taro", faults=FaultPlan(mute_at_apdu=2))
    wait_kind(events, "inserted")
    from mynad.card.channel import CardChannel

    t = CardChannel.connect_pcsc(READER, timeout=1.0)
    try:
        # the 1 s APDU timeout ends the exchange: wait for its CardMute, and fail only on a hang
        # (without the timeout pcscd waits for a mute card until it leaves), not on a slow machine
        import threading

        raised: list[BaseException] = []

        def identify() -> None:
            try:
                MynaCard(t).identify()
            except BaseException as e:  # handed to the test thread
                raised.append(e)

        worker = threading.Thread(target=identify, daemon=True)
        worker.start()
        worker.join(30.0)
        assert not worker.is_alive(), "the mute card was waited for without a timeout"
        assert raised and isinstance(raised[0], CardMute), raised
    finally:
        slot.remove()  # vpcd has no timeout of its own: pcscd waits for the mute card until it leaves
        t.close()


@pytest.mark.parametrize("faults, error", [
    (FaultPlan(garbage_at_apdu=3), BadResponse),
    (FaultPlan(truncate_at_apdu=3), BadResponse),
    (FaultPlan(invalid_cert=True), CertificateInvalid),
    (FaultPlan(oversized_cert=True), CertificateInvalid),
], ids=["garbage", "truncated", "invalid_cert", "oversized_cert"])
def test_bad_answers_become_typed_errors(slot, events, faults, error):
    slot.insert("taro", faults=faults)
    wait_kind(events, "inserted")
    t = connect()
    try:
        card = MynaCard(t)
        with pytest.raises(error):
            card.identify()
            card.auth_certificate()
    finally:
        t.close()
