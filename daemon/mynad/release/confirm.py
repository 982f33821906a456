"""The daemon's side of a trial: confirm its own release once it has proved healthy.

READY alone is not enough: a release that reaches READY and then loses its card monitor or
its host link (the watchdog then restarts it) must still be rolled back. So the trial is
confirmed only after the daemon has been READY and continuously healthy for the trial's
``confirm_after_s`` (4 watchdog periods by default); each restart before that spent one try
in the boot check. A daemon not installed as a release (a development venv) does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from .layout import running_release
from .switch import confirm_trial, trial_of

log = logging.getLogger("mynad.release")


async def confirm_when_healthy(healthy: Callable[[], bool], *, prefix: str | None = None,
                               poll_s: float = 5.0, on_expired: Callable[[], object] = lambda: None,
                               clock: Callable[[], float] = time.time) -> bool:
    """Wait until ``healthy()`` has held for the trial's settle time, then confirm the trial of
    the release this process runs from. True when a trial was confirmed.

    Past the trial's deadline unconfirmed (up, but never healthy long enough: nothing would
    restart it, so the boot check would never get to roll it back), ``on_expired()`` is called:
    the daemon then exits non-zero and the next start rolls the release back."""
    found = running_release(prefix)
    if found is None:
        return False
    layout, version = found
    trial = await asyncio.to_thread(trial_of, layout)
    if trial is None or trial.version != version:
        return False
    log.info("release %s is on trial: confirmed after %.0f s of healthy running", version, trial.confirm_after_s)
    since: float | None = None
    while True:
        ok = False
        try:
            ok = bool(healthy())
        except Exception:
            ok = False
        now = time.monotonic()
        if not ok:
            since = None
        elif since is None:
            since = now
        if since is not None and now - since >= trial.confirm_after_s:
            try:
                done = await asyncio.to_thread(confirm_trial, layout, version)
            except OSError as e:  # e.g. update/ not writable by this user: said, never a crash
                log.error("release %s cannot confirm its trial (%s); it stays on trial and goes back to %s "
                          "when its starts or its time run out", version, e, trial.previous)
                return False
            if done:
                log.info("release %s confirmed: it started healthy and stays", version)
            return done
        if clock() > trial.deadline:
            log.error("release %s did not stay healthy for %.0f s before its trial ended; exiting so that it "
                      "is rolled back to %s", version, trial.confirm_after_s, trial.previous)
            on_expired()
            return False
        wait = poll_s if since is None else min(poll_s, trial.confirm_after_s - (now - since))
        await asyncio.sleep(max(0.05, wait))
