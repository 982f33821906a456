"""Frame authentication (pure), its durable counters, the key file and ``mynactl host-key``."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import os
import stat

import pytest

from mynad.hostlink import auth, codec
from mynad.hostlink.codec import Frame, FrameType
from mynad.hostlink.counters import CounterStore
from mynad.hostlink.engine import LinkEngine
from mynad.hostlink.keyfile import HostKeyError, load_key, write_key
from mynad.hostlink.outbox import MemoryOutbox
from tests.hostlink.peer import KEY, Peer
from tests.hostlink.test_engine import MemoryPort
from tests.hostlink.test_sender_faults import until

OTHER_KEY = bytes(reversed(range(32)))


def sealed(peer: Peer, obj=None, type_=FrameType.DATA, seq=1) -> Frame:
    return peer.seal(Frame.of(type_, seq, obj if obj is not None else {"id": "x"}))


# ------------------------------------------------------------ pure


def test_known_answer_tag_matches_the_documented_construction():
    f = Frame(FrameType.ACK, 0x0102, b'{"id":"a"}', counter=0x0102030405060708)
    dkey = hmac.new(KEY, b"myna host link v2 host", hashlib.sha256).digest()
    want = hmac.new(dkey, b"MYNA-HL" + bytes.fromhex("02 02 0102 000a 0102030405060708") + b'{"id":"a"}',
                    hashlib.sha256).digest()[:16]
    assert auth.compute_tag(auth.direction_key(KEY, "host"), f) == want
    assert len(want) == codec.TAG_LEN == 16


def test_a_sealed_frame_passes_once_then_is_a_replay():
    host, reader = Peer("host"), auth.LinkAuth(KEY, "reader")
    f = sealed(host)
    assert reader.check(f) is None
    reader.accept(f)
    assert reader.check(f) == auth.R_REPLAY  # byte-identical replay
    g = sealed(host)
    assert g.counter > f.counter and reader.check(g) is None
    reader.accept(g)
    assert reader.check(f) == auth.R_REPLAY  # an older one, late


def test_wrong_key_unknown_sender_reflection_and_tampering_are_refused():
    reader = auth.LinkAuth(KEY, "reader")
    assert reader.check(sealed(Peer("host", key=OTHER_KEY))) == auth.R_BAD_TAG  # wrong key
    assert reader.check(Frame.of(FrameType.DATA, 1, {"id": "x"})) == auth.R_BAD_TAG  # no tag at all
    own = Peer("reader")  # a frame the reader sent, reflected back at it
    assert reader.check(sealed(own)) == auth.R_BAD_TAG
    good = sealed(Peer("host"))
    for change in ({"type": FrameType.HELLO}, {"seq": good.seq + 1}, {"payload": b'{"id":"y"}'},
                   {"counter": good.counter + 1}, {"version": 3}):
        assert reader.check(dataclasses.replace(good, **change)) == auth.R_BAD_TAG, change
    assert reader.check(good) is None


def test_a_forged_frame_does_not_move_the_high_water_mark():
    reader = auth.LinkAuth(KEY, "reader")
    forged = dataclasses.replace(sealed(Peer("host", key=OTHER_KEY)), counter=2**62)
    assert reader.check(forged) == auth.R_BAD_TAG
    assert reader.peer_hwm == 0  # check() never changes state; only accept() after a pass does


def test_send_counter_is_written_ahead_and_never_reused_after_a_crash():
    c = auth.SendCounter(limit=0, floor=0, block=8)
    with pytest.raises(auth.AuthError):
        c.take()  # nothing reserved: nothing may be sent
    on_disk = c.reservation_needed()
    c.reserved(on_disk)
    used = [c.take() for _ in range(5)]
    assert used == sorted(used) and len(set(used)) == 5
    after_crash = auth.SendCounter(limit=on_disk, floor=0, block=8)  # restarted from what is on disk
    assert after_crash.next > max(used)
    assert auth.SendCounter(limit=100, floor=5).next == 100
    assert auth.SendCounter(limit=100, floor=10**15).next == 10**15  # a lost state, a right clock


def test_fingerprint_and_key_text():
    fp = auth.fingerprint(KEY)
    assert fp == auth.fingerprint(KEY) != auth.fingerprint(OTHER_KEY)
    assert len(fp) == 19 and KEY.hex()[:8] not in fp.replace("-", "")
    assert auth.parse_key_text(auth.format_key_text(KEY)) == KEY
    assert auth.parse_key_text(b"  " + KEY.hex().upper().encode() + b"\r\n") == KEY
    for bad in (b"", KEY.hex()[:-2].encode(), b"zz" * 32, KEY):
        with pytest.raises(auth.AuthError):
            auth.parse_key_text(bad)
    assert KEY.hex() not in repr(auth.LinkAuth(KEY, "reader"))


# ------------------------------------------------------------ durable counters


def test_counter_store_survives_reopening_never_goes_back_and_keeps_keys_apart(tmp_path):
    s = CounterStore.in_state_dir(tmp_path)
    assert s.load("k1") is None
    s.save_send_limit("k1", 2048)
    s.save_peer_hwm("k1", 77)
    s.save_peer_hwm("k1", 50)  # a late write cannot move it back
    s.save_send_limit("k2", 5)
    s.close()
    s = CounterStore.in_state_dir(tmp_path)
    assert s.load("k1") == (2048, 77) and s.load("k2") == (5, 0)
    s.close()


def make_engine(port, counters, role="reader"):
    return LinkEngine(port, MemoryOutbox(), key=KEY, role=role, counters=counters,
                      hello=lambda reply: {"type": "hello", "reply": reply}, accept=lambda m: None,
                      deliver=lambda m: None, store_in_thread=False, reconnect_min=0.01, keepalive_s=60,
                      counter_floor=lambda: 0, counter_block=4)  # no clock: only what is on disk counts


def test_engine_counters_survive_a_restart_of_either_kind(tmp_path):
    """With the clock floor off, only the counter file keeps counters going up across restarts."""
    host = Peer("host")

    async def run(frames_in: list[bytes]) -> tuple[list[int], dict]:
        port = MemoryPort()
        store = CounterStore.in_state_dir(tmp_path)
        engine = make_engine(port, store)
        await engine.start()
        try:
            sent = [(await asyncio.wait_for(port.written.get(), 10)).counter]  # the opening HELLO
            for raw in frames_in:
                port.incoming.put_nowait(raw)
            # every frame is either taken (then ACKed) or refused silently (then counted)
            await until(lambda: engine.counters["received"] + sum(engine.auth_refused.values()) == len(frames_in),
                        "the frames are handled")
            while not port.written.empty():
                sent.append(port.written.get_nowait().counter)
            return sent, {"refused": dict(engine.auth_refused), "received": engine.counters["received"]}
        finally:
            await engine.stop()
            store.close()

    first = host.data({"v": 1, "id": "a1", "type": "staff.visual_check", "ts": "t", "reason": "r"})
    sent1, st1 = asyncio.run(run([first]))
    assert st1 == {"refused": {}, "received": 1}
    sent2, st2 = asyncio.run(run([first]))  # the same bytes again, after the restart
    assert st2 == {"refused": {auth.R_REPLAY: 1}, "received": 0}
    assert min(sent2) > max(sent1)  # the restarted sender continued above every counter it had used
    for _ in range(6):  # more than a block (4) per run: reservations are made as needed
        sent1 = sent2
        sent2, _ = asyncio.run(run([]))
        assert min(sent2) > max(sent1)


# ------------------------------------------------------------ key file


def test_key_file_written_0600_whatever_the_umask_and_not_replaced_silently(tmp_path):
    path = tmp_path / "etc" / "host.key"
    old = os.umask(0)
    try:
        write_key(path, KEY)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path) == KEY
    with pytest.raises(HostKeyError, match="already exists"):
        write_key(path, OTHER_KEY)
    write_key(path, OTHER_KEY, replace=True)
    assert load_key(path) == OTHER_KEY
    assert [p.name for p in path.parent.iterdir()] == ["host.key"]  # no temporary left behind


@pytest.mark.parametrize("case, words", [
    ("missing", "does not exist; create it with `mynactl host-key generate`"),
    ("too_open", "can be used by group or others (mode 0640); it must be 0600"),
    ("short", "does not hold a 32-byte key"),
    ("not_hex", "not hexadecimal"),
    ("directory", "not a regular file"),
])
def test_unusable_key_files_are_refused_with_a_sentence(tmp_path, case, words):
    path = tmp_path / "host.key"
    if case != "missing":
        if case == "directory":
            path.mkdir(mode=0o700)
        else:
            write_key(path, KEY)
    if case == "too_open":
        path.chmod(0o640)
    elif case == "short":
        path.write_text(KEY.hex()[:40] + "\n")
    elif case == "not_hex":
        path.write_text("g" * 64 + "\n")
    with pytest.raises(HostKeyError) as e:
        load_key(path)
    assert words in str(e.value)
    assert KEY.hex() not in str(e.value)


def test_key_file_owned_by_another_user_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user")
    path = tmp_path / "host.key"
    write_key(path, KEY, owner=(65534, 65534))
    with pytest.raises(HostKeyError, match="owned by uid 65534, not by the daemon's user"):
        load_key(path)
    assert load_key(path, require_owner=False) == KEY  # mynactl show-fingerprint as root


def test_factory_refuses_to_start_without_a_usable_key(tmp_path):
    from mynad.config import HostSection, ReaderSection
    from mynad.hostlink.factory import make_host_link

    with pytest.raises(HostKeyError, match="does not exist"):
        make_host_link(HostSection(key_file=tmp_path / "nope.key"), ReaderSection(state_dir=tmp_path), print)


def test_mynactl_host_key_generate_show_import_never_prints_the_key(tmp_path, capsys):
    from mynad.ctl import main

    key_file, export, other = tmp_path / "host.key", tmp_path / "usb" / "host-copy.key", tmp_path / "r2.key"
    assert main(["host-key", "--key-file", str(key_file), "generate", "--export", str(export)]) == 0
    key = load_key(key_file)
    assert load_key(export) == key and stat.S_IMODE(export.stat().st_mode) == 0o600
    assert main(["host-key", "--key-file", str(key_file), "show-fingerprint"]) == 0
    with pytest.raises(SystemExit, match="already exists"):
        main(["host-key", "--key-file", str(key_file), "generate"])
    assert main(["host-key", "--key-file", str(other), "import", str(export)]) == 0
    assert load_key(other) == key
    write_key(other, OTHER_KEY, replace=True)
    with pytest.raises(SystemExit, match="already exists"):
        main(["host-key", "--key-file", str(other), "import", str(export)])
    assert main(["host-key", "--key-file", str(other), "import", "--force", str(export)]) == 0
    out = capsys.readouterr()
    assert auth.fingerprint(key) in out.out
    assert key.hex() not in out.out + out.err and key.hex().upper() not in out.out + out.err
