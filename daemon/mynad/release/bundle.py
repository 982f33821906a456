"""The signed release bundle: its manifest, the deterministic tar writer, and the checks that
must pass before any byte of a bundle reaches a reader's disk.

A bundle is one uncompressed tar ``myna-reader-<version>-<arch>.tar`` whose first member is
``MANIFEST.json`` (canonical JSON: every other member's size and sha256, plus what the
install needs to know) and whose second is ``MANIFEST.sig`` (a raw Ed25519 signature over
those exact bytes). Why this shape:

* one signature covers everything, yet the reader can check it *before* writing anything:
  the manifest comes first, so the unpacker verifies it, then hashes every following member
  while it writes it, in one pass over a file that may have arrived over a serial line;
* uncompressed, because the wheels inside are zip files already (gzip would save ~1 %) and a
  plain tar can be cut at any byte and still be recognised as truncated;
* deterministic (sorted members, mtime = the commit's time, uid/gid 0, no user names,
  modes by rule), so the same commit gives the same sha256 on any build machine with the
  same inputs, and a technician can compare it with the published one.

Errors are ``BundleRefused``: ``str()`` is one plain sentence for a technician, ``.reason``
a short fixed word for programs and tests. On refusal nothing is left behind.

stdlib + cryptography only (this file also runs under Debian's python3 at first install).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import shutil
import stat
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .atomic import fsync_dir
from .keys import KeyFileError, load_public_keys

__all__ = [
    "BundleRefused", "FileEntry", "Manifest", "version_key", "host_arch", "member_mode", "member_order",
    "hash_file", "file_entries", "write_bundle", "unpack_verified", "verify_tree", "read_verified_manifest",
    "FORMAT", "NAME", "ARCHES", "MANIFEST_NAME", "SIG_NAME", "INSTALL_NAME",
]

FORMAT = 1
NAME = "myna-reader"
ARCHES = ("aarch64", "x86_64")
MANIFEST_NAME = "MANIFEST.json"
SIG_NAME = "MANIFEST.sig"
INSTALL_NAME = "install"
SIG_SIZE = 64
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# Member order after the manifest and its signature: the install command first (what a
# technician looks for in `tar tf`), then what it needs, in the order it needs it.
MEMBER_GROUPS = ("install", "installer/", "wheels/", "models/", "systemd/", "config/")
# Modes are a rule, not data: the tar header is not covered by the signature, so the unpacker
# never takes a mode from it.
EXECUTABLES = frozenset({INSTALL_NAME})
# Dotted integers, 1 to 4 parts, no leading zeros (a wheel would normalise "0.09" to "0.9").
_VERSION_RE = re.compile(r"^(0|[1-9][0-9]{0,8})(\.(0|[1-9][0-9]{0,8})){0,3}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024


class BundleRefused(Exception):
    """A bundle that must not be installed. ``str()`` is one plain sentence; ``reason`` one of:
    unreadable, malformed, unsigned, no-keys, bad-signature, tampered, truncated, extra-member,
    unsafe-member, wrong-arch, wrong-python, not-newer, no-space, bad-version, exists."""

    def __init__(self, reason: str, sentence: str) -> None:
        super().__init__(sentence)
        self.reason = reason


# ------------------------------------------------------------------ pure rules

def version_key(v: str) -> tuple[int, int, int, int]:
    """Sort key of a release version ("0.9.2" -> (0, 9, 2, 0)); refuse anything else.

    Padded to four parts so "0.9" and "0.9.0" are the same release (neither is newer)."""
    if not isinstance(v, str) or not _VERSION_RE.match(v):
        raise BundleRefused("bad-version", f"The version {v!r} is not a release version (dotted integers such as 0.9.2).")
    a, b, c, d = ([int(p) for p in v.split(".")] + [0, 0, 0])[:4]
    return a, b, c, d


def host_arch() -> str:
    """This machine's bundle arch name ("aarch64" or "x86_64"), or its raw machine name."""
    m = platform.machine().lower()
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(m, m)


def member_mode(rel: str) -> int:
    return 0o755 if rel in EXECUTABLES else 0o644


def member_order(rel: str) -> tuple[int, bytes]:
    """Sort key of a member path (relative to the top folder) in the tar."""
    for i, g in enumerate(MEMBER_GROUPS):
        if rel == g or (g.endswith("/") and rel.startswith(g)):
            return i, rel.encode("utf-8")
    return len(MEMBER_GROUPS), rel.encode("utf-8")


def _safe_relpath(rel: Any) -> bool:
    """A member path a reader may write: relative, plain components, no control characters."""
    if not isinstance(rel, str) or not rel or len(rel) > 1024 or rel.startswith("/"):
        return False
    if any(ord(c) < 0x20 or c in "\x7f\\" for c in rel):
        return False
    parts = rel.split("/")
    if any(p in ("", ".", "..") or len(p.encode("utf-8")) > 255 for p in parts):
        return False
    return rel not in (MANIFEST_NAME, SIG_NAME)


# ------------------------------------------------------------------ manifest

@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """What MANIFEST.json says. Field names are the JSON keys."""

    version: str
    arch: str
    commit: str
    source_date_epoch: int
    files: Mapping[str, FileEntry]
    apt: tuple[str, ...] = ()
    system_site_packages: bool = False
    installed_size: int = 0
    python: str = "3.11"
    name: str = NAME
    format: int = FORMAT

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(problem)

    def _problem(self) -> str | None:
        if self.format != FORMAT:
            return f"format {self.format!r} is not one this installer reads (it reads {FORMAT})"
        if self.name != NAME:
            return f"it is for {self.name!r}, not {NAME}"
        if not isinstance(self.version, str) or not _VERSION_RE.match(self.version):
            return f"its version {self.version!r} is not dotted integers"
        if self.arch not in ARCHES:
            return f"its architecture {self.arch!r} is unknown"
        if not isinstance(self.python, str) or not re.match(r"^3\.[0-9]{1,2}$", self.python):
            return f"its Python version {self.python!r} is malformed"
        if not isinstance(self.commit, str) or not re.match(r"^[0-9a-zA-Z.+_-]{1,80}$", self.commit):
            return "its commit is malformed"
        for k in ("source_date_epoch", "installed_size"):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                return f"its {k} is not a non-negative integer"
        if not isinstance(self.system_site_packages, bool):
            return "its system_site_packages is not true or false"
        if not all(isinstance(a, str) and re.match(r"^[a-z0-9][a-z0-9.+-]{0,100}$", a) for a in self.apt):
            return "its apt list holds something that is not a Debian package name"
        if not self.files:
            return "it lists no files"
        for rel, e in self.files.items():
            if not _safe_relpath(rel):
                return f"it lists an unsafe file name {rel!r}"
            if not isinstance(e, FileEntry) or not isinstance(e.sha256, str) or not _HEX64.match(e.sha256) \
                    or not isinstance(e.size, int) or isinstance(e.size, bool) or e.size < 0:
                return f"its entry for {rel} is malformed"
        return None

    @property
    def top_dir(self) -> str:
        return f"{self.name}-{self.version}-{self.arch}"

    @property
    def tar_name(self) -> str:
        return f"{self.top_dir}.tar"

    @property
    def payload_size(self) -> int:
        """Bytes of every member once unpacked (manifest and signature included)."""
        return sum(e.size for e in self.files.values()) + len(self.to_bytes()) + SIG_SIZE

    @property
    def required_bytes(self) -> int:
        """Free space unpack_verified asks for: the unpacked bundle plus the installed release
        (venv, models) made from it, both on the same file system at the worst moment."""
        return self.payload_size + self.installed_size

    @property
    def wheels(self) -> list[str]:
        return sorted(r for r in self.files if r.startswith("wheels/") and r.endswith(".whl"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format, "name": self.name, "version": self.version, "arch": self.arch,
            "python": self.python, "commit": self.commit, "source_date_epoch": self.source_date_epoch,
            "apt": list(self.apt), "system_site_packages": self.system_site_packages,
            "installed_size": self.installed_size,
            "files": {k: {"sha256": v.sha256, "size": v.size} for k, v in sorted(self.files.items())},
        }

    def to_bytes(self) -> bytes:
        """Canonical JSON: sorted keys, no spaces, UTF-8, no trailing newline."""
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> "Manifest":
        """Parse strictly: duplicate keys, unknown keys and wrong types are refused, never guessed."""
        def no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            d: dict[str, Any] = {}
            for k, v in pairs:
                if k in d:
                    raise ValueError(f"the key {k!r} appears twice")
                d[k] = v
            return d
        try:
            obj = json.loads(data.decode("utf-8"), object_pairs_hook=no_dupes)
            if not isinstance(obj, dict):
                raise ValueError("it is not a JSON object")
            known = {"format", "name", "version", "arch", "python", "commit", "source_date_epoch", "apt",
                     "system_site_packages", "installed_size", "files"}
            if obj.get("format") != FORMAT:
                raise ValueError(f"format {obj.get('format')!r} is not one this installer reads (it reads {FORMAT})")
            missing = known - obj.keys()
            if missing:
                raise ValueError(f"it lacks {', '.join(sorted(missing))}")
            unknown = obj.keys() - known
            if unknown:
                raise ValueError(f"it has unknown keys {', '.join(sorted(unknown))}")
            files_obj = obj["files"]
            if not isinstance(files_obj, dict) or not isinstance(obj["apt"], list):
                raise ValueError("its files or apt entry has the wrong type")
            files: dict[str, FileEntry] = {}
            for rel, e in files_obj.items():
                if not isinstance(e, dict) or set(e) != {"sha256", "size"}:
                    raise ValueError(f"its entry for {rel!r} is malformed")
                files[rel] = FileEntry(e["sha256"], e["size"])
            return cls(version=obj["version"], arch=obj["arch"], commit=obj["commit"],
                       source_date_epoch=obj["source_date_epoch"], files=files, apt=tuple(obj["apt"]),
                       system_site_packages=obj["system_site_packages"], installed_size=obj["installed_size"],
                       python=obj["python"], name=obj["name"], format=obj["format"])
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BundleRefused("malformed", f"The bundle's manifest is not valid JSON ({e.__class__.__name__}).") \
                from None
        except ValueError as e:
            raise BundleRefused("malformed", f"The bundle's manifest is unusable: {e}.") from None


# ------------------------------------------------------------------ hashing

def hash_file(path: Path) -> FileEntry:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(_CHUNK)
            if not block:
                break
            h.update(block)
            size += len(block)
    return FileEntry(h.hexdigest(), size)


def file_entries(sources: Mapping[str, Path]) -> dict[str, FileEntry]:
    """Manifest ``files`` for the members ``{relpath: source file}``."""
    return {rel: hash_file(Path(src)) for rel, src in sorted(sources.items())}


# ------------------------------------------------------------------ writing

def _tarinfo(name: str, size: int, mode: int, mtime: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = size, mode, mtime
    ti.type = tarfile.REGTYPE
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def write_bundle(out_path: Path | str, manifest: Manifest, sources: Mapping[str, Path],
                 private_key: Ed25519PrivateKey) -> Path:
    """Write the signed, deterministic tar; ``sources`` maps every manifest file to its source.

    Each source is re-hashed while it is copied into the tar: a file that changed after the
    manifest was made (an editor saving, a concurrent build) fails the build instead of
    producing a bundle every reader would refuse. Written beside ``out_path`` and renamed.
    """
    out_path = Path(out_path)
    if set(sources) != set(manifest.files):
        raise ValueError("the sources and the manifest list different files")
    mbytes = manifest.to_bytes()
    sig = private_key.sign(mbytes)
    top = manifest.top_dir
    epoch = manifest.source_date_epoch
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.partial")
    try:
        with open(tmp, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tf:
                tf.addfile(_tarinfo(f"{top}/{MANIFEST_NAME}", len(mbytes), 0o644, epoch), io.BytesIO(mbytes))
                tf.addfile(_tarinfo(f"{top}/{SIG_NAME}", len(sig), 0o644, epoch), io.BytesIO(sig))
                for rel in sorted(manifest.files, key=member_order):
                    entry = manifest.files[rel]
                    with open(sources[rel], "rb") as src:
                        hashing = _HashingReader(src)
                        # addfile only calls read(): the wrapper hashes exactly the bytes that go in
                        tf.addfile(_tarinfo(f"{top}/{rel}", entry.size, member_mode(rel), epoch),
                                   cast(IO[bytes], hashing))
                        if hashing.size != entry.size or hashing.hexdigest() != entry.sha256 or src.read(1):
                            raise ValueError(f"{sources[rel]} changed while the bundle was written")
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out_path


class _HashingReader:
    """File wrapper that hashes what tarfile reads from it."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._h = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        b = self._f.read(n)
        self._h.update(b)
        self.size += len(b)
        return b

    def hexdigest(self) -> str:
        return self._h.hexdigest()


# ------------------------------------------------------------------ checking

def _trusted(trusted_keys: Sequence[Ed25519PublicKey] | Path | str) -> list[Ed25519PublicKey]:
    if isinstance(trusted_keys, (str, Path)):
        try:
            keys = load_public_keys(trusted_keys)
        except KeyFileError as e:
            raise BundleRefused("no-keys", str(e)) from None
    else:
        keys = list(trusted_keys)
    if not keys:
        raise BundleRefused("no-keys", "No trusted release key is installed, so no bundle can be accepted.")
    return keys


def _verify_signature(mbytes: bytes, sig: bytes, keys: Iterable[Ed25519PublicKey]) -> None:
    if len(sig) != SIG_SIZE:
        raise BundleRefused("unsigned", "The bundle's signature is missing or has the wrong length.")
    for k in keys:
        try:
            k.verify(sig, mbytes)
            return
        except InvalidSignature:
            continue
    raise BundleRefused("bad-signature", "The bundle is not signed by a trusted release key.")


def _check_target(m: Manifest, arch: str | None, installed_version: str | None, force: bool,
                  python: str | None) -> None:
    want_arch = arch or host_arch()
    if m.arch != want_arch:
        raise BundleRefused("wrong-arch", f"The bundle is for {m.arch}, but this reader is {want_arch}.")
    want_py = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    if m.python != want_py:
        raise BundleRefused("wrong-python", f"The bundle needs Python {m.python}, but this reader has Python {want_py}.")
    if installed_version is not None and not force:
        if version_key(m.version) <= version_key(installed_version):
            same = version_key(m.version) == version_key(installed_version)
            raise BundleRefused("not-newer", f"The bundle's version {m.version} is "
                                f"{'the same as' if same else 'older than'} the installed {installed_version} "
                                "(use force to install it anyway).")


def _check_space(m: Manifest, need: int, free_bytes: int | None, where: Path) -> None:
    free = free_bytes if free_bytes is not None else shutil.disk_usage(where).free
    if free < need:
        raise BundleRefused("no-space", f"The bundle needs {_mib(need)} of free disk space, "
                            f"but only {_mib(free)} is free.")


def _mib(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.0f} MiB"
    return f"{-(-n // 1024)} KiB"


def _missing(n: int, total: int, first: str) -> str:
    return f"{n} of its {total} files {'is' if n == 1 else 'are'} missing (first: {first})"


def _read_member(tf: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if member.size > limit:
        raise BundleRefused("malformed", f"The bundle's {Path(member.name).name} is too large.")
    f = tf.extractfile(member)
    assert f is not None  # regular members always have data
    data = f.read()
    if len(data) != member.size:
        raise BundleRefused("truncated", "The bundle is truncated.")
    return data


def _next(tf: tarfile.TarFile, where: str) -> tarfile.TarInfo | None:
    try:
        return tf.next()
    except (tarfile.ReadError, EOFError) as e:
        if "end of data" in str(e) or "truncated" in str(e) or isinstance(e, EOFError):
            raise BundleRefused("truncated", f"The bundle is truncated ({where}).") from None
        raise BundleRefused("malformed", f"The bundle is damaged ({where}: {e}).") from None
    except tarfile.TarError as e:
        raise BundleRefused("malformed", f"The bundle is damaged ({where}: {e}).") from None


def _kind(m: tarfile.TarInfo) -> str:
    if m.issym() or m.islnk():
        return "link"
    if m.isdir():
        return "folder"
    if m.isdev() or m.isfifo():
        return "device"
    return "special file"


def _head(tf: tarfile.TarFile, keys: list[Ed25519PublicKey]) -> tuple[Manifest, bytes, bytes, str]:
    """The first two members: the manifest and its signature, verified."""
    first = _next(tf, "at its start")
    if first is None or not first.isreg() or first.name.count("/") != 1 or not first.name.endswith("/" + MANIFEST_NAME):
        raise BundleRefused("unsigned", "The file does not start with a release manifest, so it is not a signed bundle.")
    top = first.name.split("/")[0]
    mbytes = _read_member(tf, first, MAX_MANIFEST_BYTES)
    second = _next(tf, "after the manifest")
    if second is None or second.name != f"{top}/{SIG_NAME}" or not second.isreg():
        raise BundleRefused("unsigned", "The bundle carries no signature.")
    sig = _read_member(tf, second, SIG_SIZE)
    _verify_signature(mbytes, sig, keys)
    manifest = Manifest.from_bytes(mbytes)
    if top != manifest.top_dir:
        raise BundleRefused("malformed", f"The bundle's top folder {top!r} does not match its manifest "
                            f"({manifest.top_dir}).")
    return manifest, mbytes, sig, top


def _open_tar(tar_path: Path) -> IO[bytes]:
    try:
        return open(tar_path, "rb")
    except OSError as e:
        raise BundleRefused("unreadable", f"The bundle file {tar_path} cannot be read ({e.strerror}).") from None


def _open_stream(f: IO[bytes]) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=f, mode="r|", encoding="utf-8", errors="strict")
    except tarfile.ReadError as e:
        if "empty" in str(e):
            raise BundleRefused("truncated", "The bundle file is empty.") from None
        raise BundleRefused("malformed", "The file is not a release bundle (not a tar file).") from None


def read_verified_manifest(tar_path: Path | str, trusted_keys: Sequence[Ed25519PublicKey] | Path | str) -> Manifest:
    """The bundle's signed manifest, read without unpacking anything (e.g. to show its version
    before asking the technician). Only the signature is checked, not the members."""
    keys = _trusted(trusted_keys)
    with _open_tar(Path(tar_path)) as f, _open_stream(f) as tf:
        return _head(tf, keys)[0]


def _write_fsynced(path: Path, src: IO[bytes] | bytes, mode: int, size: int) -> str:
    """Create ``path`` (never following or replacing anything), copy ``size`` bytes, fsync;
    return the sha256 of what was written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    h = hashlib.sha256()
    written = 0
    with os.fdopen(fd, "wb") as out:
        if isinstance(src, bytes):
            out.write(src)
            h.update(src)
            written = len(src)
        else:
            while written < size:
                block = src.read(min(_CHUNK, size - written))
                if not block:
                    break
                h.update(block)
                out.write(block)
                written += len(block)
        out.flush()
        os.fsync(out.fileno())
    if written != size:
        raise BundleRefused("truncated", f"The bundle is truncated (it ends inside {path.name}).")
    os.chmod(path, mode)  # not subject to the umask
    return h.hexdigest()


def _altered(rel: str) -> BundleRefused:
    return BundleRefused("tampered", f"The bundle's {rel} has been altered (its sha256 differs from "
                         "the signed manifest).")


def unpack_verified(tar_path: Path | str, dest_dir: Path | str, trusted_keys: Sequence[Ed25519PublicKey] | Path | str,
                    *, arch: str | None = None, installed_version: str | None = None, force: bool = False,
                    free_bytes: int | None = None, python: str | None = None) -> Manifest:
    """Check and unpack a bundle into ``dest_dir`` (which must not exist) in one pass.

    The manifest and its signature are read and verified first, then the target checks
    (architecture: ``arch`` or this machine's; Python: ``python`` or this interpreter's;
    newer than ``installed_version`` unless ``force``; ``required_bytes`` free, measured at
    dest_dir's parent unless ``free_bytes`` is given); only then is anything written, into a
    hidden temp folder beside ``dest_dir``, every member hashed as it is written. The temp
    folder becomes ``dest_dir`` by one rename after the last check; on any refusal or error
    it is removed, so nothing is left behind. ``dest_dir`` holds the members without the
    bundle's top folder (MANIFEST.json, MANIFEST.sig, install, wheels/...).
    """
    dest = Path(dest_dir)
    if dest.exists() or dest.is_symlink():
        raise BundleRefused("exists", f"The folder {dest} already exists; a release is never unpacked over another.")
    keys = _trusted(trusted_keys)
    with _open_tar(Path(tar_path)) as f, _open_stream(f) as tf:
        manifest, mbytes, sig, top = _head(tf, keys)
        _check_target(manifest, arch, installed_version, force, python)
        _check_space(manifest, manifest.required_bytes, free_bytes, dest.parent)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
        try:
            os.chmod(staging, 0o755)
            _write_fsynced(staging / MANIFEST_NAME, mbytes, 0o644, len(mbytes))
            _write_fsynced(staging / SIG_NAME, sig, 0o644, len(sig))
            made_dirs = {staging}
            seen: set[str] = set()
            while True:
                member = _next(tf, f"after {len(seen)} of {len(manifest.files)} files")
                if member is None:
                    break
                rel = member.name[len(top) + 1:] if member.name.startswith(top + "/") else None
                if rel is None or not _safe_relpath(rel):
                    raise BundleRefused("unsafe-member", f"The bundle contains an unsafe file name {member.name!r}.")
                if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):   # not even sparse or contiguous
                    raise BundleRefused("unsafe-member", f"The bundle contains {rel}, a {_kind(member)}; "
                                        "a release carries only plain files.")
                entry = manifest.files.get(rel)
                if entry is None:
                    raise BundleRefused("extra-member", f"The bundle contains {rel}, which its manifest does not list.")
                if rel in seen:
                    raise BundleRefused("tampered", f"The bundle contains {rel} twice.")
                if member.size != entry.size:
                    raise BundleRefused("tampered", f"The bundle's {rel} has been altered (its size differs from "
                                        "the signed manifest).")
                out = staging / rel
                for d in reversed(out.parents):
                    if d not in made_dirs and staging in d.parents:
                        d.mkdir(mode=0o755, exist_ok=True)
                        made_dirs.add(d)
                src = tf.extractfile(member)
                assert src is not None
                try:
                    digest = _write_fsynced(out, src, member_mode(rel), member.size)
                except (tarfile.ReadError, EOFError):
                    raise BundleRefused("truncated", f"The bundle is truncated (it ends inside {rel}).") from None
                if digest != entry.sha256:
                    raise _altered(rel)
                seen.add(rel)
            missing = sorted(manifest.files.keys() - seen)
            if missing:
                raise BundleRefused("truncated", "The bundle is truncated or incomplete: "
                                    f"{_missing(len(missing), len(manifest.files), missing[0])}.")
            for d in sorted(made_dirs, key=lambda p: len(p.parts), reverse=True):
                fsync_dir(d)
            os.rename(staging, dest)
            fsync_dir(dest.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return manifest


def verify_tree(dir: Path | str, trusted_keys: Sequence[Ed25519PublicKey] | Path | str, *, arch: str | None = None,
                installed_version: str | None = None, force: bool = False, free_bytes: int | None = None,
                python: str | None = None) -> Manifest:
    """Check an already extracted bundle folder (first install: ``tar xf`` then ``./install``).

    Same refusals as ``unpack_verified``; the space asked for is ``installed_size`` (the
    bundle is already on disk), measured at ``dir`` unless ``free_bytes`` is given. Nothing
    is written. Run the installer with ``python3 -B``: a ``__pycache__`` folder made inside
    the tree is an extra file like any other.
    """
    root = Path(dir)
    keys = _trusted(trusted_keys)

    def read_top(name: str, limit: int) -> bytes | None:
        p = root / name
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            raise BundleRefused("unsafe-member", f"{name} in {root} is not a plain file.")
        if st.st_size > limit:
            raise BundleRefused("malformed", f"{name} in {root} is too large.")
        return p.read_bytes()

    mbytes = read_top(MANIFEST_NAME, MAX_MANIFEST_BYTES)
    if mbytes is None:
        raise BundleRefused("unsigned", f"{root} has no release manifest, so it is not a signed bundle.")
    sig = read_top(SIG_NAME, SIG_SIZE)
    if sig is None:
        raise BundleRefused("unsigned", "The bundle carries no signature.")
    _verify_signature(mbytes, sig, keys)
    manifest = Manifest.from_bytes(mbytes)
    _check_target(manifest, arch, installed_version, force, python)
    _check_space(manifest, manifest.installed_size, free_bytes, root)
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            p = base / name
            rel = p.relative_to(root).as_posix()
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                raise BundleRefused("unsafe-member", f"The bundle contains {rel}, a link; a release carries only "
                                    "plain files.")
            if stat.S_ISDIR(st.st_mode):
                continue
            if rel in (MANIFEST_NAME, SIG_NAME):
                continue
            if not stat.S_ISREG(st.st_mode):
                raise BundleRefused("unsafe-member", f"The bundle contains {rel}, a device or special file; "
                                    "a release carries only plain files.")
            entry = manifest.files.get(rel)
            if entry is None:
                raise BundleRefused("extra-member", f"The bundle contains {rel}, which its manifest does not list.")
            if st.st_size < entry.size:
                raise BundleRefused("truncated", f"The bundle's {rel} is shorter than the signed manifest says "
                                    "(truncated).")
            if st.st_size > entry.size:
                raise BundleRefused("tampered", f"The bundle's {rel} has been altered (it is longer than the signed "
                                    "manifest says).")
            if hash_file(p).sha256 != entry.sha256:
                raise _altered(rel)
            seen.add(rel)
    missing = sorted(manifest.files.keys() - seen)
    if missing:
        raise BundleRefused("truncated", "The bundle is incomplete: "
                            f"{_missing(len(missing), len(manifest.files), missing[0])}.")
    return manifest
