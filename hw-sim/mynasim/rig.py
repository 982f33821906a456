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
from typing import TYPE_CHECKING, Any, Callable

from mynasim.bus import SimBusServer
from mynasim.services import Mosquitto, Pcscd, free_port
from mynasim.timeline import Entry, Timeline, TimelineTimeout

if TYPE_CHECKING:  # imported lazily at run time: the rig module stays cheap to import
    from mynasim.card import VirtualCardSlot
    from mynasim.host import VirtualHost
    from mynasim.patient import ScreenFollower

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent.parent
SIM_CONFIG = PACKAGE_DIR / "mynad-sim.toml"
STAFF_PASSWORD = "246810"  # the simulated clinic's staff password (tests type it on the keypad)


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
                 echo: bool = False, fresh: bool = True, profiles_file: Path | None = None,
                 mynad: list[str] | None = None, transport: str = "serial",
                 timeline_keep: int | None = None) -> None:
        if transport not in ("serial", "mqtt"):
            raise ValueError(f"unknown host transport {transport!r}: serial or mqtt")
        # serial: a pty pair between reader and host; mqtt: a private mosquitto broker on a free
        # port, the reader and the virtual host each its client (broker faults: restart_broker)
        self.transport = transport
        self.broker: Mosquitto | None = None
        self.run_dir = Path(run_dir).resolve()
        # how to start the daemon: this checkout's by default, or an installed release's
        # (e.g. [<root>/opt/myna-reader/current/venv/bin/mynad]) to test what a technician installed
        self.mynad_command = list(mynad) if mynad else [sys.executable, "-m", "mynad.main"]
        self.profiles_file = profiles_file  # card profiles (None: mynasim/card/profiles.toml)
        # extra environment for mynad (e.g. NOTIFY_SOCKET + WATCHDOG_USEC from mynasim.supervisor)
        self.daemon_env: dict[str, str] = {}
        self.assets_dir = Path(assets_dir or default_assets_dir()).resolve()
        self.overrides = overrides or {}
        self.echo = echo
        if fresh and self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.screens_dir = self.run_dir / "screens"
        # timeline_keep: entries held in memory (None: all); a long soak keeps a window, the
        # file keeps everything
        self.timeline = Timeline(self.run_dir / "timeline.jsonl", keep=timeline_keep)
        self.daemon: subprocess.Popen | None = None
        self._log_thread: threading.Thread | None = None
        self.log_lines: list[str] = []
        self.pcscd = Pcscd()
        self.card_slot: VirtualCardSlot | None = None
        self.host: VirtualHost | None = None
        self.bus: SimBusServer | None = None
        self._pty_close: Callable[[], None] | None = None
        self.profile: str | None = None
        self._follower: ScreenFollower | None = None  # while someone follows the screen
        self._card_face_cache: dict[tuple, str] = {}

    # ------------------------------------------------------------ setup

    def start(self, daemon: bool = True) -> "SimRig":
        from mynasim.card import VirtualCardSlot
        from mynasim.host import pty_pair

        self._hold_bench_lock()
        try:
            self.pcscd.ensure(log_path=self.run_dir / "pcscd.log")
            self.bus = SimBusServer(self.run_dir / "bus.sock", self.timeline)
            if self.transport == "mqtt":
                host_tty = self._start_broker()
            else:
                reader_tty, host_tty, self._pty_close = pty_pair(self.run_dir)
                self.reader_tty = reader_tty
            self._start_host(host_tty)
            self.card_slot = VirtualCardSlot(port=35963, state_dir=self.run_dir / "card-state",
                                             assets_dir=self.assets_dir, on_apdu=self._on_apdu,
                                             profiles=self.profiles)
            self.config_path = self._write_config()
            if daemon:
                self.start_daemon()
        except BaseException:
            self.close()  # never leave pcscd, the host thread or a half-started daemon behind
            raise
        return self

    def _start_broker(self) -> str:
        """A private broker for this run (never the system's): returns the virtual host's address."""
        port = free_port()
        conf = self.run_dir / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "log_dest stdout\n", encoding="utf-8")
        conf.chmod(0o644)  # mosquitto started as root drops to its own user and must read it
        self.broker = Mosquitto(conf, (port,), self.run_dir / "mosquitto.log").start()
        self.mqtt_port = port
        reader_id = tomllib.loads(SIM_CONFIG.read_text(encoding="utf-8"))["reader"]["id"]
        return f"mqtt://127.0.0.1:{port}/{reader_id}"

    def restart_broker(self, down_s: float, *, kill: bool = False) -> None:
        """The clinic's broker goes away (SIGTERM: a clean stop; SIGKILL: a crash, no last will
        sent) for ``down_s`` seconds and comes back on the same port with nothing retained."""
        if self.broker is None:
            raise RuntimeError("the rig has no broker: start it with transport='mqtt'")
        self.timeline.add("rig", "broker_down", signal="KILL" if kill else "TERM", down_s=down_s)
        self.broker.stop(kill=kill)
        time.sleep(down_s)
        self.broker.start()
        self.timeline.add("rig", "broker_up")

    def _hold_bench_lock(self) -> None:
        """One rig at a time on this machine (mynasim.benchlock): a second one waits here."""
        from mynasim import benchlock

        benchlock.acquire()
        self._bench_held = True

    def _release_bench_lock(self) -> None:
        from mynasim import benchlock

        if getattr(self, "_bench_held", False):
            self._bench_held = False
            benchlock.release()

    def _start_host(self, host_tty: str) -> None:
        from mynasim.card import TestPKI, load_profiles
        from mynasim.host import VirtualHost

        self.profiles = load_profiles(self.profiles_file)
        self.pki = TestPKI(self.run_dir / "card-state", self.profiles)

        def lookup(serial: int) -> dict[str, Any] | None:
            name = self.pki.profile_for_serial(serial)
            return self.profiles[name].as_patient() if name in self.profiles else None

        self.host = host = VirtualHost(host_tty, lookup_patient=lookup, ca_certificate=self.pki.ca_certificate,
                                       on_event=self._on_host_event,
                                       state_dir=self.run_dir / "host-state", key_file=self.host_key_file())
        host.start()

    def _set_staff_password(self, state_dir: Path) -> None:
        """The clinic's staff password, set as a technician would (``mynactl staff-password set``):
        the daemon only ever sees its scrypt hash in the state directory."""
        from mynad.staffauth import set_password

        state_dir.mkdir(parents=True, exist_ok=True)
        if not (state_dir / "staff-password").exists():
            set_password(state_dir, bytearray(STAFF_PASSWORD.encode()), length=len(STAFF_PASSWORD))

    def host_key_file(self) -> Path:
        """The reader's host-link key, made once per run folder (0600): the daemon's [host] key_file
        and the virtual host's copy are this one file."""
        from mynad.hostlink.keyfile import generate_key, write_key

        path = self.run_dir / "host.key"
        if not path.exists():
            write_key(path, generate_key())
        return path

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
        if self.transport == "mqtt":
            cfg["host"].update(transport="mqtt", mqtt_host="127.0.0.1", mqtt_port=self.mqtt_port)
        else:
            cfg["host"]["serial_path"] = self.reader_tty
        cfg["host"]["key_file"] = str(self.host_key_file())
        self._set_staff_password(Path(cfg["reader"]["state_dir"]))
        cfg["sim"]["bus"] = str(self.run_dir / "bus.sock")
        for section, values in self.overrides.items():
            cfg.setdefault(section, {}).update(values)
        path = self.run_dir / "mynad.toml"
        write_toml(cfg, path)
        return path

    def start_daemon(self, timeout: float = 60.0) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy",
                   **self.daemon_env)
        mark = len(self.timeline)
        self.daemon = subprocess.Popen(
            [*self.mynad_command, "--simulator", "--config", str(self.config_path)],
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

    def replug_serial(self, gone_s: float = 1.0) -> None:
        """Fault: the serial cable is pulled for ``gone_s`` seconds. The pty pair disappears (both
        ends read EIO, reopening finds no device), then a new pair appears at the same paths, as a
        USB-serial adapter re-enumerates under the same udev name."""
        from mynasim.host import pty_pair

        self.timeline.add("rig", "serial_unplugged", gone_s=gone_s)
        if self._pty_close is not None:
            self._pty_close()
            self._pty_close = None
        time.sleep(gone_s)
        reader_tty, _host_tty, self._pty_close = pty_pair(self.run_dir)
        assert reader_tty == self.reader_tty  # the same stable paths: the daemon's config stays right
        self.timeline.add("rig", "serial_plugged")

    def close(self) -> None:
        if self._follower is not None:
            self._follower.stop()
            self._follower = None
        self.stop_daemon()
        if self.card_slot is not None:
            self.card_slot.close()
        if self.host is not None:
            self.host.stop()
        if self._pty_close is not None:
            self._pty_close()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        if self.bus is not None:
            self.bus.close()
        self.pcscd.stop()
        self.timeline.close()
        self._release_bench_lock()

    def __enter__(self) -> "SimRig":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ observation

    def _live_bus(self) -> SimBusServer:
        """The sim bus the patient's hands publish on: it exists once start() ran."""
        if self.bus is None:
            raise RuntimeError("the rig is not started: call start() before acting as the patient")
        return self.bus

    def _live_slot(self) -> VirtualCardSlot:
        """The virtual card slot: it exists once start() ran."""
        if self.card_slot is None:
            raise RuntimeError("the rig is not started: call start() before placing or removing a card")
        return self.card_slot

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

    def wait_for_log(self, text: str, timeout: float = 15.0, after: int = 0) -> Entry:
        """Wait for a daemon log line containing ``text`` (what a technician would read)."""
        return self.timeline.wait_for(lambda e: e.source == "daemon" and text in e.data.get("line", ""),
                                      timeout, after=after, what=f"daemon log {text!r}")

    def wait_host(self, type_: str, timeout: float = 15.0, after: int = 0, **fields: Any) -> Entry:
        def match(e: Entry) -> bool:
            return e.source == "host" and e.kind == "received" and e.data.get("type") == type_ and all(
                e.data.get(k) == v for k, v in fields.items())

        return self.timeline.wait_for(match, timeout, after=after, what=f"host message {type_}")

    # ------------------------------------------------------------ the patient's hands

    def place_card(self, profile: str, faults: Any = None, view: str = "clean", seed: int | None = None) -> None:
        """Put a card on the reader, printed side up: the tray camera sees it first, then the chip
        is powered. ``view`` is how the card lies and how the tray camera sees it:
        ``"clean"`` (flat, centred, well lit), ``"random"`` (a placement drawn with ``seed``, as at
        a real counter: twisted, tilted, blurred, glare, dim, in a sleeve), ``"unreadable"``
        (a smeared lens and the tray light full in the camera: nothing printed is legible)."""
        self.profile = profile
        self._show_card_face(profile, view, seed)
        self.timeline.add("rig", "card_placed", profile=profile, view=view)
        self._live_slot().insert(profile, faults=faults)

    def remove_card(self) -> None:
        self.timeline.add("rig", "card_removed", profile=self.profile)
        self._live_slot().remove()
        self._show_card_face(None, "clean", None)
        self.profile = None

    def _show_card_face(self, profile: str | None, view: str, seed: int | None) -> None:
        """Render what the tray camera sees and publish the picture (never what is printed on it)."""
        import numpy as np
        from PIL import Image

        from mynasim.cardface import Variation, empty_tray, random_variation, render_card_face

        if seed is None and view != "random":
            seed = 0  # a fixed view is the same picture each time (and is rendered once)
        key = (profile, view, seed)
        cached = self._card_face_cache.get(key) if seed is not None else None
        bus = self._live_bus()
        if cached is not None:
            bus.publish("cardface", image=cached)
            return
        rng = np.random.default_rng(seed)
        if profile is None:
            bgr = empty_tray(rng, Variation())
        elif view == "clean":
            bgr = render_card_face(self.profiles[profile], None, rng)
        elif view == "random":
            bgr = render_card_face(self.profiles[profile], random_variation(rng), rng)
        elif view == "unreadable":
            bgr = render_card_face(self.profiles[profile], Variation(blur_sigma=9.0, glare=(0.45, 0.5, 420.0, 1.0)),
                                   rng)
        else:
            raise ValueError(f"unknown card-face view {view!r}: clean, random or unreadable")
        folder = self.run_dir / "cardface"
        folder.mkdir(exist_ok=True)
        self._card_face_count = getattr(self, "_card_face_count", 0) + 1
        path = folder / f"{self._card_face_count:04d}-{profile or 'empty'}.png"
        Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(path, compress_level=1)
        if seed is not None:
            self._card_face_cache[key] = str(path)
        bus.publish("cardface", image=str(path))

    def press(self, pos: int, hold_s: float = 0.08, gap_s: float = 0.08) -> None:
        bus = self._live_bus()
        self.timeline.add("keypad", "press", pos=pos)
        # the finger's timing travels with the press: the key model holds it down for hold_s
        # itself (myna_drivers.gpio_sim), however late the message reaches a starved daemon
        bus.publish("keypad", pressed=[pos], hold_s=hold_s, gap_s=gap_s)
        time.sleep(hold_s + gap_s)

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

    def show_face(self, source: str | Path | None, behaviour: str = "live", follow: bool | None = None,
                  seed: int | None = None, **extra: Any) -> None:
        """Put someone in front of the camera. ``behaviour``: a camera_sim behaviour (``live``,
        ``photo``, ... or an attack: ``print_rotated``, ``replay``, ...). ``follow`` (default: yes
        for ``live`` and for the attacks that react) starts a :class:`mynasim.patient.ScreenFollower`
        that reads the reader's screen and turns the head (or the print, or swipes the tablet)
        as asked; ``seed`` makes its reactions reproducible."""
        from mynasim.patient import FOLLOWER_KINDS, ScreenFollower

        bus = self._live_bus()
        if self._follower is not None:
            self._follower.stop()
            self._follower = None
        kind = "patient" if behaviour == "live" else behaviour
        if follow is None:
            follow = kind in FOLLOWER_KINDS
        scene = {"source": str(source) if source else None, "behaviour": behaviour, **extra}
        if follow and kind in FOLLOWER_KINDS and source:
            import random

            scene["follow"] = True
            self._follower = ScreenFollower(self.timeline, bus, kind,
                                            random.Random(seed) if seed is not None else None)
        self.timeline.add("camera", "scene", **{("photo" if k == "source" else k): v for k, v in scene.items()})
        bus.publish("camera", scene=scene)

    def photo_of(self, profile: str) -> Path:
        return self.assets_dir / "faces" / self.profiles[profile].photo

    def today(self) -> dt.date:
        return dt.date.today()
