"""Long runs: LRU stamps past 2^32 accesses, and state that follows live tasks and mms.

The TLBs', PSCs' and caches' LRU clocks are 32-bit; before one would wrap, every set's
stamps are renumbered in order (common/lru_stamp.h). test.lru_clock_start starts every
clock 200 accesses below the wrap, so each structure wraps early in a short run: every statistic
must equal the run whose clocks start at 0 (without the renumbering, a wrapped stamp looks
older than every other and a working set that fits misses nearly always)."""

from __future__ import annotations

import pytest

from percpu.runner import run_engine
from percpu.workloads import find_workload

NEAR_WRAP = float(2**32 - 200)


def _stats(workload: str, params: dict, **overrides: float) -> dict[str, float]:
    wl = find_workload(workload)
    res, _, _ = run_engine(wl, wl.resolve(params), "percpu", overrides, check=True)
    assert res.violation_count == 0
    return res.stats


@pytest.mark.parametrize(("workload", "params"), [
    ("ctxmix", {"rounds": "30", "procs_per_cpu": "7"}),
    ("threads-munmap", {}),
])
def test_lru_clocks_wrapping_change_nothing(workload: str, params: dict):
    base = _stats(workload, params)
    wrapped = _stats(workload, params, **{"test.lru_clock_start": NEAR_WRAP})
    assert wrapped == base
    # The run is long enough for every structure to wrap: each saw > 200 accesses.
    assert base["system.cpu0.mmu.dtb.rdAccesses"] + base["system.cpu0.mmu.dtb.wrAccesses"] > 200
    assert base["system.cpu0.l1d.hits"] + base["system.cpu0.l1d.misses"] > 200
    assert base["system.llc.hits"] + base["system.llc.misses"] > 200
    assert base["system.cpu0.mmu.walker.walks"] > 200  # each walk looks up the PSCs


def test_a_wrap_keeps_a_working_set_that_fits():
    # Two wraps apart: a set of pages that fits the DTLB keeps hitting across the wrap.
    prog = {"rounds": "200", "procs_per_cpu": "1", "pages": "16"}
    base = _stats("ctxmix", prog, **{"machine.cpus": 1.0})
    wrapped = _stats("ctxmix", prog, **{"machine.cpus": 1.0, "test.lru_clock_start": NEAR_WRAP})
    misses = base["system.cpu0.mmu.dtb.rdMisses"]
    assert misses < base["system.cpu0.mmu.dtb.rdAccesses"] / 10
    assert wrapped["system.cpu0.mmu.dtb.rdMisses"] == misses


def test_exited_tasks_and_dead_mms_are_freed():
    # forkexec makes two mms per fork (fork's copy, exec's image) and a task per fork; at
    # the end only the forkers remain, however long the run.
    short = _stats("forkexec", {"forks": "5"})
    long = _stats("forkexec", {"forks": "50"})
    assert long["system.mmsCreated"] > 5 * short["system.mmsCreated"]
    for run in (short, long):
        assert run["system.live.tasks"] == 0  # every forker and child exited
        assert run["system.live.mms"] == 1    # init_mm alone
