"""Fuzz properties of the pure parsers: host frames, host messages, BER-TLV.

Contract of each (tests/fuzz/targets.py): whatever the bytes, no exception but the
module's own documented error, and the invariants of what it returns hold.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mynad.hostlink import messages
from mynad.hostlink.codec import Decoder, Frame, FrameType, PayloadError
from tests.fuzz import strategies as S
from tests.fuzz import targets as T
from tests.fuzz.budget import budget


@pytest.mark.parametrize("name", ["frames", "messages", "tlv"])
def test_every_seed_meets_the_contract(name):
    target = T.targets()[name]
    for seed in target.seeds():
        target.run(seed)


def test_seeds_are_valid_inputs():
    """The corpora start from inputs the modules accept, so mutants are near-valid."""
    for m in T.message_objects():
        assert messages.validate(m) is None, m["type"]
    for seed in T.frame_seeds():
        assert Decoder().feed(seed[1:]), seed[:20]
        assert "authentic" in T.run_frames(seed), seed[:20]  # sealed with the fuzzed link's key
    for seed in T.tlv_seeds()[:3]:
        assert T.tlv.find_record(seed)


@budget(3)
@given(S.frame_streams())
def test_frame_streams(data):
    T.run_frames(data)


@budget(2)
@given(st.binary(max_size=400))
def test_frame_garbage(data):
    T.run_frames(data)


@budget(2)
@given(S.message_bytes)
def test_frame_json_raises_only_payload_error(payload):
    try:
        Frame(FrameType.DATA, 0, payload).json()
    except PayloadError:
        pass


@budget(3)
@given(S.message_bytes)
def test_messages(data):
    T.run_messages(data)


@budget(3)
@given(st.one_of(S.tlv_chains(), st.binary(max_size=200), st.sampled_from(T.tlv_seeds())))
def test_tlv(data):
    T.run_tlv(data)
