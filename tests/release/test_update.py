"""Updates that cannot brick the reader (issue #12 §2): install, trial, rollback, refusals.

Two layers:
- the switch logic (trial counting, deadline, rollback, confirm, prune) on a scratch tree of
  fake releases, driven through the real packed ``myna-bootcheck`` as systemd would run it;
- the real thing: bundles built by the release fixtures (conftest), installed with the
  bundle's own ``install`` script into a scratch root, updated with ``mynactl update`` from
  the installed release, a deliberately broken release rolled back by itself, bad bundles
  refused with nothing changed, and the site's files untouched throughout.
The real-bundle tests share one scratch root (module fixture) and run in order: building
and installing venvs is the expensive part, done as few times as possible.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from mynad.release import bootcheck, switch
from mynad.release.confirm import confirm_when_healthy
from mynad.release.layout import COMPLETE_MARK, Layout, running_release

REPO = Path(__file__).resolve().parents[2]
RELEASE_SRC = REPO / "daemon/mynad/release"
SYS_PY = "/usr/bin/python3"   # Debian's: what the boot check and the venvs run on, on a reader
SYSTEMD_TOOLS = ("systemd-sysusers", "systemd-tmpfiles", "systemctl")


def installed_mynad(root: Path) -> Path:
    """The daemon systemd would start for an install under ``root`` (for end-to-end tests)."""
    return Layout(Path(root)).mynad()


# ------------------------------------------------------------------ switch logic, fake releases


def fake_release(layout: Layout, v: str, *, works: bool = True) -> None:
    d = layout.release_dir(v)
    (d / "venv/bin").mkdir(parents=True)
    (d / "venv/bin/mynad").write_text(f"#!/bin/sh\necho mynad {v}\nexit {0 if works else 1}\n")
    (d / "venv/bin/mynad").chmod(0o755)
    (d / COMPLETE_MARK).write_text(v)


@pytest.fixture
def tree(tmp_path):
    layout = Layout(tmp_path / "root")
    layout.releases.mkdir(parents=True)
    bootcheck.pack(RELEASE_SRC, layout.bootcheck, SYS_PY)
    return layout


def boot(layout: Layout, *extra: str) -> str:
    """One start as systemd does it: ExecStartPre=+myna-bootcheck; returns what it said."""
    r = subprocess.run([SYS_PY, str(layout.bootcheck), "--root", str(layout.root), *extra],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stderr


def test_decide_at_start_every_branch():
    t = switch.Trial("0.9.3", "0.9.2", tries_left=1, deadline=1000.0, started=0.0)
    st = switch.UpdateState(previous="0.9.2", trial=t)
    ok = frozenset({"0.9.2", "0.9.3"})
    assert switch.decide_at_start(switch.UpdateState(), "0.9.2", 10, ok).action == "none"
    d = switch.decide_at_start(st, "0.9.3", 10, ok)
    assert d.action == "count" and d.state.trial.tries_left == 0
    d = switch.decide_at_start(d.state, "0.9.3", 10, ok)
    assert d.action == "rollback" and d.rollback_to == "0.9.2" and d.state.bad == ("0.9.3",)
    assert d.state.trial is None and "rolled back to 0.9.2" in d.message
    d = switch.decide_at_start(st, "0.9.3", 1001, ok)            # past the deadline, tries left
    assert d.action == "rollback" and "did not confirm" in d.message
    assert switch.decide_at_start(st, "0.9.2", 10, ok).action == "drop"    # the switch never happened
    assert switch.decide_at_start(st, "0.9.3", 10, frozenset({"0.9.3"})).action == "drop"  # nowhere to go


def test_state_file_is_read_as_untrusted(tree):
    switch.ensure_update_dir(tree)
    tree.state_file.write_text(json.dumps({"previous": "../../etc", "bad": ["x/y", "0.1"],
                                           "trial": {"version": "0.9.3", "previous": "/bin"}}))
    s = switch.load_state(tree)
    assert s.previous is None and s.trial is None and s.bad == ("0.1",)
    tree.state_file.write_text("{not json")
    assert switch.load_state(tree) == switch.UpdateState()
    assert boot(tree) == ""  # a garbled state never stops a start


def test_trial_counts_starts_then_rolls_back_and_never_returns(tree):
    fake_release(tree, "0.9.2")
    fake_release(tree, "0.9.3", works=False)
    switch.activate(tree, "0.9.2")
    assert tree.current_version() == "0.9.2" and switch.load_state(tree).trial is None  # first: no trial
    switch.activate(tree, "0.9.3")
    assert os.readlink(tree.current) == "releases/0.9.3"
    said = []
    for _ in range(switch.TRIAL_TRIES):
        said.append(boot(tree))
        assert tree.current_version() == "0.9.3"
        assert subprocess.run([tree.mynad()], capture_output=True).returncode == 1  # the start fails; systemd restarts
    assert "2 start(s) left after this one" in said[0] and "0 start(s) left" in said[-1]
    said = boot(tree)
    assert said.count("\n") == 1 and "release 0.9.3 was rolled back to 0.9.2" in said
    assert tree.current_version() == "0.9.2"
    assert subprocess.run([tree.mynad()], capture_output=True, text=True).stdout == "mynad 0.9.2\n"
    rep = switch.versions_report(tree)
    assert rep["bad"] == ["0.9.3"] and rep["trial"] is None and rep["previous"] is None
    assert boot(tree) == ""  # nothing more to do; the bad release is never started again by itself
    assert switch.prune(tree) == ["0.9.3"] and tree.installed() == ["0.9.2"]


def test_deadline_unit_failure_and_confirmation(tree):
    for v in ("0.9.1", "0.9.2", "0.9.3"):
        fake_release(tree, v)
    switch.activate(tree, "0.9.1")
    switch.activate(tree, "0.9.2", window_s=-1)           # its time is up at once
    assert "did not confirm a healthy start" in boot(tree) and tree.current_version() == "0.9.1"
    switch.activate(tree, "0.9.3")                          # OnFailure=: systemd gave up on it
    assert "rolled back to 0.9.1" in boot(tree, "--unit-failed") and tree.current_version() == "0.9.1"
    switch.activate(tree, "0.9.2", confirm_after_s=0)
    assert switch.confirm_trial(tree, "0.9.1") is False     # another release cannot confirm it
    assert switch.confirm_trial(tree, "0.9.2") is True
    assert boot(tree) == "" and tree.current_version() == "0.9.2"
    assert switch.load_state(tree).bad == ("0.9.3",)  # 0.9.2 was activated again by hand: not bad


def test_update_during_a_trial_goes_back_to_the_last_proven_release(tree):
    for v in ("0.9.1", "0.9.2", "0.9.3"):
        fake_release(tree, v)
    switch.activate(tree, "0.9.1")
    switch.activate(tree, "0.9.2")            # not confirmed yet
    switch.activate(tree, "0.9.3")
    assert switch.load_state(tree).trial.previous == "0.9.1"
    assert switch.prune(tree) == ["0.9.2"]


def test_manual_rollback_and_back(tree):
    fake_release(tree, "0.9.1")
    fake_release(tree, "0.9.2")
    with pytest.raises(switch.SwitchError, match="no previous release"):
        switch.rollback(tree)
    switch.activate(tree, "0.9.1")
    switch.activate(tree, "0.9.2")
    assert switch.rollback(tree) == ("0.9.2", "0.9.1")
    assert boot(tree) == ""                                 # a trial dropped by a manual rollback
    assert switch.rollback(tree) == ("0.9.1", "0.9.2")
    assert switch.load_state(tree).bad == ()


def test_the_console_fallback_rolls_back_through_the_packed_boot_check(tree):
    """myna-console's way back when the current release cannot run its own mynactl."""
    fake_release(tree, "0.9.1")
    fake_release(tree, "0.9.2")
    argv = [SYS_PY, str(tree.bootcheck), "--root", str(tree.root), "--rollback"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no previous release" in r.stderr
    switch.activate(tree, "0.9.1")
    switch.activate(tree, "0.9.2")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "rolled back by hand to 0.9.1" in r.stdout
    assert tree.current_version() == "0.9.1"


def test_daemon_confirms_its_own_trial_once_healthy(tree):
    fake_release(tree, "0.9.1")
    fake_release(tree, "0.9.2")
    switch.activate(tree, "0.9.1")
    switch.activate(tree, "0.9.2", confirm_after_s=0.2)
    prefix = str(tree.release_dir("0.9.2") / "venv")
    assert running_release(prefix) == (tree, "0.9.2")
    assert running_release("/usr") is None
    health = iter([False, True, False] + [True] * 1000)
    assert asyncio.run(confirm_when_healthy(lambda: next(health), prefix=prefix, poll_s=0.05)) is True
    assert switch.load_state(tree).trial is None
    # the old release's process (still running during the switch) never confirms anything
    assert asyncio.run(confirm_when_healthy(lambda: True, prefix=str(tree.release_dir("0.9.1") / "venv"))) is False
    # up but never healthy: past the trial's deadline the daemon is told to exit (then rolled back)
    switch.rollback(tree)
    switch.activate(tree, "0.9.2")
    gave_up = []
    clock = iter([0.0, time.time() + switch.TRIAL_WINDOW_S + 1])
    assert asyncio.run(confirm_when_healthy(lambda: False, prefix=prefix, poll_s=0.01,
                                            on_expired=lambda: gave_up.append(1), clock=lambda: next(clock))) is False
    assert gave_up == [1] and switch.load_state(tree).trial.version == "0.9.2"


# ------------------------------------------------------------------ real bundles, one scratch root


def tree_listing(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its kind, size, mtime (files) and link target: "nothing
    changed" (a folder's own mtime moves when a staging folder came and went inside it)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size if not p.is_dir() else 0,
                                             st.st_mtime_ns if not p.is_dir() else 0,
                                             os.readlink(p) if p.is_symlink() else None)
    return out


def site_files(root: Path) -> dict[str, str]:
    """What belongs to the site: config, keys and state (the update bookkeeping aside)."""
    layout = Layout(root)
    out = {}
    for top in (layout.etc, layout.state):
        for p in sorted(top.rglob("*")):
            if p.is_file() and layout.update_dir not in p.parents:
                out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def rewrite_tar(src: Path, dest: Path, change) -> Path:
    """Copy a bundle tar member by member; ``change(member, data)`` returns new bytes for a
    member (read into memory only when asked for small members), or None to drop it."""
    with tarfile.open(src) as tin, tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tout:
        for m in tin:
            f = tin.extractfile(m)
            if m.size < 1 << 20:
                data = change(m, f.read())
                if data is None:
                    continue
                m.size = len(data)
                import io
                tout.addfile(m, io.BytesIO(data))
            else:
                tout.addfile(m, f)
    return dest


def broken_source(dest: Path) -> Path:
    """A copy of the sources whose daemon answers --version and --check-config (so it passes
    the installer's smoke check) but exits at every real start."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in listed:
        if not rel or rel.split("/")[0] in ("tests", "assets", "docs", "bench") or not (REPO / rel).is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest / rel)
    main = dest / "daemon/mynad/main.py"
    text = main.read_text()
    marker = "    from mynad.app import App, StartupError\n"
    assert marker in text
    main.write_text(text.replace(marker, '    raise SystemExit("mynad: deliberately broken test release")\n' + marker))
    return dest


@pytest.fixture(scope="module")
def site(tmp_path_factory, built_bundle, release_key):
    """A scratch root installed from bundle 0.9.1 with the bundle's own install script."""
    base = tmp_path_factory.mktemp("site")
    root, unpacked = base / "root", base / "unpacked"
    unpacked.mkdir()
    tar = built_bundle("0.9.1")
    subprocess.run(["tar", "xf", str(tar), "-C", str(unpacked)], check=True)  # as the technician does
    (top,) = unpacked.iterdir()
    # as root with systemd's tools: the scratch root also gets its myna user (sysusers --root),
    # /etc modes (tmpfiles --root) and enabled units (systemctl --root): nothing on this machine
    scratch_systemd = os.geteuid() == 0 and all(shutil.which(t) for t in SYSTEMD_TOOLS)
    t = time.monotonic()
    r = subprocess.run([str(top / "install"), "--root", str(root), "--no-apt",
                        *([] if scratch_systemd else ["--no-systemd"]),
                        "--keys", str(release_key.keys_dir)], capture_output=True, text=True, timeout=900)
    took = time.monotonic() - t
    assert r.returncode == 0, r.stdout + r.stderr
    print(f"\nfirst install (install --root, full venv from {len(list((top / 'wheels').glob('*.whl')))} wheels): "
          f"{took:.1f} s")
    layout = Layout(root)
    # the site's own files, as a reader in use has them
    import sqlite3
    db = sqlite3.connect(layout.state / "outbox.sqlite")
    db.execute("create table outbox (id integer primary key, type text, body text, stored real)")
    db.execute("insert into outbox (type, body, stored) values ('visit.result', '{}', 1.0)")
    db.commit()
    db.close()
    (layout.state / "face-calibration.toml").write_text("threshold = 0.41\n")
    (layout.state / "staff-password").write_text('{"scrypt": "n=32768,r=8,p=1", "hash": "00"}\n')
    (layout.etc / "host.key").write_bytes(os.urandom(32))
    with open(layout.config, "a") as f:
        f.write("# edited at the site\n")
    return {"root": root, "layout": layout, "install_out": r.stdout, "site": site_files(root), "unpacked": top,
            "systemd": scratch_systemd}


def mynactl(layout: Layout, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed release's own mynactl, as a technician runs it (the venv's base python is
    Debian's /usr/bin/python3 by default, like on a reader)."""
    return subprocess.run([str(layout.mynactl()), *args, "--root", str(layout.root)],
                          capture_output=True, text=True, timeout=900)


def test_first_install(site):
    layout = site["layout"]
    assert layout.current_version() == "0.9.1" and os.readlink(layout.current) == "releases/0.9.1"
    assert installed_mynad(site["root"]) == layout.root / "opt/myna-reader/current/venv/bin/mynad"
    r = subprocess.run([str(installed_mynad(site["root"])), "--version"], capture_output=True, text=True)
    assert r.stdout.strip() == "mynad 0.9.1"
    assert subprocess.run([str(layout.mynad()), "--check-config", "--config", str(layout.config)],
                          capture_output=True).returncode == 0
    assert (layout.keys_dir / "test.pub").is_file() and os.access(layout.bootcheck, os.X_OK)
    for unit in ("mynad.service", "myna-rollback.service"):
        assert (layout.root / "etc/systemd/system" / unit).is_file()
    assert switch.load_state(layout).trial is None  # nothing to go back to: not on trial
    assert "release 0.9.1 installed and current" in site["install_out"]
    # the technician's login: the menu as its shell (outside the releases), exactly the console's sudo rights
    console = layout.root / "opt/myna-reader/bin/myna-console"
    assert os.access(console, os.X_OK) and "/opt/myna-reader/bin/myna-console" in (layout.root / "etc/shells").read_text()
    sudoers = layout.root / "etc/sudoers.d/myna-reader"
    assert sudoers.stat().st_mode & 0o777 == 0o440
    if shutil.which("visudo"):
        assert subprocess.run(["visudo", "-cqf", str(sudoers)]).returncode == 0
    if site["systemd"]:
        passwd = (layout.root / "etc/passwd").read_text()
        tech = next(ln for ln in passwd.splitlines() if ln.startswith("tech:")).split(":")
        assert tech[6] == "/opt/myna-reader/bin/myna-console"
        group = (layout.root / "etc/group").read_text()
        for g in ("myna-tech", "myna-staff", "systemd-journal"):
            assert "tech" in next(ln for ln in group.splitlines() if ln.startswith(g + ":")).split(":")[3].split(","), g
        assert "passwd tech" in site["install_out"]  # no password yet: the installer says how to set one
        uid = int(next(ln for ln in passwd.splitlines() if ln.startswith("myna:")).split(":")[2])
        assert layout.update_dir.stat().st_uid == uid  # the daemon confirms its trial there
        assert (layout.root / "etc/systemd/system/multi-user.target.wants/mynad.service").is_symlink()
        assert (layout.etc.stat().st_mode & 0o777, layout.config.stat().st_mode & 0o777) == (0o750, 0o640)


@pytest.mark.pcscd
@pytest.mark.models
def test_installed_release_serves_a_visit_in_the_simulator(site, tmp_path):
    """What the install put on disk runs a whole PIN visit: the installed venv's mynad with the
    release's own verified models, against hw-sim (real pcscd + virtual card, pty host)."""
    from mynasim.demo import run_demo

    layout = site["layout"]
    code = run_demo(tmp_path / "demo", method="pin", echo=False, mynad=[str(installed_mynad(site["root"]))],
                    models_dir=layout.current / "models")
    assert code == 0, (tmp_path / "demo/mynad.log").read_text(errors="replace")[-3000:]
    log = (tmp_path / "demo/mynad.log").read_text()
    assert "mynad 0.9.1 ready" in log and str(layout.root / "opt/myna-reader/releases/0.9.1/venv") in log, log[:2000]


def test_update_on_trial_reuses_unchanged_wheels_and_confirms(site, built_bundle):
    layout = site["layout"]
    t = time.monotonic()
    r = mynactl(layout, "update", str(built_bundle("0.9.2")), "--json", "--confirm-after", "0")
    took = time.monotonic() - t
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    print(f"\nupdate 0.9.1 -> 0.9.2 ({len(out['reused_wheels'])} wheels hard-linked, pip: {out['pip_wheels']}): "
          f"{took:.1f} s; phases {out['seconds']}")
    assert out["ok"] and out["on_trial"] and out["previous"] == "0.9.1"
    assert out["pip_wheels"] == ["myna_reader-0.9.2-py3-none-any.whl"] and len(out["reused_wheels"]) > 10
    assert layout.current_version() == "0.9.2" and switch.load_state(layout).trial.version == "0.9.2"
    # the hard-linked venv works on its own: the daemon imports, the scripts name the new venv
    assert "releases/0.9.2/venv/bin/python" in layout.mynad().read_text().splitlines()[0]
    # one start (systemd: the boot check first), then the daemon confirms its own trial,
    # finding it from its venv's path as the installed daemon does after READY (the scripts'
    # #! names releases/<v>/venv; a process started through `current` confirms nothing)
    r = subprocess.run([str(layout.bootcheck), "--root", str(layout.root)], capture_output=True, text=True)
    assert "0.9.2 is on trial" in r.stderr
    code = "import asyncio; from mynad.release.confirm import confirm_when_healthy as c; print(asyncio.run(c(lambda: True)))"
    r = subprocess.run([str(layout.current / "venv/bin/python"), "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stderr
    r = subprocess.run([str(layout.release_dir("0.9.2") / "venv/bin/python"), "-c", code],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "True", r.stderr
    rep = json.loads(mynactl(layout, "versions", "--json").stdout)
    assert rep["current"] == "0.9.2" and rep["previous"] == "0.9.1" and rep["trial"] is None
    assert rep["installed"] == ["0.9.1", "0.9.2"]
    assert site_files(site["root"]) == site["site"]


@pytest.fixture(scope="module")
def broken_bundle(built_bundle, tmp_path_factory) -> Path:
    """Release 0.9.3, built from sources whose daemon exits at every start."""
    return built_bundle("0.9.3", broken_source(tmp_path_factory.mktemp("broken-src")))


def test_bad_bundles_are_refused_and_nothing_changes(site, built_bundle, broken_bundle, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    layout = site["layout"]
    good = built_bundle("0.9.2")
    newer = broken_bundle  # signed and newer: only the damage done below makes it refused
    other_key = Ed25519PrivateKey.generate()
    sig_of: dict[str, bytes] = {}

    def resign(m, data):
        if m.name.endswith("/MANIFEST.json"):
            sig_of["m"] = data
        if m.name.endswith("/MANIFEST.sig"):
            return other_key.sign(sig_of["m"])
        return data

    cases = {
        "unsigned": rewrite_tar(newer, tmp_path / "unsigned.tar", lambda m, d: None if m.name.endswith(".sig") else d),
        "wrong key": rewrite_tar(newer, tmp_path / "wrongkey.tar", resign),
        "tampered": rewrite_tar(newer, tmp_path / "tampered.tar",
                                lambda m, d: d.replace(b"set -eu", b"set -ux") if m.name.endswith("/install") else d),
        "truncated": tmp_path / "truncated.tar",
        "older": built_bundle("0.9.1"),
        "same": good,
        "missing": tmp_path / "nothing-here.tar",
    }
    with open(newer, "rb") as f, open(cases["truncated"], "wb") as g:
        g.write(f.read(newer.stat().st_size // 8))
    before = tree_listing(layout.root)
    said = {}
    for name, bundle in cases.items():
        r = mynactl(layout, "update", str(bundle))
        assert r.returncode == 1, (name, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("mynactl: "), (name, r.stderr)
        said[name] = r.stderr.strip()
        assert tree_listing(layout.root) == before, f"{name}: the install tree changed"
    print("\n" + "\n".join(f"{k:>10}: {v}" for k, v in said.items()))
    assert "older" in said["older"] and "same" in said["same"] and "no signature" in said["unsigned"] and "trusted" in said["wrong key"]
    assert "altered" in said["tampered"] and "truncated" in said["truncated"]
    r = mynactl(layout, "update", str(cases["tampered"]), "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["ok"] is False
    # the install script of an older bundle refuses before touching the newer release's units
    args = ["--root", str(layout.root), "--no-apt", "--no-systemd"]
    r = subprocess.run([str(site["unpacked"] / "install"), *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "older than the installed 0.9.2" in r.stderr, r.stdout + r.stderr
    assert tree_listing(layout.root) == before


def test_broken_release_is_rolled_back_by_itself(site, broken_bundle):
    layout = site["layout"]
    r = mynactl(layout, "update", str(broken_bundle), "--json")
    assert r.returncode == 0, r.stderr  # it passes the smoke check: --version, imports, --check-config
    assert layout.current_version() == "0.9.3"
    # systemd: Restart=on-failure; before each start ExecStartPre=+myna-bootcheck
    journal, starts = [], 0
    while layout.current_version() == "0.9.3":
        assert starts <= switch.TRIAL_TRIES, "never rolled back"
        journal.append(subprocess.run([str(layout.bootcheck), "--root", str(layout.root)],
                                      capture_output=True, text=True).stderr)
        if layout.current_version() != "0.9.3":
            break
        r = subprocess.run([str(layout.mynad()), "--config", str(layout.config)], capture_output=True, text=True)
        assert r.returncode == 1 and "deliberately broken" in r.stderr
        starts += 1
    assert starts == switch.TRIAL_TRIES
    print("\n" + "".join(journal))
    assert journal[-1] == ("myna-bootcheck: release 0.9.3 was rolled back to 0.9.2 because it did not start "
                           "healthy in the starts it was given.\n")
    assert layout.current_version() == "0.9.2"
    r = subprocess.run([str(layout.mynad()), "--version"], capture_output=True, text=True)
    assert r.stdout.strip() == "mynad 0.9.2"
    rep = json.loads(mynactl(layout, "versions", "--json").stdout)
    assert rep["bad"] == ["0.9.3"] and rep["trial"] is None and "0.9.3 was rolled back" in rep["last_event"]
    # never again by itself: the same bundle is refused unless forced
    before = tree_listing(layout.root)
    r = mynactl(layout, "update", str(broken_bundle))
    assert r.returncode == 1 and "rolled back on this reader before" in r.stderr
    assert tree_listing(layout.root) == before
    assert site_files(site["root"]) == site["site"]


def test_manual_rollback_keeps_the_site(site):
    layout = site["layout"]
    r = mynactl(layout, "rollback")
    assert r.returncode == 1 and r.stderr.count("\n") == 1  # after an automatic rollback: nowhere to go
    assert site_files(site["root"]) == site["site"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_rollback_unit_verifies(tmp_path):
    """myna-rollback.service (OnFailure= of mynad.service) is a unit systemd accepts, and it
    runs the boot check in its --unit-failed mode."""
    text = (REPO / "systemd/myna-rollback.service").read_text()
    assert "ExecStart=/opt/myna-reader/bin/myna-bootcheck --unit-failed --restart mynad.service" in text
    unit = tmp_path / "myna-rollback.service"
    unit.write_text(text.replace("/opt/myna-reader/bin/myna-bootcheck", sys.executable))
    env = dict(os.environ, SYSTEMD_COLORS="0", SYSTEMD_PAGER="", LC_ALL="C.UTF-8")
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", r.stderr + r.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_disk_too_small_is_refused_before_anything_is_written(tmp_path, built_bundle, release_key):
    """The releases on a real 64 MiB filesystem: the bundle needs more, the kernel says how much
    is free, and the update is refused before a byte is written there."""
    layout = Layout(tmp_path / "root")
    layout.keys_dir.mkdir(parents=True)
    shutil.copy(release_key.public, layout.keys_dir)
    layout.opt.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(layout.opt)], check=True)
    try:
        r = subprocess.run([sys.executable, "-m", "mynad.ctl", "update", str(built_bundle("0.9.2")),
                            "--root", str(layout.root)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert "free disk space" in r.stderr, r.stderr
        assert [p.name for p in layout.opt.rglob("*")] == ["releases"]  # an empty folder, nothing in it
    finally:
        subprocess.run(["umount", "-l", str(layout.opt)], check=False)
