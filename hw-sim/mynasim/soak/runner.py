"""The soak's hands: drive the planned visits through the real daemon and do the faults.

``SoakRunner`` builds a :class:`SimRig` (real pcscd + vpcd card, pty serial line to the
virtual host, sim bus for keypad and cameras) whose daemon runs under
:class:`mynasim.supervisor.Supervisor` (systemd's watchdog and restart), with the
daemon's state directory on a small filesystem of its own (:mod:`statefs`). Each
visit is played by a patient who reacts to the screen the way a person at the counter
would: chooses 暗証番号 or 顔認証, types the PIN on the shuffled pad, agrees, takes the
card; gives up (takes the card) on an error screen or when nothing happens. Planned
faults fire when the visit reaches their moment, in their own thread, so the patient
goes on meanwhile. After every visit the reader must be back on the idle screen.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mynasim.card.faults import FaultPlan
from mynasim.card.profiles import PROFILES_TOML, load_profiles
from mynasim.rig import SimRig, write_toml
from mynasim.soak import audit as auditing
from mynasim.soak.plan import (LOG_MOMENTS, MQTT_FAULT_KINDS, SERIAL_ONLY_FAULTS, PlanOptions, VisitPlan, make_plan,
                                plan_counts, soak_profiles)
from mynasim.soak.statefs import StateFilesystem, StateFsError
from mynasim.supervisor import Supervisor
from mynasim.timeline import Entry

# Screens the patient only waits through.
WAIT_SCREENS = {"reading", "verifying", "face_guide", "face_checking", "host_wait", "saving", "done"}
# Screens after which the patient takes the card back (the visit is over for them).
GIVE_UP_SCREENS = {"host_error", "card_error", "cancelled", "fault", "pin_locked", "pin_throttled",
                   "pin_backoff", "pin_last_try", "remove_card"}
# Timer overrides that keep the daemon's logic and shorten only the waiting (CI and the soak).
FAST_FLOW = {"done_s": 0.3, "notice_s": 0.5, "card_left_s": 10.0, "screen_timeout_s": 20.0,
             "host_timeout_s": 8.0, "pin_backoff_s": 0.5}
KEEP_SCREENS = 2000   # PNGs of the last ~130 visits
KEEP_PROMPTS = 300    # WAVs of the last ~30 visits
BASE_PROFILES = ("taro", "hanako")
PROFILES_FILE = "soak-profiles.toml"
DAEMON_DOWN_S = 180.0  # no daemon for this long: restarts keep failing, the soak stops
PIN_RETRY_S = 2.0  # dots still short of four this long after typing: the patient presses the rest   # the soak's cards (PINs chosen so a leak is searchable)  # both have a second photo for the live face


class SoakAborted(RuntimeError):
    """The soak cannot go on (the daemon does not come back); the message says why."""


@dataclass
class VisitOutcome:
    index: int
    kind: str
    ending: str = "complete"    # as planned: complete, pull (card taken back early), cancel (取消)
    method: str = ""            # what was really used (a refused face falls back to PIN)
    screens: list[str] = field(default_factory=list)
    done: bool = False
    stuck: bool = False
    seconds: float = 0.0


@dataclass
class SoakResult:
    report: auditing.AuditReport
    outcomes: list[VisitOutcome]
    faults: dict[str, dict[str, int]]   # kind -> {"planned", "done", "skipped"}
    seconds: float
    state_fs: str
    run_dir: Path
    notes: list[str]
    supervisor: dict[str, int]


# Timeline entries the soak keeps in memory (~150 per visit: the last ~130 visits). The audit
# streams timeline.jsonl, so a 10,000-visit run needs no more memory than a 100-visit one.
TIMELINE_KEEP = 20_000


class SoakRunner:
    def __init__(self, out: Path, visits: int, seed: int, *, options: PlanOptions | None = None,
                 fast: bool = True, echo: bool = False, progress: bool = True, watchdog_s: float = 4.0,
                 state_fs_mb: int = 16, overrides: dict[str, dict] | None = None,
                 on_visit: Callable[[VisitOutcome, dict[str, int]], None] | None = None,
                 transport: str = "serial") -> None:
        self.out = Path(out)
        self.transport = transport  # the host link: a pty pair, or a private broker the soak restarts
        self.seed = seed
        self.options = options or PlanOptions()
        self.fast = fast
        self.echo = echo
        self.progress = progress
        self.watchdog_s = watchdog_s
        self.state_fs_mb = state_fs_mb
        self.extra_overrides = overrides or {}
        self.on_visit = on_visit
        base = tomllib.loads(PROFILES_TOML.read_text(encoding="utf-8"))
        self.profile_data = soak_profiles(base, list(BASE_PROFILES), copies=2, seed=seed)
        self.plan = make_plan(visits, seed, sorted(self.profile_data), self.options)
        self.fault_counts: dict[str, dict[str, int]] = {}
        for kind, n in plan_counts(self.plan)["faults"].items():
            self.fault_counts[kind] = {"planned": n, "done": 0, "skipped": 0}
        self.notes: list[str] = []
        self._fault_threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.rig: SimRig | None = None
        self.sup: Supervisor | None = None
        self.statefs: StateFilesystem | None = None
        self.tally = auditing.ResultTally()   # fed as the run goes: progress figures, idle check
        self._cursor = 0
        self._ids_by_visit: dict[int, list[str]] = {}
        self.profiles: dict[str, Any] = {}

    # ------------------------------------------------------------ the run

    def _overrides(self) -> dict[str, dict]:
        ov: dict[str, dict] = {"flow": dict(FAST_FLOW)} if self.fast else {}
        # the sim screen and speaker keep only their newest files (spoken WAVs: ~4 MB a visit)
        ov["display"] = {"keep_files": KEEP_SCREENS}
        ov["voice"] = {"keep_files": KEEP_PROMPTS}
        for section, values in self.extra_overrides.items():
            ov.setdefault(section, {}).update(values)
        return ov

    def run(self) -> SoakResult:
        t0 = time.monotonic()
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        profiles_file = self.out / PROFILES_FILE
        if os.path.ismount(self.out / "state"):  # left by a soak that was killed: SimRig empties the folder
            subprocess.run(["umount", "-l", str(self.out / "state")], check=False)
        rig = SimRig(self.out, overrides=self._overrides(), echo=self.echo, profiles_file=profiles_file,
                     transport=self.transport, timeline_keep=TIMELINE_KEEP)
        write_toml(self.profile_data, profiles_file)  # after SimRig(): it empties the run folder
        log_handler = self._log_to_file()
        self.profiles = load_profiles(profiles_file)
        self.rig = rig
        self.statefs = StateFilesystem(self.out / "state", self.out / "state.img", self.state_fs_mb)
        outcomes: list[VisitOutcome] = []
        try:
            try:
                state_fs = self.statefs.mount()
            except StateFsError as e:
                self.statefs = None
                state_fs = f"none ({e}); disk_full faults skipped"
            rig.start(daemon=False)
            self.sup = Supervisor(rig, watchdog_s=self.watchdog_s).start()
            bar = _progress(len(self.plan), self.progress)
            try:
                for v in self.plan:
                    o = self._visit(v)
                    outcomes.append(o)
                    counts = self._live_counts()
                    bar.update(counts)
                    if self.on_visit:
                        self.on_visit(o, counts)
            finally:
                bar.close()
            self._drain()
            # the WAL as the running daemon left it (a clean stop checkpoints and deletes it)
            _copy_files(self.out / "state", self.out / "state-live")
            code = self.sup.stop()
            if code not in (0, None):
                self.notes.append(f"the daemon's final stop (SIGTERM) ended with exit code {code}")
        finally:
            if self.sup is not None and self.sup.running():
                self.sup.stop()
            rig.close()
            logging.getLogger("mynasim").removeHandler(log_handler)
            log_handler.close()
            if self.statefs is not None:
                self.statefs.copy_out(self.out / "state-copy")
                self.statefs.unmount()
        report = self.audit()
        sup = _count_by(e.kind for e in (self.sup.events if self.sup else []))
        return SoakResult(report, outcomes, self.fault_counts, time.monotonic() - t0, state_fs, self.out,
                          self.notes, sup)

    def _log_to_file(self) -> logging.Handler:
        """The simulator's own warnings (virtual host: line gone, ...) go to the run folder, not
        through the progress bar; faults make many of them, on purpose."""
        handler = logging.FileHandler(self.out / "mynasim.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        logger = logging.getLogger("mynasim")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        return handler

    def audit(self) -> auditing.AuditReport:
        records = auditing.load_records(self.out / "timeline.jsonl")
        return auditing.audit(records, self.blobs(), self.secrets())

    def secrets(self) -> dict[str, dict[str, str]]:
        profiles = self.profiles or load_profiles(self.out / PROFILES_FILE)
        return {"PIN": {k: p.pin or "" for k, p in profiles.items()},
                "照合番号B": {k: p.code_b() for k, p in profiles.items()}}

    def blobs(self) -> dict[str, bytes]:
        """Files a secret must never reach: the daemon's log, its state files (outbox SQLite,
        WAL, open-visit record), pcscd's log and the host's saved state."""
        out: dict[str, bytes] = {}
        paths = [self.out / "mynad.log", self.out / "pcscd.log"]
        for folder in (self.out / "state-live", self.out / "state-copy", self.out / "host-state"):
            if folder.is_dir():
                paths += sorted(p for p in folder.iterdir() if p.is_file())
        for p in paths:
            if p.exists():
                out[str(p.relative_to(self.out))] = p.read_bytes()
        return out

    def _pump(self) -> None:
        """Feed the timeline entries added since the last call to the tally (O(new entries))."""
        assert self.rig is not None
        new, self._cursor = _read_since(self.rig, self._cursor)
        for e in new:
            r = {"t": e.t, "source": e.source, "kind": e.kind, **e.data}
            self.tally.feed(r)
            if e.source == "daemon" and self.tally.soak_visit is not None:
                m = auditing.PLACED.search(str(e.data.get("line", "")))
                if m:
                    ids = self._ids_by_visit.setdefault(self.tally.soak_visit, [])
                    if m.group(1) not in ids:
                        ids.append(m.group(1))

    def _live_counts(self) -> dict[str, int]:
        """What the progress bar shows while visits go on. A result still on its way (queued in the
        outbox, the link down by a fault) is *awaited*, not lost: only the audit after the drain
        at the end can call a result lost."""
        self._pump()
        awaited, open_ = self.tally.missing()
        return {"owed": len(self.tally.report.owed), "awaited": awaited, "open": open_,
                "stuck": len(self.tally.report.stuck), "faults": sum(c["done"] for c in self.fault_counts.values())}

    def _drain(self, timeout: float = 90.0) -> None:
        """Give the reader time to deliver what it owes (its link retries with backoff)."""
        assert self.rig is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._pump()
            if self.tally.missing() == (0, 0):
                return
            time.sleep(1.0)
        self.notes.append(f"after {timeout:.0f} s of draining, results or visit ends were still missing at the host")

    # ------------------------------------------------------------ one visit

    def _visit(self, v: VisitPlan) -> VisitOutcome:
        rig, sup = self.rig, self.sup
        assert rig is not None and sup is not None
        t0 = time.monotonic()
        o = VisitOutcome(v.index, v.kind, v.ending)
        if not sup.wait_running(DAEMON_DOWN_S):
            failed = [e.detail.get("error") for e in sup.events if e.kind == "restart_failed"]
            raise SoakAborted(f"mynad has not been running for {DAEMON_DOWN_S:.0f} s before soak visit {v.index} "
                              f"(restarts keep failing{': ' + str(failed[-1]) if failed else ''}); "
                              f"see {self.out / 'mynad.log'}")
        begin = rig.mark()
        rig.timeline.add("soak", "visit_begin", index=v.index, visit_kind=v.kind, profile=v.profile, ending=v.ending,
                         end_at=v.end_at, faults=[f.describe() for f in v.faults])
        pending = list(v.faults)
        pending_lock = threading.Lock()
        visit_over = threading.Event()
        pull = next((f for f in pending if f.kind == "card_pull"), None)

        def moment(name: str | None) -> None:
            """Fire the faults planned for this moment (None: all that are left)."""
            with pending_lock:
                due = [f for f in pending if name is None or f.at == name]
                for f in due:
                    pending.remove(f)
            for f in due:
                self._fire(v, f)

        for name, text in LOG_MOMENTS.items():
            if any(f.at == name for f in pending):
                threading.Thread(target=self._watch_log, args=(begin, text, lambda n=name: moment(n), visit_over),
                                 name=f"moment-{name}", daemon=True).start()

        if v.kind == "face":
            rig.show_face(_live_photo(rig, v.profile), behaviour="live", seed=self.seed * 100003 + v.index)
        rig.place_card(v.profile, faults=FaultPlan(pull_at_apdu=pull.apdu) if pull else None)
        moment("card_placed")
        seen = rig.mark()
        typed_at: float | None = None   # when the patient last pressed PIN digits
        cancelled = False
        patience = 30.0
        while True:
            e, seen = _next_frame(rig, seen, patience)
            if e is None:
                break
            screen = str(e.data.get("screen"))
            o.screens.append(screen)
            moment(screen)
            params = e.data.get("params") or {}
            if screen == "done":
                o.done = True
            if v.ending == "pull" and screen == v.end_at:
                break
            if v.ending == "cancel" and screen == v.end_at and not cancelled:
                cancelled = True
                rig.press(10)
                continue
            if screen == "idle":
                if o.screens[:-1]:
                    break  # the reader went back to idle (restarted, or the card was lost): take the card
                continue
            if screen in GIVE_UP_SCREENS:
                break
            if screen in WAIT_SCREENS:
                continue
            if screen == "method_choice":
                choices = list(params.get("choices") or [])
                want = v.kind if v.kind in choices else "pin"
                if want not in choices:
                    break
                o.method = want
                typed_at = None
                rig.press(choices.index(want) + 1)
            elif screen == "face_failed":
                choices = list(params.get("choices") or [])
                if "pin" not in choices:
                    break
                o.method = "pin"
                rig.press(choices.index("pin") + 1)
            elif screen == "pin_entry":
                # Type the PIN; if the dots show a digit missing a while later (a press the reader
                # did not see), press the missing ones, as a person looking at the dots would.
                entered = int(params.get("entered") or 0)
                if typed_at is None or (entered < 4 and time.monotonic() - typed_at > PIN_RETRY_S):
                    layout = list(params.get("layout") or [])
                    if not layout:
                        break
                    typed_at = time.monotonic()
                    for d in self.profile_data[v.profile]["pin"][entered:]:
                        rig.press(layout.index(d) + 1)
            elif screen in ("consent", "consent_carryover", "registration_offer", "registration_done",
                            "cert_expiring", "cert_grace"):
                rig.press(12)
        rig.remove_card()
        if v.kind == "face":
            rig.show_face(None, behaviour="none")
        visit_over.set()
        moment(None)  # the moment never came in this visit: do it now
        self._join_faults()
        o.stuck, last = self._back_to_idle(begin)
        o.seconds = time.monotonic() - t0
        self._pump()
        ids = self._ids_by_visit.get(v.index, [])
        rig.timeline.add("soak", "visit_end", index=v.index, method=o.method, done=o.done, stuck=o.stuck,
                         last_screen=last, visit_ids=ids, seconds=round(o.seconds, 2), screens=o.screens[-12:])
        return o

    def _watch_log(self, after: int, text: str, fire: Callable[[], None], over: threading.Event) -> None:
        """Fire when the daemon logs ``text`` (a moment the screen does not show, e.g. the decision)."""
        assert self.rig is not None
        while not over.is_set():
            calls = [0]

            def pred(e: Entry) -> bool:
                calls[0] += 1
                return e.source == "daemon" and text in str(e.data.get("line", ""))

            try:
                self.rig.timeline.wait_for(pred, 0.5, after=after)
            except AssertionError:
                after += calls[0]
                continue
            fire()
            return

    def _back_to_idle(self, begin: int, timeout: float = 60.0) -> tuple[bool, str]:
        """The reader must show idle once the card is gone (after a restart it does so by itself).
        Returns (stuck, last screen); a stuck reader is restarted so the soak can go on."""
        assert self.rig is not None and self.sup is not None
        deadline = time.monotonic() + timeout
        last = "?"
        while time.monotonic() < deadline:
            if not self.sup.wait_running(max(0.1, deadline - time.monotonic())):
                break
            self._pump()
            last = str(self.tally.last_screen)
            if last == "idle":
                return False, last
            time.sleep(0.1)
        self.notes.append(f"the reader was stuck on {last}; restarted to go on")
        self.sup.send_signal(signal.SIGKILL, "soak: stuck reader")
        self.sup.wait_running(120)
        return True, last

    # ------------------------------------------------------------ faults

    def _fire(self, v: VisitPlan, f: Any) -> None:
        t = threading.Thread(target=self._do_fault, args=(v, f), name=f"fault-{f.kind}", daemon=True)
        self._fault_threads.append(t)
        t.start()

    def _join_faults(self) -> None:
        for t in self._fault_threads:
            t.join(120)
        self._fault_threads = []

    def _count(self, kind: str, what: str) -> None:
        with self._lock:
            self.fault_counts.setdefault(kind, {"planned": 0, "done": 0, "skipped": 0})[what] += 1

    def _do_fault(self, v: VisitPlan, f: Any) -> None:
        rig, sup = self.rig, self.sup
        assert rig is not None and sup is not None and rig.host is not None
        if f.delay_s:
            time.sleep(f.delay_s)
        rig.timeline.add("soak", "fault", index=v.index, fault=f.kind, detail=f.describe())
        done = True
        why = ""
        if f.kind == "kill9":
            done = sup.send_signal(signal.SIGKILL, "fault kill9") is not None
            why = "no daemon was running (being restarted)"
        elif f.kind == "watchdog_stop":
            done = sup.send_signal(signal.SIGSTOP, "fault watchdog_stop") is not None
            why = "no daemon was running (being restarted)"
        elif f.kind == "host_deaf":
            rig.host.go_deaf(f.duration_s)
            time.sleep(f.duration_s)
        elif f.kind == "line_drop":
            rig.host.drop_link(f.duration_s)
            time.sleep(f.duration_s)
        elif f.kind in SERIAL_ONLY_FAULTS and rig.transport != "serial":
            done, why = False, f"{f.kind} needs a serial host line; this run's host link is {rig.transport}"
        elif f.kind == "serial_unplug":
            rig.replug_serial(f.duration_s)
        elif f.kind == "garbage":
            done = _line_noise(rig.host.host_tty, random.Random(self.seed * 7919 + v.index).randbytes(f.nbytes))
            why = "the host's end of the line could not be opened"
        elif f.kind == "corrupt":
            rig.host.corrupt_next(f.nbytes)
        elif f.kind == "card_pull":
            pass  # armed at placement: the virtual card vanishes at that APDU
        elif f.kind == "pcscd_restart":
            if not rig.pcscd.restart(log_path=rig.run_dir / "pcscd.log"):
                done, why = False, "pcscd was not started by the simulator (a system pcscd is left alone)"
        elif f.kind == "disk_full":
            if self.statefs is None:
                done, why = False, "no small state filesystem"
            else:
                size = self.statefs.fill()
                rig.timeline.add("soak", "disk_full", index=v.index, ballast=size)
                time.sleep(f.duration_s)
                self.statefs.free()
                rig.timeline.add("soak", "disk_freed", index=v.index)
        elif f.kind in MQTT_FAULT_KINDS:
            if rig.broker is None:
                done, why = False, f"{f.kind} needs the MQTT host link (mynasim soak --transport mqtt)"
            else:
                rig.restart_broker(f.duration_s, kill=f.kind == "broker_kill")
        else:
            done, why = False, f"unknown fault kind {f.kind}"
        self._count(f.kind, "done" if done else "skipped")
        if not done:
            rig.timeline.add("soak", "fault_skipped", index=v.index, fault=f.kind, why=why)


# ---------------------------------------------------------------- helpers

def _count_by(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in items:
        out[k] = out.get(k, 0) + 1
    return out


def _copy_files(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        if p.is_file() and not p.name.startswith(".soak"):
            try:
                shutil.copy2(p, dest / p.name)
            except OSError:
                pass  # a file the daemon removed meanwhile


def _read_since(rig: SimRig, after: int) -> tuple[list[Entry], int]:
    """Timeline entries at index >= after, and the next index (O(new entries))."""
    return rig.timeline.since(after)


def _next_frame(rig: SimRig, after: int, timeout: float) -> tuple[Entry | None, int]:
    """The next display frame at index >= after, and the index after it; (None, after) on timeout."""
    try:
        return rig.timeline.wait_for_at(lambda e: e.source == "display" and e.kind == "frame", timeout,
                                        after=after, what="the next screen")
    except AssertionError:
        return None, max(after, rig.mark())


def _live_photo(rig: SimRig, profile: str) -> Path:
    card = rig.photo_of(profile)
    live = card.with_name(card.name.replace("__1.", "__2."))
    return live if live.exists() else card


def _line_noise(tty: str, data: bytes) -> bool:
    """Random bytes on the serial line from the host's side (a second writer on its pty)."""
    try:
        fd = os.open(tty, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        os.write(fd, data)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


class _progress:
    """tqdm on stderr when installed, else one line per visit."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.n = 0
        self.t0 = time.monotonic()
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="visit", file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                self.bar = None

    def update(self, counts: dict[str, int], n: int = 1) -> None:
        self.n += n
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix(counts, refresh=False)
            self.bar.update(n)
        else:
            rate = self.n / max(1e-9, time.monotonic() - self.t0) * 60
            print(f"\rsoak {self.n}/{self.total} visits, {rate:.1f}/min, "
                  + ", ".join(f"{k} {v}" for k, v in counts.items()), end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            print(file=sys.stderr)
