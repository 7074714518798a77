"""Run directories for the analysis tests.

Engine runs are synthetic but shaped like the engine's output (the stat names
of the engine contract, written with our own writer); gem5 runs are the real
fixture or small files with the stdlib's multi-core names.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from percpu.analysis.stats_txt import Stat, write_stats_txt

_FIXTURE_NAME = "gem5-v24-se-hello-atomic"
# The repo's own copy when vendored, else the shared one.
FIXTURE = next(
    (
        p
        for p in (
            Path(__file__).resolve().parents[1] / "fixtures" / _FIXTURE_NAME,
            Path("/work/shared/fixtures") / _FIXTURE_NAME,
        )
        if p.is_dir()
    ),
    Path("/work/shared/fixtures") / _FIXTURE_NAME,
)

CATEGORIES = ("user", "walk", "rootCopy", "lazyFault", "pageFault", "flush", "ipi", "kmap",
              "percpuData", "ctxSwitch", "syscall", "idle", "other")  # fmt: skip
CAUSES = ("firstUse", "evicted", "flushedInactive", "noPcid")


def engine_stats(
    *,
    cpus: int,
    sim_ticks: int,
    scheme: str,
    pcid: bool = True,
    pti: bool = False,
    procs_per_cpu: int = 4,
    lazy_per_cpu: int = 10,
    max_lazy_per_root: int = 12,
    pool_peak: int | None = None,
    l1d_misses: int = 1000,
    walk_cycles: int = 5000,
    seed: int = 1,
) -> list[Stat]:
    """One dump block of engine stats with the contract's names.

    Shared roots allocate nothing and take no lazy faults; per-CPU roots
    allocate on first use, on eviction once more than 6 mms share a CPU, and
    on every switch without PCID.
    """
    freq_ghz = 3.0
    cycles = int(sim_ticks * freq_ghz / 1000)
    stats = [
        Stat("simSeconds", sim_ticks / 1e12, "Number of seconds simulated", "Second"),
        Stat("simTicks", sim_ticks, "Number of ticks simulated", "Tick"),
        Stat("hostSeconds", 0.5 + seed / 100, "Real time elapsed on the host", "Second"),
    ]
    percpu_scheme = scheme != "shared"
    for n in range(cpus):
        p = f"system.cpu{n}"
        switches = 100 + n
        stats += [
            Stat(f"{p}.numCycles", cycles, "Number of cpu cycles simulated", "Cycle"),
            Stat(f"{p}.ctxSwitches", switches, "Context switches", "Count"),
            Stat(f"{p}.mmSwitches", 80 + n, "Switches to another mm", "Count"),
        ]
        for tlb in ("dtb", "itb"):
            stats += [
                Stat(f"{p}.mmu.{tlb}.rdAccesses", 10000, "TLB read accesses", "Count"),
                Stat(f"{p}.mmu.{tlb}.rdMisses", 100 + n, "TLB read misses", "Count"),
                Stat(f"{p}.mmu.{tlb}.wrAccesses", 5000, "TLB write accesses", "Count"),
                Stat(f"{p}.mmu.{tlb}.wrMisses", 50, "TLB write misses", "Count"),
            ]
        stats += [
            Stat(f"{p}.mmu.walker.walks", 300 + n, "Page-table walks", "Count"),
            Stat(f"{p}.mmu.walker.walkCycles", walk_cycles, "Cycles spent walking", "Cycle"),
        ]
        if percpu_scheme:
            evicted = 10 * max(0, procs_per_cpu - 6)
            allocs = [procs_per_cpu, evicted, 2, 0 if pcid else switches]
        else:
            allocs = [0, 0, 0, 0]
        for cause, value in zip(CAUSES, allocs):
            stats.append(Stat(f"{p}.percpu.rootAllocs::{cause}", value, "Root allocations",
                              "Count"))  # fmt: skip
        stats.append(Stat(f"{p}.percpu.rootAllocs::total", sum(allocs), "Root allocations",
                          "Count"))  # fmt: skip
        lazy = lazy_per_cpu if percpu_scheme else 0
        stats += [
            Stat(f"{p}.percpu.lazyFaults", lazy, "Lazy top-level faults", "Count"),
            Stat(f"{p}.percpu.rootCopyBytes", 2048 * sum(allocs), "Bytes copied", "Byte"),
            Stat(f"{p}.percpu.rootCopyCycles", 300 * sum(allocs), "Cycles copying", "Cycle"),
        ]
        parts = {
            "walk": walk_cycles, "rootCopy": 300 * sum(allocs), "lazyFault": 900 * lazy,
            "pageFault": 3000, "flush": 2000, "ipi": 1500, "kmap": 400 if percpu_scheme else 800,
            "percpuData": 300 if percpu_scheme else 600, "ctxSwitch": 150 * switches,
            "syscall": 4000, "idle": 1000, "other": 500,
        }  # fmt: skip
        parts["user"] = cycles - sum(parts.values())
        for cat in CATEGORIES:
            stats.append(Stat(f"{p}.cycles::{cat}", parts[cat], "Cycles by category", "Cycle"))
        stats += [
            Stat(f"{p}.l1d.misses", l1d_misses, "L1D misses", "Count"),
            Stat(f"{p}.l2.misses", l1d_misses // 4, "L2 misses", "Count"),
        ]
    bound = 4096 * cpus * 6 * (2 if pti else 1)
    stats += [
        Stat("system.llc.misses", 100 * cpus, "LLC misses", "Count"),
        Stat("system.percpu.rootPoolPeakBytes",
             (pool_peak if pool_peak is not None else 4096 * cpus * 2) if percpu_scheme else 0,
             "Peak bytes of root pages", "Byte"),
        Stat("system.percpu.rootPoolBoundBytes", bound, "Proposal bound", "Byte"),
        Stat("system.percpu.maxLazyFaultsPerRoot", max_lazy_per_root if percpu_scheme else 0,
             "Most lazy faults in one root generation", "Count"),
        Stat("system.percpu.lazyFaultBound", 256, "Lazy fault bound per root", "Count"),
        Stat("system.percpu.checkerViolations", 0, "Invariant violations", "Count"),
    ]  # fmt: skip
    return stats


def make_engine_run(
    path: Path,
    *,
    scheme: str = "shared",
    seed: int = 1,
    cpus: int = 4,
    procs_per_cpu: int = 4,
    pcid: bool = True,
    pti: bool = False,
    sim_ticks: int = 1_000_000_000,
    workload: str = "ctxmix",
    dumps: int = 1,
    **stat_kw: Any,
) -> Path:
    """Write an engine run directory (stats.txt, config.json, summary.txt)."""
    path.mkdir(parents=True, exist_ok=True)
    blocks = [
        engine_stats(cpus=cpus, sim_ticks=sim_ticks * (i + 1), scheme=scheme, pcid=pcid, pti=pti,
                     procs_per_cpu=procs_per_cpu, seed=seed, **stat_kw)
        for i in range(dumps)
    ]  # fmt: skip
    write_stats_txt(path / "stats.txt", blocks)
    config = {
        "percpu_version": "0.1.0",
        "host": "engine",
        "workload": workload,
        "params": {"procs_per_cpu": procs_per_cpu, "pinned": True},
        "scheme": scheme,
        "seed": seed,
        "machine": {"cpus": cpus, "pcid": pcid, "pti": pti, "paging": 4, "freq_ghz": 3.0},
        "costs": {"root_copy_cycles": 300},
        "geometry": {"dtlb_entries": 64},
        "versions": {"percpu": "0.1.0"},
    }
    (path / "config.json").write_text(json.dumps(config, indent=2))
    (path / "summary.txt").write_text(f"{workload} {scheme} seed {seed}\n")
    return path


def make_gem5_multicore_run(path: Path, *, cpus: int = 2, switchable: bool = False,
                            sim_ticks: int = 2_000_000_000,
                            percpu_json: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """A small full-system gem5 run with the stdlib's multi-core names.

    Names follow gem5 v24: SimpleProcessor puts cores in a list named "cores"
    (board.processor.coresN.core), SimpleSwitchableProcessor in lists named
    "start" and "switch"; PrivateL1PrivateL2CacheHierarchy names caches
    l1d-cache-N / l2-cache-N.
    """
    path.mkdir(parents=True, exist_ok=True)
    sets = ("start", "switch") if switchable else ("cores",)
    stats = [
        Stat("simSeconds", sim_ticks / 1e12, "Number of seconds simulated", "Second"),
        Stat("simTicks", sim_ticks, "Number of ticks simulated", "Tick"),
        Stat("simInsts", 123456, "Number of instructions simulated", "Count"),
    ]
    objects: list[dict[str, Any]] = []
    for s in sets:
        for n in range(cpus):
            p = f"board.processor.{s}{n}.core"
            cycles = 600_000 if s != "switch" else 0
            stats += [
                Stat(f"{p}.numCycles", cycles + n, "Number of cpu cycles simulated", "Cycle"),
                Stat(f"{p}.mmu.dtb.rdMisses", 40 + n, "TLB misses on read requests", "Count"),
                Stat(f"{p}.mmu.dtb.wrMisses", 10, "TLB misses on write requests", "Count"),
                Stat(f"{p}.mmu.itb.rdMisses", 5, "TLB misses on read requests", "Count"),
            ]
            objects.append({
                "type": "X86TimingSimpleCPU" if s != "switch" else "X86O3CPU",
                "name": "core", "path": p, "cpu_id": n, "switched_out": s == "switch",
                "clk_domain": "board.clk_domain",
            })  # fmt: skip
    for n in range(cpus):
        stats.append(Stat(f"board.cache_hierarchy.l1d-cache-{n}.overallMisses::total", 70 + n,
                          "number of overall misses", "Count"))  # fmt: skip
    stats.append(Stat("board.cache_hierarchy.membus.snoopFanout::samples", 10,
                      "Request fanout histogram", "Count"))  # fmt: skip
    write_stats_txt(path / "stats.txt", [stats])
    config = {
        "type": "Root", "name": "root", "path": "root", "full_system": True,
        "board": {
            "type": "X86Board", "name": "board", "path": "board",
            "clk_domain": {"type": "SrcClockDomain", "name": "clk_domain",
                           "path": "board.clk_domain", "clock": [500]},
            "processor": {"type": "SubSystem", "path": "board.processor", "cores": objects},
            "workload": {"type": "X86LinuxWorkload", "path": "board.workload",
                         "object_file": "/images/vmlinux-6.1", "command_line": "console=ttyS0"},
        },
    }  # fmt: skip
    (path / "config.json").write_text(json.dumps(config, indent=1))
    if percpu_json is not None:
        (path / "percpu.json").write_text(json.dumps(percpu_json))
    return path


@pytest.fixture
def make_run() -> Callable[..., Path]:
    return make_engine_run


@pytest.fixture
def make_gem5_run() -> Callable[..., Path]:
    return make_gem5_multicore_run


@pytest.fixture
def fixture_run(tmp_path: Path) -> Path:
    """A copy of the real gem5 v24 fixture (tests may not write beside the original)."""
    assert FIXTURE.is_dir(), f"gem5 fixture missing at {FIXTURE}: restore tests/fixtures/"
    dst = tmp_path / "gem5-hello"
    shutil.copytree(FIXTURE, dst)
    for f in dst.iterdir():
        f.chmod(0o644)
    return dst


def overhead_for(cpus: int, procs_per_cpu: int, pcid: bool, seed: int) -> float:
    """The overhead in % the sweep below builds in for percpu.

    A cliff past 6 processes per CPU, a no-PCID penalty, a little more on 4
    CPUs; seeds 1, 2, 3 add -1, 0, +1, so each point has mean = the built-in
    value and sample sd 1.
    """
    base = (2.0 if procs_per_cpu <= 6 else 12.0) + (0.0 if pcid else 20.0) + (cpus == 4)
    return base + (seed - 2)


SWEEP_DIMS = [(c, p, pc) for c in (2, 4) for p in (4, 8) for pc in (True, False)]


def build_sweep(root: Path) -> Path:
    """shared vs percpu over cpus {2, 4}, procs_per_cpu {4, 8}, pcid on/off, 3 seeds."""
    for cpus, ppc, pcid in SWEEP_DIMS:
        for seed in (1, 2, 3):
            base = 1_000_000_000 + 1000 * seed + cpus * 10_000 + ppc * 100_000
            tag = f"c{cpus}-p{ppc}-{'pcid' if pcid else 'nopcid'}-s{seed}"
            make_engine_run(
                root / f"shared-{tag}",
                scheme="shared",
                seed=seed,
                cpus=cpus,
                procs_per_cpu=ppc,
                pcid=pcid,
                sim_ticks=base,
            )
            ticks = round(base * (1 + overhead_for(cpus, ppc, pcid, seed) / 100))
            make_engine_run(root / f"percpu-{tag}", scheme="percpu", seed=seed, cpus=cpus,
                            procs_per_cpu=ppc, pcid=pcid, sim_ticks=ticks, l1d_misses=1100,
                            walk_cycles=5500)  # fmt: skip
    return root


@pytest.fixture(scope="session")
def sweep_truth() -> tuple[list[tuple[int, int, bool]], Callable[[int, int, bool, int], float]]:
    """What build_sweep built in: its (cpus, procs_per_cpu, pcid) points and overhead_for."""
    return SWEEP_DIMS, overhead_for


@pytest.fixture(scope="session")
def engine_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 engine runs, built once per session (read-only for tests)."""
    return build_sweep(tmp_path_factory.mktemp("sweep"))
