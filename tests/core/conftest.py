"""A small driver for the pure flow: feed events, keep the actions, fire timers."""

from __future__ import annotations

import pytest

from mynad.core import events as ev
from mynad.core.cert_policy import CertState
from mynad.core.config import FlowConfig
from mynad.core.flow import ReceptionFlow


class Driver:
    """``auto_store``: answer a confirmed SendHost with ResultStored at once, as the shell does
    when the outbox write succeeds (tests of the saving state turn it off)."""

    def __init__(self, cfg: FlowConfig | None = None, auto_store: bool = True) -> None:
        self.flow = ReceptionFlow(cfg or FlowConfig())
        self.auto_store = auto_store
        self.now = 0.0
        self.actions: list[ev.Action] = list(self.flow.start())
        self.timers: dict[str, int] = {}

    def send(self, event: ev.Event) -> list[ev.Action]:
        out = self.flow.handle(event, self.now)
        for a in out:
            if isinstance(a, ev.StartTimer):
                self.timers[a.name] = a.token
            elif isinstance(a, ev.CancelTimer):
                self.timers.pop(a.name, None)
        self.actions += out
        if self.auto_store:
            for a in out:
                if isinstance(a, ev.SendHost) and a.confirm:
                    out = out + self.send(ev.ResultStored(str(a.fields["visit_id"])))
        return out

    def fire(self, name: str) -> list[ev.Action]:
        token = self.timers.pop(name)
        return self.send(ev.TimerFired(name, token))

    def key(self, pos: int) -> list[ev.Action]:
        return self.send(ev.KeyPressed(pos))

    @property
    def screen(self):
        shows = [a for a in self.actions if isinstance(a, ev.Show)]
        return shows[-1].screen

    def host(self, type_: str | None = None) -> list[ev.SendHost]:
        return [a for a in self.actions if isinstance(a, ev.SendHost) and (type_ is None or a.type == type_)]

    # --- common prefixes
    def insert(self, cert: CertState = CertState.VALID, has_pin: bool = True, tries: int | None = 3,
               locked: bool = False, photo: bool = True, visit_id: str = "v1") -> None:
        self.send(ev.CardInserted(visit_id))
        self.send(ev.CardRead(cert, has_pin, tries, locked, photo))

    def choose(self, name: str) -> None:
        choices = list(self.screen.params["choices"])
        self.key(choices.index(name) + 1)

    def type_pin(self, n: int = 4) -> None:
        if not self.flow.visit.layout:
            self.send(ev.PinLayoutReady(tuple("1234567890"[:9]) + ("取消", "0", "クリア")))
        for _ in range(n):
            self.send(ev.PinDigit())

    def qualify(self, age: int = 45, registered: bool = True, previous=None, name: str = "マイナ タロウ") -> None:
        self.send(ev.HostQualification(self.flow.visit.visit_id, True, name, age, registered, previous))


@pytest.fixture
def d() -> Driver:
    return Driver()
