"""Property tests: any sequence of events, in any state, is handled.

- the flow never raises;
- after the card is removed it is idle with no visit;
- the PIN typed on the pad reaches only the buffer handed to VERIFY: never a
  host message, a log line, a screen, a status dump or an exception;
- every screen the flow emits is a known screen.
"""

from __future__ import annotations

import secrets

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mynad.core import events as ev
from mynad.core.cert_policy import CertState
from mynad.core.config import FlowConfig
from mynad.core.flow import ReceptionFlow
from mynad.shell.describe import describe_action, describe_event
from mynad.shell.pinentry import PinEntry
from mynad.ui.screens import SCREENS

TIMERS = ["screen", "host", "backoff", "done", "notice", "card_left", "visual_mode", "throttle"]

events = st.one_of(
    st.builds(ev.CardInserted, st.sampled_from(["v1", "v2"])),
    st.builds(ev.CardRead, st.sampled_from(list(CertState)), st.booleans(),
              st.one_of(st.none(), st.integers(0, 3)), st.booleans(), st.booleans()),
    st.builds(ev.CardFailed, st.sampled_from(["001", "002"]), st.just("x")),
    st.just(ev.CardRemoved()),
    st.builds(lambda p: ("key", p), st.integers(0, 13)),
    st.builds(lambda p: ("key", p), st.integers(0, 13)),
    st.builds(lambda p: ("key", p), st.integers(1, 12)),
    st.just(("layout", None)),
    st.builds(ev.PinChecked, st.booleans(), st.one_of(st.none(), st.integers(0, 3)), st.booleans()),
    st.builds(ev.StaffPasswordChecked, st.booleans()),
    st.builds(ev.FaceHint, st.sampled_from(["no_face", "too_far", "ok"])),
    st.builds(ev.FaceDone, st.booleans(), st.just("r"), st.one_of(st.none(), st.floats(0, 1))),
    st.builds(ev.FaceUnavailable, st.just("r")),
    st.builds(ev.HostQualification, st.sampled_from(["v1", "v2"]), st.booleans(), st.just("名前"),
              st.one_of(st.none(), st.integers(0, 100)), st.booleans(),
              st.one_of(st.none(), st.fixed_dictionaries({"surgery": st.booleans()}))),
    st.just(ev.HostVisualCheck()),
    st.builds(ev.AuthFailed, st.just("020"), st.just("x")),
    st.builds(lambda n: ("timer", n), st.sampled_from(TIMERS)),
)


def layout_from(rng: secrets.SystemRandom) -> tuple[str, ...]:
    digits = list("0123456789")
    rng.shuffle(digits)
    return tuple(digits[:9]) + ("取消", digits[9], "クリア")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, max_size=80), st.booleans())
def test_any_event_sequence(seq, remove_at_end):
    flow = ReceptionFlow(FlowConfig(staff_password_length=4))
    pin = PinEntry()
    rng = secrets.SystemRandom()
    timers: dict[str, int] = {}
    typed: list[str] = []
    outputs: list[str] = []
    now = 0.0

    def run(event: ev.Event) -> None:
        line = describe_event(event, flow)
        if line:
            outputs.append(line)
        for a in flow.handle(event, now):
            line = describe_action(a)
            if line:
                outputs.append(line)
            if isinstance(a, ev.Show):
                assert a.screen.id in SCREENS
                outputs.append(repr(a.screen.params.get("entered")))
            elif isinstance(a, ev.SendHost):
                outputs.append(repr(dict(a.fields)))
            elif isinstance(a, ev.StartTimer):
                timers[a.name] = a.token
            elif isinstance(a, ev.StartPinEntry):
                pending.append(pin.start(flow.pin_length, layout_from(rng)))
            elif isinstance(a, (ev.VerifyPin, ev.CheckStaffPassword)):
                pin.take().wipe()
            elif isinstance(a, ev.ClearPin):
                pin.clear()
            elif isinstance(a, ev.EndVisit):
                pin.end()

    pending: list[ev.Event] = []
    for item in list(seq) + ([ev.CardRemoved()] if remove_at_end else []):
        now += 1.0
        if isinstance(item, tuple):
            kind, arg = item
            if kind == "key":
                was_active = flow.pin_entry_active
                routed = pin.route(flow, arg)
                if isinstance(routed, ev.PinDigit) and was_active:
                    typed.append(pin.layout[arg - 1])
                if routed is not None:
                    run(routed)
            elif kind == "layout":
                if pending:
                    run(pending.pop(0))
            elif kind == "timer" and arg in timers:
                run(ev.TimerFired(arg, timers.pop(arg)))
        else:
            run(item)
        while pending and flow.state in ("pin_entry", "staff_password") and not flow.visit.layout:
            run(pending.pop(0))
        outputs.append(repr(flow.status()))
        outputs.append(repr(pin.buffer))

    if remove_at_end:
        assert flow.state == "idle" and flow.visit is None
        assert len(pin.buffer) == 0
    secret = "".join(typed)
    if len(secret) >= 4:
        blob = "\n".join(outputs)
        for i in range(len(secret) - 3):
            assert secret[i:i + 4] not in blob
