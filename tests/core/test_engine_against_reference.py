"""The engine's translations, under every scheme and machine variant, against the
simple reference translator, with the invariant checker on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from percpu import _core
from percpu.workloads.program import parse_program
from tests.core.programs import programs
from tests.core.reference import replay

SCHEMES = [name for name, _ in _core.scheme_names()]
MACHINES = st.fixed_dictionaries({
    "machine.pcid": st.sampled_from([0.0, 1.0]),
    "machine.pti": st.sampled_from([0.0, 1.0]),
    "machine.paging_levels": st.sampled_from([4.0, 5.0]),
    "tlb.l1d.entries": st.sampled_from([4.0, 64.0]),  # tiny TLBs force walks and evictions
    "tlb.stlb.entries": st.sampled_from([24.0, 48.0, 1536.0]),
    "machine.seed": st.integers(0, 1000).map(float),
})


def run(text: str, ncpus: int, scheme: str, machine: dict[str, float], **extra: float) -> dict:
    prog = parse_program(text, ncpus)
    values = {**machine, "machine.cpus": float(ncpus), **extra}
    return _core.run(values, scheme, check=True, record_log=True, **prog.core_args())


@pytest.mark.parametrize("scheme", SCHEMES)
@settings(max_examples=150)
@given(case=programs(), machine=MACHINES)
def test_translations_match_reference_and_checker_is_silent(scheme, case, machine):
    text, ncpus = case
    out = run(text, ncpus, scheme, machine)
    assert out["violation_count"] == 0, out["violations"]
    assert replay(out["log"]) == []


@settings(max_examples=60)
@given(case=programs(kernel_ops=False), machine=MACHINES)
def test_every_scheme_sees_the_same_faults(case, machine):
    # Roots change how translations are found, never what they are: the accesses and
    # whether each was allowed must not depend on the scheme.
    text, ncpus = case
    outcomes = {}
    for scheme in SCHEMES:
        log = run(text, ncpus, scheme, machine, **{"sched.slice_us": 1e6})["log"]
        # Threads only touch their own VMAs, so each access's outcome does not depend on
        # how CPUs interleave; mm ids do (forks number them in creation order).
        outcomes[scheme] = sorted((r[3], r[5], r[6] == -1) for r in log if r[0] == 0)
    first = outcomes[SCHEMES[0]]
    assert all(o == first for o in outcomes.values())


@settings(max_examples=40)
@given(case=programs(), machine=MACHINES, scheme=st.sampled_from(SCHEMES))
def test_fast_paths_change_no_statistic(case, machine, scheme):
    # Without the checker and the log the engine counts the rest of a run of references
    # inside one page as L1 TLB hits in bulk; with them it takes every reference the
    # long way. Both must give the same numbers, to the cycle.
    text, ncpus = case
    prog = parse_program(text, ncpus)
    values = {**machine, "machine.cpus": float(ncpus)}
    fast = _core.run(values, scheme, check=False, **prog.core_args())
    slow = _core.run(values, scheme, check=True, **prog.core_args())
    assert fast["stats"] == slow["stats"]
    assert fast["memory_references"] == slow["memory_references"]


def test_fast_paths_on_a_real_workload():
    from percpu.workloads import find_workload

    wl = find_workload("kmap-io")
    text = wl.render("engine", wl.defaults(), cpus=2)
    prog = parse_program(text, 2)
    for scheme in SCHEMES:
        fast = _core.run({"machine.cpus": 2.0}, scheme, check=False, **prog.core_args())
        slow = _core.run({"machine.cpus": 2.0}, scheme, check=True, **prog.core_args())
        assert fast["stats"] == slow["stats"]
