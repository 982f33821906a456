"""PcscTransport's T=0 chaining without a reader: GET RESPONSE (61xx) and wrong Le (6Cxx)."""

from __future__ import annotations

import pytest

from mynad.card.errors import BadResponse


def transport_with(answers: list[bytes]):
    from myna_drivers.pcsc import PcscTransport

    t = PcscTransport.__new__(PcscTransport)
    t.timeout = 1.0
    t.broken = False
    sent: list[list[int]] = []
    t.handed = []  # the very lists handed to SCardTransmit

    def raw(apdu, timeout):
        sent.append(list(apdu))
        t.handed.append(apdu)
        return answers.pop(0)

    t._raw = raw
    return t, sent


def test_get_response_until_9000():
    t, sent = transport_with([bytes.fromhex("6110"), bytes(16) + bytes.fromhex("6104"), b"\x01\x02\x03\x04\x90\x00"])
    data, sw = t.transmit(bytes.fromhex("00b0000000"))
    assert sw == 0x9000 and len(data) == 20
    assert sent[1] == [0x00, 0xC0, 0x00, 0x00, 0x10] and sent[2] == [0x00, 0xC0, 0x00, 0x00, 0x04]


def test_wrong_le_is_resent_once_with_the_right_le():
    t, sent = transport_with([bytes.fromhex("6C20"), bytes(32) + bytes.fromhex("9000")])
    data, sw = t.transmit(bytes.fromhex("00b0000000"))
    assert sw == 0x9000 and len(data) == 32 and sent[1] == [0x00, 0xB0, 0x00, 0x00, 0x20]


def test_endless_61xx_is_a_bad_response():
    t, _ = transport_with([bytes.fromhex("6101")] * 100)
    with pytest.raises(BadResponse):
        t.transmit(bytes.fromhex("00b0000000"))


def test_the_command_list_is_wiped_after_sending():
    t, sent = transport_with([bytes.fromhex("9000")])
    t.transmit(bytearray.fromhex("002000800431323334"))
    assert sent[0][5:] == [0x31, 0x32, 0x33, 0x34]
    assert t.handed[0] == [0] * 9  # the list that carried the PIN digits was overwritten
