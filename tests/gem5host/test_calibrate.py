"""`percpu gem5 calibrate` end to end with the stand-in gem5 (fake_gem5.py), which runs
the real guest calibration script on the calibration programs built here: the profile
it writes is the fit of that console log at the board's clock."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from percpu.params import load_toml

FAKE = Path(__file__).with_name("fake_gem5.py")


@pytest.fixture()
def bindir(built) -> Path:
    return built.directory


def command(tmp_path: Path, bindir: Path, *args: str, scenario: str = "ok"):
    """`percpu gem5 calibrate` on the stand-in gem5: (argv, env)."""
    kernel = tmp_path / "vmlinux"
    kernel.write_bytes(b"\x7fELF")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "FAKE_GEM5": scenario,
           "FAKE_GEM5_CALLS": str(tmp_path / "calls"), "FAKE_GEM5_BINDIR": str(bindir)}
    return ([sys.executable, "-m", "percpu", "gem5", "calibrate", "--gem5", str(FAKE),
             "--kernel", str(kernel), "--checkpoint-dir", str(tmp_path / "cpt"), *args], env)


def calibrate(tmp_path: Path, bindir: Path, *args: str, scenario: str = "ok"):
    argv, env = command(tmp_path, bindir, *args, scenario=scenario)
    return subprocess.run(argv, check=False, capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)


def test_calibrate_writes_a_profile_of_the_simulated_machine(tmp_path, bindir):
    res = calibrate(tmp_path, bindir, "--out", "g.toml", "--scale", "50", "--samples", "2")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "calls").read_text().split() == ["boot", "roi"]
    profile = load_toml(tmp_path / "g.toml")
    # Converted at the board's clock, not the measured one.
    assert profile["machine.freq_mhz"] == 3000
    assert profile["cost.syscall"] > 0
    text = (tmp_path / "g.toml").read_text()
    assert 'cpu = "gem5 24.0.0.1 X86 timing CPU at 3GHz, classic caches"' in text
    assert "virtualised = false" in text
    # Said to be simulated, not bare metal; timed by the run, not by the fit.
    assert 'simulator = "gem5 24.0.0.1"' in text and "-2cpu-sim" in text
    assert "simulated by gem5 24.0.0.1" in text.splitlines()[0]
    assert "bare metal" not in text
    assert "percpu gem5 calibrate" in text and "--scale 50" in text
    console = (tmp_path / "g.console.log").read_text()
    assert "calib-info cpus 2" in console and "calib syscall " in console
    # The DRAM chase is sized for the simulated machine (4 MiB), not a real one's 64 MiB.
    assert "chase_4096k" in text and "chase_65536k" not in text
    assert not list(tmp_path.glob(".g.toml.*"))


def test_a_failed_benchmark_fails_the_run_and_writes_no_profile(tmp_path, bindir):
    res = calibrate(tmp_path, bindir, "--out", "g.toml", "--scale", "50", "--samples", "2",
                    scenario="calib-fail")
    assert res.returncode == 1
    assert "benchmarks failed in the guest: syscall" in res.stderr
    assert not (tmp_path / "g.toml").exists()
    assert (tmp_path / "g.toml.failed" / "console.log").is_file()


@pytest.mark.parametrize("args, message", [
    (["--caches", "none"], "--caches none: the calibration measures cache latencies"),
    (["--scale", "0"], "--scale and --samples must be at least 1"),
    (["--out", "."], "is a directory"),
    (["--baseline", "stock.toml"], "--baseline needs --kernel percpu"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    res = calibrate(tmp_path, tmp_path, *args)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "calls").exists()


def test_sigterm_leaves_no_temporary_directory(tmp_path, bindir):
    """SIGTERM (a batch system's time limit, kill) mid-run: gem5 is killed, the run's
    temporary directory beside --out goes, no profile is written, exit 130."""
    import signal
    import time

    argv, env = command(tmp_path, bindir, "--out", "g.toml", scenario="hang")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".g.toml.*/plan.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    assert list(tmp_path.glob(".g.toml.*/plan.json")), "the gem5 run never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not list(tmp_path.glob(".g.toml*")) and not (tmp_path / "g.toml").exists()
