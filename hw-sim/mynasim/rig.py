"""The test rig: the real daemon, unchanged, wired to virtual hardware.

``SimRig`` starts pcscd (if needed), the sim bus, a pty pair with the virtual
clinic host on one end, the virtual card slot, and then ``mynad`` as a separate
process with a config pointing at all of them. The patient's hands are the
methods: ``place_card``, ``press``, ``type_pin``, ``show_face``, ``remove_card``.
Everything observable lands on one timeline.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

from mynasim.bus import SimBusServer
from mynasim.services import Pcscd
from mynasim.timeline import Entry, Timeline, TimelineTimeout

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent.parent
SIM_CONFIG = PACKAGE_DIR / "mynad-sim.toml"


def default_assets_dir() -> Path:
    env = os.environ.get("MYNA_ASSETS")
    return Path(env) if env else REPO_DIR / "assets"


def write_toml(data: dict[str, dict[str, Any]], path: Path) -> None:
    """Write a two-level TOML file (sections of scalars and lists): all our configs need."""

    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        s = str(v).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{s}"'

    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {val(v)}" for k, v in values.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


class SimRig:
    def __init__(self, run_dir: Path, *, assets_dir: Path | None = None, overrides: dict[str, dict] | None = None,
                 echo: bool = False, fresh: bool = True) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.assets_dir = Path(assets_dir or default_assets_dir()).resolve()
        self.overrides = overrides or {}
        self.echo = echo
        if fresh and self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.screens_dir = self.run_dir / "screens"
        self.timeline = Timeline(self.run_dir / "timeline.jsonl")
        self.daemon: subprocess.Popen | None = None
        self._log_thread: threading.Thread | None = None
        self.log_lines: list[str] = []
        self.pcscd = Pcscd()
        self.card_slot = None
        self.host = None
        self.bus: SimBusServer | None = None
        self._pty_close = None
        self.profile: str | None = None

    # ------------------------------------------------------------ setup

    def start(self, daemon: bool = True) -> "SimRig":
        from mynasim.card import VirtualCardSlot
        from mynasim.host import pty_pair

        try:
            self.pcscd.ensure(log_path=self.run_dir / "pcscd.log")
            self.bus = SimBusServer(self.run_dir / "bus.sock", self.timeline)
            reader_tty, host_tty, self._pty_close = pty_pair(self.run_dir)
            self.reader_tty = reader_tty
            self._start_host(host_tty)
            self.card_slot = VirtualCardSlot(port=35963, state_dir=self.run_dir / "card-state",
                                             assets_dir=self.assets_dir, on_apdu=self._on_apdu)
            self.config_path = self._write_config()
            if daemon:
                self.start_daemon()
        except BaseException:
            self.close()  # never leave pcscd, the host thread or a half-started daemon behind
            raise
        return self

    def _start_host(self, host_tty: str) -> None:
        from mynasim.card import TestPKI, load_profiles
        from mynasim.host import VirtualHost

        self.pki = TestPKI(self.run_dir / "card-state")
        self.profiles = load_profiles()

        def lookup(serial: int) -> dict[str, Any] | None:
            name = self.pki.profile_for_serial(serial)
            return self.profiles[name].as_patient() if name in self.profiles else None

        self.host = VirtualHost(host_tty, lookup_patient=lookup, ca_certificate=self.pki.ca_certificate,
                                on_event=self._on_host_event,
                                state_dir=self.run_dir / "host-state")
        self.host.start()

    def _on_host_event(self, what: str, msg: dict[str, Any]) -> None:
        """Host traffic onto the timeline; message fields go under ``data`` keys that cannot
        collide with the timeline's own ``source``/``kind``."""
        self.timeline.add("host", what, **{("msg_" + k if k in ("source", "kind") else k): v for k, v in msg.items()})

    def _write_config(self) -> Path:
        cfg = tomllib.loads(SIM_CONFIG.read_text(encoding="utf-8"))
        cfg["reader"]["state_dir"] = str(self.run_dir / "state")
        cfg["reader"]["runtime_dir"] = str(self.run_dir / "run")
        cfg["display"]["out_dir"] = str(self.screens_dir)
        cfg["face"]["models_dir"] = str(self.assets_dir / "models")
        cfg["host"]["serial_path"] = self.reader_tty
        cfg["sim"]["bus"] = str(self.run_dir / "bus.sock")
        for section, values in self.overrides.items():
            cfg.setdefault(section, {}).update(values)
        path = self.run_dir / "mynad.toml"
        write_toml(cfg, path)
        return path

    def start_daemon(self, timeout: float = 60.0) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
        mark = len(self.timeline)
        self.daemon = subprocess.Popen(
            [sys.executable, "-m", "mynad.main", "--simulator", "--config", str(self.config_path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True, bufsize=1,
        )
        self._log_thread = threading.Thread(target=self._pump_log, daemon=True)
        self._log_thread.start()
        try:
            self.wait_screen("idle", timeout=timeout, after=mark)
        except TimelineTimeout:
            code = self.daemon.poll()
            tail = "\n".join(self.log_lines[-25:])
            raise RuntimeError(f"mynad did not reach the idle screen (exit code {code}); its log:\n{tail}") from None

    def _pump_log(self) -> None:
        assert self.daemon is not None and self.daemon.stdout is not None
        with open(self.run_dir / "mynad.log", "a", encoding="utf-8") as f:
            for line in self.daemon.stdout:
                line = line.rstrip("\n")
                self.log_lines.append(line)
                f.write(line + "\n")
                f.flush()
                self.timeline.add("daemon", "log", line=line)
                if self.echo:
                    print(f"  mynad | {line}", flush=True)

    def stop_daemon(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.daemon is None:
            return None
        if self.daemon.poll() is None:
            self.daemon.send_signal(sig)
            try:
                self.daemon.wait(timeout)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        if self._log_thread is not None:
            self._log_thread.join(5)
        code = self.daemon.returncode
        self.daemon = None
        return code

    def close(self) -> None:
        self.stop_daemon()
        if self.card_slot is not None:
            self.card_slot.close()
        if self.host is not None:
            self.host.stop()
        if self._pty_close is not None:
            self._pty_close()
        if self.bus is not None:
            self.bus.close()
        self.pcscd.stop()
        self.timeline.close()

    def __enter__(self) -> "SimRig":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ observation

    def _on_apdu(self, t: float, command: bytes, response: bytes) -> None:
        self.timeline.add("card", "apdu", c=command[:5].hex(" "), lc=max(0, len(command) - 5),
                          r=len(response) - 2, sw=response[-2:].hex())

    def screens(self) -> list[Entry]:
        return self.timeline.entries("display", "frame")

    def mark(self) -> int:
        return len(self.timeline)

    def wait_screen(self, screen_id: str, timeout: float = 15.0, after: int | None = None, **params: Any) -> Entry:
        start = self.mark() if after is None else after

        def match(e: Entry) -> bool:
            if e.source != "display" or e.data.get("screen") != screen_id:
                return False
            got = e.data.get("params") or {}
            return all(got.get(k) == v for k, v in params.items())

        return self.timeline.wait_for(match, timeout, after=start, what=f"screen {screen_id} {params or ''}")

    def wait_host(self, type_: str, timeout: float = 15.0, after: int = 0, **fields: Any) -> Entry:
        def match(e: Entry) -> bool:
            return e.source == "host" and e.kind == "received" and e.data.get("type") == type_ and all(
                e.data.get(k) == v for k, v in fields.items())

        return self.timeline.wait_for(match, timeout, after=after, what=f"host message {type_}")

    # ------------------------------------------------------------ the patient's hands

    def place_card(self, profile: str, faults: Any = None) -> None:
        """Put a card on the reader: staff-readable face first, then the chip."""
        prof = self.profiles[profile]
        self.profile = profile
        self.bus.publish("cardface", code_b=prof.code_b() if hasattr(prof, "code_b") else "")
        self.timeline.add("rig", "card_placed", profile=profile)
        self.card_slot.insert(profile, faults=faults)

    def remove_card(self) -> None:
        self.timeline.add("rig", "card_removed", profile=self.profile)
        self.card_slot.remove()
        self.bus.publish("cardface", code_b="")
        self.profile = None

    def press(self, pos: int, hold_s: float = 0.08, gap_s: float = 0.08) -> None:
        self.timeline.add("keypad", "press", pos=pos)
        self.bus.publish("keypad", pressed=[pos])
        time.sleep(hold_s)
        self.bus.publish("keypad", pressed=[])
        time.sleep(gap_s)

    def current_layout(self) -> tuple[str, ...]:
        for e in reversed(self.screens()):
            layout = (e.data.get("params") or {}).get("layout")
            if layout:
                return tuple(layout)
        raise AssertionError("no PIN pad has been shown")

    def type_digits(self, digits: str) -> None:
        """Press the keys whose current on-screen labels are these digits."""
        for d in digits:
            layout = self.current_layout()
            self.press(layout.index(d) + 1)

    def show_face(self, source: str | Path | None, behaviour: str = "live", **extra: Any) -> None:
        scene = {"source": str(source) if source else None, "behaviour": behaviour, **extra}
        self.timeline.add("camera", "scene", **{("photo" if k == "source" else k): v for k, v in scene.items()})
        self.bus.publish("camera", scene=scene)

    def photo_of(self, profile: str) -> Path:
        return self.assets_dir / "faces" / self.profiles[profile].photo

    def today(self) -> dt.date:
        return dt.date.today()
