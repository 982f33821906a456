"""The technician console on a serial line, as a technician uses it.

``mynactl console`` runs on one end of a socat pty pair as a getty would start it (its own
session, the line as its controlling terminal); picocom, a stock serial terminal, runs on
the other end under pexpect with lrzsz as its ZMODEM tools. Against the real daemon in
hw-sim (one module-scoped rig): every self-test (the keypad test pressed through the sim
keypad, the display and buzzer verdicts checked against what the sim bus saw), a support
bundle pulled with ZMODEM and searched for anything personal or secret, an update pushed
with ZMODEM that reaches ``mynactl update`` byte for byte, and a hangup that ends the
console cleanly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.integration.conftest import running_rig
from tests.integration.test_visits import pin_visit_until
from tests.release.conftest import built_bundle, release_key  # noqa: F401  (fixtures: a real signed bundle)

pexpect = pytest.importorskip("pexpect")

pytestmark = [pytest.mark.pcscd, pytest.mark.models, pytest.mark.slow]

CTRL_A, CTRL_R, CTRL_S = "\x01", "\x12", "\x13"


def _need(*exes: str) -> None:
    for exe in exes:
        if shutil.which(exe) is None:
            pytest.fail(f"{exe} is not installed: run scripts/setup.sh")


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    yield from running_rig(tmp_path_factory.mktemp("console-rig"))


@pytest.fixture(scope="module")
def line(rig, tmp_path_factory):
    """(picocom under pexpect, the console process, folders): the technician's serial session."""
    _need("socat", "picocom", "sz", "rz", "setsid")
    d = tmp_path_factory.mktemp("console-line")
    term, tty = d / "term", d / "line"
    socat = subprocess.Popen(["socat", f"pty,raw,echo=0,link={term}", f"pty,raw,echo=0,link={tty}"],
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not (term.exists() and tty.exists()):
        assert time.monotonic() < deadline, "socat made no pty pair"
        time.sleep(0.05)
    # what mynactl update received: a wrapper records the file's sha256 (H2's update is separate work)
    record = d / "update-received.json"
    wrapper = d / "mynactl-wrapper"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import hashlib, json, sys\n"
        "from mynad.ctl import main\n"
        "a = sys.argv[1:]\n"
        "if 'update' in a:\n"
        "    f = a[a.index('update') + 1]\n"
        f"    json.dump({{'file': f, 'sha256': hashlib.sha256(open(f, 'rb').read()).hexdigest()}}, "
        f"open({str(record)!r}, 'w'))\n"
        "    print('update: received intact; installing is mynactl update\\'s work'); sys.exit(0)\n"
        "sys.exit(main(a))\n")
    wrapper.chmod(0o755)
    updates = d / "updates"
    updates.mkdir()
    env = dict(os.environ, TERM="vt100", MYNACTL=str(wrapper), MYNA_UPDATE_DIR=str(updates))
    # as getty would: a new session, the line opened (and so made the controlling tty) in it
    console = subprocess.Popen(
        ["setsid", "sh", "-c", f'stty 115200 < "{tty}"; exec "{sys.executable}" -m mynad.ctl '
                               f'--config "{rig.config_path}" console < "{tty}" > "{tty}" 2>&1'], env=env)
    downloads = d / "downloads"
    downloads.mkdir()
    pico = pexpect.spawn("picocom", ["-b", "115200", "-q", "--receive-cmd", "rz -E", "--send-cmd", "sz -b",
                                     str(term)], cwd=str(downloads), dimensions=(24, 80), encoding="utf-8",
                         codec_errors="replace", timeout=30)
    try:
        yield pico, console, {"dir": d, "downloads": downloads, "record": record, "socat": socat}
    finally:
        if pico.isalive():
            pico.terminate(force=True)
        for p in (console, socat):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def _frame_seen(rig, screen: str, after: int) -> bool:
    return any(e.data.get("screen") == screen for e in rig.timeline.entries("display", "frame")[after:])


def test_self_tests_through_picocom(rig, line):
    pico, _, _ = line
    pico.send("\x0c")  # Ctrl-L: the redraw key (also what a technician presses after connecting)
    pico.expect("Main menu")
    pico.send("2")
    pico.expect("Self-tests")

    # keypad: the console asks for each key in turn; the sim keypad presses it
    pico.send("4")
    for key in range(1, 13):
        pico.expect(rf"press key {key} \(")
        rig.press(key)
    pico.expect(r"keypad: PASS: all 12 keys answered in turn")

    # display: the daemon shows its pattern on the panel, the technician confirms
    frames = len(rig.timeline.entries("display", "frame"))
    before_pattern = rig.mark()
    pico.send("5")
    pico.expect("Does the display show")
    rig.timeline.wait_for(lambda e: e.source == "display" and e.data.get("screen") == "selftest_pattern", 10,
                          after=0, what="the test pattern on the display")
    pico.send("y")
    pico.expect("display: PASS")
    rig.wait_screen("idle", after=before_pattern)  # the flow's screen is back

    # buzzer and LED: what the sim bus heard, then the technician's yes
    mark = rig.mark()
    pico.send("6")
    pico.expect("Did the buzzer")
    rig.timeline.wait_for(lambda e: e.source == "buzzer" and e.data.get("pattern") == "ok", 10, after=mark,
                          what="the buzzer pattern")
    pico.send("y")
    pico.expect("buzzer-led: PASS")

    # card reader: a test card placed while the test waits never starts a visit
    mark = rig.mark()
    pico.send("1")
    pico.expect("place a My Number card")
    rig.place_card("taro")
    pico.expect(r"card-reader: PASS: reader present, card ATR read, JPKI application selected")
    assert not any(e.data.get("screen") not in ("idle", "selftest_pattern")
                   for e in rig.timeline.entries("display", "frame")[frames:]), "a visit started"
    rig.remove_card()
    assert mark  # (timeline moved on)

    # face camera: someone stands in front of it
    rig.show_face(rig.photo_of("taro"), follow=False)
    pico.send("2")
    pico.expect(r"face-camera: PASS: frame \d+x\d+, brightness \d+, a face found")
    rig.show_face(None)
    pico.send("3")
    pico.expect(r"card-face-camera: (PASS|FAIL)")
    pico.send("7")
    pico.expect(r"host-link: PASS: the host answered in \d+ ms")

    # an abort: the keypad test stopped by Esc gives the keys back to the flow
    pico.send("4")
    pico.expect(r"press key 1 \(")
    pico.send("\x1b")
    pico.expect("keypad: FAIL: aborted by the technician")
    out = subprocess.run([sys.executable, "-m", "mynad.ctl", "--config", str(rig.config_path), "selftest",
                          "host-link", "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["host-link"]["ok"] is True


def test_status_and_logs_pages(rig, line):
    pico, _, _ = line
    pico.send("b")
    pico.expect("Main menu")
    pico.send("1")
    pico.expect("results owed")
    pico.expect("last error")
    pico.send("b")
    pico.send("3")
    pico.expect(r"no journal|journal has no lines|mynad")  # this machine has no journald: said plainly
    pico.send("b")
    pico.expect("Main menu")


def test_support_bundle_by_zmodem_holds_nothing_personal(rig, line):
    pico, _, f = line
    # a whole visit first, so that the outbox, the log and the host have a patient in them
    from mynasim.rig import STAFF_PASSWORD

    profile = rig.profiles["hanako"]
    mark = pin_visit_until(rig, "hanako")
    rig.remove_card()
    rig.wait_host("visit.result", after=mark)
    rig.wait_screen("idle", after=mark)
    pico.send("4")
    pico.expect("ZMODEM receive now", timeout=60)
    pico.send(CTRL_A + CTRL_R)
    i = pico.expect([r"\*\*\* file: ", r"\*\*\* exit status: 0|Transfer complete", pexpect.TIMEOUT], timeout=15)
    if i == 0:
        pico.send("\r")
    pico.expect(r"exit status: 0", timeout=120)
    # the console redrew while picocom's rz was still draining the line: Ctrl-L, as a technician would
    pico.send("\x0c")
    pico.expect(r"was sent with ZMODEM", timeout=30)
    got = list(f["downloads"].glob("myna-support-*.tar.gz"))
    assert len(got) == 1, list(f["downloads"].iterdir())
    with tarfile.open(got[0]) as tar:
        names = {Path(n).name for n in tar.getnames()}
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert {"versions.json", "config.json", "status.json", "selftest.json", "outbox.json", "journal.txt",
            "system.txt"} <= names
    text = blob.decode("utf-8")
    secrets = [rig.host_key_file().read_text().strip(), (rig.run_dir / "state" / "staff-password").read_text().strip(),
               STAFF_PASSWORD, profile.name, str(profile.birth_date)]
    if profile.pin:
        secrets.append(f'"{profile.pin}"')
    for s in secrets:
        assert s and s not in text, f"the support bundle holds a secret or personal value: {s[:6]}..."
    assert "***masked***" in text
    assert '"keypad"' in text  # self-test results are in it


def test_update_by_zmodem_reaches_mynactl_update_intact(rig, line, built_bundle):  # noqa: F811
    pico, _, f = line
    # the first 8 MiB of a real signed bundle: what is tested here is the ZMODEM leg (picocom's
    # sz -> the console's rz -> mynactl update), byte for byte; 220 MB through picocom costs
    # ~40 s of the suite and tests nothing more (installing bundles: tests/release/test_update.py)
    bundle = f["dir"] / "myna-reader-head.tar"
    with open(built_bundle(), "rb") as src:
        bundle.write_bytes(src.read(8 << 20))
    want = hashlib.sha256(bundle.read_bytes()).hexdigest()
    pico.send("b")
    pico.send("5")
    pico.expect("Send the .tar file")
    pico.send(CTRL_A + CTRL_S)
    pico.expect(r"\*\*\* file: ")
    pico.send(str(bundle) + "\r")
    pico.expect(r"exit status: 0", timeout=120)
    pico.send("\x0c")
    pico.expect(r"sha256 ([0-9a-f]{64})", timeout=60)
    assert pico.match.group(1) == want  # the technician sees the sha256 of what arrived before saying yes
    pico.expect("Install it now")
    pico.expect("y yes")
    pico.send("y")
    pico.expect("received intact", timeout=120)
    rec = json.loads(f["record"].read_text())
    assert rec["sha256"] == want
    assert not Path(rec["file"]).exists()  # the private temp copy is gone after the update


def test_reconnect_redraws_then_hangup_ends_the_console_cleanly(line):
    pico, console, f = line
    pico.send("b")
    pico.expect("Main menu")
    pico.send("2")
    pico.expect("1-7 run a test")
    pico.sendcontrol("a")
    pico.sendcontrol("x")  # the technician quits picocom; the console keeps running on the line
    pico.expect(pexpect.EOF)
    assert console.poll() is None
    if f["socat"].poll() is None:  # the pty pair outlived the terminal (as a UART would): reconnect
        again = pexpect.spawn("picocom", ["-b", "115200", "-q", str(f["dir"] / "term")], dimensions=(24, 80),
                              encoding="utf-8", codec_errors="replace", timeout=30)
        again.send("\x0c")
        again.expect("1-7 run a test")  # the same screen as before the disconnect: no state lost
        pico = again
    pico.terminate(force=True)  # the technician pulls the cable: socat ends, the line hangs up
    f["socat"].terminate()
    assert console.wait(20) == 0
