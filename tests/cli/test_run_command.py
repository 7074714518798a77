"""`percpu run` / `python configs/percpu.py` as a user runs them: outputs, errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from percpu.analysis.stats_txt import parse_stats_txt

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--param", "rounds=5", "--param", "pages=4"]

# The output contract of issue 2: per-CPU stats (N = 0..cpus-1) and system stats.
PER_CPU = [
    "numCycles", "ctxSwitches", "mmSwitches", "mmu.dtb.rdAccesses", "mmu.dtb.rdMisses",
    "mmu.dtb.wrAccesses", "mmu.dtb.wrMisses", "mmu.itb.rdAccesses", "mmu.itb.rdMisses",
    "mmu.itb.wrAccesses", "mmu.itb.wrMisses", "mmu.walker.walks", "mmu.walker.walkCycles",
    "percpu.rootAllocs::firstUse", "percpu.rootAllocs::evicted",
    "percpu.rootAllocs::flushedInactive", "percpu.rootAllocs::noPcid", "percpu.lazyFaults",
    "percpu.rootCopyBytes",
]
SYSTEM = ["system.percpu.rootPoolPeakBytes", "system.percpu.maxLazyFaultsPerRoot",
          "system.percpu.checkerViolations", "simTicks", "hostSeconds"]


def percpu(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "configs" / "percpu.py"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_main_job_writes_a_directory_per_scheme_and_a_report(tmp_path):
    out = percpu(*SMALL, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for scheme in ("shared", "percpu"):
        d = tmp_path / "m5out" / scheme
        stats = parse_stats_txt(d / "stats.txt")[-1]
        for n in range(4):
            for name in PER_CPU:
                assert f"system.cpu{n}.{name}" in stats, name
        for name in SYSTEM:
            assert name in stats
        config = json.loads((d / "config.json").read_text())
        assert config["scheme"] == scheme and config["workload"] == "ctxmix"
        assert config["machine"] == {"cpus": 4, "pcid": True, "pti": False, "paging": 4,
                                     "freq_ghz": 3.0}
        assert config["params"]["procs_per_cpu"] == 4 and config["seed"] == 1
        assert config["costs"]["cost.invlpg"] == 260
        assert "summary.txt" in os.listdir(d)
    shared = parse_stats_txt(tmp_path / "m5out" / "shared" / "stats.txt")[-1]
    percpu_ = parse_stats_txt(tmp_path / "m5out" / "percpu" / "stats.txt")[-1]
    # The same stat is 0, not absent, where a scheme does not use it.
    assert shared["system.cpu0.percpu.rootAllocs::firstUse"] == 0
    assert percpu_["system.cpu0.percpu.rootAllocs::firstUse"] == 4  # 4 processes on CPU 0
    assert percpu_["system.percpu.rootPoolPeakBytes"] <= 4 * 6 * 4096
    assert "overhead vs shared" in out.stdout
    assert (tmp_path / "m5out" / "report" / "report.md").is_file()
    assert (tmp_path / "m5out" / "report" / "report.html").is_file()


def test_flags_reach_the_machine(tmp_path):
    out = percpu(*SMALL, "--cpus", "2", "--no-pcid", "--pti", "--paging", "5", "--seed", "7",
                 "--scheme", "percpu-eager", "--set", "cost.invlpg=300", "--outdir", "o",
                 "--quiet", "--no-report", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    config = json.loads((tmp_path / "o" / "percpu-eager" / "config.json").read_text())
    assert config["machine"] == {"cpus": 2, "pcid": False, "pti": True, "paging": 5,
                                 "freq_ghz": 3.0}
    assert config["seed"] == 7 and config["costs"]["cost.invlpg"] == 300
    stats = parse_stats_txt(tmp_path / "o" / "percpu-eager" / "stats.txt")[-1]
    # Without PCID every mm switch allocates a root; with PTI the pool bound doubles.
    assert stats["system.cpu0.percpu.rootAllocs::noPcid"] == stats["system.cpu0.mmSwitches"]
    assert stats["system.percpu.rootPoolBoundBytes"] == 2 * 6 * 2 * 4096
    assert "system.cpu2.numCycles" not in stats


def test_config_file_overrides(tmp_path):
    (tmp_path / "costs.toml").write_text("[cost]\ninvlpg = 123\n[machine]\ncpus = 1\n")
    out = percpu(*SMALL, "--config", "costs.toml", "-s", "shared", "-q", "--no-report",
                 cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    config = json.loads((tmp_path / "m5out" / "shared" / "config.json").read_text())
    assert config["costs"]["cost.invlpg"] == 123 and config["machine"]["cpus"] == 1


def test_later_config_files_override_earlier_ones(tmp_path):
    """A geometry profile, then a cost profile, then --set: each later one wins."""
    (tmp_path / "geometry.toml").write_text("[cost]\ninvlpg = 123\nsyscall = 50\n")
    (tmp_path / "costs.toml").write_text("[cost]\ninvlpg = 456\n")
    out = percpu(*SMALL, "--config", "geometry.toml", "--config", "costs.toml", "--set",
                 "cost.syscall=77", "-s", "shared", "-q", "--no-report", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    costs = json.loads((tmp_path / "m5out" / "shared" / "config.json").read_text())["costs"]
    assert costs["cost.invlpg"] == 456 and costs["cost.syscall"] == 77


BAD_INPUT = [
    (["--workload", "nosuch"], "unknown workload 'nosuch'"),
    (["--scheme", "shared,bogus"], "unknown scheme 'bogus'"),
    (["--param", "procs_per_cpu=0"], "out of range"),
    (["--param", "nosuch=1"], "has no parameter 'nosuch'"),
    (["--param", "pinned=maybe"], "takes true or false"),
    (["--set", "cost.nosuch=1"], "unknown parameter 'cost.nosuch'"),
    (["--set", "cost.invlpg=-5"], "out of range"),
    (["--set", "cost.invlpg=abc"], "must be a number"),
    (["--cpus", "0"], "out of range"),
    (["--cpus", "300"], "out of range"),
    (["--paging", "3"], "'3' is not one of"),
    (["--config", "missing.toml"], "cannot read --config"),
    (["--bogus-flag"], "No such option"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    out = percpu(*args, cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert message in lines[0]
    assert not (tmp_path / "m5out").exists()


def test_unwritable_outdir_is_one_line_exit_2(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    out = percpu(*SMALL, "--outdir", "file", cwd=tmp_path)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
    assert "--outdir" in out.stderr
    if os.geteuid() != 0:  # root writes anywhere; the read-only case needs a user
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        out = percpu(*SMALL, "--outdir", "ro/out", cwd=tmp_path)
        assert out.returncode == 2


def test_parent_of_outdir_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    out = percpu(*SMALL, "--outdir", "file/sub", cwd=tmp_path)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
    assert "choose another with --outdir" in out.stderr


def test_check_exits_1_and_names_the_violation(tmp_path):
    out = percpu("--workload", "threads-munmap", "--scheme", "percpu", "--check",
                 "--set", "fault.skip_root_invalidate=1", "--cpus", "4", "-q", "--no-report",
                 cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    first = out.stderr.splitlines()[0]
    assert first.startswith("violation [percpu] cpu ")
    assert " task " in first and " op " in first and " va 0x" in first
    assert "the checker found" in out.stderr.splitlines()[-1]


def test_help_documents_every_flag_and_default(tmp_path):
    out = percpu("--help", cwd=tmp_path)
    assert out.returncode == 0
    for flag in ("--workload", "--param", "--scheme", "--cpus", "--no-pcid", "--pti", "--paging",
                 "--seed", "--outdir", "--set", "--check", "--quiet", "--config"):
        assert flag in out.stdout
    text = " ".join(out.stdout.split())
    assert "default: ctxmix" in text and "default: shared,percpu" in text


def test_a_recorded_trace_replays_through_run(tmp_path):
    trace = ROOT / "workloads" / "traces" / "perf-bench-pipe.trace.gz"
    out = percpu("--workload", f"trace:{trace}", "--param", "max_ops=5000", "--check", "-q",
                 "--no-report", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    config = json.loads((tmp_path / "m5out" / "percpu" / "config.json").read_text())
    assert config["workload"] == "trace:perf-bench-pipe.trace.gz"
    assert config["params"]["max_ops"] == 5000
    stats = parse_stats_txt(tmp_path / "m5out" / "percpu" / "stats.txt")[-1]
    assert stats["system.percpu.checkerViolations"] == 0
    assert sum(v for k, v in stats.items() if k.endswith(".ctxSwitches")) > 100
    program = (tmp_path / "m5out" / "percpu" / "program.ops").read_text()
    assert program.startswith("percpu-ops 1")


def test_a_trace_has_no_gem5_rendering(tmp_path):
    trace = ROOT / "workloads" / "traces" / "perf-bench-pipe.trace.gz"
    out = subprocess.run([sys.executable, "-m", "percpu", "workloads", "render",
                          f"trace:{trace}", "--target", "gem5"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2
    assert "replays on the engine only" in out.stderr
