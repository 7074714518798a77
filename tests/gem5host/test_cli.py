"""`percpu gem5 run` and `gem5.opt configs/percpu.py`: what is refused before any gem5 runs."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    full_env = {**os.environ, **(env or {})}
    full_env.pop("PERCPU_GEM5", None) if env is None else None
    return subprocess.run([sys.executable, "-m", "percpu", "gem5", "run", *args],
                          check=False, capture_output=True, text=True, env=full_env,
                          timeout=120)


@pytest.mark.parametrize(("args", "message"), [
    (["--paging", "5"], "--paging 5 has no meaning on the gem5 host"),
    (["--set", "cost.invlpg=1"], "--set cost.invlpg has no meaning on the gem5 host"),
    (["--set", "cost.lazy_fault=fast"], "the value must be a number"),
    (["--config", "/nonexistent/x.toml"], "cannot read --config /nonexistent/x.toml"),
    (["--gem5", "/nonexistent/gem5.opt", "--kernel", "/nonexistent/vmlinux",
      "--scheme", "nosuch"], "--scheme: unknown scheme 'nosuch': choose from"),
    (["--gem5", "/nonexistent/gem5.opt", "--kernel", "/nonexistent/vmlinux",
      "-w", "trace:x.trace"], "--workload trace: replays on the engine only"),
    (["--gem5", "/nonexistent/gem5.opt", "--kernel", "/nonexistent/vmlinux"],
     "gem5 binary /nonexistent/gem5.opt not found"),
])
def test_refused_in_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    res = run(*args, "--outdir", str(tmp_path / "out"))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert not (tmp_path / "out").exists()


def test_no_gem5_binary_named() -> None:
    res = run(env={"PERCPU_GEM5": ""})
    assert res.returncode == 2
    assert "no gem5 binary: pass --gem5" in res.stderr


def test_help_names_both_hosts() -> None:
    gem5_help = run("--help").stdout
    assert "gem5.opt configs/percpu.py" in gem5_help and "embedded engine" in gem5_help
    engine = subprocess.run([sys.executable, str(ROOT / "configs" / "percpu.py"), "--help"],
                            check=False, capture_output=True, text=True, timeout=120)
    assert "embedded engine" in engine.stdout and "gem5.opt configs/percpu.py" in engine.stdout


def test_kernel_names_a_build_where_a_directory_has_its_name(tmp_path: Path) -> None:
    """--kernel percpu names the guest build even in the repository's root, where
    ./percpu is the package's directory (click's path check refused it)."""
    import os

    (tmp_path / "percpu").mkdir()
    res = subprocess.run([sys.executable, "-m", "percpu", "gem5", "run", "--gem5",
                          "/nonexistent/gem5.opt", "--kernel", "percpu", "-o",
                          str(tmp_path / "out")], check=False, capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "is a directory" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
