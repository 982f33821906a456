"""Which release runs: the ``current`` link, the trial of a new release, rollback, pruning.

A new release first runs *on trial*: ``state.json`` records it (with the release to go back
to, the starts it may still use and a deadline) BEFORE ``current`` is switched, so a power cut
between the two leaves a trial whose release is not current, which the boot check drops. The
daemon confirms its own trial once it has been READY and healthy for a while; until then every
start spends one try (bootcheck), and a trial out of tries or past its deadline is switched
back to the previous release and remembered as bad, never activated again by itself.

The state file lives in the site state (the daemon, user ``myna``, writes its confirmation
there), so it is read as untrusted: every version in it must be a plain dotted version of a
complete release in releases/, or it is ignored. Stdlib only (packed into myna-bootcheck).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from .atomic import fsync_dir, locked, replace_symlink, write_json
from .layout import VERSION_RE, Layout, version_tuple

TRIAL_TRIES = 3              # starts the new release gets before it is rolled back
TRIAL_WINDOW_S = 30 * 60     # not confirmed by then: rolled back at the next start
CONFIRM_AFTER_S = 120.0      # READY and healthy this long (4 watchdog periods) = confirmed


class SwitchError(Exception):
    """A release switch that cannot be done; str() is one plain sentence, nothing was changed."""


@dataclass(frozen=True)
class Trial:
    version: str
    previous: str
    tries_left: int
    deadline: float           # wall clock (the Pi has no RTC: see docs/update.md)
    started: float
    confirm_after_s: float = CONFIRM_AFTER_S


@dataclass(frozen=True)
class UpdateState:
    previous: str | None = None           # where `mynactl rollback` goes
    trial: Trial | None = None
    bad: tuple[str, ...] = ()             # rolled back: never activated again without --force
    last_event: str = ""                  # one sentence: what the last switch did and why

    def to_json(self) -> dict[str, Any]:
        return {"format": 1, "previous": self.previous, "trial": asdict(self.trial) if self.trial else None,
                "bad": list(self.bad), "last_event": self.last_event}

    @classmethod
    def from_json(cls, d: Any) -> "UpdateState":
        """Whatever is malformed is dropped, never trusted (the daemon's user can write this)."""
        if not isinstance(d, dict):
            return cls()

        def ver(v: Any) -> str | None:
            return v if isinstance(v, str) and VERSION_RE.match(v) else None

        trial = None
        t = d.get("trial")
        if isinstance(t, dict) and ver(t.get("version")) and ver(t.get("previous")):
            try:
                trial = Trial(version=t["version"], previous=t["previous"], tries_left=int(t["tries_left"]),
                              deadline=float(t["deadline"]), started=float(t.get("started", 0.0)),
                              confirm_after_s=float(t.get("confirm_after_s", CONFIRM_AFTER_S)))
            except (KeyError, TypeError, ValueError):
                trial = None
        bad = tuple(v for v in d.get("bad", []) if ver(v)) if isinstance(d.get("bad"), list) else ()
        last = d.get("last_event")
        return cls(previous=ver(d.get("previous")), trial=trial, bad=bad,
                   last_event=last[:500] if isinstance(last, str) else "")


def load_state(layout: Layout) -> UpdateState:
    try:
        return UpdateState.from_json(json.loads(layout.state_file.read_bytes()))
    except FileNotFoundError:
        return UpdateState()
    except (OSError, ValueError):
        return UpdateState()  # unreadable: no trial is better than a crash at every boot


def save_state(layout: Layout, state: UpdateState) -> None:
    write_json(layout.state_file, state.to_json())


def ensure_update_dir(layout: Layout) -> None:
    layout.update_dir.mkdir(parents=True, exist_ok=True)


# ------------------------------------------------------------------ pure decisions


@dataclass(frozen=True)
class BootDecision:
    action: str                 # "none" | "count" | "drop" | "rollback"
    state: UpdateState          # the state to write (unchanged for "none")
    message: str = ""           # one sentence for the journal ("" = say nothing)
    rollback_to: str | None = None


def decide_at_start(state: UpdateState, current: str | None, now: float,
                    complete: frozenset[str]) -> BootDecision:
    """What a start of mynad does to the trial; pure, so every branch is tested directly."""
    t = state.trial
    if t is None:
        return BootDecision("none", state)
    if t.version != current:
        # current is not the release on trial: a power cut before the switch, or a manual
        # switch since. The trial is over without a verdict.
        return BootDecision("drop", replace(state, trial=None),
                            f"release {t.version} is not the current release ({current}); its trial is dropped.")
    if t.previous not in complete:
        return BootDecision("drop", replace(state, trial=None),
                            f"release {t.version} stays: the release to go back to ({t.previous}) is not "
                            "installed any more.")
    why = None
    if now > t.deadline:
        why = f"it did not confirm a healthy start within {int((t.deadline - t.started) // 60)} minutes"
    elif t.tries_left <= 0:
        why = "it did not start healthy in the starts it was given"
    if why is not None:
        msg = f"release {t.version} was rolled back to {t.previous} because {why}."
        bad = state.bad if t.version in state.bad else state.bad + (t.version,)
        return BootDecision("rollback", UpdateState(previous=None, trial=None, bad=bad, last_event=msg),
                            msg, rollback_to=t.previous)
    return BootDecision("count", replace(state, trial=replace(t, tries_left=t.tries_left - 1)),
                        f"release {t.version} is on trial: {t.tries_left - 1} start(s) left after this one "
                        f"before it goes back to {t.previous}.")


# ------------------------------------------------------------------ actions on the tree


def point_current(layout: Layout, version: str) -> None:
    """Switch ``current`` to a complete release (relative link, atomic rename)."""
    if not layout.is_complete(version):
        raise SwitchError(f"release {version} is not completely installed; current was not changed.")
    replace_symlink(layout.current, f"releases/{version}")


def activate(layout: Layout, version: str, *, trial: bool = True, tries: int = TRIAL_TRIES,
             window_s: float = TRIAL_WINDOW_S, confirm_after_s: float = CONFIRM_AFTER_S,
             now: float | None = None) -> UpdateState:
    """Make ``version`` current; on trial when there is a release to go back to."""
    now = time.time() if now is None else now
    ensure_update_dir(layout)
    with locked(layout.update_dir):
        state = load_state(layout)
        prev = layout.current_version()
        if prev == version:
            raise SwitchError(f"release {version} is already the current release; nothing was changed.")
        if state.trial is not None and state.trial.version == prev and layout.is_complete(state.trial.previous):
            # current itself is still unproven: go back to the last release that proved healthy
            prev = state.trial.previous
        if prev is not None and not layout.is_complete(prev):
            prev = None
        new_trial = Trial(version, prev, tries, now + window_s, now, confirm_after_s) \
            if trial and prev is not None else None
        new = UpdateState(previous=prev, trial=new_trial, bad=tuple(b for b in state.bad if b != version),
                          last_event=f"release {version} activated" + (f" on trial (previous {prev})."
                                                                      if new_trial else "."))
        save_state(layout, new)        # the trial is on disk before current moves
        point_current(layout, version)
        return new


def rollback(layout: Layout, *, now: float | None = None) -> tuple[str, str]:
    """`mynactl rollback`: back to the previous release by hand. The release left is not marked
    bad (the technician chose it) and becomes the one a second rollback returns to."""
    ensure_update_dir(layout)
    with locked(layout.update_dir):
        state = load_state(layout)
        cur = layout.current_version()
        to = state.previous
        if to is None or to == cur or not layout.is_complete(to):
            raise SwitchError("there is no previous release to go back to; nothing was changed.")
        if cur is None:
            raise SwitchError("no release is installed; nothing was changed.")
        msg = f"release {cur} was rolled back by hand to {to}."
        save_state(layout, UpdateState(previous=cur, trial=None, bad=state.bad, last_event=msg))
        point_current(layout, to)
        return cur, to


def confirm_trial(layout: Layout, version: str) -> bool:
    """The daemon of ``version`` started healthy: end its trial (True when there was one).
    A process of any other release cannot confirm it."""
    if not layout.state_file.exists():
        return False
    with locked(layout.update_dir):
        state = load_state(layout)
        if state.trial is None or state.trial.version != version or layout.current_version() != version:
            return False
        save_state(layout, replace(state, trial=None,
                                   last_event=f"release {version} confirmed: it started healthy."))
        return True


def trial_of(layout: Layout) -> Trial | None:
    return load_state(layout).trial


def at_start(layout: Layout, now: float | None = None, *, unit_failed: bool = False) -> BootDecision:
    """The boot check: apply decide_at_start to the tree (the link first, then the state).

    ``unit_failed``: systemd gave up on mynad (start limit hit, or an exit status it does not
    restart, such as 78 for a config the new release refuses): a release on trial is rolled
    back at once, whatever tries it had left."""
    now = time.time() if now is None else now
    if not layout.update_dir.is_dir():
        return BootDecision("none", UpdateState())
    with locked(layout.update_dir):
        state = load_state(layout)
        if unit_failed and state.trial is not None:
            state = replace(state, trial=replace(state.trial, tries_left=0))
        d = decide_at_start(state, layout.current_version(), now, frozenset(layout.installed()))
        if d.action == "none":
            return d
        if d.action == "rollback":
            assert d.rollback_to is not None
            # link first: if the power goes now, the trial (still on disk) points at a release
            # that is not current and the next start drops it: the old release runs either way
            point_current(layout, d.rollback_to)
        save_state(layout, d.state)
        return d


def prune(layout: Layout) -> list[str]:
    """Remove releases nobody can go back to (keep current, previous and the trial's previous)
    and anything half-installed; returns what was removed."""
    state = load_state(layout)
    keep = {layout.current_version(), state.previous}
    if state.trial is not None:
        keep |= {state.trial.version, state.trial.previous}
    removed: list[str] = []
    if not layout.releases.is_dir():
        return removed
    for p in sorted(layout.releases.iterdir()):
        if p.name in keep:
            continue
        if VERSION_RE.match(p.name) and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
    if removed:
        fsync_dir(layout.releases)
    return removed


def versions_report(layout: Layout) -> dict[str, Any]:
    """What `mynactl versions` shows."""
    state = load_state(layout)
    installed = layout.installed()
    return {
        "root": str(layout.root),
        "current": layout.current_version(),
        "previous": state.previous,
        "installed": installed,
        "trial": asdict(state.trial) if state.trial else None,
        "bad": list(state.bad),
        "last_event": state.last_event,
    }

