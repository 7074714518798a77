"""`percpu calibrate` as a user runs it: a profile that `--config` reads back, and one
line with exit code 2 for bad input."""

import os
import shutil
import subprocess
import sys
import tomllib

import pytest

from percpu.params import load_toml, specs


def percpu(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "percpu", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False, env=env)


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    where = tmp_path_factory.mktemp("cal")
    out = percpu("calibrate", "--quick", "--only", "syscall,fault_read,fault_write,zero_page",
                 "--out", "prof.toml", cwd=where)
    assert out.returncode == 0, out.stderr
    return where / "prof.toml", out


def test_profile_records_the_machine_and_reads_back_through_config(profile):
    path, out = profile
    data = tomllib.loads(path.read_text())
    meta = data["profile"]
    for key in ("machine", "cpu", "kernel", "pti", "date", "command", "virtualised",
                "load_before", "core_mhz"):
        assert key in meta, key
    assert meta["command"].startswith("percpu calibrate")
    assert meta["measurements"]["syscall"]["samples"] >= 5
    values = load_toml(path)
    assert values["cost.syscall"] == data["cost"]["syscall"]
    assert values["machine.freq_mhz"] == pytest.approx(meta["core_mhz"], abs=1)
    assert "profile.cpu" not in values and all(k in specs() for k in values)
    # Entries it could not measure are named, not set.
    text = path.read_text()
    assert "# cr3_flush not measured" in text and "cr3_flush =" not in text
    assert "cost.root_alloc" in values  # the allocation proxy (write - read - zeroing)
    assert "cost.syscall" in out.stdout


def test_a_run_uses_the_profile(profile, tmp_path):
    path, _ = profile
    run = percpu("run", "-p", "rounds=5", "-q", "--no-report", "--config", str(path),
                 "-o", "m5", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    import json
    cfg = json.loads((tmp_path / "m5" / "percpu" / "config.json").read_text())
    assert cfg["parameters"]["cost.syscall"] == load_toml(path)["cost.syscall"]


@pytest.mark.parametrize("args", [
    ["calibrate", "--only", "nosuch"],
    ["calibrate", "--only", ","],
    ["calibrate", "--out", "missing/dir/p.toml"],
    ["calibrate", "--out", "."],
    ["calibrate", "--clock-mhz", "5", "--only", "syscall"],
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args):
    out = percpu(*args, cwd=tmp_path)
    assert out.returncode == 2, out
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not list(tmp_path.glob("*.toml"))


def test_no_compiler_is_one_line_and_exit_2(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no gcc on PATH
    out = percpu("calibrate", "--only", "syscall", cwd=tmp_path, env=env)
    assert out.returncode == 2, out
    assert "gcc" in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("chrt") is None,
                    reason="SCHED_FIFO needs root and chrt")
def test_realtime_runs_the_programs_as_sched_fifo(tmp_path):
    out = percpu("calibrate", "--realtime", "--quick", "--only", "syscall", "--out", "rt.toml",
                 cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    meta = tomllib.loads((tmp_path / "rt.toml").read_text())["profile"]
    assert meta["realtime"] is True and "--realtime" in meta["command"]
