"""Fixtures for the virtual-card tests: profiles, a PKI in a session temp dir, and (for
``@pytest.mark.pcscd`` tests) the real pcscd with vpcd, started only if not already running."""

from __future__ import annotations

from pathlib import Path

import pytest

from mynasim.card import CardState, TestPKI, VirtualMynaCard, load_profiles

REPO = Path(__file__).resolve().parents[2]
SHARED_FACES = Path("/work/shared/faces")
PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
READER = "Virtual PCD 00 00"


def _readers() -> list[str]:
    try:
        from smartcard.System import readers

        return [str(r) for r in readers()]
    except Exception:
        return []


@pytest.fixture(scope="session")
def assets_dir(tmp_path_factory) -> Path:
    """An assets dir whose faces/ is /work/shared/faces (fallback: the repo's assets)."""
    if SHARED_FACES.is_dir():
        d = tmp_path_factory.mktemp("assets")
        (d / "faces").symlink_to(SHARED_FACES)
        return d
    return REPO / "assets"


@pytest.fixture(scope="session")
def profiles():
    return load_profiles()


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pki-state")


@pytest.fixture(scope="session")
def pki(pki_dir, profiles) -> TestPKI:
    return TestPKI(pki_dir, profiles)


@pytest.fixture
def state(tmp_path) -> CardState:
    return CardState(tmp_path / "counters")


@pytest.fixture
def make_card(pki, state, assets_dir, profiles):
    def make(key: str = "taro", faults=None, st: CardState | None = None) -> VirtualMynaCard:
        return VirtualMynaCard(profiles[key], pki, st or state, assets_dir, faults)
    return make


@pytest.fixture(scope="session")
def pcscd():
    """The real pcscd with the vpcd reader (started here only if it does not run already),
    holding the machine's test bench (mynasim.benchlock) for the session."""
    import gc

    from mynasim.services import Pcscd, ServiceError

    service = Pcscd()
    try:
        service.ensure()
    except ServiceError as e:
        service.stop()
        pytest.fail(str(e))
    try:
        yield service.proc
    finally:
        gc.collect()  # release pyscard contexts while pcscd still answers
        service.stop()
