"""Threshold calibration: the statistics (pure), the state-dir calibration file, and the engine reading it."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from myna_models.calibration_file import CALIBRATION_FILE, parse_calibration, read_calibration, write_calibration
from myna_models.errors import ModelError
from myna_models.threshold_stats import (Pairs, binom_upper, bootstrap_upper, cross_validate, identities_needed,
                                         identity_pair_accepts, select_threshold, summarise, threshold_at_fmr,
                                         threshold_for_bound, trials_needed)

SHA = "487a139eb85ccd5ff30aef7d0add7f12d2bb7abb90c5f08a7f481b452a660e00"
REC = "face_recognition_sface_2021dec_int8bq_ort.onnx"


# ---------------------------------------------------------------- statistics

def test_clopper_pearson_known_values():
    # zero events: 1 - 0.05^(1/n) (the "rule of three" ~ 3/n)
    assert binom_upper(0, 78) == pytest.approx(1 - 0.05 ** (1 / 78), rel=1e-9)
    assert binom_upper(0, 3000) == pytest.approx(3 / 3000, rel=0.01)
    # k=1, n=10: the one-sided 95 % upper limit is 0.3942 (textbook value)
    assert binom_upper(1, 10) == pytest.approx(0.3942, abs=5e-4)
    assert binom_upper(10, 10) == 1.0


def test_how_many_people_a_1e3_bound_needs():
    assert trials_needed(1e-3) == 2995
    assert identities_needed(1e-3) == 78      # 78 * 77 / 2 = 3003 identity pairs


def _synthetic(n_ids: int, photos: int = 3, seed: int = 0, hot: tuple[int, int] | None = None) -> Pairs:
    """Card-vs-live pairs of n_ids people: genuine ~0.6, impostor ~0.05; ``hot``: two look-alike people."""
    rng = np.random.default_rng(seed)
    pid = np.repeat(np.arange(n_ids), photos)
    a, b = np.meshgrid(np.arange(len(pid)), np.arange(len(pid)), indexing="ij")
    a, b = a.ravel(), b.ravel()
    same = pid[a] == pid[b]
    g = same & (a != b)
    imp = ~same
    s_imp = rng.normal(0.05, 0.07, imp.sum())
    if hot is not None:
        ia, ib = pid[a][imp], pid[b][imp]
        s_imp[((ia == hot[0]) & (ib == hot[1])) | ((ia == hot[1]) & (ib == hot[0]))] = 0.45
    return Pairs([f"p{i:03d}" for i in range(n_ids)], rng.normal(0.6, 0.08, g.sum()), pid[a][g], s_imp,
                 pid[a][imp], pid[b][imp])


def test_small_set_cannot_support_the_bound_and_keeps_the_reference():
    p = _synthetic(13)
    assert threshold_for_bound(p, 1e-3) is None
    t, met = select_threshold(p, 1e-3, floor=0.363)
    assert (t, met) == (0.363, False)


def test_reference_is_raised_above_an_impostor_the_data_shows():
    p = _synthetic(13, hot=(2, 5))
    t, met = select_threshold(p, 1e-3, floor=0.363)
    assert not met and t == pytest.approx(0.451)
    assert identity_pair_accepts(p, t) == (0, 78)


def test_large_set_gets_a_threshold_of_its_own_that_meets_the_bound():
    p = _synthetic(90, photos=2, seed=1)
    t = threshold_for_bound(p, 1e-3)
    assert t is not None
    k, n = identity_pair_accepts(p, t)
    assert n == 90 * 89 // 2 and binom_upper(k, n) <= 1e-3
    assert binom_upper(*identity_pair_accepts(p, round(t - 0.001, 3))) > 1e-3  # the smallest such threshold


def test_in_sample_rule_fits_the_highest_impostor_scores():
    imp = np.linspace(0.0, 0.5, 5000)
    t = threshold_at_fmr(imp, 1e-3)
    assert np.mean(imp >= t) <= 1e-3 and np.mean(imp >= t - 0.002) > 1e-3


def test_cross_validation_holds_identities_out():
    p = _synthetic(13, hot=(2, 5))
    folds = cross_validate(p, 1e-3, floor=0.363)
    assert len(folds) == 13 and all(len(f.held_out) == 1 and f.train_ids == 12 for f in folds)
    total_imp = len(p.impostor)
    assert sum(f.test_impostor for f in folds) == 2 * total_imp  # each impostor pair: once per side's fold
    assert sum(f.test_genuine for f in folds) == len(p.genuine)
    # the look-alikes are unseen when one of them is held out: both rules, trained without them, let them
    # through (the reference 0.363 is below their 0.45): cross-validation shows what a single fit hides
    hot_key = 2 * 13 + 5
    by = {f.held_out[0]: f for f in folds}
    for held in ("p002", "p005"):
        assert hot_key in by[held].accepted_keys_insample and hot_key in by[held].accepted_keys
    s = summarise(folds, 78)
    assert s.id_pairs_accepted >= 1 and s.fmr_upper == pytest.approx(binom_upper(s.id_pairs_accepted, 78))
    # ...while the folds trained with them are raised above their score
    assert by["p000"].threshold == pytest.approx(0.451) and hot_key not in by["p000"].accepted_keys


def test_bootstrap_over_identities_is_deterministic_and_wider_than_the_point_estimate():
    p = _synthetic(13, hot=(2, 5))
    fmr_hi, fnmr_hi = bootstrap_upper(p, 0.4)
    assert bootstrap_upper(p, 0.4) == (fmr_hi, fnmr_hi)
    assert fmr_hi > np.mean(p.impostor >= 0.4)
    assert bootstrap_upper(p, 0.99)[0] == 0.0  # nothing accepted: it collapses to 0 (hence the CP bound)


# ---------------------------------------------------------------- the calibration file

def _cal(**over) -> dict:
    cal = {"recognizer": REC, "recognizer_sha256": SHA, "threshold": 0.37, "rule": "public-reference",
           "bound_met": False, "fmr_upper": 0.0377, "date": "2026-12-02"}
    cal.update(over)
    return {"schema": 1, "calibration": cal}


def test_calibration_file_round_trip(tmp_path):
    path = tmp_path / "state" / CALIBRATION_FILE
    write_calibration(path, {**_cal(), "fold": [{"held_out": "a", "test_accepts": 0}]})
    c = read_calibration(path, REC, SHA, 0.363)
    assert c is not None and c.threshold == 0.37 and c.rule == "public-reference" and not c.bound_met


def test_calibration_file_absent_is_none(tmp_path):
    assert read_calibration(tmp_path / CALIBRATION_FILE, REC, SHA, 0.363) is None


def test_calibration_for_another_recognizer_is_ignored_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="myna.face.calibration"):
        assert parse_calibration(_cal(recognizer_sha256="0" * 64), tmp_path, REC, SHA, 0.363) is None
    assert "another recognizer" in caplog.text


@pytest.mark.parametrize("data,words", [
    ({"schema": 2}, "schema"),
    ({"schema": 1}, "[calibration]"),
    (_cal(recognizer_sha256="xyz"), "sha256"),
    (_cal(threshold="0.4"), "threshold"),
    (_cal(threshold=1.5), "threshold"),
    (_cal(threshold=float("nan")), "threshold"),
    (_cal(bound_met="no"), "bound_met"),
    (_cal(fmr_upper=3.0), "fmr_upper"),
    (_cal(threshold=0.30, bound_met=False), "below the default"),
])
def test_malformed_calibration_is_a_model_error_with_a_sentence(tmp_path, data, words):
    with pytest.raises(ModelError) as e:
        parse_calibration(data, tmp_path / CALIBRATION_FILE, REC, SHA, 0.363)
    msg = str(e.value)
    assert words in msg and str(tmp_path) in msg and "\n" not in msg


def test_unparsable_calibration_file(tmp_path):
    p = tmp_path / CALIBRATION_FILE
    p.write_text("schema = [unclosed")
    with pytest.raises(ModelError, match="not valid TOML"):
        read_calibration(p, REC, SHA, 0.363)


def test_a_bound_that_was_met_may_go_below_the_default(tmp_path):
    c = parse_calibration(_cal(threshold=0.30, bound_met=True, rule="fmr-bound"), tmp_path, REC, SHA, 0.363)
    assert c is not None and c.threshold == 0.30


# ---------------------------------------------------------------- the engine (real models)

@pytest.mark.models
def test_engine_default_is_the_public_reference(models_dir):
    from myna_models.engine import FaceEngine

    e = FaceEngine(models_dir, threads=1)
    assert e.threshold == 0.363 and e.threshold_calibrated is False
    assert e.threshold_source.startswith("manifest")


@pytest.mark.models
def test_engine_uses_the_state_dir_calibration(models_dir, tmp_path):
    from myna_models.engine import FaceEngine

    path = tmp_path / CALIBRATION_FILE
    write_calibration(path, _cal(threshold=0.41))
    e = FaceEngine(models_dir, threads=1, calibration=path)
    assert e.threshold == 0.41 and e.threshold_calibrated is True and str(path) in e.threshold_source
    # a missing file: the default, no error (a fresh reader)
    assert FaceEngine(models_dir, threads=1, calibration=tmp_path / "nope.toml").threshold == 0.363


@pytest.mark.models
def test_engine_ignores_a_calibration_for_another_model_and_refuses_a_malformed_one(models_dir, tmp_path, caplog):
    from myna_models.engine import FaceEngine

    path = tmp_path / CALIBRATION_FILE
    write_calibration(path, _cal(threshold=0.41, recognizer_sha256="ab" * 32))
    with caplog.at_level(logging.WARNING, logger="myna.face.calibration"):
        assert FaceEngine(models_dir, threads=1, calibration=path).threshold == 0.363
    assert "ignored" in caplog.text
    path.write_text("schema = 1\n[calibration]\nthreshold = 0.4\n")
    with pytest.raises(ModelError, match="malformed"):
        FaceEngine(models_dir, threads=1, calibration=path)


@pytest.mark.models
def test_calibrate_writes_the_state_dir_not_the_package(models_dir, faces_dir, tmp_path):
    """A small run (three identities): the report and the state file, and the manifest untouched."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    from myna_models.calibration import calibrate
    from myna_models.engine import FaceEngine
    from myna_models.manifest import DEFAULT_MANIFEST

    sub = tmp_path / "faces"
    sub.mkdir()
    rows = ["file,identity"]
    for ident in ("lfw_tony_blair", "lfw_vladimir_putin", "bbt_raj"):
        for i in (1, 2, 3):
            shutil.copy(faces_dir / f"{ident}__{i}.jpg", sub)
            rows.append(f"{ident}__{i}.jpg,{ident}")
    (sub / "labels.csv").write_text("\n".join(rows) + "\n")
    before = DEFAULT_MANIFEST.read_bytes()
    engine = FaceEngine(models_dir, threads=1)
    state = tmp_path / "state"
    res = calibrate(sub, tmp_path / "out", engine, state_dir=state, progress=False)
    assert DEFAULT_MANIFEST.read_bytes() == before
    assert res.rule == "public-reference" and res.threshold >= 0.363 and not res.bound_met
    assert len(res.folds) == 3 and res.chosen.id_pairs == 3
    c = read_calibration(state / CALIBRATION_FILE, engine.recognizer, engine.hashes[engine.recognizer], 0.363)
    assert c is not None and c.threshold == res.threshold
    report = (tmp_path / "out" / "face-calibration.md").read_text()
    assert "identity-disjoint" in report and "95 % upper bound on the FMR" in report
    assert FaceEngine(models_dir, threads=1, calibration=state / CALIBRATION_FILE).threshold == res.threshold
