"""bench/device_report.py: the one command that gathers the figures a Pi still owes."""

from __future__ import annotations

import io
import sys

import pytest

from tests.bench.conftest import REPO, load_bench


def _module():
    return load_bench("device_report")


def test_every_step_names_a_bench_that_exists():
    dr = _module()
    for step in dr.STEPS:
        assert (REPO / "bench" / step.script).is_file(), step.script


def test_a_failing_bench_is_recorded_with_its_error_and_the_next_one_still_runs(tmp_path):
    dr = _module()
    ok = tmp_path / "ok.py"
    ok.write_text("import sys\nprint('| figure | 1.0 |')\nprint('progress 50%', file=sys.stderr)\n")
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nprint('half a table')\nprint('no camera on this board', file=sys.stderr)\nsys.exit(3)\n")
    steps = [dr.Step("bad", str(bad), (), (), "breaks"), dr.Step("ok", str(ok), (), (), "works")]
    log = io.StringIO()
    results = [(s, *dr.run_step(s, False, log)) for s in steps]
    assert [code for _, code, _, _ in results] == [3, 0]
    assert "progress 50%" in log.getvalue()  # progress passes through as it comes
    text = dr.report(dr.identity(), results, quick=False)
    assert "| bad | FAILED (exit 3) |" in text and "| ok | ok |" in text
    assert "half a table" in text and "no camera on this board" in text
    assert "| figure | 1.0 |" in text
    assert "| onnxruntime blocked layout |" in text and "| cpu |" in text


def test_an_unknown_bench_name_is_refused(monkeypatch, capsys):
    dr = _module()
    monkeypatch.setattr(sys, "argv", ["device_report.py", "--only", "face,warp"])
    with pytest.raises(SystemExit) as e:
        dr.main()
    assert e.value.code == 2
    assert "unknown bench warp" in capsys.readouterr().err


def test_a_pi_kernel_cpuinfo_names_the_core_and_the_soc(monkeypatch):
    dr = _module()
    pi4 = ("processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n"
           "CPU part\t: 0xd08\n\nHardware\t: BCM2835\nRevision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n")
    monkeypatch.setattr(dr, "_read", lambda path: pi4 if path == "/proc/cpuinfo" else "")
    assert dr._cpu_name() == "Cortex-A72, BCM2835"
    monkeypatch.setattr(dr, "_read", lambda path: "processor\t: 0\nmodel name\t: AMD EPYC\n")
    assert dr._cpu_name() == "AMD EPYC"
