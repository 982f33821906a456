"""Fixtures for the face engine tests: the real models from assets/models (skipped if absent)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "assets" / "models"
FACES = ROOT / "assets" / "faces"
DETECTOR = "face_detection_yunet_2023mar.onnx"
RECOGNIZER = "face_recognition_sface_2021dec_int8bq_ort.onnx"


def _have_models() -> bool:
    return (MODELS / DETECTOR).is_file() and (MODELS / RECOGNIZER).is_file()


@pytest.fixture(scope="session")
def models_dir() -> Path:
    if not _have_models():
        pytest.skip(f"face models not in {MODELS} (run scripts/fetch_assets.py)")
    return MODELS


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not (FACES / "labels.csv").is_file():
        pytest.skip(f"labelled face photos not in {FACES}")
    return FACES


@pytest.fixture(scope="session")
def labels(faces_dir) -> dict[str, str]:
    with open(faces_dir / "labels.csv", newline="", encoding="utf-8") as f:
        return {r["file"]: r["identity"] for r in csv.DictReader(f)}


@pytest.fixture(scope="session")
def engine(models_dir):
    from myna_models.engine import FaceEngine

    return FaceEngine(models_dir, threads=2)


@pytest.fixture(scope="session")
def photo(faces_dir):
    """photo(name) -> BGR array of assets/faces/<name>."""
    from myna_models.engine import load_image

    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = load_image(faces_dir / name)
        return cache[name]

    return get
