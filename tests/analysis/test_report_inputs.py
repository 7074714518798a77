"""`percpu report` against the inputs a new user gives it: report directories among the
runs, a baseline no run has, an output path that cannot be written, the default output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def report(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "percpu", "report", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def runs(tmp_path: Path, make_run) -> Path:
    for scheme in ("shared", "percpu"):
        make_run(tmp_path / "m5out" / scheme, scheme=scheme)
    return tmp_path


def one_error_line(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def test_the_default_output_is_report_beside_the_runs(runs):
    res = report("m5out", cwd=runs)
    assert res.returncode == 0, res.stderr
    assert (runs / "m5out" / "report" / "report.md").is_file()
    assert not (runs / "percpu-report").exists()


def test_the_readmes_report_command_works_twice(tmp_path, make_run):
    # `percpu report runs/*/* --out runs/report`: the second time runs/report is an input.
    for scheme in ("shared", "percpu"):
        make_run(tmp_path / "runs" / "a" / scheme, scheme=scheme)
    for attempt in range(2):
        inputs = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("runs/*/*"))
        res = report(*inputs, "--out", "runs/report", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
    assert "runs/report/report.md: skipped" in res.stderr
    assert (tmp_path / "runs" / "report" / "report.html").is_file()


def test_a_report_directory_among_the_inputs_is_skipped_with_a_note(runs):
    assert report("m5out", cwd=runs).returncode == 0  # writes m5out/report
    res = report(*sorted(str(p.relative_to(runs)) for p in runs.glob("m5out/*")), cwd=runs)
    assert res.returncode == 0, res.stderr
    assert "note: m5out/report: skipped" in res.stderr


def test_a_baseline_no_run_has_is_bad_input(runs):
    line = one_error_line(report("m5out", "--baseline", "nosuch", cwd=runs))
    assert "--baseline nosuch: no run has that scheme" in line
    assert "percpu, shared" in line
    assert not (runs / "m5out" / "report").exists()


@pytest.mark.parametrize("out", ["/proc/percpu-x", "/sys/percpu-x", "/proc/self/x/y"])
def test_an_unwritable_out_is_one_line(runs, out):
    line = one_error_line(report("m5out", "--out", out, cwd=runs))
    assert line.startswith(f"percpu report: error: --out {out}"), line
