"""`mynad --check-config`: every value out of range is one plain sentence naming section.key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mynad.config import ConfigError, load_config, parse_config


def problem(raw: dict, base: Path = Path(".")) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(raw, base=base)
    return str(e.value)


@pytest.mark.parametrize("raw,expected", [
    ({"host": {"baud": 7}}, "[host] baud must be a standard rate: 1200, 2400"),
    ({"host": {"baud": 115201}}, "(got 115201)"),
    ({"host": {"mqtt_port": 99999}}, "[host] mqtt_port must be between 1 and 65535 (got 99999)"),
    ({"host": {"mqtt_port": 0}}, "[host] mqtt_port must be between 1 and 65535"),
    ({"card": {"apdu_timeout_s": 0}}, "[card] apdu_timeout_s must be between 0.1 and 60"),
    ({"card": {"apdu_timeout_s": 1e9}}, "[card] apdu_timeout_s must be between"),
    ({"flow": {"screen_timeout_s": 0}}, "[flow] screen_timeout_s is a time in seconds: it must be more than 0"),
    ({"flow": {"host_timeout_s": 86400}}, "[flow] host_timeout_s is a time in seconds: it must be more than 0 and at most 3600"),
    ({"flow": {"staff_password_length": 3}}, "[flow] staff_password_length must be between 4 and 12"),
    ({"keypad": {"rows": [5, 6, 99, 19]}}, "[keypad] rows must be between 0 and 27 (got 99)"),
    ({"keypad": {"cols": [1, "a"]}}, "[keypad] cols must be a list of whole numbers"),
    ({"display": {"rotate": 90}}, "[display] rotate must be one of 0, 1, 2, 3"),
    ({"display": {"contrast": 300}}, "[display] contrast must be between 0 and 255"),
    ({"indicators": {"buzzer_pin": 40}}, "[indicators] buzzer_pin must be between 0 and 27"),
    ({"camera": {"fps": 0}}, "[camera] fps must be between 1 and 120"),
    ({"card_face": {"min_confidence": 2.0}}, "[card_face] min_confidence must be between 0 and 1"),
    ({"face": {"threads": 0}}, "[face] threads must be between 1 and 16"),
    ({"staff": {"max_wrong": 0}}, "[staff] max_wrong must be between 1 and 100"),
    ({"staff": {"lock_s": 600, "lock_max_s": 60}}, "[staff] lock_max_s (60) must not be shorter than lock_s (600)"),
    ({"reader": {"log_level": "loud"}}, "[reader] log_level must be one of debug, info, warning, error"),
    ({"reader": {"id": "a/#"}}, "[reader] id must be 1 to 64 letters"),
    ({"reader": {"id": ""}}, "[reader] id must be 1 to 64 letters"),
    ({"reader": {"staff_group": "Bad Group"}}, "[reader] staff_group must be a Unix group name"),
    ({"host": {"transport": "carrier-pigeon"}}, "[host] transport must be one of serial, mqtt"),
])
def test_out_of_range_is_one_sentence(raw, expected):
    msg = problem(raw)
    assert expected in msg
    assert "Traceback" not in msg and "\n" not in msg


def test_all_problems_at_once_one_line_each():
    msg = problem({"host": {"baud": 7, "transport": "mqtt", "mqtt_tls_ca": "/nonexistent/ca.pem"},
                   "reader": {"id": "x/y"}})
    lines = msg.splitlines()
    assert len(lines) == 3
    assert any(line.startswith("[host] baud") for line in lines)
    assert any(line.startswith("[reader] id") for line in lines)
    assert any(line.startswith("[host] mqtt_tls_ca: /nonexistent/ca.pem does not exist") for line in lines)


@pytest.mark.parametrize("key", ["password_sha256", "password_salt"])
def test_old_staff_hash_keys_are_refused_with_the_way_out(key):
    msg = problem({"staff": {key: "abc"}})
    assert msg.startswith(f"[staff] {key}: the staff password is no longer kept in the config")
    assert "mynactl staff-password set" in msg


def test_plain_mqtt_password_is_refused():
    msg = problem({"host": {"mqtt_password": "hunter2"}})
    assert msg.startswith("[host] mqtt_password: the MQTT password must not be written in the config")
    assert "mqtt_password_file" in msg and "hunter2" not in msg


def mqtt(tmp_path: Path, **host) -> dict:
    return {"host": {"transport": "mqtt", **host}}


def test_mqtt_files_must_exist_relative_to_the_config(tmp_path):
    (tmp_path / "ca.pem").write_text("x")
    cfg = parse_config(mqtt(tmp_path, mqtt_tls_ca="ca.pem"), base=tmp_path)
    assert cfg.host.mqtt_tls_ca == tmp_path / "ca.pem"
    for key in ("mqtt_tls_ca", "mqtt_tls_cert", "mqtt_tls_key", "mqtt_password_file"):
        extra = {"mqtt_tls_ca": "ca.pem", "mqtt_tls_cert": "c.pem", "mqtt_tls_key": "k.pem"} if key != "mqtt_password_file" else {}
        extra[key] = "missing.pem"
        if key == "mqtt_tls_ca":
            extra.pop("mqtt_tls_cert"), extra.pop("mqtt_tls_key")
        assert f"[host] {key}: {tmp_path / 'missing.pem'} does not exist" in problem(mqtt(tmp_path, **extra), tmp_path)


def test_mqtt_files_are_not_checked_for_a_serial_reader(tmp_path):
    parse_config({"host": {"transport": "serial", "mqtt_tls_ca": "/nonexistent"}}, base=tmp_path)


def test_client_certificate_needs_its_key_and_a_ca(tmp_path):
    for name in ("ca.pem", "c.pem"):
        (tmp_path / name).write_text("x")
    assert "mqtt_tls_cert and mqtt_tls_key go together" in problem(mqtt(tmp_path, mqtt_tls_ca="ca.pem",
                                                                         mqtt_tls_cert="c.pem"), tmp_path)
    key = tmp_path / "k.pem"
    key.write_text("x")
    key.chmod(0o600)
    assert "mqtt_tls_cert needs mqtt_tls_ca" in problem(mqtt(tmp_path, mqtt_tls_cert="c.pem",
                                                             mqtt_tls_key="k.pem"), tmp_path)


@pytest.mark.parametrize("mode,ok", [(0o600, True), (0o640, True), (0o400, True), (0o644, False),
                                     (0o660, False), (0o602, False)])
def test_password_file_mode(tmp_path, mode, ok):
    f = tmp_path / "mqtt-password"
    f.write_text("s3cret\n")
    f.chmod(mode)
    raw = mqtt(tmp_path, mqtt_password_file="mqtt-password")
    if ok:
        parse_config(raw, base=tmp_path)
    else:
        msg = problem(raw, tmp_path)
        assert f"[host] mqtt_password_file: {f} has mode {mode:04o}; a file holding a secret must be 0600 or 0640" in msg
        assert "s3cret" not in msg


def test_password_file_owner(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    f = tmp_path / "mqtt-password"
    f.write_text("s3cret\n")
    f.chmod(0o600)
    os.chown(f, 65534, 65534)
    msg = problem(mqtt(tmp_path, mqtt_password_file="mqtt-password"), tmp_path)
    assert "is owned by uid 65534; it must belong to root or the daemon's user" in msg


def test_check_config_command_prints_each_problem_and_exits_78(tmp_path):
    cfg = tmp_path / "mynad.toml"
    cfg.write_text('[host]\nbaud = 7\nmqtt_port = 99999\n')
    r = subprocess.run([sys.executable, "-m", "mynad.main", "--check-config", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 78
    assert "[host] mqtt_port must be between 1 and 65535 (got 99999)" in r.stderr


def test_the_sim_config_and_defaults_pass(tmp_path):
    load_config(Path(__file__).resolve().parents[2] / "hw-sim/mynasim/mynad-sim.toml")
    parse_config({})
