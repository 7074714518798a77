"""Linux's choose_new_asid on switch sequences worked out by hand from arch/x86/mm/tlb.c
(docs/references.md, "Linux's TLB and ASID rules"): 6 dynamic slots, round-robin, init_mm in slot 0."""

from __future__ import annotations

import pytest

from percpu import _core


def switches(state, sequence, gens=None):
    gens = gens or {}
    return [state.switch_to(mm, gens.get(mm, 1)) for mm in sequence]


def test_boot_state_is_init_mm_in_slot_0():
    state = _core.AsidState(True)
    assert state.slot(0) == (1, 0)  # init_mm: ctx_id 1
    # Switching back to init_mm needs no flush.
    assert state.switch_to(1, 0) == (0, False, "none")


def test_new_mms_take_slots_1_to_5_then_wrap_to_0():
    # next_asid starts at 1: mms 2..6 get ASIDs 1..5, the sixth wraps to 0 (evicting init_mm).
    state = _core.AsidState(True)
    got = switches(state, [2, 3, 4, 5, 6, 7])
    assert [a for a, _, _ in got] == [1, 2, 3, 4, 5, 0]
    assert all(flush and cause == "firstUse" for _, flush, cause in got)


def test_six_mms_round_robin_never_flush_after_warmup():
    state = _core.AsidState(True)
    mms = [2, 3, 4, 5, 6, 7]
    switches(state, mms)
    for _ in range(5):
        assert all(not flush for _, flush, _ in switches(state, mms))


def test_the_cliff_at_seven_mms_every_switch_flushes():
    # Round-robin eviction with a cyclic order of 7 > 6 mms: each mm's slot is taken
    # just before it comes back, so every switch needs a new ASID (and a new root).
    state = _core.AsidState(True)
    mms = [2, 3, 4, 5, 6, 7, 8]
    first = switches(state, mms)
    assert [c for _, _, c in first] == ["firstUse"] * 7
    assert first[-1][0] == 1  # the 7th mm evicts the first one's slot 1
    for _ in range(3):
        later = switches(state, mms)
        assert all(flush and cause == "evicted" for _, flush, cause in later)
    # Round-robin, not LRU: 7 + 21 new ASIDs so far, so next_asid has cycled to 5.
    assert [a for a, _, _ in switches(state, mms[:3])] == [5, 0, 1]


def test_flush_while_inactive_reuses_the_slot_with_a_flush():
    state = _core.AsidState(True)
    switches(state, [2, 3])
    asid_before = state.slot(1)
    assert asid_before == (2, 1)
    # mm 2's tlb_gen moved to 3 while mm 3 ran: the same ASID, but flushed.
    assert state.switch_to(2, 3) == (1, True, "flushedInactive")
    assert state.slot(1) == (2, 3)
    # Up to date now: no flush.
    assert state.switch_to(3, 1) == (2, False, "none")
    assert state.switch_to(2, 3) == (1, False, "none")


def test_without_pcid_every_switch_flushes_asid_0():
    state = _core.AsidState(False)
    got = switches(state, [2, 3, 2, 2, 3])
    assert got == [(0, True, "noPcid")] * 5


def test_invalidate_other_drops_every_other_slot():
    state = _core.AsidState(True)
    switches(state, [2, 3, 4])  # loaded: mm 4 in slot 3
    state.invalidate_other()
    # mm 2 lost slot 1: a new ASID from next_asid (4), with a flush.
    assert state.switch_to(2, 1) == (4, True, "evicted")
    assert state.slot(3) == (4, 1)  # the slot that was loaded survived


@pytest.mark.parametrize("procs", [1, 4, 6, 7, 10])
def test_engine_root_allocations_follow_the_asid_cliff(procs):
    # ctxmix pinned on one CPU: below the cliff each mm allocates one root; from 7 mms on
    # every switch does (evicted), which is Gleixner's process-heavy case, when the
    # processes first run in the ring's own order (noise.start_order=0): the worst of the
    # round robin's steady states (test_start_order_picks_the_round_robins_steady_state).
    from percpu.runner import run_engine
    from percpu.workloads import find_workload

    wl = find_workload("ctxmix")
    params = wl.resolve({"procs_per_cpu": str(procs), "rounds": "20", "pages": "4"})
    result, _, _ = run_engine(wl, params, "percpu", {"machine.cpus": 1.0,
                                                     "noise.start_order": 0.0}, check=True)
    s = result.stats
    assert result.violation_count == 0
    first_use = s["system.cpu0.percpu.rootAllocs::firstUse"]
    evicted = s["system.cpu0.percpu.rootAllocs::evicted"]
    assert first_use == procs
    switches_ = s["system.cpu0.mmSwitches"]
    if procs <= 6:
        # Only the end evicts: init_mm's return after the first exit (it lost slot 0 to
        # the 6th mm), and the ring's first process, whose slot init_mm took, switched back
        # to for the last token.
        assert evicted <= 2
    else:
        # Every turn after the first allocates a root (20 rounds).
        assert evicted >= (20 - 1) * procs
        assert evicted <= switches_
    assert s["system.percpu.rootPoolPeakBytes"] <= min(procs + 1, 6) * 4096
