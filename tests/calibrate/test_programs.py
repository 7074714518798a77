"""The C microbenchmarks build (static, -Werror, as the gem5 guest needs them) and each
prints well-formed samples; bad options exit 2."""

import os
import shutil
import subprocess

import pytest

from percpu.calibrate.measure import parse_samples
from percpu.calibrate.sources import PROGRAMS, calib_dir, program_sources

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")

TINY = {
    "calib_clock": [["--iters", "1000", "--samples", "2"]],
    "calib_syscall": [["--iters", "100"]],
    "calib_fault": [*[["--bench", b, "--pages", "64"] for b in ("write", "read", "minor", "zero")],
                    ["--bench", "lazy", "--slots", "8"]],
    "calib_sched": [["--bench", "yield", "--threads", "--iters", "50"],
                    ["--bench", "pipe", "--iters", "50"],
                    ["--bench", "pipe", "--cross", "--iters", "20"]],
    "calib_proc": [["--bench", b, "--iters", "3"] for b in ("fork", "exec", "thread", "exit")],
    "calib_shootdown": [["--iters", "50"], ["--remote", "--iters", "50"]],
    "calib_chase": [["--size", "65536", "--iters", "1000"],
                    ["--bench", "copy", "--size", "65536", "--iters", "100"]],
}


def test_every_program_builds_static_with_werror(tmp_path):
    for program in PROGRAMS:
        cmd = ["gcc", "-O2", "-static", "-Wall", "-Wextra", "-Werror", "-pthread", "-o",
               str(tmp_path / program), *map(str, program_sources(program))]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode and "cannot find -lc" in done.stderr:
            pytest.skip("no static C library on this machine")
        assert done.returncode == 0, done.stderr
    assert (calib_dir() / "Makefile").read_text().count("-static") == 1


@pytest.mark.parametrize("program", PROGRAMS)
def test_each_program_prints_samples(built, program):
    assert built.path(program).exists(), f"{program} was not built"
    for args in TINY[program]:
        if (("--cross" in args or "--remote" in args or "lazy" in args)
                and (os.cpu_count() or 1) < 2):
            continue  # the remote side needs a second CPU
        cmd = [str(built.path(program)), *args]
        if "--samples" not in args:
            cmd += ["--samples", "2"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        samples = parse_samples(done.stdout, program)
        assert all(len(v) >= 2 for v, _ in samples.values()), done.stdout


@pytest.mark.parametrize("program,args", [
    ("calib_fault", ["--bench", "nope"]),
    ("calib_sched", ["--bench", "yield", "--cross"]),
    ("calib_chase", ["--size", "12"]),
    ("calib_syscall", ["--iters", "x"]),
])
def test_bad_options_exit_2(built, program, args):
    done = subprocess.run([str(built.path(program)), *args], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 2, done
    assert len(done.stderr.strip().splitlines()) == 1
