"""``mynasim card-face`` renders a frame; ``mynactl card-face`` reads it (in-process)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mynad.ctl import main as mynactl
from mynasim.cli import main as mynasim
from mynasim.cardface import Variation, empty_tray

pytestmark = pytest.mark.models


def test_render_then_read_json(tmp_path, capsys, profiles):
    out = tmp_path / "face.png"
    assert mynasim(["card-face", "--profile", "expiring", "--out", str(out), "--seed", "4"]) == 0
    assert out.is_file()
    capsys.readouterr()
    assert mynactl(["card-face", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    p = profiles["expiring"]
    assert got["ok"] is True and 0 < got["confidence"] <= 1
    assert got["birth_date"] == p.birth_date.isoformat()
    assert got["expiry_year"] == p.card_expiry_year and got["security_code"] == p.security_code


def test_empty_tray_exits_1_with_a_sentence(tmp_path, capsys):
    path = tmp_path / "empty.png"
    Image.fromarray(empty_tray(np.random.default_rng(0), Variation())[:, :, ::-1].copy()).save(path)
    assert mynactl(["card-face", str(path), "--json"]) == 1
    cap = capsys.readouterr()
    assert json.loads(cap.out)["ok"] is False
    assert "no card face readable" in cap.err


def test_missing_file_exits_2(tmp_path, capsys):
    assert mynactl(["card-face", str(tmp_path / "nope.png")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_unknown_profile(tmp_path, capsys):
    assert mynasim(["card-face", "--profile", "nobody", "--out", str(tmp_path / "x.png")]) == 2
