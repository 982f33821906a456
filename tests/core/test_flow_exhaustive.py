"""Every screen x every event: a breadth-first walk over the pure flow.

From idle, apply every event of a fixed alphabet (each key, each timer that is
running, card removed, every host message, every card and face answer) to every
(state, screen) reached, to a depth that reaches every state. Nothing may raise,
every screen must be known, and removing the card must always lead back to idle.
"""

from __future__ import annotations

import copy

from mynad.core import events as ev
from mynad.core.cert_policy import CertState
from mynad.core.config import FlowConfig
from mynad.core.flow import ReceptionFlow
from mynad.ui.screens import SCREENS

LAYOUT = tuple("123456789") + ("取消", "0", "クリア")


def alphabet(flow: ReceptionFlow, timers: dict[str, int]) -> list[ev.Event]:
    vid = flow.visit.visit_id if flow.visit else "v1"
    out: list[ev.Event] = [ev.KeyPressed(p) for p in range(1, 13)]
    out += [ev.TimerFired(name, tok) for name, tok in timers.items()]
    out += [
        ev.CardInserted("v1"), ev.CardRemoved(),
        ev.CardRead(CertState.VALID, True, 3, False, True), ev.CardRead(CertState.VALID, True, 1, False, True),
        ev.CardRead(CertState.VALID, True, 0, True, True), ev.CardRead(CertState.VALID, False, None, False, True),
        ev.CardRead(CertState.EXPIRING, True, 3, False, False), ev.CardRead(CertState.GRACE, True, 3, False, True),
        ev.CardRead(CertState.EXPIRED, True, 3, False, True), ev.CardFailed("001", "mute"),
        ev.PinLayoutReady(LAYOUT), ev.PinDigit(),
        ev.PinChecked(True, 3, False), ev.PinChecked(False, 2, False), ev.PinChecked(False, 0, True),
        ev.StaffPasswordChecked(True), ev.StaffPasswordChecked(False),
        ev.FaceHint("too_far"), ev.FaceDone(True, "match", 0.6), ev.FaceDone(False, "no_match", 0.1),
        ev.FaceUnavailable("no photo"),
        ev.HostQualification(vid, True, "番号 太郎", 45, True, None),
        ev.HostQualification(vid, True, "番号 花子", 30, True, {"surgery": True}),
        ev.HostQualification(vid, True, "未登録", 50, False, None),
        ev.HostQualification(vid, False, "", None, True, None, "021"),
        ev.HostVisualCheck(), ev.AuthFailed("020", "host_timeout"),
        ev.ResultStored(vid), ev.StorageChanged(False, "disk full"), ev.StorageChanged(True),
        ev.StaffPasswordChecked(False, "locked"), ev.StaffPasswordChecked(False, "not_set"),
        ev.StaffPasswordState(False), ev.StaffPasswordState(True), ev.ChallengeConflict(vid),
    ]
    return out


class Node:
    def __init__(self, flow: ReceptionFlow, timers: dict[str, int], screen: str) -> None:
        self.flow, self.timers, self.screen = flow, timers, screen


def step(node: Node, event: ev.Event, now: float) -> Node:
    flow = copy.deepcopy(node.flow)
    timers = dict(node.timers)
    screen = node.screen
    for a in flow.handle(event, now):
        if isinstance(a, ev.Show):
            assert a.screen.id in SCREENS, a.screen.id
            screen = a.screen.id
        elif isinstance(a, ev.StartTimer):
            timers[a.name] = a.token
        elif isinstance(a, ev.CancelTimer):
            timers.pop(a.name, None)
    if isinstance(event, ev.TimerFired):
        timers.pop(event.name, None)
    return Node(flow, timers, screen)


def test_every_state_and_screen_handles_every_event():
    flow = ReceptionFlow(FlowConfig(staff_password_length=4))
    timers: dict[str, int] = {}
    screen = "idle"
    for a in flow.start():
        if isinstance(a, ev.StartTimer):
            timers[a.name] = a.token
    frontier = [Node(flow, timers, screen)]
    seen: set[tuple] = set()
    states: set[str] = set()
    screens: set[str] = set()
    now = 0.0
    for depth in range(7):
        nxt = []
        for node in frontier:
            for event in alphabet(node.flow, node.timers):
                now += 1.0
                child = step(node, event, now)
                states.add(child.flow.state)
                screens.add(child.screen)
                # removing the card from anywhere ends at idle with no visit
                gone = step(child, ev.CardRemoved(), now + 0.5)
                for _ in range(3):  # notices (cancelled, done) time out back to idle
                    for name, tok in list(gone.timers.items()):
                        if name in ("notice", "done"):
                            gone = step(gone, ev.TimerFired(name, tok), now + 1)
                assert gone.flow.visit is None and gone.flow.state == "idle", (child.flow.state, gone.flow.state)
                assert gone.screen in ("idle", "fault"), gone.screen
                v = child.flow.visit
                facts = None if v is None else (v.has_pin, v.pin_tries, v.pin_locked, v.face_possible, v.entered,
                                                v.staff_from_host, v.qualification_only, v.face_attempt)
                key = (child.flow.state, child.screen, facts, child.flow.visual_armed, child.flow.storage_ok,
                       child.flow.staff_available, tuple(sorted(child.timers)))
                if key not in seen:
                    seen.add(key)
                    nxt.append(child)
        frontier = nxt
        if not frontier:
            break
    must = {"idle", "reading", "method", "face", "face_failed", "pin_entry", "pin_last_try", "pin_locked",
            "staff_password", "consent", "saving", "done", "remove"}  # staff_confirm: test_flow_rows
    assert must <= states, must - states
    print("screens never reached:", sorted(SCREENS.keys() - screens), "states:", len(states))
    assert len(screens) >= 18, sorted(SCREENS.keys() - screens)
