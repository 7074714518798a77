"""noise.start_order and what it decides past the 6-ASID cliff: the engine's first runs of
a CPU's start tasks against the reference draw (tests/core/start_order.py), ctxmix's
switches against the reference scheduler, and the root allocations per switch the ring
settles at against Linux's round robin (percpu.trace.linux_asid.ring_steady_state)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from percpu import _core
from percpu.trace.linux_asid import LinuxAsidModel, ring_steady_state
from percpu.workloads import find_workload
from percpu.workloads.program import parse_program
from tests.core.start_order import ctxmix_switches, start_order

KINDS = _core.ASID_EVENT_KINDS


def ctxmix_events(procs: int, cpus: int, rounds: int, seed: int, start_order_on: bool):
    wl = find_workload("ctxmix")
    params = wl.resolve({"procs_per_cpu": str(procs), "rounds": str(rounds), "pages": "2",
                         "work_cycles": "500"})
    prog = parse_program(wl.render("engine", params, cpus, seed), cpus)
    values = {"machine.cpus": float(cpus), "machine.seed": float(seed),
              "noise.start_order": 1.0 if start_order_on else 0.0}
    out = _core.run(values, "percpu", check=True, record_asid_events=True, **prog.core_args())
    assert out["violation_count"] == 0
    switches: dict[int, list[tuple[int, bool]]] = {c: [] for c in range(cpus)}
    for ev in out["asid_events"]:
        kind, cpu, ctx, _gen, _pages, _freed, _trim, _asid, _flush, _cause, alloc = ev
        if KINDS[kind] == "switch":
            switches[cpu].append((ctx, bool(alloc)))
    return switches


@settings(max_examples=25, deadline=None)
@given(procs=st.integers(2, 10), cpus=st.integers(1, 2), seed=st.integers(0, 10_000),
       on=st.booleans())
def test_ctxmix_runs_as_the_reference_scheduler_and_settles_where_linux_does(procs, cpus,
                                                                             seed, on):
    rounds = 40
    switches = ctxmix_events(procs, cpus, rounds, seed, on)
    for cpu in range(cpus):
        ring = [cpu + cpus * i for i in range(procs)]  # process p is pinned to p % cpus
        first = start_order(ring, seed, cpu) if on else ring
        want = ctxmix_switches(first, ring, rounds)
        ctx_of = {p: p + 2 for p in ring}  # init_mm is ctx 1, proc<p> the (p+2)-th mm
        got = [ctx for ctx, _ in switches[cpu]][:len(want)]
        assert got == [ctx_of[p] for p in want], (cpu, first)
        # Every switch's root allocation is Linux's for this sequence (6 slots, round
        # robin), and the ring settles at the rate ring_steady_state gives for its start.
        model = LinuxAsidModel()
        model.cpu_online(0, 1)
        linux = [model.switch_mm(0, ctx_of[p], 1).need_flush for p in want]
        assert [alloc for _, alloc in switches[cpu][:len(want)]] == linux
        if procs > 6:
            start = len(first) + 2 * procs  # every process has run: the rest is the ring
            head = ring.index(want[start])
            cyclic = ring[head:] + ring[:head]
            assert want[start:] == [cyclic[i % procs] for i in range(len(want) - start)]
            rate = ring_steady_state([ctx_of[p] for p in want[:start]],
                                     [ctx_of[p] for p in cyclic])
            late = linux[len(want) // 2:]
            assert abs(sum(late) / len(late) - rate) <= 2 / procs, (cpu, first, rate)
        if procs <= 5:
            assert sum(linux[len(first):]) == 0


def test_without_the_draw_the_ring_starts_in_its_own_order_and_evicts_at_every_switch():
    switches = ctxmix_events(8, 1, 30, 1, False)[0]
    assert [ctx for ctx, _ in switches[:8]] == list(range(2, 10))
    assert all(alloc for _, alloc in switches[8:200])


def test_start_order_picks_the_round_robins_steady_state():
    # 8 mms over 6 slots: the three steady states, chosen by the first switches' order.
    ring = list(range(2, 10))
    assert ring_steady_state(ring, ring) == 1.0
    assert ring_steady_state([2, 3, 4, 5, 7, 9, 6, 8], ring) == 0.5
    assert ring_steady_state(ring[::-1], ring) == 1 / 3
    # At or below the 6 slots nothing is evicted once every mm has one.
    assert ring_steady_state(ring[:6], ring[:6]) == 0.0
