#!/usr/bin/env python3
"""Install the model files and sample face photos listed in models/assets.toml.

Each file is taken from ../shared/ (next to the clone) when that folder has it,
otherwise downloaded from its upstream URL, and installed only when its sha256
matches the manifest: a mismatch stops setup with a clear message. Files already
installed with the right hash are left alone, so running this twice is cheap.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
import sys
import tempfile
import tomllib
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "models" / "assets.toml"


class AssetError(Exception):
    pass


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shared_dirs() -> list[Path]:
    return [REPO.parent / "shared", REPO.parent.parent / "shared"]


def find_shared(kind: str, name: str) -> Path | None:
    sub = {"model": "models", "face": "faces", "antispoof": "models/antispoof",
           "antispoof_sample": "models/antispoof/samples"}[kind]
    for base in shared_dirs():
        p = base / sub / name
        if p.is_file():
            return p
    return None


def download(url: str, dest: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(dest, "wb") as f:
            shutil.copyfileobj(r, f)
    except OSError as e:
        raise AssetError(f"cannot download {url}: {e}") from None


def derive(entry: dict, raw: Path, dest: Path) -> None:
    if entry.get("derive") != "strip-graph-inputs":
        shutil.copyfile(raw, dest)
        return
    got = sha256(raw)
    if got != entry["upstream_sha256"]:
        raise AssetError(f"{entry['url']}: sha256 {got} is not the expected upstream {entry['upstream_sha256']}")
    try:
        import onnx
    except ImportError:
        raise AssetError("deriving the SFace model needs the 'onnx' package: pip install onnx") from None
    m = onnx.load(str(raw))
    keep = [i for i in m.graph.input if i.name == "data"]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    onnx.save(m, str(dest))


def install(kind: str, entry: dict, out_dir: Path) -> str:
    name = entry["file"]
    dest = out_dir / name
    if dest.is_file() and sha256(dest) == entry["sha256"]:
        return "present"
    src = find_shared(kind, name)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        tmp_file = Path(tmp) / name
        if src is not None:
            shutil.copyfile(src, tmp_file)
            how = f"from {src.parent}"
        else:
            if entry.get("converted"):
                raise AssetError(f"{name} was re-encoded from a PNG upstream and cannot be downloaded "
                                 "byte-identically; copy it from the shared folder")
            raw = Path(tmp) / (name + ".download")
            download(entry["url"], raw)
            derive(entry, raw, tmp_file)
            how = f"from {entry['url']}"
        got = sha256(tmp_file)
        if got != entry["sha256"]:
            raise AssetError(f"{name} ({how}) has sha256 {got}, but the manifest says {entry['sha256']}: "
                             "refusing to install a file that is not the one we tested")
        tmp_file.replace(dest)
    return how


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", default=str(REPO / "assets"), help="install folder (default: assets/)")
    args = ap.parse_args(argv)
    manifest = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    dest = Path(args.dest)
    counts: dict[str, int] = {}
    try:
        # anti-spoofing weights go beside the face models (one models dir, checked by face-check)
        for kind, sub in (("model", "models"), ("face", "faces"), ("antispoof", "models"),
                          ("antispoof_sample", "antispoof-samples")):
            out = dest / sub
            out.mkdir(parents=True, exist_ok=True)
            for entry in manifest.get(kind, []):
                how = install(kind, entry, out)
                counts[how if how == "present" else "installed"] = counts.get(
                    how if how == "present" else "installed", 0) + 1
        with open(dest / "faces" / "labels.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["file", "identity"])
            for entry in manifest.get("face", []):
                w.writerow([entry["file"], entry["identity"]])
    except AssetError as e:
        print(f"fetch_assets: {e}", file=sys.stderr)
        return 1
    print(f"assets in {dest}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + " (sha256 checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
