"""The staff password: scrypt record, device-wide lockout that survives restarts, wipe."""

from __future__ import annotations

import json
import logging
import os
import stat

import pytest

from mynad.staffauth import (LOCKED, NOT_SET, OK, WRONG, LockoutPolicy, LockoutState, ScryptParams,
                             StaffAuthError, StaffGate, clear_password, parse_record, set_password)

FAST = ScryptParams(log2_n=10, r=8, p=1)  # the format and flow are the same; the cost is not under test
POLICY = LockoutPolicy(max_wrong=3, lock_s=60, lock_max_s=240)


def pw(text: str) -> bytearray:
    return bytearray(text.encode())


@pytest.fixture
def state(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    set_password(d, pw("246810"), length=6, params=FAST)
    return d


def test_record_is_scrypt_with_random_salt_and_private(tmp_path, state):
    text = (state / "staff-password").read_text()
    assert text.startswith("$scrypt$ln=10,r=8,p=1$")
    rec = parse_record(text)
    assert len(rec.salt) == 16 and len(rec.key) == 32
    assert stat.S_IMODE((state / "staff-password").stat().st_mode) == 0o600
    other = tmp_path / "other"
    other.mkdir()
    set_password(other, pw("246810"), length=6, params=FAST)
    assert parse_record((other / "staff-password").read_text()).salt != rec.salt  # same password, new salt
    assert "246810" not in text


def test_default_parameters_are_the_documented_ones():
    p = ScryptParams()
    assert (p.n, p.r, p.p) == (32768, 8, 1)
    assert p.maxmem >= 128 * p.r * p.n  # else OpenSSL refuses (its default limit is 32 MiB)


def test_set_refuses_wrong_length_and_non_digits_and_wipes(tmp_path, state):
    for bad in ("12345", "1234567", "12345a", "１２３４５６"):
        secret = pw(bad)
        with pytest.raises(StaffAuthError, match="exactly 6 digits"):
            set_password(state, secret, length=6, params=FAST)
        assert set(secret) == {0}
    with pytest.raises(StaffAuthError, match="does not exist"):
        set_password(tmp_path / "missing", pw("123456"), length=6, params=FAST)


def test_check_right_wrong_and_always_wipes(state):
    gate = StaffGate(state, POLICY, length=6)
    secret = pw("246810")
    assert gate.check(secret, now=1000).outcome == OK
    assert set(secret) == {0}
    secret = pw("111111")
    v = gate.check(secret, now=1001)
    assert (v.outcome, v.wrong_left, v.ok) == (WRONG, 2, False)
    assert set(secret) == {0}


def test_not_set_after_clear(state):
    gate = StaffGate(state, POLICY, length=6)
    assert clear_password(state) is True
    assert gate.check(pw("246810"), now=1).outcome == NOT_SET
    assert clear_password(state) is False


def test_lockout_grows_and_survives_a_restart(state, caplog):
    caplog.set_level(logging.INFO, logger="mynad.staffauth")
    gate = StaffGate(state, POLICY, length=6)
    t = 10_000.0
    assert [gate.check(pw("000000"), now=t).outcome for _ in range(2)] == [WRONG, WRONG]
    v = gate.check(pw("000000"), now=t)
    assert v.outcome == LOCKED and v.until == t + 60
    # a "reboot": a new gate on the same state dir, even the right password is refused
    gate = StaffGate(state, POLICY, length=6)
    assert gate.check(pw("246810"), now=t + 59).outcome == LOCKED
    # after the lock: three more wrong ones lock for twice as long
    for _ in range(2):
        assert gate.check(pw("000000"), now=t + 61).outcome == WRONG
    v = gate.check(pw("000000"), now=t + 61)
    assert v.outcome == LOCKED and v.until == t + 61 + 120
    for _ in range(3):
        gate.check(pw("000000"), now=t + 200)
    assert gate.lockout(t + 200).locked_until == t + 200 + 240  # capped at lock_max_s
    # success after the lock resets everything
    assert gate.check(pw("246810"), now=t + 500).outcome == OK
    assert gate.lockout(t + 500) == LockoutState()
    assert all("246810" not in r.getMessage() and "000000" not in r.getMessage() for r in caplog.records)
    assert any("locked" in r.getMessage() for r in caplog.records)


def test_attempt_is_counted_before_the_hash_is_compared(state, monkeypatch):
    """Power cut mid-check (here: the hash raises) still costs the try."""
    import mynad.staffauth as sa

    gate = StaffGate(state, POLICY, length=6)

    def cut(*a, **k):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(sa, "derive", cut)
    secret = pw("000000")
    with pytest.raises(KeyboardInterrupt):
        gate.check(secret, now=1)
    assert set(secret) == {0}
    assert json.loads((state / "staff-lockout.json").read_text())["wrong"] == 1


def test_clock_gone_back_shortens_the_lock(state):
    gate = StaffGate(state, POLICY, length=6)
    for _ in range(3):
        gate.check(pw("000000"), now=1_000_000)
    # the Pi boots without RTC: the clock reads a day earlier
    assert gate.lockout(1_000_000 - 86400).locked_until == 1_000_000 - 86400 + 240


def test_damaged_lockout_file_fails_closed_for_one_period(state):
    (state / "staff-lockout.json").write_text("{garbage")
    gate = StaffGate(state, POLICY, length=6)
    assert gate.check(pw("246810"), now=50).outcome == LOCKED
    assert gate.check(pw("246810"), now=50 + 61).outcome == OK


def test_setting_a_new_password_lifts_the_lock(state):
    gate = StaffGate(state, POLICY, length=6)
    for _ in range(3):
        gate.check(pw("000000"), now=1)
    set_password(state, pw("135790"), length=6, params=FAST)
    assert gate.check(pw("135790"), now=2).outcome == OK


@pytest.mark.parametrize("text", ["", "246810", "$sha256$x$y", "$scrypt$ln=99,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43,
                                  "$scrypt$ln=10$AAAA$BBBB", "$scrypt$ln=10,r=8,p=1$!!$??"])
def test_damaged_record_is_a_plain_error(state, text):
    (state / "staff-password").write_text(text)
    with pytest.raises(StaffAuthError, match="staff-password"):
        StaffGate(state, POLICY, length=6).check(pw("246810"), now=1)


def test_submit_runs_off_the_loop_and_answers_on_it(state):
    import asyncio
    import threading

    gate = StaffGate(state, POLICY, length=6)

    async def main():
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()
        secret = pw("246810")
        gate.submit(secret, loop, lambda v: done.set_result((v, threading.current_thread())))
        verdict, thread = await done
        assert set(secret) == {0}
        return verdict, thread

    verdict, thread = asyncio.run(main())
    assert verdict.ok and thread is threading.main_thread()


def test_submit_fails_closed_on_a_damaged_record(state):
    import asyncio

    (state / "staff-password").write_text("junk")
    gate = StaffGate(state, POLICY, length=6)

    async def main():
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()
        gate.submit(pw("246810"), loop, done.set_result)
        return await done

    assert asyncio.run(main()).outcome == NOT_SET


def test_file_written_by_root_belongs_to_the_state_dirs_owner(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    d = tmp_path / "state"
    d.mkdir()
    os.chown(d, 65534, 65534)
    path = set_password(d, pw("123456"), length=6, params=FAST)
    st = path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65534, 65534, 0o600)
