"""The soak's schedule: which visits, which faults, at which moments, from one seed.

Pure: no clock, no I/O, no global random state. The same ``(visits, seed, options)``
gives the same plan on every machine, so a failing soak is re-run with its seed and
meets the same faults at the same steps (the daemon's own timing still varies: a
fault "at the done screen plus 0.3 s" lands where that moment falls in that run).

A fault is always a real action on the outside of the daemon (a signal, a pulled
cable, a deaf host, a full disk ...), never a hook inside it; the runner carries it
out when the visit reaches ``at`` (a screen id, or ``card_placed``) plus ``delay_s``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

# What the soak can do to the reader, in the order the summary lists them.
FAULT_KINDS: tuple[str, ...] = (
    "kill9",            # SIGKILL to mynad; the supervisor (systemd's part) restarts it
    "watchdog_stop",    # SIGSTOP longer than WatchdogSec; the supervisor's watchdog kills and restarts it
    "host_deaf",        # the clinic host ignores everything (no ACK, no answer) for a while
    "line_drop",        # the host closes its end of the serial line for a while
    "serial_unplug",    # the serial cable is gone: the pty pair disappears and comes back
    "garbage",          # random bytes on the line from the host side
    "corrupt",          # the host's next frames get a flipped byte
    "card_pull",        # the card leaves the field at a chosen APDU (no answer to it)
    "pcscd_restart",    # pcscd is stopped and started again (the virtual reader goes and comes back)
    "disk_full",        # the daemon's state filesystem is filled with a ballast file, then freed
)
MQTT_FAULT_KINDS: tuple[str, ...] = (
    "broker_term",      # the clinic's MQTT broker stops cleanly (SIGTERM) for a while, then comes back
    "broker_kill",      # the broker crashes (SIGKILL: no last will, nothing retained) and comes back
)
# Faults that only exist on a serial line (over MQTT there is no tty to unplug or to spray).
SERIAL_ONLY_FAULTS: tuple[str, ...] = ("serial_unplug", "garbage")


def fault_kinds_for(transport: str) -> tuple[str, ...]:
    """Every fault the soak can do to a reader on this host transport ("serial" or "mqtt")."""
    if transport == "serial":
        return FAULT_KINDS
    if transport == "mqtt":
        return tuple(k for k in FAULT_KINDS if k not in SERIAL_ONLY_FAULTS) + MQTT_FAULT_KINDS
    raise ValueError(f"unknown host transport {transport!r}: serial or mqtt")

# Moments a fault can be tied to: screens as the daemon names them, card placement, and two
# moments read from the daemon's log: ``opened`` (it sends visit.started: the visit is open at
# the host from now on) and ``decided`` (it sends visit.result: the result is owed from now on).
LOG_MOMENTS: dict[str, str] = {"opened": "to host: visit.started", "decided": "to host: visit.result"}
PIN_MOMENTS = ("card_placed", "method_choice", "opened", "pin_entry", "verifying", "consent", "decided", "done",
               "remove_card")
FACE_MOMENTS = ("card_placed", "method_choice", "opened", "face_guide", "verifying", "consent", "decided", "done",
                "remove_card")
# Where a patient can give up: take the card back, or press 取消 (key 10) on the screen.
PULL_MOMENTS = ("method_choice", "pin_entry", "verifying", "consent", "done")
CANCEL_MOMENTS = ("method_choice", "pin_entry", "consent")
# Card APDUs of one visit (PIN: 29 in the simulator; a face visit reads more): a pull is
# chosen among the first APDU_SPAN so it can hit every step, from SELECT to VERIFY.
APDU_SPAN = 32

# Durations drawn per fault (seconds): long enough to matter, short enough for CI.
DURATIONS: dict[str, tuple[float, float]] = {
    "host_deaf": (1.0, 8.0),
    "line_drop": (0.5, 4.0),
    "serial_unplug": (0.5, 3.0),
    "disk_full": (1.0, 8.0),
    "broker_term": (0.5, 5.0),
    "broker_kill": (0.5, 5.0),
}


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    at: str                 # a moment from PIN_MOMENTS / FACE_MOMENTS
    delay_s: float          # after the moment is seen
    duration_s: float = 0.0  # host_deaf, line_drop, serial_unplug, disk_full
    apdu: int = 0           # card_pull: the n-th command APDU of the insertion (1-based)
    nbytes: int = 0         # garbage: how many random bytes; corrupt: how many frames

    def describe(self) -> str:
        if self.kind == "card_pull":
            return f"card_pull at APDU {self.apdu}"
        what = [self.kind]
        if self.duration_s:
            what.append(f"for {self.duration_s:.1f}s")
        if self.kind == "garbage":
            what.append(f"{self.nbytes} bytes")
        if self.kind == "corrupt":
            what.append(f"{self.nbytes} frames")
        return " ".join(what) + f" at {self.at}+{self.delay_s:.3f}s"


@dataclass(frozen=True)
class VisitPlan:
    index: int              # 1-based, as printed in the summary
    kind: str               # "pin" or "face" (what the patient chooses; face falls back to PIN when refused)
    profile: str            # card profile key
    ending: str             # "complete", "pull" (card taken back at end_at) or "cancel" (取消 at end_at)
    end_at: str = ""
    faults: tuple[FaultSpec, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class PlanOptions:
    face_share: float = 0.15     # share of face visits
    fault_share: float = 0.35    # share of visits with a fault
    pull_share: float = 0.08     # share of visits the patient ends by taking the card back
    cancel_share: float = 0.05   # share of visits the patient cancels
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    min_face: int = 0            # at least this many face visits (CI: a handful)
    every_fault: bool = True     # each kind at least once when there are enough visits


def _fault(kind: str, visit_kind: str, rng: random.Random) -> FaultSpec:
    moments = FACE_MOMENTS if visit_kind == "face" else PIN_MOMENTS
    at = rng.choice(moments)
    # half the faults strike at the moment itself, the others up to a second later
    delay = 0.0 if rng.random() < 0.5 else round(rng.uniform(0.0, 1.0), 2)
    lo, hi = DURATIONS.get(kind, (0.0, 0.0))
    duration = round(rng.uniform(lo, hi), 1) if hi else 0.0
    if kind == "card_pull":
        return FaultSpec(kind, "card_placed", 0.0, apdu=rng.randint(1, APDU_SPAN))
    if kind == "garbage":
        return FaultSpec(kind, at, delay, nbytes=rng.randint(1, 300))
    if kind == "corrupt":
        return FaultSpec(kind, at, delay, nbytes=rng.randint(1, 4))
    return FaultSpec(kind, at, delay, duration_s=duration)


def make_plan(visits: int, seed: int, profiles: list[str], options: PlanOptions | None = None) -> list[VisitPlan]:
    """``visits`` visits drawn from ``seed``; ``profiles`` are the card profile keys to rotate through."""
    if visits < 0:
        raise ValueError("the number of visits cannot be negative")
    if not profiles:
        raise ValueError("the soak needs at least one card profile")
    o = options or PlanOptions()
    unknown = set(o.fault_kinds) - set(FAULT_KINDS + MQTT_FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kind(s): {', '.join(sorted(unknown))}")
    rng = random.Random(seed)
    kinds = ["face" if rng.random() < o.face_share else "pin" for _ in range(visits)]
    for i in rng.sample(range(visits), min(visits, o.min_face)):
        kinds[i] = "face"
    faulty: dict[int, list[str]] = {}
    if o.every_fault and o.fault_kinds:
        order = list(o.fault_kinds)
        rng.shuffle(order)
        slots = rng.sample(range(visits), min(visits, len(order))) if visits else []
        for i, kind in zip(slots, order):
            faulty.setdefault(i, []).append(kind)
    if o.fault_kinds:
        for i in range(visits):
            if i not in faulty and rng.random() < o.fault_share:
                faulty[i] = [rng.choice(o.fault_kinds)]
    plan = []
    for i in range(visits):
        r = rng.random()
        if r < o.pull_share:
            ending, end_at = "pull", rng.choice(PULL_MOMENTS)
        elif r < o.pull_share + o.cancel_share:
            ending, end_at = "cancel", rng.choice(CANCEL_MOMENTS)
        else:
            ending, end_at = "complete", ""
        if kinds[i] == "face" and end_at == "pin_entry":
            end_at = "consent"
        faults = tuple(_fault(k, kinds[i], rng) for k in faulty.get(i, []))
        plan.append(VisitPlan(i + 1, kinds[i], profiles[i % len(profiles)], ending, end_at, faults))
    return plan


def directed_plan(plan: list[VisitPlan], kind: str, at: str, *, step_s: float = 0.0,
                  duration_s: float = 3.0, apdu: int = 1) -> list[VisitPlan]:
    """Every visit completes and gets the same fault at the same moment, visit n at delay
    (n-1)*step_s: a sweep across a narrow window (e.g. kill9 at ``decided`` with 6 ms steps
    finds the few milliseconds between the result being stored and the visit being closed)."""
    if kind not in FAULT_KINDS + MQTT_FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}")
    moments = set(PIN_MOMENTS) | set(FACE_MOMENTS)
    if at not in moments:
        raise ValueError(f"unknown moment {at!r}; one of {', '.join(sorted(moments))}")
    out = []
    for v in plan:
        f = FaultSpec(kind, "card_placed" if kind == "card_pull" else at, round(step_s * (v.index - 1), 4),
                      duration_s=duration_s if kind in DURATIONS else 0.0, apdu=apdu,
                      nbytes=64 if kind in ("garbage", "corrupt") else 0)
        out.append(VisitPlan(v.index, v.kind, v.profile, "complete", "", (f,)))
    return out


def plan_counts(plan: list[VisitPlan]) -> dict[str, Any]:
    """How many visits of each kind/ending and faults of each kind the plan holds."""
    by_kind: dict[str, int] = {}
    by_ending: dict[str, int] = {}
    faults: dict[str, int] = {}
    for v in plan:
        by_kind[v.kind] = by_kind.get(v.kind, 0) + 1
        by_ending[v.ending] = by_ending.get(v.ending, 0) + 1
        for f in v.faults:
            faults[f.kind] = faults.get(f.kind, 0) + 1
    return {"kinds": by_kind, "endings": by_ending, "faults": faults}


# ---------------------------------------------------------------- card profiles with searchable PINs

def unusual_pins(n: int, rng: random.Random) -> list[str]:
    """``n`` distinct 4-digit PINs that no timestamp, year or date can spell as a whole token:
    the first and third digits are 6-9 (so neither half is an hour, minute, second, month or
    day, and the whole is no year 19xx/20xx), and the four digits differ. A PIN found in a
    log as a token bounded by non-alphanumerics is then a leak, not a clock reading."""
    pins: list[str] = []
    while len(pins) < n:
        d = [rng.randint(6, 9), rng.randint(0, 9), rng.randint(6, 9), rng.randint(0, 9)]
        s = "".join(map(str, d))
        if len(set(s)) == 4 and s not in pins:
            pins.append(s)
    return pins


def soak_profiles(base: dict[str, dict[str, Any]], names: list[str], copies: int, seed: int) -> dict[str, dict[str, Any]]:
    """Card profiles for the soak: ``copies`` cards per base profile (own key, so own serial and
    certificate), each with an unusual PIN and security code (see ``unusual_pins``)."""
    rng = random.Random(seed ^ 0x5EC2E7)
    out: dict[str, dict[str, Any]] = {}
    secrets = unusual_pins(2 * len(names) * copies, rng)
    for i, name in enumerate(names):
        for c in range(copies):
            key = f"soak_{name}_{c + 1}"
            j = 2 * (i * copies + c)
            out[key] = {**base[name], "pin": secrets[j], "security_code": secrets[j + 1], "pin_tries": 3}
    return out
