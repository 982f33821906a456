"""Parallel soak jobs: the split of the plan, and a job never mounts over the machine's /run/pcscd."""

from __future__ import annotations

import os

import pytest

from mynasim.soak import parallel


def test_split_is_even_and_loses_no_visit() -> None:
    assert parallel.split(10_000, 5) == [2000] * 5
    assert parallel.split(7, 3) == [3, 2, 2]
    assert sum(parallel.split(101, 6)) == 101


def test_each_job_plays_its_own_seed() -> None:
    seeds = {parallel.job_seed(42, j) for j in range(1, 9)}
    assert len(seeds) == 8 and 42 not in seeds


def test_a_job_refuses_to_run_in_the_parents_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    # started without unshare, a job would hide the system's pcscd behind its tmpfs: refused
    monkeypatch.setenv(parallel.PARENT_NS_ENV, " ".join(parallel._namespaces()))
    with pytest.raises(parallel.IsolationError, match="namespaces of its own"):
        parallel.enter_job_namespace()
    monkeypatch.delenv(parallel.PARENT_NS_ENV)
    with pytest.raises(parallel.IsolationError):
        parallel.enter_job_namespace()
    assert not os.path.ismount(parallel.PCSCD_RUN)


def test_merge_adds_up_the_jobs(tmp_path) -> None:
    class Done:
        returncode = 0

    jobs = []
    for n in (1, 2):
        job = parallel.Job(n, 3, parallel.job_seed(1, n), tmp_path / f"job-{n}")
        job.out.mkdir()
        job.proc = Done()  # type: ignore[assignment]
        parallel.write_json(job.out / parallel.RESULT_FILE, {
            "outcomes": [{"kind": "pin", "method": "pin", "ending": "complete", "done": True}] * 3,
            "faults": {"kill9": {"planned": 1, "done": 1, "skipped": 0}}, "counts": {"owed": 3, "lost": n - 1},
            "failures": ["lost: visit x"] if n == 2 else [], "seconds": 9.0, "state_fs": "ext4 on loop, 16 MiB",
            "supervisor": {"started": 2}, "notes": []})
        jobs.append(job)
    missing = parallel.Job(3, 3, parallel.job_seed(1, 3), tmp_path / "job-3")
    missing.proc = type("Failed", (), {"returncode": 1})()  # type: ignore[assignment]
    r = parallel._merge(jobs + [missing], 20.0)
    assert len(r.outcomes) == 6 and r.counts == {"owed": 6, "lost": 1}
    assert r.faults["kill9"] == {"planned": 2, "done": 2, "skipped": 0} and r.supervisor == {"started": 4}
    assert r.failures[0] == "job 2: lost: visit x"
    assert "job 3" in r.failures[1] and "no result" in r.failures[1]
