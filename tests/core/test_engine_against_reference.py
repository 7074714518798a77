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
    # Roots change how translations are found, never what they are: the sequence of
    # (mm, address, allowed?) must not depend on the scheme when scheduling is the same.
    text, ncpus = case
    outcomes = {}
    for scheme in SCHEMES:
        log = run(text, ncpus, scheme, machine, **{"sched.slice_us": 1e6})["log"]
        outcomes[scheme] = sorted((r[1], r[3], r[5], r[6] == -1) for r in log if r[0] == 0)
    first = outcomes[SCHEMES[0]]
    assert all(o == first for o in outcomes.values())
