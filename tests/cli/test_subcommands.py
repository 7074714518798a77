"""Subcommands through the real entry point (`python -m percpu`): exit codes reach the shell."""

import subprocess
import sys

import pytest


def percpu(*args, cwd):
    return subprocess.run([sys.executable, "-m", "percpu", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.parametrize("args", [
    ["report", "/nonexistent"],
    ["report"],
    ["trace", "replay", "/nonexistent.trace"],
    ["workloads", "show", "nosuch"],
    ["workloads", "render", "ctxmix", "--param", "procs_per_cpu=0"],
    ["bench", "--rounds", "0"],
])
def test_errors_exit_2_with_one_line(tmp_path, args):
    out = percpu(*args, cwd=tmp_path)
    assert out.returncode == 2, out
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_report_of_engine_runs_exits_0(tmp_path):
    run = subprocess.run([sys.executable, "-m", "percpu", "run", "-p", "rounds=5", "-q",
                          "--no-report"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    out = percpu("report", "m5out/shared", "m5out/percpu", "--out", "rep", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "rep" / "report.md").read_text().startswith("# percpu report")


def test_listing_commands(tmp_path):
    assert "percpu-eager" in percpu("schemes", cwd=tmp_path).stdout
    assert "cost.invlpg" in percpu("params", cwd=tmp_path).stdout
    assert "ctxmix" in percpu("workloads", "list", cwd=tmp_path).stdout
