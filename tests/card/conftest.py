"""Card-layer fixtures: the virtual card in-process (a transport that calls ``process``),
and the shared vcard fixtures (PKI, profiles, pcscd) for the real-pcscd tests."""

from __future__ import annotations

import pytest

from tests.vcard.conftest import assets_dir, make_card, pcscd, pki, pki_dir, profiles, state  # noqa: F401


class InProcess:
    """A transport straight into a ``VirtualMynaCard``: same bytes as through pcscd, no timing."""

    def __init__(self, card) -> None:
        self.card = card
        self.log: list[bytes] = []

    def transmit(self, apdu, timeout=None):
        self.log.append(bytes(apdu[:5]) + (b"" if len(apdu) <= 5 else b"..."))
        r = self.card.process(bytes(apdu))
        return r[:-2], (r[-2] << 8) | r[-1]


@pytest.fixture
def transport(make_card):
    def make(key: str = "taro", faults=None, st=None) -> InProcess:
        return InProcess(make_card(key, faults, st))
    return make
