"""The orchestrator's handling of gem5 processes, with a stand-in for gem5.opt
(fake_gem5.py) that leaves what gem5 and the guest would leave. Real gem5 runs are in
tests/gem5/ (they need PERCPU_GEM5)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

FAKE = Path(__file__).with_name("fake_gem5.py")


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    kernel = tmp_path / "vmlinux"
    kernel.write_bytes(b"\x7fELF")
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "FAKE_GEM5_CALLS": str(tmp_path / "calls"), "PERCPU_GEM5": str(FAKE),
            "KERNEL": str(kernel)}


def gem5_run(env: dict[str, str], tmp_path: Path, *args: str, scenario: str = "ok"):
    return subprocess.run(
        [sys.executable, "-m", "percpu", "gem5", "run", "--kernel", env["KERNEL"],
         "--checkpoint-dir", str(tmp_path / "cpt"), "-o", str(tmp_path / "out"), "--no-report",
         *args],
        check=False, capture_output=True, text=True, env={**env, "FAKE_GEM5": scenario},
        timeout=120)


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().split() if path.exists() else []


def test_boot_once_then_restore(env: dict[str, str], tmp_path: Path) -> None:
    res = gem5_run(env, tmp_path, "-w", "ctxmix", "-p", "procs_per_cpu=8", "-s", "shared")
    assert res.returncode == 0, res.stderr
    assert calls(tmp_path) == ["boot", "roi"]
    run = tmp_path / "out" / "shared"
    for name in ("stats.txt", "config.ini", "console.log", "percpu.json", "summary.txt",
                 "workload.sh", "plan.json"):
        assert (run / name).is_file(), name
    info = json.loads((run / "percpu.json").read_text())
    assert info["host"] == "gem5" and info["scheme"] == "shared"
    assert info["params"]["procs_per_cpu"] == 8 and info["machine"]["pcid"] is True
    assert info["guest"]["booted"]["pcid"] == "yes"
    assert "--procs-per-cpu 8" in (run / "workload.sh").read_text()
    summary = (run / "summary.txt").read_text()
    assert re.search(r"^flushing CR3 writes per mm switch +0$", summary, re.MULTILINE), summary
    # The second run of the same machine reuses the checkpoint.
    res = gem5_run(env, tmp_path, "-w", "ctxmix", "-s", "shared")
    assert res.returncode == 0, res.stderr
    assert calls(tmp_path) == ["boot", "roi", "roi"]
    assert "checkpoint: reusing" in res.stderr
    # Another machine boots again; without --scheme, the engine's default schemes.
    res = gem5_run(env, tmp_path, "-w", "ctxmix", "--no-pcid")
    assert res.returncode == 0, res.stderr
    assert calls(tmp_path) == ["boot", "roi", "roi", "boot", "roi", "roi"]
    assert "  that flushed" in res.stdout


def test_report_reads_gem5_runs(env: dict[str, str], tmp_path: Path) -> None:
    assert gem5_run(env, tmp_path).returncode == 0
    res = subprocess.run([sys.executable, "-m", "percpu", "report", str(tmp_path / "out" / "shared"),
                          "--out", str(tmp_path / "rep")], check=False, capture_output=True,
                         text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "gem5" in text and "ctxmix" in text


def test_guest_without_pcid_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    res = gem5_run(env, tmp_path, scenario="pcid-missing")
    assert res.returncode == 1
    assert "the guest reports pcid=no where the machine has PCID on" in res.stderr
    kept = [p for p in (tmp_path / "cpt").iterdir() if not p.name.endswith(".failed")]
    assert not kept, "no checkpoint may be kept"
    assert list((tmp_path / "cpt").glob("*.failed"))
    assert not (tmp_path / "out" / "shared").exists()


@pytest.mark.parametrize(("scenario", "args", "message"), [
    ("panic", (), "Kernel panic - not syncing"),
    ("hang", ("--timeout", "10"), "no end after 10 s of host time"),
    ("nodump", (), "never dumped its region of interest"),
])
def test_failed_region_of_interest(env: dict[str, str], tmp_path: Path, scenario: str,
                                   args: tuple[str, ...], message: str) -> None:
    assert gem5_run(env, tmp_path).returncode == 0  # the boot, done once
    res = gem5_run(env, tmp_path, *args, scenario=scenario)
    assert res.returncode == 1
    errors = [ln for ln in res.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and message in errors[0], res.stderr
    failed = tmp_path / "out" / "shared.failed"
    assert (failed / "console.log").is_file() and (failed / "console-tail.txt").is_file()
    assert (tmp_path / "out" / "shared" / "stats.txt").is_file(), "the earlier run stays"


def test_gem5_crash(env: dict[str, str], tmp_path: Path) -> None:
    res = gem5_run(env, tmp_path, scenario="crash")
    assert res.returncode == 1
    assert "gem5 fatal: something gem5 did not like" in res.stderr


def test_stock_gem5_is_refused_before_booting(env: dict[str, str], tmp_path: Path) -> None:
    res = gem5_run(env, tmp_path, scenario="stock")
    assert res.returncode == 2
    assert res.stderr.strip().endswith("(docs/gem5.md)") and "lacks percpu's plugin" in res.stderr
    assert calls(tmp_path) == [] and not (tmp_path / "cpt").exists()


@pytest.mark.parametrize(("scenario", "code", "words"), [
    ("ok", 0, "has percpu's patches and plugin (PercpuCr3Monitor, PercpuRootModel, PercpuWalker)"),
    ("stock", 1, "lacks percpu's plugin (PercpuCr3Monitor, PercpuRootModel, PercpuWalker)"),
])
def test_gem5_check(env: dict[str, str], scenario: str, code: int, words: str) -> None:
    res = subprocess.run([sys.executable, "-m", "percpu", "gem5", "check"], check=False,
                         capture_output=True, text=True, env={**env, "FAKE_GEM5": scenario},
                         timeout=60)
    assert res.returncode == code and words in res.stdout
    assert len(res.stdout.strip().splitlines()) == 1


def test_both_schemes_one_checkpoint_with_the_cost_table(env: dict[str, str],
                                                         tmp_path: Path) -> None:
    res = gem5_run(env, tmp_path, "--scheme", "shared,percpu", "--set", "cost.lazy_fault=900")
    assert res.returncode == 0, res.stderr
    assert calls(tmp_path) == ["boot", "roi", "roi"]
    plans = {s: json.loads((tmp_path / "out" / s / "plan.json").read_text())
             for s in ("shared", "percpu")}
    # One checkpoint, both schemes; the pool is withheld from the guest under either.
    assert plans["shared"]["restore"] == plans["percpu"]["restore"]
    assert plans["shared"]["root_pool"] == plans["percpu"]["root_pool"]
    pool = plans["percpu"]["root_pool"]
    assert pool["base"] + pool["size"] == 512 << 20 and pool["size"] >= 2 * 6 * 4096
    roots = plans["percpu"]["roots"]
    assert roots["scheme"] == "percpu" and roots["lazy_fault_cycles"] == 900
    assert roots["root_alloc_cycles"] == 200 and roots["check"] is False
    info = json.loads((tmp_path / "out" / "percpu" / "percpu.json").read_text())
    assert info["roots"] == roots
    # 3 per CPU in the stand-in's stats, on the default 4 CPUs (the engine's default).
    assert plans["percpu"]["cpus"] == 4
    assert re.search(r"^root allocs +12$", (tmp_path / "out" / "percpu" / "summary.txt").read_text(),
                     re.MULTILINE)
    assert re.search(r"root allocs +0 +12", res.stdout), res.stdout


def test_check_exits_1_on_a_violation(env: dict[str, str], tmp_path: Path) -> None:
    res = gem5_run(env, tmp_path, "--scheme", "percpu", "--check", scenario="violation")
    assert res.returncode == 1, res.stderr
    assert "checker violations (percpu 1)" in res.stderr
    assert json.loads((tmp_path / "out" / "percpu" / "plan.json").read_text())["roots"]["check"]
    res = gem5_run(env, tmp_path, "--scheme", "percpu", "--check")
    assert res.returncode == 0, res.stderr


def test_report_shows_both_hosts_side_by_side(env: dict[str, str], tmp_path: Path) -> None:
    assert gem5_run(env, tmp_path, "--scheme", "shared,percpu").returncode == 0
    engine = subprocess.run(
        [sys.executable, "-m", "percpu", "run", "-w", "ctxmix", "-p", "rounds=5", "--cpus", "2",
         "-s", "shared,percpu", "-o", str(tmp_path / "engine"), "-q", "--no-report"],
        check=False, capture_output=True, text=True, env=env, timeout=300)
    assert engine.returncode == 0, engine.stderr
    res = subprocess.run([sys.executable, "-m", "percpu", "report", str(tmp_path / "out"),
                          str(tmp_path / "engine"), "--out", str(tmp_path / "rep")],
                         check=False, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    # One workload, two points: the host tells them apart in every table's labels.
    assert "host=engine" in text and "host=gem5" in text, text[:3000]
    # gem5's own dimensions (mode, cpu_type) label its points only, not the engine's as "?".
    assert "mode=fs" in text and "=?" not in text, text[:3000]


def percpu_kernel(tmp_path: Path) -> str:
    """A stand-in for `percpu guest build --kernel percpu`'s vmlinux and manifest."""
    build = tmp_path / "percpu-build"
    build.mkdir()
    (build / "vmlinux").write_bytes(b"\x7fELF")
    (build / "manifest.json").write_text(json.dumps({"kernel": "percpu"}))
    return str(build / "vmlinux")


def test_the_percpu_kernels_counts_land_in_stats_under_the_models_names(
        env: dict[str, str], tmp_path: Path) -> None:
    from percpu.gem5host.run import headline

    env = {**env, "KERNEL": percpu_kernel(tmp_path)}
    res = gem5_run(env, tmp_path, "-w", "ctxmix", "-s", "shared", "--kernel-time")
    assert res.returncode == 0, res.stderr
    run = tmp_path / "out" / "shared"
    script = (run / "workload.sh").read_text()
    # The checker off, timed, kmap_local mapping nothing (as the stock kernel's).
    assert "echo nocheck,time,kmapdirect >/proc/percpu_roots" in script
    h = headline(run / "stats.txt")
    # The plugin's zeros under shared plus the kernel's system-wide counts.
    assert h["percpu.rootAllocs::evicted"] == 12 and h["percpu.rootAllocs::total"] == 16
    assert h["percpu.lazyFaults"] == 40 and h["percpu.rootPoolPeakBytes"] == 8192
    assert h["percpu.kernel.rootMakeCycles"] == 16 * 900
    stats = (run / "stats.txt").read_text()
    assert stats.count("board.percpu.rootPoolPeakBytes") == 1  # replaced, not repeated
    assert "board.percpu.enabled" not in stats
    info = json.loads((run / "percpu.json").read_text())
    assert info["guest"]["kernel_roots"]["rootAllocs::evicted"] == 12
    assert re.search(r"^root allocs +16$", (run / "summary.txt").read_text(), re.MULTILINE)
    # --check keeps the kernel's checker on; without --kernel-time it does not time.
    res = gem5_run(env, tmp_path, "-w", "ctxmix", "-s", "shared", "--check", "--force",
                   "--kernel-kmap", "private")
    assert res.returncode == 0, res.stderr
    assert "echo check,notime,kmapmap,kmap >/proc/percpu_roots" in \
        (run / "workload.sh").read_text()


def test_the_percpu_kernel_runs_under_shared_only(env: dict[str, str], tmp_path: Path) -> None:
    res = gem5_run({**env, "KERNEL": percpu_kernel(tmp_path)}, tmp_path, "-w", "ctxmix",
                   "-s", "shared,percpu")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        ("percpu: error: --kernel percpu runs under --scheme shared only: the kernel makes its "
        "own per-(cpu, asid) roots, and the plugin's percpu would make roots of them "
        "(docs/kernel.md)")]
    res = gem5_run(env, tmp_path, "-w", "ctxmix", "-s", "shared", "--kernel-time")
    assert res.returncode == 2
    assert "--kernel-time needs the percpu kernel" in res.stderr
    res = gem5_run(env, tmp_path, "-w", "ctxmix", "-s", "shared", "--kernel-roots", "off")
    assert res.returncode == 2
    assert "--kernel-roots off needs the percpu kernel" in res.stderr
    res = gem5_run(env, tmp_path, "-w", "ctxmix", "-s", "shared", "--kernel-kmap", "fixmap")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        ("percpu: error: --kernel-kmap fixmap needs the percpu kernel (--kernel percpu): the "
        "stock kernel's kmap_local always maps nothing")]
    assert calls(tmp_path) == []  # refused before anything ran
    assert not (tmp_path / "out").exists()
