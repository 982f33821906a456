"""The fault soak (issue 10 §3): its plan and audit on their own, then a short soak through the
real daemon (pcscd + virtual card, pty host link, models) with every fault kind at least once.

The soak's length is ``MYNA_SOAK_VISITS`` (default 10, every fault kind once: the whole suite must stay under ten
minutes; ``mynasim soak --visits 10000`` is the benchmark run, outside the suite). Timers are
the short ones of ``mynasim.soak.runner.FAST_FLOW``; the daemon's logic is unchanged.
"""

from __future__ import annotations

import os
import random
import warnings

import pytest

from mynasim.soak import audit as A
from mynasim.soak.plan import FAULT_KINDS, PlanOptions, directed_plan, make_plan, soak_profiles, unusual_pins

PROFILES = ["soak_a", "soak_b"]


# ---------------------------------------------------------------- the plan (pure)

def test_the_plan_is_the_same_for_the_same_seed_and_differs_for_another():
    assert make_plan(50, 7, PROFILES) == make_plan(50, 7, PROFILES)
    assert make_plan(50, 7, PROFILES) != make_plan(50, 8, PROFILES)


def test_every_fault_kind_is_planned_at_least_once_and_face_visits_as_asked():
    plan = make_plan(len(FAULT_KINDS) + 2, 3, PROFILES, PlanOptions(fault_share=0.0, face_share=0.0, min_face=3))
    kinds = [f.kind for v in plan for f in v.faults]
    assert sorted(set(kinds)) == sorted(FAULT_KINDS)
    assert sum(v.kind == "face" for v in plan) == 3


def test_a_card_pull_is_armed_at_placement_and_faults_have_their_parameters():
    plan = make_plan(400, 1, PROFILES, PlanOptions(fault_share=1.0))
    for f in (f for v in plan for f in v.faults):
        if f.kind == "card_pull":
            assert f.at == "card_placed" and f.apdu >= 1
        if f.kind in ("host_deaf", "line_drop", "serial_unplug", "disk_full"):
            assert f.duration_s > 0
        if f.kind in ("garbage", "corrupt"):
            assert f.nbytes >= 1


def test_a_directed_plan_sweeps_one_fault_across_a_moment():
    plan = directed_plan(make_plan(5, 1, PROFILES), "kill9", "decided", step_s=0.006)
    assert [(v.ending, [(f.kind, f.at, f.delay_s) for f in v.faults]) for v in plan] == [
        ("complete", [("kill9", "decided", round(0.006 * i, 4))]) for i in range(5)]
    with pytest.raises(ValueError):
        directed_plan(plan, "kill9", "lunch")


def test_soak_pins_cannot_be_spelled_by_a_clock_or_a_date():
    pins = unusual_pins(200, random.Random(5))
    assert len(set(pins)) == 200
    for p in pins:
        assert int(p[:2]) > 59 and int(p[2:]) > 59  # no hour, minute, second, month, day, year 19xx/20xx
    base = {"taro": {"name": "番号　太郎", "birth_date": "1981-05-12", "pin": "1234", "security_code": "1234"}}
    cards = soak_profiles(base, ["taro"], copies=3, seed=1)
    assert len(cards) == 3 and all(c["pin"] != "1234" for c in cards.values())


# ---------------------------------------------------------------- the audit (pure)

def log(line: str) -> dict:
    return {"source": "daemon", "kind": "log", "line": f"2026-12-02 13:41:21,498 INFO    mynad: {line}"}


def host(type_: str, visit_id: str, msg_id: str) -> dict:
    return {"source": "host", "kind": "received", "type": type_, "visit_id": visit_id, "id": msg_id}


def visit(vid: str, *, result: bool = True, delivered: int = 1, n: int = 1, started: bool = True) -> list[dict]:
    recs = [{"source": "soak", "kind": "visit_begin", "index": n, "faults": ["kill9 at decided+0.000s"]},
            log(f"visit {vid}: card placed")]
    if started:
        recs.append(host("visit.started", vid, f"s-{vid}"))
    if result:
        recs += [log(f"visit {vid}: key 12 on consent"), log("to host: visit.result"),
                 {"source": "display", "kind": "frame", "screen": "done"}]
        recs += [host("visit.result", vid, f"r-{vid}-{i}") for i in range(delivered)]
    recs.append({"source": "soak", "kind": "visit_end", "index": n, "stuck": False})
    return recs


def test_audit_passes_a_clean_run():
    recs = visit("aaaaaaaaaaaa") + visit("bbbbbbbbbbbb", n=2)
    report = A.audit(recs, {}, {})
    assert report.failures() == [] and report.counts()["owed"] == 2 and report.counts()["delivered"] == 2


def test_audit_finds_a_lost_result_and_the_visit_left_open_with_the_fault_that_caused_it():
    report = A.audit(visit("aaaaaaaaaaaa", delivered=0), {}, {})
    assert report.lost == ["aaaaaaaaaaaa"] and report.open_visits == ["aaaaaaaaaaaa"]
    assert any("soak visit 1; kill9 at decided" in f for f in report.failures())


def test_a_decided_result_never_shown_may_end_as_an_abort_but_a_shown_one_may_not():
    recs = visit("aaaaaaaaaaaa", delivered=0)
    recs = [r for r in recs if r.get("screen") != "done"] + [host("visit.aborted", "aaaaaaaaaaaa", "x")]
    report = A.audit(recs, {}, {})
    assert report.lost == [] and report.withdrawn == ["aaaaaaaaaaaa"] and report.failures() == []
    shown = visit("bbbbbbbbbbbb", delivered=0) + [host("visit.aborted", "bbbbbbbbbbbb", "y")]
    assert A.audit(shown, {}, {}).lost == ["bbbbbbbbbbbb"]


def test_audit_finds_duplicates_by_message_id_and_by_visit_id():
    recs = visit("aaaaaaaaaaaa", delivered=2)
    recs.append(host("visit.result", "aaaaaaaaaaaa", "r-aaaaaaaaaaaa-0"))  # the same message id again
    report = A.audit(recs, {}, {})
    whys = [why for _, why in report.duplicated]
    assert any("delivered twice" in w for w in whys) and any("different ids" in w for w in whys)


def test_audit_finds_a_result_and_an_abort_for_one_visit_and_a_stuck_visit():
    recs = visit("aaaaaaaaaaaa") + [host("visit.aborted", "aaaaaaaaaaaa", "x"),
                                    {"source": "soak", "kind": "visit_end", "index": 1, "stuck": True,
                                     "last_screen": "saving"}]
    report = A.audit(recs, {}, {})
    assert report.conflicting == ["aaaaaaaaaaaa"] and report.stuck == [(1, "saving")]


def test_audit_finds_tracebacks_and_unexplained_restarts():
    recs = visit("aaaaaaaaaaaa") + [
        {"source": "daemon", "kind": "log", "line": "Traceback (most recent call last):"},
        {"source": "daemon", "kind": "log", "line": '  File "x.py", line 1, in f'},
        {"source": "daemon", "kind": "log", "line": "sqlite3.OperationalError: database or disk is full"},
        {"source": "supervisor", "kind": "exited", "why": "unexpected", "pid": 1, "code": 1, "t": 3.0},
        {"source": "supervisor", "kind": "exited", "why": "fault kill9", "pid": 2, "code": -9, "t": 4.0},
    ]
    report = A.audit(recs, {}, {})
    assert report.tracebacks == [("aaaaaaaaaaaa", "sqlite3.OperationalError: database or disk is full")]
    assert len(report.unexpected_restarts) == 1


def test_secrets_are_found_in_every_form_and_not_in_timestamps_ids_or_base64():
    secrets = {"PIN": {"card": "8697"}, "照合番号B": {"card": "81051220318697"}}
    clean = (b"2026-12-02 13:41:21,498 visit a8697bcd1234: key 12 pid 18697 port 35963 "
             b"uuid 0cc5fb8e30da4afb9fb35061ae8697c3 t 448.8697 face_score 0.8697 uptime 8697.5")
    assert A.find_secrets({"log": clean}, secrets) == []
    leaky = {"a": b"pin=8697;", "b": b"digits ['8', '6', '9', '7']", "c": b"00 20 00 81 04 38 36 39 37",
             "d": b'"code_b": "81051220318697"'}
    found = {(leak.where, leak.form) for leak in A.find_secrets(leaky, secrets)}
    assert {("a", "token"), ("b", "spaced digits"), ("c", "ASCII hex"), ("d", "token")} <= found
    # base64 fields of host messages are left out; any other field is searched
    recs = [{"source": "host", "kind": "received", "signature": "ab+8697/x", "note": "8697"}]
    assert [leak.where for leak in A.audit(recs, {}, secrets).leaks] == ["host messages"]


def test_spaced_digits_inside_a_longer_run_are_not_a_pin():
    """The 10,000-visit soak of 2026-12-03 failed its audit on a PIN 6789 "found" in SQLite's WAL
    index (hostlink-auth.sqlite-shm), which counts in little-endian 16-bit words."""
    secrets = {"PIN": {"card": "6789"}}
    shm = bytes(b for n in range(0x26, 0x46) for b in (n, 0))          # "&\0'\0 ... 5\06\07\08\09\0:\0 ..."
    assert A.find_secrets({"shm": shm}, secrets) == []
    assert A.find_secrets({"log": b"digits [5, 6, 7, 8, 9]"}, secrets) == []
    # the same digits alone, or followed by a number with another separator, are a leak
    for leaky in (b"\x01\x006\x007\x008\x009\x00\x02", b"pin 6 7 8 9\n3 tries left", b"['6', '7', '8', '9']"):
        assert [leak.form for leak in A.find_secrets({"x": leaky}, secrets)] == ["spaced digits"], leaky


def test_audit_only_reaudits_a_jobs_run_folder_job_by_job(tmp_path, capsys):
    """``--audit-only`` on a ``--jobs`` run folder (a traceback before: it looked for OUT/timeline.jsonl)."""
    import json

    from mynasim.card.profiles import PROFILES_TOML, load_profiles
    from mynasim.cli import main as mynasim_main

    pin = next(p.pin for p in load_profiles(PROFILES_TOML).values() if p.pin)
    for job, log in ((1, "visit done\n"), (2, f"typed {pin}\n")):
        d = tmp_path / f"job-{job}"
        d.mkdir()
        (d / "soak-profiles.toml").write_text(PROFILES_TOML.read_text(encoding="utf-8"), encoding="utf-8")
        (d / "timeline.jsonl").write_text("".join(json.dumps(r) + "\n" for r in visit(f"{job:012d}")), encoding="utf-8")
        (d / "mynad.log").write_text(log, encoding="utf-8")
    assert mynasim_main(["soak", "--audit-only", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL job 2: secret leaked" in out and "job 1" not in out
    assert mynasim_main(["soak", "--audit-only", str(tmp_path / "job-1")]) == 0
    assert mynasim_main(["soak", "--audit-only", str(tmp_path / "nothing")]) == 2


# ---------------------------------------------------------------- the soak through the real daemon

VISITS = int(os.environ.get("MYNA_SOAK_VISITS", "10"))


@pytest.mark.soak
@pytest.mark.pcscd
@pytest.mark.models
@pytest.mark.timeout(120 + 30 * VISITS)
def test_soak_every_result_reaches_the_host_once_with_every_fault_kind(tmp_path):
    from mynasim.soak.runner import SoakRunner
    from mynasim.soak.summary import summary_table

    options = PlanOptions(face_share=0.0, min_face=min(3, VISITS), fault_share=0.3, pull_share=0.08,
                          cancel_share=0.05)
    runner = SoakRunner(tmp_path / "soak", VISITS, int(os.environ.get("MYNA_SOAK_SEED", "1")), options=options,
                        progress=False)
    result = runner.run()
    table = summary_table(visits=result.outcomes, faults=result.faults, counts=result.report.counts(), seconds=result.seconds,
                          state_fs=result.state_fs, supervisor=result.supervisor, seed=runner.seed,
                          notes=result.notes)
    print(table)  # the figures (s/visit) are read from here; nothing is asserted about time
    failures = result.report.failures()
    assert failures == [], "\n".join([table, "", *failures])
    assert len(result.outcomes) == VISITS
    if VISITS >= len(FAULT_KINDS):
        not_done = {k: c for k, c in result.faults.items() if c["done"] == 0}
        # pcscd can only be restarted when the rig started it (a system pcscd is left alone)
        if "pcscd_restart" in not_done and _system_pcscd(result):
            not_done.pop("pcscd_restart")
            warnings.warn("pcscd_restart was not exercised: a system pcscd was running")
        assert not not_done, f"fault kinds never carried out: {not_done}\n{table}"


def _system_pcscd(result) -> bool:
    """True when the soak skipped pcscd_restart because pcscd was not the rig's own."""
    records = A.load_records(result.run_dir / "timeline.jsonl")
    return any(r.get("kind") == "fault_skipped" and r.get("fault") == "pcscd_restart"
               and "not started by the simulator" in str(r.get("why")) for r in records)


MQTT_VISITS = int(os.environ.get("MYNA_SOAK_MQTT_VISITS", "2"))
MQTT_FAULTS = ("broker_term", "broker_kill")  # the MQTT-only faults; the others are the serial soak's


@pytest.mark.soak
@pytest.mark.mqtt
@pytest.mark.pcscd
@pytest.mark.models
@pytest.mark.timeout(120 + 30 * MQTT_VISITS)
def test_soak_over_mqtt_survives_broker_restarts(tmp_path):
    """The same audit with the host link over MQTT: the rig's private mosquitto is stopped
    (SIGTERM) and crashed (SIGKILL) mid-visit, with nothing retained when it comes back."""
    from mynasim.soak.runner import SoakRunner
    from mynasim.soak.summary import summary_table

    options = PlanOptions(face_share=0.0, fault_share=0.3, pull_share=0.0, cancel_share=0.0,
                          fault_kinds=MQTT_FAULTS)
    runner = SoakRunner(tmp_path / "soak", MQTT_VISITS, int(os.environ.get("MYNA_SOAK_SEED", "2")), options=options,
                        progress=False, transport="mqtt")
    result = runner.run()
    table = summary_table(visits=result.outcomes, faults=result.faults, counts=result.report.counts(), seconds=result.seconds,
                          state_fs=result.state_fs, supervisor=result.supervisor, seed=runner.seed,
                          notes=result.notes)
    print(table)
    failures = result.report.failures()
    assert failures == [], "\n".join([table, "", *failures])
    assert result.report.counts()["delivered"] > 0, table
    if MQTT_VISITS >= len(MQTT_FAULTS):
        not_done = {k: c for k, c in result.faults.items() if c["done"] == 0}
        assert not not_done, f"fault kinds never carried out: {not_done}\n{table}"
