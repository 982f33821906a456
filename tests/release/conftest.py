"""Release fixtures shared by the bundle tests and the update tests.

Building a real x86_64 bundle is the expensive part (~4-6 s with a warm wheelhouse; the first
run on a fresh clone also downloads ~200 MB of locked wheels from the PyPI mirror and builds
pyscard from its sdist, ~10 s more), so each (version, source tree) is built once per session
and the wheelhouse (<repo>/.wheelhouse/x86_64, git-ignored) is kept between sessions.
"""

from __future__ import annotations

import hashlib

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mynad.release.build import SourceTree, build_bundle
from mynad.release.keys import generate_keypair

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = REPO / ".wheelhouse"
MODELS = REPO / "assets" / "models"


@dataclass(frozen=True)
class ReleaseKey:
    """A throw-away signing pair: ``keys_dir`` holds only the public half, like a reader's
    /etc/myna-reader/release-keys/."""

    private: Path
    public: Path
    keys_dir: Path
    fingerprint: str


@pytest.fixture(scope="session")
def release_key(tmp_path_factory: pytest.TempPathFactory) -> ReleaseKey:
    d = tmp_path_factory.mktemp("release-key")
    (d / "release-keys").mkdir()
    fp = generate_keypair(d / "release.key", d / "release-keys" / "test.pub")
    return ReleaseKey(d / "release.key", d / "release-keys" / "test.pub", d / "release-keys", fp)


BuiltBundle = Callable[..., Path]


def tree_digest(root: Path) -> str:
    """What a build reads from ``root``: its commit and every listed file's bytes. Other work in
    the same tree (an editor, another helper) between two builds changes it."""
    src = SourceTree.scan(root, source_date_epoch=0)
    h = hashlib.sha256(src.commit.encode())
    for rel in src.files:
        h.update(rel.encode() + b"\0" + hashlib.sha256((src.root / rel).read_bytes()).digest())
    return h.hexdigest()


@pytest.fixture(scope="session")
def built_bundle(tmp_path_factory: pytest.TempPathFactory, release_key: ReleaseKey) -> BuiltBundle:
    """``built_bundle(version, source_dir=None, arch="x86_64") -> Path`` of a real signed bundle.

    ``source_dir`` defaults to this repository (its tracked + untracked-not-ignored files); a
    copied tree that is not a git work tree gets the repository's commit time as its
    SOURCE_DATE_EPOCH. Cached per (version, source_dir, arch) for the session.
    """
    out_root = tmp_path_factory.mktemp("bundles")
    cache: dict[tuple[str, Path, str], Path] = {}
    digests: dict[Path, str] = {}   # tree_digest of each bundle's source, taken just before it was built
    repo_epoch: list[int] = []

    def build(version: str = "0.9.1", source_dir: Path | str | None = None, arch: str = "x86_64") -> Path:
        src = Path(source_dir).resolve() if source_dir is not None else REPO
        key = (version, src, arch)
        if key not in cache:
            if not repo_epoch:
                repo_epoch.append(SourceTree.scan(REPO).source_date_epoch)
            out = out_root / f"{len(cache)}-{version}-{arch}"
            digest = tree_digest(src)
            cache[key] = build_bundle(src, arch, out, release_key.private, version=version,
                                      wheelhouse=WHEELHOUSE / arch, models_dir=MODELS,
                                      source_date_epoch=None if (src / ".git").exists() else repo_epoch[0])
            digests[cache[key]] = digest
        return cache[key]

    build.source_digests = digests  # type: ignore[attr-defined]
    return build
