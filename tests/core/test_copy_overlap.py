"""A root allocation's copy overlaps its line misses (core/cache/overlap.h, issue 25).

The C++ model (`_core.overlapped_cycles`) against a small reference model written
differently (an event queue of the registers' free times), its bounds, and what the
engine charges for a copy with the L1D's MSHRs (`cache.l1d.mshrs`) and with one (the
serial charge of earlier versions; tests/core/identity/ pins that one bit for bit)."""

from __future__ import annotations

import heapq

import pytest
from hypothesis import given
from hypothesis import strategies as st

from percpu import _core
from percpu.params import specs
from percpu.runner import run_engine
from percpu.workloads import find_workload


def reference_cycles(latencies: list[int], mshrs: int, issue: int) -> int:
    """The overlapped copy, from its definition: accesses issue in order, `issue` cycles
    apart, each once one of `mshrs` registers is free, and hold it `latency` cycles; the
    burst ends when the last is back."""
    free = [0] * mshrs  # a min-heap of the cycles the registers free at
    next_issue = end = 0
    for latency in latencies:
        start = max(next_issue, heapq.heappop(free))
        heapq.heappush(free, start + latency)
        end = max(end, start + latency)
        next_issue = start + issue
    return end


# A copy's accesses: L1, L2, LLC hits and DRAM misses of both machines' tables, and a few
# other values; up to a PTI pair's 128 accesses and beyond.
LATENCY = st.sampled_from([3, 4, 6, 12, 16, 24, 42, 190, 200, 287]) | st.integers(0, 1000)
BURST = st.lists(LATENCY, max_size=160)
MSHRS = st.integers(1, 40)
ISSUE = st.integers(0, 8)


@given(BURST, MSHRS, ISSUE)
def test_the_model_is_the_reference(latencies, mshrs, issue):
    assert _core.overlapped_cycles(latencies, mshrs, issue) == reference_cycles(
        latencies, mshrs, issue)


@given(BURST, MSHRS, ISSUE)
def test_the_overlap_stays_within_its_bounds(latencies, mshrs, issue):
    got = _core.overlapped_cycles(latencies, mshrs, issue)
    if not latencies:
        assert got == 0
        return
    n, total, longest = len(latencies), sum(latencies), max(latencies)
    # Never faster than the longest access, the last one's issue, or the registers allow.
    assert got >= longest
    assert got >= (n - 1) * issue + latencies[-1]
    assert got * mshrs >= total
    # Never slower than in-order list scheduling: sum / mshrs + the issue gaps + one access.
    assert got <= total / mshrs + n * issue + longest
    # And never slower than one after another (when an access takes at least its issue).
    if issue <= min(latencies):
        assert got <= total


@given(BURST, ISSUE)
def test_one_register_is_the_serial_sum(latencies, issue):
    if latencies and issue > min(latencies):
        issue = min(latencies)
    assert _core.overlapped_cycles(latencies, 1, issue) == sum(latencies)


@given(BURST, MSHRS, ISSUE)
def test_more_registers_never_cost_more_and_a_slower_issue_never_less(latencies, mshrs, issue):
    got = _core.overlapped_cycles(latencies, mshrs, issue)
    assert _core.overlapped_cycles(latencies, mshrs + 1, issue) <= got
    assert _core.overlapped_cycles(latencies, mshrs, issue + 1) >= got


def test_a_cold_kernel_half_costs_a_few_dram_latencies_not_32():
    # 32 lines read and written from DRAM at 200 cycles (the default machine): serial
    # 12,800 cycles; with 10 registers 7 rounds of 200, the last (accesses 60-63) issued
    # at cycles 1,200-1,203.
    cold = [200] * 64
    assert _core.overlapped_cycles(cold, 1, 1) == 12_800
    assert _core.overlapped_cycles(cold, 10, 1) == 1_203 + 200
    assert reference_cycles(cold, 10, 1) == _core.overlapped_cycles(cold, 10, 1)
    # Hot (L1 hits at 4 cycles): issue-bound, 63 issues and the last hit.
    assert _core.overlapped_cycles([4] * 64, 10, 1) == 63 + 4


def test_at_least_one_register():
    with pytest.raises(ValueError, match="mshrs"):
        _core.overlapped_cycles([4], 0, 1)


def test_the_parameters_are_in_the_table():
    table = specs()
    assert table["cache.l1d.mshrs"].default == 10
    assert table["cache.copy_issue_cycles"].default == 1


def _copy_cycles_per_alloc(machine: dict[str, float]) -> tuple[float, dict[str, float]]:
    workload = find_workload("ctxmix")
    params = workload.resolve({"procs_per_cpu": "4", "rounds": "20", "pages": "4",
                               "work_cycles": "2000"})
    res, _, _ = run_engine(workload, params, "percpu",
                           {"machine.cpus": 2.0, "noise.enabled": 0.0, **machine})
    stats = res.stats
    allocs = sum(v for k, v in stats.items() if k.endswith("percpu.rootAllocs::total"))
    copy = sum(v for k, v in stats.items() if k.endswith("percpu.rootCopyCycles"))
    assert allocs > 0
    return copy / allocs - specs()["cost.root_alloc"].default, stats


@pytest.mark.parametrize("pcid", [1.0, 0.0])
def test_the_engine_overlaps_the_copy(pcid):
    overlapped, stats = _copy_cycles_per_alloc({"machine.pcid": pcid})
    serial, _ = _copy_cycles_per_alloc({"machine.pcid": pcid, "cache.l1d.mshrs": 1.0})
    # One register: 64 accesses one after another, each at least an L1 hit (4 cycles).
    assert serial >= 64 * 4
    assert overlapped < serial
    if pcid:
        # First allocations copy from cold lines: the misses overlap about tenfold.
        assert overlapped < serial / 4
    else:
        # Every switch copies a hot kernel half: issue-bound, 63 issues and an L1 hit.
        assert overlapped < 2 * (63 + 4)
    # Deterministic: the same run, the same statistics.
    assert _copy_cycles_per_alloc({"machine.pcid": pcid})[1] == stats


def test_the_overlap_is_the_engines_alone():
    # The gem5 plugin simulates its copy's traffic through gem5's caches and charges what
    # that took: setting the engine's overlap there would mean nothing (or count twice).
    from percpu.run_request import gem5_refuses_set

    assert gem5_refuses_set("cache.l1d.mshrs")
    assert gem5_refuses_set("cache.copy_issue_cycles")


def test_the_simulated_machines_profile_overlaps_as_its_walk_cache_does():
    from percpu.compare import GEOMETRY
    from percpu.params import load_toml

    profile = load_toml(GEOMETRY)  # docs/profiles/gem5-v24-classic-timing.toml
    assert profile["cache.l1d.mshrs"] == 20  # gem5's MMUCache(mshrs=20)
