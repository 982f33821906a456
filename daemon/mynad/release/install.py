"""Install a signed release bundle next to the running one, then switch to it on trial.

Order, so that a refusal or a power cut at any step leaves the reader as it was:
  1. verify and unpack (bundle.unpack_verified: signature first, every member hashed while
     written, free space checked) into releases/.incoming-<pid>, renamed to releases/<v>;
  2. the venv, offline, from the bundle's wheels; dependency wheels identical (same sha256) to
     those of an installed release are hard-linked from that release's venv instead of being
     installed again (an update that changes only the project takes seconds, not minutes, on
     an SD card); only the rest goes through ``pip install --no-index --no-deps``;
  3. a smoke check of the new release as it is (``mynad --version``, the daemon's imports,
     ``mynad --check-config`` on the site's config); the wheels are then deleted (the venv is
     what runs; MANIFEST.json keeps their hashes for the next update's comparison);
  4. ``.complete`` written last, everything synced;
  5. the boot check refreshed (only after it ran), then ``current`` switched on trial (switch.py),
     and releases nobody can go back to pruned.
Anything failing before 5 removes the new release directory: nothing changed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .atomic import fsync_dir, locked, write_bytes
from .bootcheck import pack as pack_bootcheck
from .layout import COMPLETE_MARK, VERSION_RE, Layout
from .switch import CONFIRM_AFTER_S, SwitchError, activate, load_state, prune

DEFAULT_PYTHON = "/usr/bin/python3"   # Debian's: the venvs and the boot check are built on it
PROJECT_WHEEL_PREFIX = "myna_reader-"


class InstallRefused(Exception):
    """The release was not installed; str() is one plain sentence and nothing was changed."""


@dataclass
class InstallResult:
    version: str
    previous: str | None
    on_trial: bool
    reused_wheels: list[str] = field(default_factory=list)     # hard-linked from an installed release
    pip_wheels: list[str] = field(default_factory=list)        # installed by pip
    seconds: dict[str, float] = field(default_factory=dict)    # per phase
    pruned: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _manifest_json(release: Path) -> dict[str, Any]:
    return json.loads((release / "MANIFEST.json").read_bytes())


def site_packages(venv: Path, python_version: str) -> Path:
    return venv / "lib" / f"python{python_version}" / "site-packages"


def _wheel_dist_info(wheel: Path) -> str:
    """The .dist-info folder name a wheel installs (as stored in the wheel: pip keeps it)."""
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            parts = name.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "RECORD":
                return parts[0]
    raise InstallRefused(f"the wheel {wheel.name} has no RECORD; the bundle is unusable.")


def _record_paths(dist_info: Path) -> list[str]:
    import csv

    with open(dist_info / "RECORD", newline="", encoding="utf-8") as f:
        return [row[0] for row in csv.reader(f) if row]


def _link_installed_dist(old_site: Path, new_site: Path, dist_info: str, old_venv: Path, new_venv: Path) -> int:
    """Hard-link one installed distribution (every file of its RECORD) from an old venv into a
    new one. Scripts in bin/ are copied with their ``#!`` line pointed at the new venv (they
    name their interpreter by absolute path). Returns the number of files."""
    n = 0
    old_venv_r, new_venv_r = old_venv.resolve(), new_venv.resolve()
    for rel in _record_paths(old_site / dist_info):
        src = (old_site / rel).resolve()
        dst = Path(os.path.normpath(new_site / rel))
        if not src.is_relative_to(old_venv_r) or not dst.is_relative_to(new_venv):
            raise InstallRefused(f"{dist_info} lists a file outside its venv ({rel}); the old release is unusable.")
        if not src.is_file():
            continue  # a RECORD may list a .pyc never written
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.parent == old_venv_r / "bin":
            data = src.read_bytes()
            first, nl, rest = data.partition(b"\n")
            if first.startswith(b"#!"):
                first = first.replace(str(old_venv_r).encode(), str(new_venv).encode())
            dst.write_bytes(first + nl + rest)
            os.chmod(dst, src.stat().st_mode & 0o777)
        else:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        n += 1
    return n


def _reuse_candidates(layout: Layout, new_manifest: dict[str, Any], exclude: str) -> list[tuple[Path, dict]]:
    """Installed releases whose venv was built on the same Python the same way: current first."""
    out = []
    order = [layout.current_version()] + list(reversed(layout.installed()))
    seen = set()
    for v in order:
        if v is None or v in seen or v == exclude or not layout.is_complete(v):
            continue
        seen.add(v)
        try:
            m = _manifest_json(layout.release_dir(v))
        except (OSError, ValueError):
            continue
        if all(m.get(k) == new_manifest.get(k) for k in ("python", "arch", "system_site_packages")):
            out.append((layout.release_dir(v), m))
    return out


def _run(cmd: Sequence[str], what: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", LC_ALL="C.UTF-8")
    try:
        r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InstallRefused(f"{what} failed ({e}); nothing was changed.")
    if r.returncode != 0:
        tail = (r.stderr.strip() or r.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise InstallRefused(f"{what} failed: {tail[0]}; nothing was changed.")
    return r


def build_venv(layout: Layout, release: Path, manifest: dict[str, Any], python: str, *, reuse: bool = True,
               result: InstallResult | None = None) -> InstallResult:
    """The release's venv from its own wheels (offline), reusing identical installed ones."""
    res = result or InstallResult(manifest["version"], None, False)
    venv = release / "venv"
    r = _run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], f"running {python}")
    if r.stdout.strip() != manifest.get("python"):
        raise InstallRefused(f"the bundle is built for Python {manifest.get('python')} but {python} is "
                             f"Python {r.stdout.strip()}; nothing was changed.")
    cmd = [python, "-m", "venv", "--without-pip"]
    cmd += ["--system-site-packages"] if manifest.get("system_site_packages") else []
    t = time.monotonic()
    _run(cmd + [str(venv)], "creating the venv")
    new_site = site_packages(venv, manifest["python"])
    candidates = _reuse_candidates(layout, manifest, exclude=release.name) if reuse else []
    # pip (and the setuptools ensurepip puts beside it) from Debian's python3-venv: linked from
    # an installed release built on the same Python when there is one, else ensurepip (offline)
    donor_site = site_packages(candidates[0][0] / "venv", manifest["python"]) if candidates else None
    boot = sorted(donor_site.glob("pip-*.dist-info")) + sorted(donor_site.glob("setuptools-*.dist-info")) \
        if donor_site is not None else []
    if donor_site is not None and boot and all((d / "RECORD").is_file() for d in boot):
        for d in boot:
            _link_installed_dist(donor_site, new_site, d.name, candidates[0][0] / "venv", venv)
    else:
        _run([str(venv / "bin/python"), "-m", "ensurepip", "--default-pip"], "installing pip into the venv")
    res.seconds["venv"] = round(time.monotonic() - t, 2)
    wheels = sorted(p for p in (release / "wheels").glob("*.whl"))
    files = manifest.get("files", {})
    todo: list[Path] = []
    t = time.monotonic()
    for whl in wheels:
        rel = f"wheels/{whl.name}"
        donor = None
        if not whl.name.startswith(PROJECT_WHEEL_PREFIX):
            want = files.get(rel, {}).get("sha256")
            donor = next((d for d, m in candidates if want and m.get("files", {}).get(rel, {}).get("sha256") == want),
                         None)
        if donor is not None:
            dist = _wheel_dist_info(whl)
            old_site = site_packages(donor / "venv", manifest["python"])
            if (old_site / dist / "RECORD").is_file():
                _link_installed_dist(old_site, new_site, dist, donor / "venv", venv)
                res.reused_wheels.append(whl.name)
                continue
        todo.append(whl)
    res.seconds["link"] = round(time.monotonic() - t, 2)
    t = time.monotonic()
    if todo:
        _run([str(venv / "bin/python"), "-m", "pip", "install", "--isolated", "--no-index", "--no-deps",
              "--no-warn-script-location", "-q"] + [str(w) for w in todo], "installing the wheels")
    res.pip_wheels = [w.name for w in todo]
    res.seconds["pip"] = round(time.monotonic() - t, 2)
    return res


def smoke_check(layout: Layout, release: Path, version: str) -> None:
    """The new release must at least run, import the daemon, and accept the site's config."""
    venv = release / "venv/bin"
    r = _run([str(venv / "mynad"), "--version"], f"the new release {version} (mynad --version)", timeout=120)
    if r.stdout.split() != ["mynad", version]:
        raise InstallRefused(f"the new release {version} answers {r.stdout.strip()!r} to mynad --version; "
                             "nothing was changed.")
    _run([str(venv / "python"), "-c", "import mynad.app, mynad.ctl"],
         f"the new release {version} (importing the daemon)", timeout=300)
    if layout.config.is_file():
        _run([str(venv / "mynad"), "--check-config", "--config", str(layout.config)],
             f"the new release {version} checking {layout.config}", timeout=300)


def _clean_leftovers(layout: Layout) -> None:
    """Half-unpacked or half-built releases from an install that a power cut interrupted
    (hidden staging folders, and release folders without their ``.complete`` mark)."""
    cur = layout.current_version()
    for p in layout.releases.iterdir():
        if p.name.startswith(".") or (VERSION_RE.match(p.name) and p.name != cur
                                      and not (p / COMPLETE_MARK).exists()):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def install_release(layout: Layout, source: Path, keys: Any, *, force: bool = False,
                    python: str = DEFAULT_PYTHON, reuse: bool = True, arch: str | None = None,
                    trial: bool = True, confirm_after_s: float | None = None,
                    progress: Callable[[str], None] = lambda s: None) -> InstallResult:
    """Install the bundle ``source`` (a .tar, or an unpacked bundle directory at first install)
    verified against ``keys``, and make it current (on trial when a release runs already).
    Raises InstallRefused with one sentence; then nothing was changed."""
    from .bundle import BundleRefused, unpack_verified, verify_tree

    t_all = time.monotonic()
    source = Path(source)
    arch = arch or platform.machine()
    layout.releases.mkdir(parents=True, exist_ok=True)
    with locked(layout.releases):  # one install at a time (the boot check locks update/, not this)
        _clean_leftovers(layout)
        cur = layout.current_version()
        state = load_state(layout)
        staging = layout.releases / f".incoming-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        free = shutil.disk_usage(layout.releases).free
        checks: dict[str, Any] = dict(arch=arch, installed_version=cur, force=force, free_bytes=free)
        t = time.monotonic()
        progress("verifying the bundle")
        try:
            if source.is_dir():
                verify_tree(source, keys, **checks)
                shutil.copytree(source, staging, symlinks=True)
                manifest_obj = verify_tree(staging, keys, **checks)  # what is installed is what was verified
            else:
                manifest_obj = unpack_verified(source, staging, keys, **checks)
        except BundleRefused as e:
            shutil.rmtree(staging, ignore_errors=True)
            raise InstallRefused(str(e)) from None
        except FileNotFoundError:
            shutil.rmtree(staging, ignore_errors=True)
            raise InstallRefused(f"there is no bundle at {source}; nothing was changed.") from None
        seconds = {"verify": round(time.monotonic() - t, 2)}
        v = manifest_obj.version
        try:
            if v == cur:
                raise InstallRefused(f"release {v} is the release running now; nothing was changed.")
            if v in state.bad and not force:
                raise InstallRefused(f"release {v} was rolled back on this reader before; install it again "
                                     "only with --force. Nothing was changed.")
        except InstallRefused:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        dest = layout.release_dir(v)
        if dest.exists():  # an older copy of this version that is not running (previous, or rolled back)
            shutil.rmtree(dest)
        os.rename(staging, dest)
        fsync_dir(layout.releases)
        res = InstallResult(v, cur, False, seconds=seconds)
        try:
            manifest = _manifest_json(dest)
            progress("building the venv")
            build_venv(layout, dest, manifest, python, reuse=reuse, result=res)
            progress("checking the new release")
            t = time.monotonic()
            smoke_check(layout, dest, v)
            res.seconds["smoke"] = round(time.monotonic() - t, 2)
            # the venv is what runs; the wheels (~200 MB) would only fill the SD card. Their
            # hashes stay in MANIFEST.json, which is what the next update compares against.
            shutil.rmtree(dest / "wheels", ignore_errors=True)
            t = time.monotonic()
            os.sync()  # a power cut after the switch must not find half-written files in the release
            write_bytes(dest / COMPLETE_MARK, f"{v}\n".encode())
            res.seconds["sync"] = round(time.monotonic() - t, 2)
            pack_bootcheck(dest / "installer/myna_release", layout.bootcheck, python)
        except BaseException as e:
            shutil.rmtree(dest, ignore_errors=True)
            fsync_dir(layout.releases)
            if isinstance(e, InstallRefused):
                raise
            if isinstance(e, Exception):
                raise InstallRefused(f"installing release {v} failed ({e}); nothing was changed.") from e
            raise
        try:
            activate(layout, v, trial=trial and cur is not None,
                     confirm_after_s=CONFIRM_AFTER_S if confirm_after_s is None else confirm_after_s)
        except SwitchError as e:
            shutil.rmtree(dest, ignore_errors=True)
            raise InstallRefused(str(e)) from None
        res.on_trial = trial and cur is not None
        res.pruned = prune(layout)
        res.seconds["total"] = round(time.monotonic() - t_all, 2)
        return res


def main(argv: list[str] | None = None) -> int:
    """First install (run by the bundle's ``install`` script under Debian's python3)."""
    p = argparse.ArgumentParser(prog="myna_release.install")
    p.add_argument("source", help="bundle .tar or unpacked bundle directory")
    p.add_argument("--root", default="/")
    p.add_argument("--python", default=DEFAULT_PYTHON, help="interpreter the venv is built on")
    p.add_argument("--force", action="store_true", help="allow an older or equal version, or one rolled back")
    p.add_argument("--json", action="store_true")
    p.add_argument("--verify-only", action="store_true",
                   help="check the signature and every file of an unpacked bundle; print its version")
    args = p.parse_args(argv)
    from .keys import load_public_keys

    layout = Layout(Path(args.root))
    try:
        keys = load_public_keys(layout.keys_dir)
    except Exception as e:
        print(f"install: no release key to check the bundle with in {layout.keys_dir} ({e})", file=sys.stderr)
        return 1
    if args.verify_only:
        # before the install script touches anything: a bundle older than the installed release
        # is refused here (its unit files must not replace newer ones); the same version passes,
        # so that running ./install again after a failure finishes the job
        from .bundle import BundleRefused, verify_tree, version_key

        try:
            v = verify_tree(Path(args.source), keys, arch=platform.machine()).version
        except BundleRefused as e:
            print(f"install: {e}", file=sys.stderr)
            return 1
        cur = layout.current_version()
        if cur is not None and not args.force and version_key(v) < version_key(cur):
            print(f"install: the bundle's version {v} is older than the installed {cur} (use --force to install "
                  "it anyway); nothing was changed.", file=sys.stderr)
            return 1
        print(v)
        return 0
    try:
        res = install_release(layout, Path(args.source), keys, force=args.force, python=args.python,
                              progress=lambda s: None if args.json else print(f"install: {s}", flush=True))
    except InstallRefused as e:
        print(f"install: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(res.to_json()))
    else:
        print(f"install: release {res.version} installed and current"
              + (f" (on trial; previous {res.previous})" if res.on_trial else "")
              + f" in {res.seconds.get('total', 0):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
