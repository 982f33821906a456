"""A patient who walks away: the screen times out, the host is told, the reader recovers."""

from __future__ import annotations

import os

import pytest

from mynasim.rig import SimRig

pytestmark = pytest.mark.pcscd


def test_screen_timeout_cancels_the_visit_and_tells_the_host(tmp_path):
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    with SimRig(tmp_path / "rig", overrides={"flow": {"screen_timeout_s": 2.0, "notice_s": 1.0},
                                             "face": {"enabled": False}}) as rig:
        mark = rig.mark()
        rig.place_card("taro")
        rig.wait_screen("method_choice", after=mark, timeout=20)
        rig.wait_screen("cancelled", after=mark, timeout=10, reason="timeout")
        aborted = rig.wait_host("visit.aborted", after=mark).data
        assert aborted["reason"] == "timeout" and aborted["code"] == "031"
        rig.wait_screen("remove_card", after=mark, timeout=10)
        rig.remove_card()
        rig.wait_screen("idle", after=mark)
