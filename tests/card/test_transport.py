"""The card channel over a driver link: GET RESPONSE (61xx), wrong Le (6Cxx), driver
errors translated into the card layer's errors, and the driver's own independence."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mynad.card.channel import CardChannel
from mynad.card.errors import BadResponse, CardMute, CardRemoved, ReaderGone

REPO = Path(__file__).resolve().parents[2]


class ScriptedLink:
    """A reader link that answers from a list and remembers what was sent."""

    def __init__(self, answers: list[bytes | Exception]) -> None:
        self.answers = list(answers)
        self.sent: list[bytes] = []
        self.closed = False

    def exchange(self, apdu, timeout=None) -> bytes:
        self.sent.append(bytes(apdu))
        a = self.answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    def close(self) -> None:
        self.closed = True


def test_get_response_until_9000():
    link = ScriptedLink([bytes.fromhex("6110"), bytes(16) + bytes.fromhex("6104"), b"\x01\x02\x03\x04\x90\x00"])
    data, sw = CardChannel(link).transmit(bytes.fromhex("00b0000000"))
    assert sw == 0x9000 and len(data) == 20
    assert link.sent[1] == bytes([0x00, 0xC0, 0x00, 0x00, 0x10]) and link.sent[2] == bytes([0x00, 0xC0, 0x00, 0x00, 0x04])


def test_wrong_le_is_resent_once_with_the_right_le():
    link = ScriptedLink([bytes.fromhex("6C20"), bytes(32) + bytes.fromhex("9000")])
    data, sw = CardChannel(link).transmit(bytes.fromhex("00b0000000"))
    assert sw == 0x9000 and len(data) == 32 and link.sent[1] == bytes.fromhex("00b0000020")


def test_endless_61xx_is_a_bad_response():
    with pytest.raises(BadResponse):
        CardChannel(ScriptedLink([bytes.fromhex("6101")] * 100)).transmit(bytes.fromhex("00b0000000"))


def test_an_answer_without_status_word_is_a_bad_response():
    with pytest.raises(BadResponse):
        CardChannel(ScriptedLink([b"\x90"])).transmit(bytes.fromhex("00b0000000"))


@pytest.mark.parametrize("driver_error, card_error", [
    ("CardGone", CardRemoved), ("CardMute", CardMute), ("ServiceGone", ReaderGone),
    ("MalformedAnswer", BadResponse), ("PcscError", ReaderGone),
])
def test_driver_errors_become_card_errors(driver_error, card_error):
    from myna_drivers import pcsc

    err = getattr(pcsc, driver_error)("the words of the driver")
    with pytest.raises(card_error) as info:
        CardChannel(ScriptedLink([err])).transmit(bytes.fromhex("00a4040000"))
    assert "the words of the driver" in info.value.message


def test_the_pcsc_command_list_is_wiped_after_sending():
    from myna_drivers.pcsc import PcscTransport

    t = PcscTransport.__new__(PcscTransport)
    t.timeout = 1.0
    t.broken = False
    handed: list[list[int]] = []
    seen: list[list[int]] = []

    def raw(apdu, timeout):
        handed.append(apdu)
        seen.append(list(apdu))
        return bytes.fromhex("9000")

    t._raw = raw
    assert t.exchange(bytearray.fromhex("002000800431323334")) == bytes.fromhex("9000")
    assert seen[0][5:] == [0x31, 0x32, 0x33, 0x34]
    assert handed[0] == [0] * 9  # the list that carried the PIN digits was overwritten


def test_drivers_do_not_import_the_daemon():
    """Drivers are thin and reusable: the daemon depends on them, never the other way."""
    offenders = []
    for path in sorted((REPO / "drivers" / "myna_drivers").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n == "mynad" or n.startswith("mynad.")]
    assert offenders == []
