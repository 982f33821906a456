"""Build a signed, reproducible release bundle (runs on the release machine, never on a reader).

    scripts/build-release --arch x86_64|aarch64 --key KEY [--version V] [--out dist]
    scripts/build-release --lock --arch aarch64        # re-resolve release/lock-aarch64.txt
    scripts/build-release --generate-key PATH          # PATH (0600) and PATH.pub

What goes in, and why the same commit always gives the same bundle:

* the project wheel, built from the source files git knows (tracked + untracked-not-ignored,
  so a work tree with new files builds what it will commit; a clean checkout builds exactly
  HEAD) with ``SOURCE_DATE_EPOCH`` = the commit's time and ``--no-build-isolation`` (no
  network, the venv's pinned setuptools);
* every runtime dependency as the exact wheel file named and sha256-pinned in
  ``release/lock-<arch>.txt`` (pip ``--require-hashes``), fetched into a wheelhouse cache;
  distributions with no wheel are built from a hash-pinned sdist with fixed paths, or taken
  from Debian (``release/packages.toml``);
* the model files the face engine loads, hash-checked against the model manifest;
* the installer (this package), its ``install`` script, systemd units and config;
* a manifest signed with Ed25519 (bundle.py), all in a deterministic tar.

The build refuses, with one sentence, a lock that disagrees with pyproject.toml and a
wheel set that does not resolve on its own. stdlib + cryptography only (this module is copied
into bundles with the rest of the package); pip and git run as subprocesses.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .bundle import (ARCHES, MANIFEST_NAME, BundleRefused, FileEntry, Manifest, file_entries, hash_file, version_key,
                     write_bundle)
from .keys import KeyFileError, fingerprint, generate_keypair, load_private_key

__all__ = ["BuildError", "build_bundle", "lock_dependencies", "resolve", "read_lock", "check_lock_against_pyproject",
           "SourceTree", "LockEntry", "Policy", "load_policy", "select_models", "build_project_wheel", "main"]

PYTHON = "3.11"
# Debian 12 has glibc 2.36: a wheel tagged manylinux_2_X with X <= 36 runs on it.
GLIBC_MAX = 36
# installed_size estimate, calibrated on the x86_64 bundle of 2026-12-02 installed into a venv on
# Debian 12 (docs/release.md): 689 MB on disk (venv + models) against 695 MB estimated.
VENV_BASE_BYTES = 28 * 1024 * 1024   # python3 -m venv with pip and setuptools, their bytecode included
PYC_FACTOR = 1.6                     # bytecode pip writes at install, relative to the .py sources (measured 1.8)
FILE_SLACK = 2048                    # half a 4 KiB block per installed file
_SKIP_ALWAYS = {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".hypothesis", ".wheelhouse"}


class BuildError(Exception):
    """The bundle cannot be built; str() is one plain sentence saying what to do."""


def canonical(name: str) -> str:
    """PEP 503 name: "RPi.GPIO" and "rpi-gpio" are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


# ------------------------------------------------------------------ policy and lock

@dataclass(frozen=True)
class Policy:
    """release/packages.toml for one architecture."""

    arch: str
    apt: tuple[str, ...]
    system_site_packages: bool
    extras: tuple[str, ...]
    build_from_sdist: frozenset[str]
    from_apt: dict[str, str] = field(hash=False)   # canonical dist name -> Debian package


def load_policy(source_dir: Path, arch: str) -> Policy:
    path = Path(source_dir) / "release" / "packages.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        common, a = data["common"], data[arch]
        from_apt = {canonical(k): str(v) for k, v in (a.get("from_apt") or {}).items()}
        apt = [str(x) for x in common["apt"]] + sorted(set(from_apt.values()))
        return Policy(arch, tuple(dict.fromkeys(apt)), bool(a["system_site_packages"]), tuple(a.get("extras", [])),
                      frozenset(canonical(x) for x in a.get("build_from_sdist", [])), from_apt)
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as e:
        raise BuildError(f"The package policy {path} is missing or unreadable ({e}).") from None


@dataclass(frozen=True)
class LockEntry:
    name: str          # as the wheel names it
    version: str
    sha256: str
    filename: str
    sdist: bool = False

    @property
    def key(self) -> str:
        return canonical(self.name)

    def requirement(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


_LOCK_LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+) --hash=sha256:(?P<sha>[0-9a-f]{64})"
                        r"\s+#\s+(?P<kind>wheel|sdist) (?P<file>\S+)$")


def lock_path(source_dir: Path, arch: str) -> Path:
    return Path(source_dir) / "release" / f"lock-{arch}.txt"


def read_lock(path: Path) -> list[LockEntry]:
    """One pinned file per line: ``name==version --hash=sha256:H  # wheel|sdist FILENAME``
    (a pip requirements file, so ``pip download --require-hashes -r`` reads it too)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise BuildError(f"The lock file {path} is missing: run scripts/build-release --lock --arch ...") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _LOCK_LINE.match(line.strip())
        if not m:
            raise BuildError(f"Line {n} of {path} is not a lock entry.")
        out.append(LockEntry(m["name"], m["version"], m["sha"], m["file"], m["kind"] == "sdist"))
    return out


def _pyproject(source_dir: Path) -> dict:
    path = Path(source_dir) / "pyproject.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise BuildError(f"{path} is missing or unreadable ({e}).") from None


def runtime_pins(source_dir: Path, policy: Policy) -> dict[str, tuple[str, str]]:
    """{canonical name: (name, version)} of pyproject's runtime dependencies (+ the arch's extras).
    Every one must be an exact ``==`` pin: a range would make the lock the only truth."""
    project = _pyproject(source_dir)["project"]
    reqs = list(project.get("dependencies", []))
    for extra in policy.extras:
        reqs += project.get("optional-dependencies", {}).get(extra, [])
    pins = {}
    for r in reqs:
        m = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.+!_-]+)\s*$", r)
        if not m:
            raise BuildError(f"pyproject.toml's runtime dependency {r!r} is not an exact pin (name==version).")
        pins[canonical(m[1])] = (m[1], m[2])
    return pins


def check_lock_against_pyproject(source_dir: Path, arch: str, entries: Sequence[LockEntry] | None = None) -> None:
    """Raise BuildError when a pyproject pin and the lock disagree (pure: no pip, no network)."""
    policy = load_policy(source_dir, arch)
    entries = list(entries) if entries is not None else read_lock(lock_path(source_dir, arch))
    locked = {e.key: e for e in entries}
    for key, (name, version) in sorted(runtime_pins(source_dir, policy).items()):
        if key in policy.from_apt:
            if key in locked:
                raise BuildError(f"{name} comes from Debian ({policy.from_apt[key]}) on {arch} but is also "
                                 f"in {lock_path(source_dir, arch).name}.")
            continue
        e = locked.get(key)
        if e is None:
            raise BuildError(f"pyproject.toml pins {name}=={version} but release/lock-{arch}.txt does not lock it: "
                             f"run scripts/build-release --lock --arch {arch}.")
        if e.version != version:
            raise BuildError(f"pyproject.toml pins {name}=={version} but release/lock-{arch}.txt has {e.version}: "
                             f"run scripts/build-release --lock --arch {arch}.")
        if e.sdist != (key in policy.build_from_sdist):
            raise BuildError(f"release/lock-{arch}.txt takes {name} as {'an sdist' if e.sdist else 'a wheel'}, "
                             "unlike release/packages.toml: run scripts/build-release --lock.")


# ------------------------------------------------------------------ pip

def platform_tags(arch: str, *, local: bool = False) -> list[str]:
    """The manylinux tags a Debian 12 reader accepts (pip does not expand manylinux_2_X by itself)."""
    tags = [f"manylinux_2_{m}_{arch}" for m in range(GLIBC_MAX, 16, -1)] + [f"manylinux2014_{arch}"]
    if arch == "x86_64":
        tags += ["manylinux2010_x86_64", "manylinux_2_12_x86_64", "manylinux1_x86_64", "manylinux_2_5_x86_64"]
    if local:
        tags.append(f"linux_{arch}")   # wheels built here from an sdist
    return tags


def _target_flags(arch: str, *, local: bool = False) -> list[str]:
    flags = ["--only-binary=:all:", "--python-version", PYTHON, "--implementation", "cp",
             "--abi", "cp311", "--abi", "abi3", "--abi", "none"]
    for t in platform_tags(arch, local=local):
        flags += ["--platform", t]
    return flags


def _pip(args: list[str], what: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        tail = "\n".join(line for line in (r.stderr or r.stdout).strip().splitlines()[-6:]
                         if "is ignored" not in line)
        raise BuildError(f"pip could not {what}:\n{tail}")
    return r


@dataclass(frozen=True)
class Resolved:
    name: str
    version: str
    filename: str
    requested: bool


def resolve(requirements: Sequence[str], arch: str, *, find_links: Path | None = None) -> list[Resolved]:
    """pip's resolver for a Debian 12 / CPython 3.11 reader of ``arch``, wheels only, nothing
    installed. With ``find_links`` only that folder is searched (the closure check)."""
    with tempfile.TemporaryDirectory(prefix="myna-resolve-") as tmp:
        report = Path(tmp) / "report.json"
        args = ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
                "--target", str(Path(tmp) / "target"), *_target_flags(arch, local=find_links is not None)]
        if find_links is not None:
            args += ["--no-index", "--find-links", str(find_links)]
        _pip(args + list(requirements), f"resolve the runtime dependencies for {arch}")
        data = json.loads(report.read_text(encoding="utf-8"))
    out = []
    for item in data.get("install", []):
        url = item["download_info"]["url"]
        out.append(Resolved(item["metadata"]["name"], item["metadata"]["version"], url.rsplit("/", 1)[-1],
                            bool(item.get("requested"))))
    return sorted(out, key=lambda r: canonical(r.name))


def _download(entries: Sequence[LockEntry], arch: str, dest: Path) -> None:
    """Fetch exactly the locked files (``--require-hashes``) into ``dest``."""
    wheels = [e for e in entries if not e.sdist]
    sdists = [e for e in entries if e.sdist]
    req = dest / "requirements.txt"
    if wheels:
        req.write_text("".join(e.requirement() + "\n" for e in wheels), encoding="utf-8")
        _pip(["download", "--quiet", "--no-deps", "--require-hashes", "-d", str(dest), "-r", str(req),
              *_target_flags(arch)], f"download the locked {arch} wheels")
    if sdists:
        req.write_text("".join(e.requirement() + "\n" for e in sdists), encoding="utf-8")
        _pip(["download", "--quiet", "--no-deps", "--require-hashes", "--no-binary=:all:", "--no-build-isolation",
              "-d", str(dest), "-r", str(req)], "download the locked sdists")
    req.unlink()


def lock_dependencies(source_dir: Path | str, arch: str, *, wheelhouse: Path | None = None) -> Path:
    """Resolve pyproject's runtime dependencies for ``arch`` once and write release/lock-<arch>.txt
    with the exact file and sha256 of each (what pip actually downloaded, hashed here)."""
    source_dir = Path(source_dir)
    policy = load_policy(source_dir, arch)
    pins = runtime_pins(source_dir, policy)
    wheel_reqs = [f"{n}=={v}" for k, (n, v) in sorted(pins.items())
                  if k not in policy.from_apt and k not in policy.build_from_sdist]
    resolved = resolve(wheel_reqs, arch)
    for r in resolved:
        if canonical(r.name) in policy.from_apt:
            raise BuildError(f"{r.name} is needed by another wheel but comes from Debian on {arch}; "
                             "a venv cannot mix the two safely.")
    wheelhouse = Path(wheelhouse) if wheelhouse else source_dir / ".wheelhouse" / arch
    wheelhouse.mkdir(parents=True, exist_ok=True)
    entries: list[LockEntry] = []
    with tempfile.TemporaryDirectory(prefix="myna-lock-", dir=wheelhouse) as tmp:
        t = Path(tmp)
        reqs = [f"{r.name}=={r.version}" for r in resolved]
        _pip(["download", "--quiet", "--no-deps", "-d", str(t), *_target_flags(arch), *reqs],
             f"download the resolved {arch} wheels")
        sdist_reqs = [f"{n}=={v}" for k, (n, v) in sorted(pins.items()) if k in policy.build_from_sdist]
        if sdist_reqs:
            _pip(["download", "--quiet", "--no-deps", "--no-binary=:all:", "--no-build-isolation", "-d", str(t),
                  *sdist_reqs], "download the sdists to build")
        files = {p.name: p for p in t.iterdir()}
        for r in resolved:
            if r.filename not in files:
                raise BuildError(f"pip resolved {r.filename} but downloaded something else.")
            entries.append(LockEntry(r.name, r.version, hash_file(files[r.filename]).sha256, r.filename))
        for k, (n, v) in sorted(pins.items()):
            if k in policy.build_from_sdist:
                cands = [f for f in files if f.endswith((".tar.gz", ".zip")) and canonical(f.split("-")[0]) == k]
                if len(cands) != 1:
                    raise BuildError(f"pip did not download one sdist of {n}=={v}.")
                entries.append(LockEntry(n, v, hash_file(files[cands[0]]).sha256, cands[0], sdist=True))
        for p in files.values():
            os.replace(p, wheelhouse / p.name)
    entries.sort(key=lambda e: e.key)
    check_lock_against_pyproject(source_dir, arch, entries)
    apt_note = ", ".join(f"{k} ({v})" for k, v in sorted(policy.from_apt.items())) or "none"
    lines = [
        f"# myna-reader runtime dependencies for {arch} / CPython {PYTHON} / manylinux glibc <= 2.{GLIBC_MAX} "
        "(Debian 12).",
        "# Written by `scripts/build-release --lock` from pyproject.toml (+ release/packages.toml); do not edit.",
        f"# From Debian instead of a wheel: {apt_note}.",
        *(f"{e.requirement()}  # {'sdist' if e.sdist else 'wheel'} {e.filename}" for e in entries),
    ]
    out = lock_path(source_dir, arch)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


# ------------------------------------------------------------------ the wheelhouse

def _valid(path: Path, sha256: str) -> bool:
    return path.is_file() and hash_file(path).sha256 == sha256


def _build_sdist_wheel(sdist: Path, entry: LockEntry, out_dir: Path) -> Path:
    """Build a wheel from a hash-pinned sdist, reproducibly: the temp path is mapped to /build in
    the debug info (-ffile-prefix-map) and timestamps come from the sdist itself. Its own
    dependencies are not locked here: the closure check (pip, offline) fails if it has any."""
    import tarfile
    with tempfile.TemporaryDirectory(prefix="myna-sdist-") as tmp:
        t = Path(tmp)
        with tarfile.open(sdist) as tf:
            members = tf.getmembers()
            for m in members:   # (Python 3.11.2 has no extraction filter): plain files and folders inside t only
                if m.name.startswith("/") or ".." in m.name.split("/") or not (m.isreg() or m.isdir()):
                    raise BuildError(f"The sdist {sdist.name} holds an unsafe member {m.name!r}.")
            tf.extractall(t, members)
            epoch = max(m.mtime for m in members)
        (top,) = [p for p in t.iterdir() if p.is_dir()]
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(int(epoch)), PYTHONHASHSEED="0",
                   CFLAGS=f"-ffile-prefix-map={t}=/build -ffile-prefix-map={top}=/build")
        _pip(["wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir",
              "-w", str(t / "out"), str(top)], f"build {entry.name} {entry.version} from its sdist "
             "(it needs swig, gcc and libpcsclite-dev)", env=env)
        (whl,) = list((t / "out").glob("*.whl"))
        out_dir.mkdir(parents=True, exist_ok=True)
        dest = out_dir / whl.name
        shutil.move(str(whl), dest)
        return dest


def fetch_wheels(source_dir: Path, arch: str, wheelhouse: Path) -> list[Path]:
    """The dependency wheels for ``arch``, each checked against its lock hash; downloads only
    what the wheelhouse lacks."""
    entries = read_lock(lock_path(source_dir, arch))
    check_lock_against_pyproject(source_dir, arch, entries)
    wheelhouse.mkdir(parents=True, exist_ok=True)
    missing = [e for e in entries if not _valid(wheelhouse / e.filename, e.sha256)]
    if missing:
        with tempfile.TemporaryDirectory(prefix="myna-fetch-", dir=wheelhouse) as tmp:
            _download(missing, arch, Path(tmp))
            for e in missing:
                got = Path(tmp) / e.filename
                if not _valid(got, e.sha256):
                    raise BuildError(f"The downloaded {e.filename} does not match its lock hash.")
                os.replace(got, wheelhouse / e.filename)
    out = []
    for e in entries:
        if e.sdist:
            built_dir = wheelhouse / "built" / e.sha256[:16]
            built = sorted(built_dir.glob("*.whl")) if built_dir.is_dir() else []
            out.append(built[0] if built else _build_sdist_wheel(wheelhouse / e.filename, e, built_dir))
        else:
            out.append(wheelhouse / e.filename)
    return out


# ------------------------------------------------------------------ the source tree

def _git(source_dir: Path, *args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(source_dir), *args], capture_output=True, text=True)
    except OSError:
        return None
    return r.stdout if r.returncode == 0 else None


def _gitignore_patterns(root: Path) -> list[str]:
    try:
        lines = (root / ".gitignore").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith(("#", "!"))]


def _ignored(rel: str, is_dir: bool, patterns: list[str]) -> bool:
    parts = rel.split("/")
    if parts[-1] in _SKIP_ALWAYS:
        return True
    for p in patterns:
        dir_only = p.endswith("/")
        p = p.rstrip("/")
        if dir_only and not is_dir:
            continue
        if p.startswith("/") or "/" in p:
            if fnmatch(rel, p.lstrip("/")):
                return True
        elif fnmatch(parts[-1], p):
            return True
    return False


@dataclass(frozen=True)
class SourceTree:
    """The files a build takes from ``root``, with the commit and its time.

    In a git work tree: ``git ls-files --cached --others --exclude-standard`` (what git would
    commit; a clean checkout gives exactly HEAD), commit = HEAD (+ "-dirty" when the tree
    differs from it), time = HEAD's commit time. Elsewhere (a copied tree in a test): every
    file not matched by its .gitignore, with commit and time given by the caller.
    """

    root: Path
    files: tuple[str, ...]
    commit: str
    source_date_epoch: int
    dirty: bool

    @classmethod
    def scan(cls, root: Path | str, *, commit: str | None = None, source_date_epoch: int | None = None) -> "SourceTree":
        root = Path(root).resolve()
        listed = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        top = _git(root, "rev-parse", "--show-toplevel")
        if listed is not None and top is not None and Path(top.strip()).resolve() == root:
            files = sorted(f for f in set(listed.split("\0")) if f and (root / f).is_file()
                           and not (root / f).is_symlink())
            head = (_git(root, "rev-parse", "HEAD") or "").strip()
            status = _git(root, "status", "--porcelain", "--untracked-files=normal") or ""
            dirty = bool(status.strip())
            if commit is None:
                commit = (head[:40] + ("-dirty" if dirty else "")) if head else "uncommitted"
            if source_date_epoch is None:
                t = (_git(root, "log", "-1", "--format=%ct") or "").strip()
                source_date_epoch = int(t) if t else None
        else:
            pats = _gitignore_patterns(root)
            found: list[str] = []
            for dirpath, dirnames, filenames in os.walk(root):
                base = Path(dirpath).relative_to(root)
                dirnames[:] = sorted(d for d in dirnames
                                     if not _ignored((base / d).as_posix(), True, pats)
                                     and not (Path(dirpath) / d).is_symlink())
                found += [(base / f).as_posix() for f in filenames
                          if not _ignored((base / f).as_posix(), False, pats) and (Path(dirpath) / f).is_file()
                          and not (Path(dirpath) / f).is_symlink()]
            files = sorted(found)
            dirty = True
            commit = commit or "unknown"
        if source_date_epoch is None:
            env = os.environ.get("SOURCE_DATE_EPOCH")
            if not env or not env.isdigit():
                raise BuildError(f"{root} is not a git work tree with a commit: give source_date_epoch "
                                 "(or set SOURCE_DATE_EPOCH).")
            source_date_epoch = int(env)
        return cls(root, tuple(files), commit, int(source_date_epoch), dirty)

    def under(self, prefix: str) -> list[str]:
        return [f for f in self.files if f.startswith(prefix)]


def _copy_tree(src: SourceTree, dest: Path, epoch: int) -> None:
    """Copy the listed files with normalised modes and times (the umask and checkout time of
    this machine must not reach the wheel)."""
    for rel in src.files:
        s, d = src.root / rel, dest / rel
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s, d)
        os.chmod(d, 0o755 if os.stat(s).st_mode & 0o100 else 0o644)
        os.utime(d, (epoch, epoch))


def _set_version(pyproject: Path, version: str) -> None:
    text = pyproject.read_text(encoding="utf-8")
    new, n = re.subn(r'(?m)^version\s*=\s*"[^"]*"', f'version = "{version}"', text, count=1)
    if n != 1:
        raise BuildError("pyproject.toml has no version line to set.")
    pyproject.write_text(new, encoding="utf-8")


def check_build_tools(source_dir: Path) -> None:
    """The setuptools that builds the project wheel must be the one release/packages.toml pins."""
    from importlib.metadata import PackageNotFoundError, version as dist_version
    path = Path(source_dir) / "release" / "packages.toml"
    try:
        want = str(tomllib.loads(path.read_text(encoding="utf-8"))["build"]["setuptools"])
    except (OSError, tomllib.TOMLDecodeError, KeyError) as e:
        raise BuildError(f"{path} has no [build] setuptools pin ({e}).") from None
    try:
        have = dist_version("setuptools")
    except PackageNotFoundError:
        have = "none"
    if have != want:
        raise BuildError(f"Reproducible bundles are built with setuptools {want}, but this venv has {have}: "
                         f"{sys.executable} -m pip install setuptools=={want}.")


def build_project_wheel(src: SourceTree, version: str, work: Path) -> Path:
    """myna_reader-<version>-py3-none-any.whl from ``src``'s files, offline and reproducibly."""
    check_build_tools(src.root)
    tree = work / "src"
    _copy_tree(src, tree, src.source_date_epoch)
    _set_version(tree / "pyproject.toml", version)
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(src.source_date_epoch), PYTHONHASHSEED="0")
    _pip(["wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir",
          "-w", str(work / "wheel"), str(tree)], "build the project wheel (setuptools must be in this venv)", env=env)
    (whl,) = list((work / "wheel").glob("*.whl"))
    expected = f"myna_reader-{version}-py3-none-any.whl"
    if whl.name != expected:
        raise BuildError(f"The project wheel is {whl.name}, not {expected}.")
    return whl


# ------------------------------------------------------------------ models

def select_models(source_dir: Path, models_dir: Path) -> dict[str, Path]:
    """{bundle path: file} of the model files the face engine loads by default, each checked
    against the model manifest: the first detector and recognizer by preference (what
    FaceEngine picks) and every anti-spoofing net. An alternative recognizer (fp32 SFace) is
    listed in the manifest but not shipped."""
    man_path = Path(source_dir) / "models" / "myna_models" / "manifest.toml"
    try:
        data = tomllib.loads(man_path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise BuildError(f"The model manifest {man_path} is missing or unreadable ({e}).") from None
    models = data.get("model") or []

    def by_role(role: str) -> list[dict]:
        return sorted((m for m in models if m.get("role") == role), key=lambda m: int(m.get("preference", 0)))

    chosen = by_role("detector")[:1] + by_role("recognizer")[:1] + by_role("antispoof")
    if not chosen:
        raise BuildError(f"The model manifest {man_path} lists no models.")
    out = {"models/manifest.toml": man_path}
    for m in chosen:
        p = Path(models_dir) / m["file"]
        if not p.is_file():
            raise BuildError(f"The model file {p} is missing (scripts/fetch_assets.py installs it).")
        got = hash_file(p)
        if got.size != int(m["size"]) or got.sha256 != str(m["sha256"]).lower():
            raise BuildError(f"The model file {p} does not match its hash in {man_path}.")
        out[f"models/{m['file']}"] = p
    return out


# ------------------------------------------------------------------ the bundle

def _wheel_installed_bytes(whl: Path) -> int:
    """What a wheel takes once installed: its files, their bytecode and the block slack."""
    with zipfile.ZipFile(whl) as z:
        infos = z.infolist()
    py = [i.file_size for i in infos if i.filename.endswith(".py")]
    return sum(i.file_size for i in infos) + int(PYC_FACTOR * sum(py)) + FILE_SLACK * (len(infos) + len(py))


def build_bundle(source_dir: Path | str, arch: str, out_dir: Path | str, private_key_path: Path | str, *,
                 version: str | None = None, wheelhouse: Path | str | None = None,
                 models_dir: Path | str | None = None, commit: str | None = None,
                 source_date_epoch: int | None = None, key_password: bytes | None = None,
                 allow_dirty: bool = True) -> Path:
    """Build ``out_dir/myna-reader-<version>-<arch>.tar`` and return its path.

    ``version`` overrides pyproject's (patched in a temp copy; the tree is never modified).
    ``wheelhouse`` caches dependency wheels (default ``<source_dir>/.wheelhouse/<arch>``);
    ``models_dir`` holds the model files (default ``<source_dir>/assets/models``).
    """
    if arch not in ARCHES:
        raise BuildError(f"{arch!r} is not a bundle architecture ({', '.join(ARCHES)}).")
    src = SourceTree.scan(source_dir, commit=commit, source_date_epoch=source_date_epoch)
    if src.dirty and not allow_dirty:
        raise BuildError(f"{src.root} has uncommitted changes; commit them (or pass --allow-dirty for a test build).")
    version = version or str(_pyproject(src.root)["project"]["version"])
    version_key(version)  # BundleRefused("bad-version") with its sentence
    policy = load_policy(src.root, arch)
    key = load_private_key(private_key_path, password=key_password)
    wheelhouse = Path(wheelhouse) if wheelhouse else src.root / ".wheelhouse" / arch
    models_dir = Path(models_dir) if models_dir else src.root / "assets" / "models"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    deps = fetch_wheels(src.root, arch, wheelhouse)
    with tempfile.TemporaryDirectory(prefix="myna-build-") as tmp:
        work = Path(tmp)
        project = build_project_wheel(src, version, work)
        check_closure(src.root, arch, policy, deps, work / "closure")
        sources: dict[str, Path] = {}
        install_sh = src.root / "daemon/mynad/release/install.sh"
        if "daemon/mynad/release/install.sh" not in src.files:
            raise BuildError(f"The install script {install_sh} is missing.")
        sources["install"] = install_sh
        for rel in src.under("daemon/mynad/release/"):
            if rel.endswith(".py") and rel.count("/") == 3:
                sources[f"installer/myna_release/{Path(rel).name}"] = src.root / rel
        for w in [project, *deps]:
            sources[f"wheels/{w.name}"] = w
        sources.update(select_models(src.root, models_dir))
        for prefix in ("systemd/", "config/"):
            for rel in src.under(prefix):
                sources[rel] = src.root / rel
        files = file_entries(sources)
        wheel_bytes = sum(_wheel_installed_bytes(w) for w in [project, *deps])
        other = sum(e.size for rel, e in files.items() if not rel.startswith("wheels/"))
        installed = VENV_BASE_BYTES + wheel_bytes + other
        installed = -(-installed // (1024 * 1024)) * 1024 * 1024
        manifest = Manifest(version=version, arch=arch, commit=src.commit, source_date_epoch=src.source_date_epoch,
                            files=files, apt=policy.apt, system_site_packages=policy.system_site_packages,
                            installed_size=installed, python=PYTHON)
        return write_bundle(out_dir / manifest.tar_name, manifest, sources, key)


def check_closure(source_dir: Path, arch: str, policy: Policy, deps: list[Path], tmp: Path) -> None:
    """pip, offline, must resolve the runtime pins from exactly these wheels and need no other:
    a lock missing a transitive dependency (or holding a stale one) fails here."""
    tmp.mkdir()
    for w in deps:
        os.symlink(w.resolve(), tmp / w.name)
    pins = runtime_pins(source_dir, policy)
    reqs = [f"{n}=={v}" for k, (n, v) in sorted(pins.items()) if k not in policy.from_apt]
    got = {canonical(r.name) for r in resolve(reqs, arch, find_links=tmp)}
    have = {canonical(w.name.split("-")[0]) for w in deps}
    if got != have:
        extra = sorted(have - got)
        raise BuildError(f"release/lock-{arch}.txt holds wheels nothing needs ({', '.join(extra)}): "
                         f"run scripts/build-release --lock --arch {arch}.")


# ------------------------------------------------------------------ CLI

def _repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="build-release", description="Build a signed, reproducible release bundle.")
    ap.add_argument("--arch", choices=ARCHES)
    ap.add_argument("--key", help="Ed25519 private key (PEM); never kept in the repository. Passphrase, if any, "
                                  "from $MYNA_RELEASE_KEY_PASSPHRASE")
    ap.add_argument("--version", help="release version (default: pyproject.toml's)")
    ap.add_argument("--out", default="dist", help="output folder (default: dist)")
    ap.add_argument("--source", default=str(_repo_root()), help="source tree (default: this repository)")
    ap.add_argument("--wheelhouse", help="wheel cache (default: <source>/.wheelhouse/<arch>)")
    ap.add_argument("--models", help="model files (default: <source>/assets/models)")
    ap.add_argument("--allow-dirty", action="store_true", help="build from a tree with uncommitted changes")
    ap.add_argument("--lock", action="store_true", help="re-resolve and write release/lock-<arch>.txt, then exit")
    ap.add_argument("--generate-key", metavar="PATH", help="make a new key pair PATH and PATH.pub, then exit")
    a = ap.parse_args(argv)
    try:
        if a.generate_key:
            fp = generate_keypair(a.generate_key, a.generate_key + ".pub")
            print(f"private key: {a.generate_key} (keep it off the repository)\npublic key: {a.generate_key}.pub "
                  f"(install on readers in /etc/myna-reader/release-keys/)\nfingerprint: {fp}")
            return 0
        if not a.arch:
            ap.error("--arch is required")
        if a.lock:
            path = lock_dependencies(a.source, a.arch, wheelhouse=Path(a.wheelhouse) if a.wheelhouse else None)
            print(f"wrote {path}")
            return 0
        if not a.key:
            ap.error("--key is required")
        pw = os.environ.get("MYNA_RELEASE_KEY_PASSPHRASE")
        t0 = time.monotonic()
        path = build_bundle(a.source, a.arch, a.out, a.key, version=a.version, wheelhouse=a.wheelhouse,
                            models_dir=a.models, allow_dirty=a.allow_dirty,
                            key_password=pw.encode() if pw else None)
        secs = time.monotonic() - t0
    except BuildError as e:
        print(f"build-release: {e}", file=sys.stderr)
        return 1
    except (KeyFileError, BundleRefused) as e:   # a bad key, a version that is not dotted integers
        print(f"build-release: {e}", file=sys.stderr)
        return 1
    _print_summary(path, secs, load_private_key(a.key, password=pw.encode() if pw else None))
    return 0


def _print_summary(path: Path, secs: float, key: Ed25519PrivateKey) -> None:
    import tarfile
    with tarfile.open(path) as tf:
        first = tf.next()
        assert first is not None and first.name.endswith(MANIFEST_NAME)
        f = tf.extractfile(first)
        assert f is not None
        m = Manifest.from_bytes(f.read())
    e: FileEntry = hash_file(path)
    print(f"{path}\n  sha256 {e.sha256}\n  size {e.size / 1e6:.1f} MB, installed ~{m.installed_size / 1e6:.0f} MB, "
          f"built in {secs:.1f} s\n  version {m.version}, arch {m.arch}, commit {m.commit}, "
          f"source_date_epoch {m.source_date_epoch}\n  signed by {fingerprint(key)}"
          f"\n  apt: {' '.join(m.apt)}\n  system_site_packages: {str(m.system_site_packages).lower()}\n  wheels:")
    for w in m.wheels:
        print(f"    {w[7:]}  {m.files[w].size / 1e6:.1f} MB")


if __name__ == "__main__":
    sys.exit(main())
