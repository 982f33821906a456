"""Virtual My Number card for the simulator: profiles, test PKI, card application, vpcd slot.

Public API::

    load_profiles(path=None) -> dict[str, Profile]
    TestPKI(state_dir).issue(profile) -> (x509.Certificate, RSAPrivateKey)
    CardState(state_dir)                       # persistent PIN counters
    VirtualMynaCard(profile, pki, state, assets_dir, faults).process(apdu) -> response+SW
    FaultPlan(...)
    VirtualCardSlot(port=35963, state_dir=..., assets_dir=..., on_apdu=None).insert(key) / .remove()
"""

from mynasim.card.app import AID_FACE, AID_JPKI, AID_TEXT, ATR, VirtualMynaCard
from mynasim.card.faults import FaultPlan
from mynasim.card.pki import TestPKI, serial_for
from mynasim.card.profiles import Profile, era_yymmdd, load_profiles
from mynasim.card.slot import VirtualCardSlot
from mynasim.card.state import CardState

__all__ = [
    "AID_FACE", "AID_JPKI", "AID_TEXT", "ATR", "CardState", "FaultPlan", "Profile", "TestPKI",
    "VirtualCardSlot", "VirtualMynaCard", "era_yymmdd", "load_profiles", "serial_for",
]
