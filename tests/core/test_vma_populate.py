"""`vma NAME ADDR|auto SIZE PROT populate`: an image's pages mapped before its program
starts (a guest program's text, stack and buffers, touched before its region of interest;
issue 25: the engine's ctxmix took 6 demand faults per process inside its region, about
5,500 cycles each with the gem5 profile, that the guest takes before it).

Checked against the rule: a populated VMA is mapped exactly as the demand faults of a
first touch of every page would map it (same pages present, same protections, the checker
finds no translation that differs from the canonical table), and the program then takes
no page fault on it, under every scheme."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from percpu import _core
from percpu.workloads.program import ProgramError, parse_program


def _program(pages: int, populate: bool, prot: str, auto: bool, touch: str) -> str:
    where = "auto" if auto else "0x20000000"
    flag = " populate" if populate else ""
    return (
        "percpu-ops 1\n"
        "mm m\n"
        f"  vma buf {where} {pages * 4}K {prot}{flag}\n"
        f"  vma text 0x400000 64K rx{flag}\n"
        "task t mm=m cpus=0\n"
        "program t\n"
        "  fetch text count=4 stride=4096\n"
        f"  {touch} buf count={pages} stride=4096\n"
    )


def _run(text: str, scheme: str, pti: bool) -> dict[str, float]:
    prog = parse_program(text, 1)
    params = {"machine.cpus": 1.0, "machine.pti": 1.0 if pti else 0.0, "noise.enabled": 0.0}
    out = _core.run(params, scheme, check=True, **prog.core_args())
    assert out["violation_count"] == 0, out["violations"]
    return {name: value for name, value, _, _ in out["stats"]}


@settings(max_examples=20, deadline=None)
@given(pages=st.integers(1, 40), prot=st.sampled_from(["r", "rw"]), auto=st.booleans(),
       scheme=st.sampled_from(["shared", "percpu", "percpu-eager"]), pti=st.booleans())
def test_populated_vmas_take_no_fault(pages, prot, auto, scheme, pti):
    touch = "load"
    faulting = _run(_program(pages, False, prot, auto, touch), scheme, pti)
    populated = _run(_program(pages, True, prot, auto, touch), scheme, pti)
    # Without populate: one demand fault per page touched (4 text pages, the buffer's).
    assert faulting["system.cpu0.pageFaults"] == 4 + pages
    assert populated["system.cpu0.pageFaults"] == 0
    assert populated["system.cpu0.cycles::pageFault"] == 0
    # The same references, and the same pages in use once the program ran.
    assert populated["system.memRefs"] == faulting["system.memRefs"]
    assert populated["system.dataPagesPeak"] >= faulting["system.dataPagesPeak"]


def test_a_populated_read_only_vma_still_refuses_a_store():
    # The page is mapped read-only: the store faults and is refused (SIGSEGV, skipped),
    # as on an unpopulated one, whose first store also finds a read-only VMA.
    for populate in (False, True):
        stats = _run(_program(3, populate, "r", False, "store"), "percpu", False)
        assert stats["system.cpu0.segfaults"] == 3


def test_populate_is_the_only_sixth_word():
    with pytest.raises(ProgramError, match=r"vma NAME ADDR\|auto SIZE PROT \[populate\]"):
        parse_program("percpu-ops 1\nmm m\n  vma buf 0x20000000 4K rw prefault\n", 1)
