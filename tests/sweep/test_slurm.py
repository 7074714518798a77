"""The Slurm backend against a real single-node Slurm (conftest.py): a submitted sweep
survives a kill of the submitting process, a SIGKILL of slurmctld mid-array, and a
cancel, and resumes with every point's result exactly once. No mock stands in."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from percpu.sweep.backends.slurm_state import log_state
from tests.sweep.helpers import assert_exactly_once, percpu, results, write_spec

GRID = "param.procs_per_cpu = [2, 4, 7]\nseed = [1, 2]"  # 12 points with 2 schemes
FIXED = "cpus = 2\nparam.rounds = 300\nparam.pages = 32"


def _markers(out: Path) -> dict[str, tuple[int, int]]:
    return {m.parent.name: (m.stat().st_ino, m.stat().st_mtime_ns)
            for m in (out / "points").glob("*/result.json")}


def _submit(spec: Path, env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "percpu", "sweep", str(spec), "--backend",
                             "slurm", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait(predicate, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_killed_submitter_resumes_and_every_point_runs_once(slurm, tmp_path):
    out = tmp_path / "out"
    spec = write_spec(tmp_path / "s.toml", out, grid=GRID, fixed=FIXED, report=True)
    proc = _submit(spec, slurm.env(), "--points-per-task", "2", "--throttle", "2")
    _wait(lambda: len(results(out)) >= 3, "the first results")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _markers(out)
    assert len(before) < 12
    assert slurm.squeue(), "the arrays should go on without the submitter"
    resumed = percpu("sweep", str(spec), "--backend", "slurm", "--resume", env=slurm.env())
    assert resumed.returncode == 0, resumed.stderr
    after = _markers(out)
    assert {k: after[k] for k in before} == before
    assert_exactly_once(out)
    index = pd.read_parquet(out / "index.parquet")
    assert set(index["state"]) == {"done"} and (index["attempts"] == 1).all()
    # 6 tasks under MaxArraySize 4: two arrays, and the collect job wrote the tables.
    subs = sorted((out / "slurm" / "submissions").glob("*.json"))
    assert len(subs) >= 3
    assert (out / "tidy.parquet").is_file() and (out / "report" / "report.md").is_file()


def test_slurmctld_killed_mid_array_restarts_and_no_point_runs_twice(slurm, tmp_path):
    out = tmp_path / "out"
    spec = write_spec(tmp_path / "s.toml", out, grid=GRID, fixed=FIXED)
    proc = _submit(spec, slurm.env(), "--points-per-task", "1")
    _wait(lambda: any((out / "claims").glob("*/claim.0")) if (out / "claims").exists()
          else False, "the first array tasks to start")
    time.sleep(1.5)  # tasks started 1.5-3 s before the crash may be started again
    slurm.kill_ctld()
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)  # the submitter dies too: nothing is left tracking
    proc.wait()
    slurm.start_ctld()
    slurm.wait_idle()
    before = _markers(out)
    with slurm.admin():
        resumed = percpu("sweep", str(spec), "--backend", "slurm", "--resume",
                         env=slurm.env(), timeout=240)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    after = _markers(out)
    assert {k: after[k] for k in before} == before
    assert_exactly_once(out)


def test_cancel_stops_the_queue_and_resume_finishes(slurm, tmp_path):
    out = tmp_path / "out"
    spec = write_spec(tmp_path / "s.toml", out, grid=GRID, fixed=FIXED)
    sub = percpu("sweep", str(spec), "--backend", "slurm", "--no-wait", "--throttle", "1",
                 "--points-per-task", "1", env=slurm.env())
    assert sub.returncode == 0, sub.stderr
    _wait(lambda: len(results(out)) >= 1, "the first result")
    cancelled = percpu("sweep", "cancel", str(out), env=slurm.env())
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled Slurm jobs" in cancelled.stdout
    _wait(lambda: not slurm.squeue(), "the queue to empty", timeout=60)
    status = percpu("sweep", "status", str(out), env=slurm.env())
    assert status.returncode == 0
    assert "CANCELLED" in status.stdout
    done = len(results(out))
    assert done < 12
    resumed = percpu("sweep", str(spec), "--backend", "slurm", "--resume",
                     "--points-per-task", "4", env=slurm.env())
    assert resumed.returncode == 0, resumed.stderr
    assert_exactly_once(out)


def test_slurm_end_states_come_from_the_task_log():
    assert log_state("slurmstepd: error: *** JOB 7 ON n1 CANCELLED AT 2026-12-01T10:00:00 "
                     "DUE TO TIME LIMIT ***") == "TIMEOUT"
    assert log_state("slurmstepd: error: *** JOB 7 ON n1 CANCELLED AT 2026-12-01T10:00:00 "
                     "***") == "CANCELLED"
    assert log_state("slurmstepd: error: Detected 1 oom_kill event in StepId=7.batch. Some "
                     "of your processes may have been killed by the cgroup out-of-memory "
                     "handler.") == "OUT_OF_MEMORY"
    assert log_state("ctxmix-shared-x: ran done (0.1 s)") is None
