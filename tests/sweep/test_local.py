"""The local backend as a user runs it: a sweep, its index, table and report; a kill or
Ctrl-C of the sweep and --resume, with every point's result exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from percpu.sweep.claim import proc_start
from tests.sweep.helpers import assert_exactly_once, percpu, results, run_cli, write_spec


def test_sweep_writes_points_index_tidy_table_and_report(tmp_path):
    out = tmp_path / "out"
    spec = write_spec(tmp_path / "s.toml", out, report=True)
    proc = percpu("sweep", str(spec), "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    assert "sweep [########################] 8/8 done, 0 failed" in proc.stderr
    assert_exactly_once(out)
    index = pd.read_parquet(out / "index.parquet")
    assert len(index) == 8 and set(index["state"]) == {"done"}
    assert {"param.procs_per_cpu", "seed", "cpus", "host_seconds", "path"} <= set(index.columns)
    assert (index["host_seconds"] > 0).all()
    tidy = pd.read_parquet(out / "tidy.parquet")
    assert set(tidy["sweep_point"]) == set(index["id"])
    assert (out / "report" / "report.md").is_file() and (out / "report" / "report.html").is_file()
    # Each point directory is what `percpu run` writes, and says how to rerun it alone.
    one = next((out / "points").iterdir())
    cfg = json.loads(next(one.glob("*/config.json")).read_text())
    assert cfg["command"][:2] == ["percpu", "run"]
    # Running the same command again continues the sweep: nothing left to run.
    again = percpu("sweep", str(spec))
    assert again.returncode == 0, again.stderr
    assert "holds this spec's sweep: continuing it" in again.stderr and "8 done" in again.stderr
    assert_exactly_once(out)
    # Another spec onto the same directory is refused, with or without --resume, and
    # nothing there is touched; a comment or another outdir does not make another spec.
    other = write_spec(tmp_path / "other.toml", out, report=False)
    before = _tree(out)
    for extra in ((), ("--resume",), ("--dry-run",)):
        refused = percpu("sweep", str(other), *extra)
        assert refused.returncode == 2, (extra, refused.stderr)
        assert "holds another spec's sweep" in refused.stderr
        assert f"percpu sweep {out / 'spec.toml'} -o {out} --resume" in refused.stderr
        assert "pass --resume" not in refused.stderr
        assert _tree(out) == before
    same = tmp_path / "same.toml"
    same.write_text("# the same sweep\n" + spec.read_text().replace(str(out), "elsewhere"))
    again = percpu("sweep", str(same), "--outdir", str(out), "--resume")
    assert again.returncode == 0 and "8 done" in again.stderr, again.stderr
    resumed = percpu("sweep", str(spec), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "8 done" in resumed.stderr


def _tree(root: Path) -> dict[str, int]:
    """Every file under root and its modification time."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file()}


def _markers(out: Path) -> dict[str, tuple[int, int]]:
    return {m.parent.name: (m.stat().st_ino, m.stat().st_mtime_ns)
            for m in (out / "points").glob("*/result.json")}


def _start(spec: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "percpu", "sweep", str(spec), "--jobs", "2", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509


def _wait_for_results(out: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(results(out)) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.05)


SLOW_GRID = "param.procs_per_cpu = [2, 3, 4, 5, 6, 7, 8, 9]\nseed = [1, 2, 3, 4]"
SLOW_FIXED = "cpus = 2\nparam.rounds = 300\nparam.pages = 32"


def test_a_killed_sweep_resumes_without_losing_or_repeating_a_point(tmp_path):
    out = tmp_path / "out"
    spec = write_spec(tmp_path / "s.toml", out, grid=SLOW_GRID, fixed=SLOW_FIXED)
    proc = _start(spec)
    _wait_for_results(out, 6, proc)
    workers = [int(p) for p in os.listdir("/proc") if p.isdigit()
               and _parent(int(p)) == proc.pid]
    proc.kill()
    proc.wait()
    before = _markers(out)
    assert 6 <= len(before) < 64
    # The workers die with the sweep (no straggler keeps writing).
    deadline = time.monotonic() + 10
    while any(proc_start(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(proc_start(w) for w in workers)
    status = percpu("sweep", "status", str(out))
    assert status.returncode == 0 and f"{len(before)} done" in status.stdout
    resumed = percpu("sweep", str(spec), "--resume", "--jobs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert f"ran {64 - len(before)} points" in resumed.stderr
    after = _markers(out)
    assert {k: after[k] for k in before} == before  # finished points were not run again
    assert_exactly_once(out)


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def test_ctrl_c_exits_130_and_resume_finishes(tmp_path):
    out = tmp_path / "out"
    spec = write_spec(tmp_path / "s.toml", out, grid=SLOW_GRID, fixed=SLOW_FIXED)
    proc = _start(spec)
    _wait_for_results(out, 4, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert "--resume" in last
    # It says how many points were kept: those with a result, which a resume does not rerun.
    kept = len(results(out))
    assert kept >= 4 and f"interrupted; {kept} of 64 points are done and kept in {out}" in last
    resumed = percpu("sweep", str(spec), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_exactly_once(out)


def test_failed_points_are_reported_and_rerun_by_resume(tmp_path, capsys, monkeypatch):
    from percpu.sweep import run

    real = run._run_engine

    def flaky(point, out):
        if point.params["procs_per_cpu"] == 7 and point.scheme == "percpu":
            raise RuntimeError("simulated failure\nin two lines")
        return real(point, out)

    monkeypatch.setattr(run, "_run_engine", flaky)  # the forked workers inherit it
    out = tmp_path / "out"
    spec = write_spec(tmp_path / "s.toml", out)
    code, _, err = run_cli("sweep", str(spec), "--jobs", "2", capsys=capsys)
    assert code == 1
    assert "6 done, 2 failed" in err
    code, table, _ = run_cli("sweep", "status", str(out), capsys=capsys)
    assert code == 0
    assert table.count("RuntimeError: simulated failure") == 2 and "two lines" not in table
    monkeypatch.setattr(run, "_run_engine", real)
    code, _, err = run_cli("sweep", str(spec), "--resume", capsys=capsys)
    assert code == 0, err
    assert "ran 2 points" in err
    assert_exactly_once(out)
