"""mynactl's console subcommands on scratch files (no daemon, no terminal): fast."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from mynad import ctl
from mynad.control import ControlPolicy, Peer
from mynad.hostlink.keyfile import generate_key, write_key
from mynad.hostlink.outbox import Outbox
from mynad.staffauth import set_password
from mynad.support_bundle import MASK, build, mask_secrets


@pytest.fixture
def site(tmp_path: Path) -> dict:
    state = tmp_path / "state"
    state.mkdir()
    key = tmp_path / "host.key"
    write_key(key, generate_key())
    set_password(state, bytearray(b"135790"), length=6)
    (state / "face-calibration.toml").write_text("threshold = 0.4\n")
    cfg = tmp_path / "mynad.toml"
    cfg.write_text(f'[reader]\nid = "r-01"\nstate_dir = "{state}"\nruntime_dir = "{tmp_path / "run"}"\n'
                   f'[host]\nkey_file = "{key}"\nmqtt_password_file = "/etc/hunter2"\n')
    return {"cfg": cfg, "state": state, "key": key, "tmp": tmp_path}


def owe(state: Path, n: int) -> None:
    box = Outbox.in_state_dir(state)
    for i in range(n):
        box.put({"id": f"m{i}", "type": "visit.result", "visit_id": f"v{i}", "name": "番号　太郎"})
    box.close()


def test_mask_secrets_keeps_the_rest():
    cfg = {"host": {"key_file": "/etc/k", "baud": 115200, "tls": {"psk": "x", "client_key": "/k"}},
           "keypad": {"rows": [5, 6]}, "staff": {"password_hash": "ab"}, "card": {"pin": "1234"}}
    m = mask_secrets(cfg)
    assert m["host"]["key_file"] == MASK and m["host"]["tls"] == {"psk": MASK, "client_key": MASK}
    assert m["staff"]["password_hash"] == MASK and m["card"]["pin"] == MASK
    assert m["host"]["baud"] == 115200 and m["keypad"] == {"rows": [5, 6]}


def test_support_bundle_counts_but_never_copies(site):
    owe(site["state"], 2)
    out = build(site["tmp"] / "b.tar.gz", config_path=site["cfg"], state_dir=site["state"],
                status={"state": "idle"}, selftests={"keypad": {"ok": True}})
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(out) as tar:
        members = tar.getmembers()
        assert all(m.uid == 0 and m.gid == 0 and not m.uname for m in members)
        blob = b"".join(tar.extractfile(m).read() for m in members).decode()
        outbox = json.loads(tar.extractfile(next(m for m in members if m.name.endswith("outbox.json"))).read())
    assert outbox["pending"] == 2 and outbox["pending_by_type"] == {"visit.result": 2}
    for secret in ("hunter2", site["key"].read_text().strip(), (site["state"] / "staff-password").read_text().strip(),
                   "番号"):
        assert secret not in blob


def test_factory_reset_needs_yes_and_twice_when_results_are_owed(site, capsys):
    owe(site["state"], 1)
    argv = ["--config", str(site["cfg"]), "factory-reset"]
    assert ctl.main(argv) == 4  # no --yes: only says what would go
    assert "outbox" in capsys.readouterr().out and (site["state"] / "outbox.sqlite").exists()
    assert ctl.main(argv + ["--yes"]) == 3  # results owed: refused
    assert "still owed" in capsys.readouterr().out and site["key"].exists()
    assert ctl.main(argv + ["--yes", "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["done"] is True
    assert list(site["state"].iterdir()) == [] and not site["key"].exists()
    assert site["cfg"].exists()  # the configuration is kept


def test_hardware_self_tests_need_staff_rights_and_look_only_ones_do_not():
    policy = ControlPolicy(staff_gid=2000, staff_group="myna-staff", daemon_uid=999)
    tech = Peer(pid=1, uid=1001, gid=1001, groups=(3000,))  # in myna-tech only
    staff = Peer(pid=1, uid=1002, gid=1002, groups=(3000, 2000))
    for name in ("keypad", "display", "buzzer-led"):
        assert policy.refusal(f"selftest:{name}", tech) is not None
        assert policy.refusal(f"selftest:{name}", staff) is None
    for name in ("card-reader", "face-camera", "card-face-camera", "host-link"):
        assert policy.refusal(f"selftest:{name}", tech) is None
    assert policy.refusal("selftest-results", tech) is None


def test_logs_and_selftest_exit_codes_without_a_journal_or_daemon(site, capsys):
    assert ctl.main(["--config", str(site["cfg"]), "selftest", "host-link"]) == 2  # no daemon
    code = ctl.main(["--config", str(site["cfg"]), "logs", "-p", "warning", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code in (0, 3) and (out["journal"] is (code == 0))
