"""MynaCard over the virtual card in-process: commands, parsing, and the rules that
protect the patient (no wasted try, 照合番号B once, each file read once)."""

from __future__ import annotations

import datetime as dt

import pytest

from mynad.card import apdu as A
from mynad.card import tlv
from mynad.card.errors import (BadResponse, CertificateInvalid, CodeBLocked, CodeBRejected, CodeBReserve, NoPinSet,
                               NotMynaCard, PinLocked, SecurityNotSatisfied, WrongPin, error_for_sw)
from mynad.card.session import MynaCard
from mynad.core import codes
from mynad.core.secret import PinBuffer
from mynasim.card import FaultPlan


def pin(digits: str) -> PinBuffer:
    b = PinBuffer()
    for d in digits:
        b.push(int(d))
    return b


def verifies(t) -> int:
    return sum(1 for c in t.log if c[:4] == bytes.fromhex("00200080") and c.endswith(b"..."))


def test_apdu_forms_are_the_public_drivers_forms():
    assert A.select_df(A.AID_JPKI).hex() == "00a4040c0ad392f000260100000001"
    assert A.select_ef(0x000A).hex() == "00a4020c02000a"
    assert A.read_binary(0x0104, 256).hex() == "00b0010400"
    assert A.verify_query().hex() == "00200080"
    assert bytes(A.verify(bytearray(b"1234"))).hex() == "002000800431323334"
    assert A.describe(A.verify(bytearray(b"1234"))) == "00 20 00 80 +4B"  # no digits
    assert A.with_le(bytes.fromhex("00b0000000"), 0x20).hex() == "00b0000020"


def test_tlv_finds_items_by_tag_even_after_a_prefix():
    rec = bytes.fromhex("FF200B") + bytes.fromhex("DF2203414243") + bytes.fromhex("DF270201FF")
    assert tlv.find_record(rec) == {0xDF22: b"ABC", 0xDF27: b"\x01\xff"}
    assert tlv.find_record(b"\x00\x00" + rec)[0xDF22] == b"ABC"
    assert tlv.total_length(bytes.fromhex("308204D2")) == 0x4D2 + 4
    with pytest.raises(ValueError):
        tlv.find_record(bytes.fromhex("FF2010DF2203"))


def test_status_words_become_typed_errors():
    assert isinstance(error_for_sw(0x63C2, "x"), WrongPin) and error_for_sw(0x63C2, "x").tries_left == 2
    for sw in (0x63C0, 0x6983, 0x6984):
        assert isinstance(error_for_sw(sw, "x"), PinLocked)
    assert isinstance(error_for_sw(0x6982, "x"), SecurityNotSatisfied)
    e = error_for_sw(0x6A82, "read EF 000A")
    assert e.code == codes.FILE_NOT_FOUND.code and "6A82" in e.message and "read EF 000A" in e.message


def test_read_a_card_with_the_minimum_apdus(transport):
    t = transport("taro")
    card = MynaCard(t)
    card.identify()
    cert = card.auth_certificate()
    card.auth_certificate()
    card.pin_status()
    assert cert.not_after.utcoffset() == dt.timedelta(hours=9)
    assert cert.serial > 0 and "JPKI" in cert.subject
    selects = [c for c in t.log if c[:2] == b"\x00\xa4"]
    assert len(selects) == 4  # JPKI AP, token, cert, PIN EF: nothing selected twice
    reads = [c for c in t.log if c[:2] == b"\x00\xb0"]
    assert len(reads) == 1 + -(-len(cert.der) // 256)  # the token, then the certificate in 256-byte chunks


def test_not_a_my_number_card(transport):
    class Other:
        log: list = []

        def transmit(self, apdu, timeout=None):
            return b"", 0x6A82

    with pytest.raises(NotMynaCard) as e:
        MynaCard(Other()).identify()
    assert e.value.code == "002"


def test_no_pin_card_is_not_reported_locked(transport):
    card = MynaCard(transport("nopin"))
    card.identify()
    s = card.pin_status()
    assert not s.has_pin and not s.locked
    with pytest.raises(NoPinSet):
        card.verify_pin(pin("1234"))


def test_locked_card_is_never_sent_a_verify(transport):
    t = transport("locked")
    card = MynaCard(t)
    s = card.pin_status()
    assert s.locked and s.has_pin and s.tries_left == 0
    buf = pin("1111")
    with pytest.raises(PinLocked):
        card.verify_pin(buf)
    assert verifies(t) == 0 and len(buf) == 0  # wiped even though nothing was sent


def test_last_try_wrong_locks_and_then_nothing_more_is_sent(transport):
    t = transport("lasttry")
    card = MynaCard(t)
    assert card.pin_status().tries_left == 1
    with pytest.raises(PinLocked):
        card.verify_pin(pin("0000"))
    with pytest.raises(PinLocked):
        card.verify_pin(pin("2222"))
    assert verifies(t) == 1


def test_verify_wipes_the_buffer_and_right_pin_signs(transport, profiles):
    card = MynaCard(transport("taro"))
    buf = pin(profiles["taro"].pin)
    card.verify_pin(buf)
    assert len(buf) == 0 and repr(buf).endswith("hidden>")
    assert len(card.sign(b"challenge")) == 256


def test_sign_without_verify_is_refused_by_the_card(transport):
    with pytest.raises(SecurityNotSatisfied):
        MynaCard(transport("taro")).sign(b"challenge")


def test_face_photo_with_code_b_once(transport, profiles):
    t = transport("taro")
    card = MynaCard(t)
    photo = card.face_photo(profiles["taro"].code_b())
    assert photo.startswith(bytes.fromhex("0000000c6a502020"))
    assert card.face_photo(profiles["taro"].code_b()) is photo  # read once per insertion
    t2 = transport("hanako")
    card2 = MynaCard(t2)
    with pytest.raises(Exception):
        card2.face_photo(profiles["taro"].code_b())  # wrong 照合番号B
    n = len(t2.log)
    with pytest.raises(SecurityNotSatisfied):
        card2.face_photo(profiles["hanako"].code_b())  # never a second guess on this insertion
    assert len(t2.log) == n


def code_b_verifies(t) -> int:
    """VERIFYs carrying data (these tests send no PIN, so each one is a 照合番号B submission)."""
    return verifies(t)


def test_code_b_counter_is_queried_without_spending_a_try(transport, state):
    t = transport("taro", st=state)
    card = MynaCard(t)
    assert card.code_b_status().tries_left == 10
    assert card.code_b_status().tries_left == 10
    assert code_b_verifies(t) == 0


def test_code_b_reserve_is_never_spent(transport, state, profiles):
    state.set_tries("taro", "face/0012", 3)
    t = transport("taro", st=state)
    card = MynaCard(t)
    code = bytearray(profiles["taro"].code_b().encode())
    with pytest.raises(CodeBReserve) as info:
        card.face_photo(code, reserve=3)
    assert info.value.tries_left == 3 and info.value.reason == "code_b_reserve"
    assert code_b_verifies(t) == 0 and code == bytearray(14)  # not sent, and wiped
    assert state.tries("taro", "face/0012", 10) == 3


def test_code_b_locked_is_never_sent(transport, state, profiles):
    state.set_tries("taro", "face/0012", 0)
    t = transport("taro", st=state)
    with pytest.raises(CodeBLocked):
        MynaCard(t).face_photo(bytearray(profiles["taro"].code_b().encode()), reserve=0)
    assert code_b_verifies(t) == 0


def test_wrong_code_b_costs_one_try_and_says_so(transport, state, profiles):
    t = transport("hanako", st=state)
    card = MynaCard(t)
    with pytest.raises(CodeBRejected) as info:
        card.face_photo(bytearray(profiles["taro"].code_b().encode()), reserve=3)
    assert info.value.tries_left == 9 and code_b_verifies(t) == 1


@pytest.mark.parametrize("code", ["５６０５１２２０３１１２３４", "56051220311234x", "5605122031123", "５6051220311234"])
def test_code_b_that_is_not_14_ascii_digits_is_not_sent(transport, code):
    """Full-width digits pass str.isdigit(); the card must only ever see ASCII digits."""
    t = transport("taro")
    with pytest.raises(SecurityNotSatisfied):
        MynaCard(t).face_photo(bytearray(code.encode("utf-8")))
    assert code_b_verifies(t) == 0


def test_basic4(transport, profiles):
    b4 = MynaCard(transport("taro")).basic4(pin(profiles["taro"].pin))
    assert b4.name == profiles["taro"].name and b4.sex == "male" and len(b4.birth_date) == 8
    assert "hidden" in repr(b4)


@pytest.mark.parametrize("faults, error", [
    (FaultPlan(invalid_cert=True), CertificateInvalid),
    (FaultPlan(oversized_cert=True), CertificateInvalid),
])
def test_broken_certificates(transport, faults, error):
    card = MynaCard(transport("taro", faults))
    card.identify()
    with pytest.raises(error):
        card.auth_certificate()


def test_malformed_status_word_is_a_bad_response():
    class Garbage:
        def transmit(self, apdu, timeout=None):
            return b"\x12\x34", 0x1234

    with pytest.raises(BadResponse):
        MynaCard(Garbage()).identify()
