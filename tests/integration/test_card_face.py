"""照合番号B from the printed card face, through the real daemon.

hw-sim renders the card lying in the tray and hands the daemon nothing but that
picture; the daemon finds the card, reads the birth date, the expiry year and the
security code, checks 照合番号B's counter on the card (no try spent) and only then
offers 顔認証. A face it cannot read, or a card with too few tries left, is never
sent a code, and the method choice says why 顔認証 is missing.
"""

from __future__ import annotations

import pytest

from mynasim.rig import SimRig

pytestmark = [pytest.mark.pcscd, pytest.mark.models]

VERIFY = "00 20 00 80"


def _apdus(rig: SimRig, after: int) -> list[dict]:
    entries = rig.timeline.entries()[after:]
    return [e.data for e in entries if e.source == "card" and e.kind == "apdu"]


def code_b_tries(rig: SimRig, profile: str) -> int:
    return rig.card_slot.state.tries(profile, "face/0012", 10)


def method_choice(rig: SimRig, profile: str, view: str, seed: int | None = None):
    mark = rig.mark()
    rig.place_card(profile, view=view, seed=seed)
    e = rig.wait_screen("method_choice", timeout=30, after=mark)
    return mark, e.data["params"]


def leave(rig: SimRig, mark: int) -> None:
    rig.remove_card()
    rig.wait_screen("idle", after=mark, timeout=15)


def test_a_well_placed_card_face_is_read_and_face_is_offered(rig: SimRig):
    before = code_b_tries(rig, "hanako")
    mark, params = method_choice(rig, "hanako", "clean")
    assert "face" in params["choices"] and not params.get("note")
    rig.wait_for_log("card photo embedded", after=mark, timeout=30)
    leave(rig, mark)
    assert code_b_tries(rig, "hanako") == before  # the right code: the counter is back at its maximum
    apdus = _apdus(rig, mark)
    assert sum(1 for a in apdus if a["c"].startswith(VERIFY) and a["lc"] == 14) == 1


def test_an_unreadable_card_face_falls_back_without_spending_a_try(rig: SimRig):
    before = code_b_tries(rig, "taro")
    mark, params = method_choice(rig, "taro", "unreadable")
    assert "face" not in params["choices"] and params.get("note") == "card_face_unreadable"
    assert "pin" in params["choices"]
    leave(rig, mark)
    assert not [a for a in _apdus(rig, mark) if a["c"].startswith(VERIFY) and a["lc"] == 14]
    assert code_b_tries(rig, "taro") == before


def test_a_card_with_few_code_b_tries_left_keeps_them(rig: SimRig):
    rig.card_slot.state.set_tries("taro", "face/0012", 3)
    try:
        mark, params = method_choice(rig, "taro", "clean")
        assert "face" not in params["choices"] and params.get("note") == "code_b_reserve"
        leave(rig, mark)
        assert not [a for a in _apdus(rig, mark) if a["c"].startswith(VERIFY) and a["lc"] == 14]
        assert code_b_tries(rig, "taro") == 3
    finally:
        rig.card_slot.state.set_tries("taro", "face/0012", 10)


@pytest.mark.parametrize("seed", [11, 23, 37, 41])
def test_cards_placed_as_at_a_counter_are_read_or_refused_never_misread(rig: SimRig, seed: int):
    mark, params = method_choice(rig, "taro", "random", seed=seed)
    if "face" in params["choices"]:
        rig.wait_for_log("card photo embedded", after=mark, timeout=30)
    else:
        assert params.get("note") == "card_face_unreadable"
    leave(rig, mark)
    assert code_b_tries(rig, "taro") == 10  # never a wrong code sent


def test_the_code_never_reaches_the_log_or_the_host(rig: SimRig):
    p = rig.profiles["taro"]
    code = p.code_b()
    log = "\n".join(rig.log_lines)
    assert code not in log
    for e in rig.timeline.entries("host", "received"):
        assert code not in str(e.data)
