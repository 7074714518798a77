"""Every system call the op program makes pays its entry and exit: the `syscall` op and
the ops that stand for one (sched_yield, nanosleep, a pipe's read and write: yield,
sleep, wait, signal). With PTI that is two CR3 switches per call (arch/x86/entry/
calling.h, SWITCH_TO_KERNEL_CR3 / SWITCH_TO_USER_CR3). Until 2026-12-08 only the
`syscall` op paid them, so ctxmix, whose system calls are all pipe reads and writes,
ran as fast under PTI as without it (issue 25).

The rule checked: the syscalls stat counts one per such op run, and raising
cost.cr3_noflush by X under PTI with PCID adds exactly 2X of syscall cycles per call."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from percpu.runner import run_engine
from percpu.workloads import find_workload


def _run(workload: str, wl: dict[str, str], sets: dict[str, float]) -> dict[str, float]:
    w = find_workload(workload)
    params = w.resolve(wl)
    overrides = {"machine.cpus": 2.0, "noise.enabled": 0.0, **sets}
    result, _, _ = run_engine(w, params, "shared", overrides, check=True)
    return result.stats


def _total(stats: dict[str, float], leaf: str) -> float:
    return sum(stats[f"system.cpu{c}.{leaf}"] for c in range(2))


@settings(max_examples=8, deadline=None)
@given(procs=st.integers(1, 8), rounds=st.integers(1, 6), extra=st.integers(1, 5000))
def test_ctxmix_pipe_calls_pay_pti_entry_and_exit(procs, rounds, extra):
    wl = {"procs_per_cpu": str(procs), "rounds": str(rounds), "pages": "1",
          "work_cycles": "100"}
    base = _run("ctxmix", wl, {"machine.pti": 1.0})
    more = _run("ctxmix", wl, {"machine.pti": 1.0, "cost.cr3_noflush": 30.0 + extra})
    n = procs * 2
    # A read (wait) and a write (signal) per turn, but a ring's first turn reads nothing
    # and its last turn writes nothing.
    calls = 2 * n * rounds - 2 * min(2, n)
    assert _total(base, "syscalls") == calls
    assert (_total(more, "cycles::syscall") - _total(base, "cycles::syscall")
            == 2 * extra * calls)


def test_pingpong_counts_its_pipe_calls():
    base = _run("pingpong", {"iterations": "10"}, {})
    # A pipe write (signal) and a read (wait) per side per round trip.
    assert _total(base, "syscalls") == 10 * 4
    pti = _run("pingpong", {"iterations": "10"}, {"machine.pti": 1.0})
    assert _total(pti, "cycles::syscall") - _total(base, "cycles::syscall") == 10 * 4 * 2 * 30
