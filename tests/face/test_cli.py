"""``mynactl face-*`` through mynad.ctl's parser (in process) and as ``python -m mynad.ctl``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mynad.ctl import main

pytestmark = pytest.mark.models

ROOT = Path(__file__).resolve().parents[2]


def test_face_verify_json_same_person(models_dir, faces_dir, capsys):
    rc = main(["face-verify", str(faces_dir / "lfw_tony_blair__1.jpg"), str(faces_dir / "lfw_tony_blair__3.jpg"),
               "--json", "--models-dir", str(models_dir)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert set(out) == {"score", "threshold", "match"}
    assert out["match"] is True and out["score"] >= out["threshold"]


def test_face_verify_human_different_people(models_dir, faces_dir, capsys):
    rc = main(["face-verify", str(faces_dir / "lfw_tony_blair__1.jpg"), str(faces_dir / "bbt_raj__1.jpg"),
               "--models-dir", str(models_dir)])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith("no match: score")


def test_face_verify_card_photo_file(models_dir, faces_dir, tmp_path, capsys):
    from myna_models.cardphoto import encode_card_photo

    jp2 = tmp_path / "card.jp2"
    jp2.write_bytes(encode_card_photo(Image.open(faces_dir / "lfw_vladimir_putin__1.jpg")))
    rc = main(["face-verify", str(jp2), str(faces_dir / "lfw_vladimir_putin__2.jpg"), "--json",
               "--models-dir", str(models_dir)])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["match"] is True


def test_face_verify_no_face_exit_2(models_dir, faces_dir, tmp_path, capsys):
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((300, 400, 3), 200, np.uint8)).save(blank)
    rc = main(["face-verify", str(faces_dir / "lfw_tony_blair__1.jpg"), str(blank), "--json",
               "--models-dir", str(models_dir)])
    cap = capsys.readouterr()
    assert rc == 2
    assert cap.out == ""
    assert "wall.png" in cap.err and "no usable face" in cap.err


def test_face_verify_not_an_image_exit_2(models_dir, tmp_path, capsys):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    rc = main(["face-verify", str(junk), str(junk), "--models-dir", str(models_dir)])
    assert rc == 2
    assert "notes.txt" in capsys.readouterr().err


def test_face_verify_tampered_model_exit_1(models_dir, faces_dir, tmp_path, capsys):
    for f in models_dir.glob("*.onnx"):
        (tmp_path / f.name).write_bytes(f.read_bytes()[:-1] + b"\x00")
    rc = main(["face-verify", str(faces_dir / "lfw_tony_blair__1.jpg"), str(faces_dir / "lfw_tony_blair__3.jpg"),
               "--models-dir", str(tmp_path)])
    assert rc == 1
    assert "sha256" in capsys.readouterr().err


def test_face_check(models_dir, capsys):
    rc = main(["face-check", "--models-dir", str(models_dir), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["ok"] is True
    status = {m["file"]: m["status"] for m in out["models"]}
    assert status["face_detection_yunet_2023mar.onnx"] == "OK"
    assert status["face_recognition_sface_2021dec_int8bq_ort.onnx"] == "OK"
    assert status["face_recognition_sface_2021dec.onnx"] in ("OK", "absent (optional)")


def test_face_calibrate_no_write(models_dir, faces_dir, tmp_path, capsys):
    """A small calibration run (two identities) writes the report and plots but leaves the manifest alone."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    import shutil

    from myna_models.manifest import DEFAULT_MANIFEST

    sub = tmp_path / "faces"
    sub.mkdir()
    rows = ["file,identity"]
    for ident in ("lfw_tony_blair", "lfw_vladimir_putin", "bbt_raj"):
        for i in (1, 2, 3):
            name = f"{ident}__{i}.jpg"
            shutil.copy(faces_dir / name, sub / name)
            rows.append(f"{name},{ident}")
    (sub / "labels.csv").write_text("\n".join(rows) + "\n")
    manifest = tmp_path / "manifest.toml"
    shutil.copy(DEFAULT_MANIFEST, manifest)
    before = manifest.read_bytes()
    out = tmp_path / "out"
    rc = main(["face-calibrate", str(sub), "--out", str(out), "--manifest", str(manifest), "--no-write",
               "--no-progress", "--models-dir", str(models_dir)])
    assert rc == 0, capsys.readouterr().err
    assert (out / "face-calibration.md").is_file() and (out / "face-roc.png").is_file()
    assert manifest.read_bytes() == before
    assert "identity-disjoint" in (out / "face-calibration.md").read_text()
    # writing needs the reader's state directory (never the package's manifest)
    rc = main(["--config", str(tmp_path / "absent.toml"), "face-calibrate", str(sub), "--out", str(out),
               "--no-progress", "--models-dir", str(models_dir)])
    assert rc == 1 and "--state-dir" in capsys.readouterr().err
    rc = main(["face-calibrate", str(sub), "--out", str(out), "--state-dir", str(tmp_path / "state"),
               "--no-progress", "--models-dir", str(models_dir)])
    assert rc == 0 and (tmp_path / "state" / "face-calibration.toml").is_file()
    assert "95% bound" in capsys.readouterr().out
    assert manifest.read_bytes() == before
    rc = main(["face-verify", str(faces_dir / "bbt_raj__1.jpg"), str(faces_dir / "bbt_raj__2.jpg"), "--json",
               "--state-dir", str(tmp_path / "state"), "--models-dir", str(models_dir)])
    assert rc == 0 and json.loads(capsys.readouterr().out)["threshold"] >= 0.363


def test_python_m_mynad_ctl_face_verify(models_dir, faces_dir):
    env = dict(os.environ, MYNA_MODELS_DIR=str(models_dir))
    r = subprocess.run([sys.executable, "-m", "mynad.ctl", "face-verify", str(faces_dir / "bbt_sheldon__1.jpg"),
                        str(faces_dir / "bbt_sheldon__3.jpg"), "--json"], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["match"] is True
