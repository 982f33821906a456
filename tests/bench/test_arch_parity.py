"""bench/arch_parity.py --compare: two builds are the same reader only when every number agrees."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.bench.conftest import load_bench


def _module():
    return load_bench("arch_parity")


def _dump(path: Path, machine: str, **over) -> Path:
    emb = np.ones(128) / np.sqrt(128)
    res = {"frame-000/count": np.asarray([1]), "frame-000/landmarks": np.zeros((5, 2)),
           "frame-000/box": np.asarray([10.0, 10, 50, 50]), "frame-000/score": np.asarray([0.95]),
           "frame-000/embedding": emb, "frame-000/antispoof": np.asarray([0.9]),
           "tray-000/cardface_ok": np.asarray([1]), "tray-000/cardface_conf": np.asarray([0.97]),
           "tray-000/cardface_code_sha": np.arange(32, dtype=np.uint8),
           "meta/machine": np.frombuffer(machine.encode(), np.uint8),
           "meta/onnxruntime": np.frombuffer(b"1.32.0", np.uint8), "meta/numpy": np.frombuffer(b"2", np.uint8),
           "meta/seconds": np.asarray([1.0])}
    res.update(over)
    np.savez(path, **res)
    return path


def test_rounding_differences_pass(tmp_path, capsys):
    ap = _module()
    a = _dump(tmp_path / "a.npz", "x86_64")
    b = _dump(tmp_path / "b.npz", "aarch64", **{"frame-000/landmarks": np.full((5, 2), 1e-4)})
    assert ap.compare(a, b) == 0
    assert "every quantity within its limit" in capsys.readouterr().out


def test_a_moved_landmark_a_changed_reading_or_a_missing_face_fail(tmp_path, capsys):
    ap = _module()
    a = _dump(tmp_path / "a.npz", "x86_64")
    b = _dump(tmp_path / "b.npz", "aarch64", **{"frame-000/landmarks": np.full((5, 2), 0.5),
                                                "tray-000/cardface_code_sha": np.zeros(32, np.uint8)})
    assert ap.compare(a, b) == 1
    out = capsys.readouterr().out
    assert "frame-000: landmark_px 0.5" in out and "tray-000: cardface_code" in out
    c = _dump(tmp_path / "c.npz", "aarch64", **{"frame-000/count": np.asarray([0])})
    assert ap.compare(a, c) == 1
    assert "face_count" in capsys.readouterr().out
