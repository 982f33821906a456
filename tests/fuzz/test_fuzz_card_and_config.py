"""Fuzz properties of the card session against hostile card answers, and of the config loader.

The card is a script of answers (tests/fuzz/targets.py): recordings of the virtual card
with some answers replaced; no pcscd, no timing. The config loader is fed the complete
default configuration with hostile values, and arbitrary text.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import strategies as S
from tests.fuzz import targets as T
from tests.fuzz.budget import budget

CONFIG = T.ConfigRunner()


def test_recorded_card_scripts_pass_every_command():
    """The seeds are whole visits: on a healthy card every command succeeds."""
    for name in ("taro", "hanako", "lasttry"):
        data = (T.SEEDS / "session" / f"{name}.bin").read_bytes()
        assert T.run_session(data) == " ".join(["ok"] * 8), name


@pytest.mark.parametrize("name", ["session", "config"])
def test_every_seed_meets_the_contract(name):
    target = T.targets(CONFIG)[name]
    for seed in target.seeds():
        target.run(seed)


def test_config_seeds_load():
    for seed in T.config_seeds():
        assert CONFIG(seed) == "loaded", seed[:60]


@budget(1)
@given(S.card_scripts())
def test_card_session_against_hostile_answers(script):
    T.run_session(script)


@budget(0.5)
@given(st.binary(max_size=300))
def test_card_session_against_garbage(script):
    T.run_session(script)


@budget(1.5)
@given(S.config_texts())
def test_config_with_hostile_values(text):
    CONFIG(text)


@budget(1)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_config_garbage(text):
    CONFIG(text)
