"""PTI's kernel entry and exit (core/linux/pti_entry.cc): two CR3 writes per kernel entry
from user mode, at cost.cr3_noflush with PCID (SWITCH_TO_KERNEL_CR3 and SWITCH_TO_USER_CR3
carry the no-flush bit) and at cost.cr3_flush without it; the mm switch's own kernel work
is cost.switch_mm, paid on every switch to another mm (docs/parameters.md)."""

from __future__ import annotations

from percpu.params import load_toml, specs
from percpu.runner import run_engine
from percpu.workloads import find_workload


def _run(machine: dict[str, float]) -> dict[str, float]:
    workload = find_workload("ctxmix")
    params = workload.resolve({"procs_per_cpu": "2", "rounds": "10", "pages": "4",
                               "work_cycles": "1000"})
    res, _, _ = run_engine(workload, params, "shared",
                           {"machine.cpus": 2.0, "noise.enabled": 0.0, **machine})
    return res.stats


def _sum(stats: dict[str, float], suffix: str) -> float:
    return sum(v for k, v in stats.items() if k.endswith(suffix))


def test_pti_entries_and_mm_switches_pay_their_own_costs():
    step = 1000.0
    pti = {"machine.pti": 1.0, "machine.pcid": 1.0}
    off = {"machine.pti": 0.0, "machine.pcid": 1.0}
    noflush = specs()["cost.cr3_noflush"].default + step
    for machine in (pti, off):
        stats = _run(machine)
        # The same schedule at every cost: only the charges move.
        entries = 2 * _sum(stats, ".syscalls") if machine is pti else 0
        switches_kept = _sum(stats, ".mmSwitches") - _sum(stats, ".cr3Flushes")
        grown = _sum(_run({**machine, "cost.cr3_noflush": noflush}), ".cycles::total") \
            - _sum(stats, ".cycles::total")
        # A system call's entry and exit write CR3 twice under PTI; an mm switch that
        # keeps the TLB writes it once. Page faults add theirs (at least 0 here).
        assert grown >= (entries + switches_kept) * step
        if machine is off:
            assert grown == switches_kept * step
        more_mm = _sum(_run({**machine, "cost.switch_mm": step}), ".cycles::total") \
            - _sum(stats, ".cycles::total")
        assert more_mm == _sum(stats, ".mmSwitches") * step  # flushing or not


def test_the_simulated_machines_profile_measures_the_cr3_write():
    from percpu.compare import DEFAULT_PROFILE

    profile = load_toml(DEFAULT_PROFILE)
    # Half of (getppid with pti=on) less (without), on the same gem5 binary: 12 cycles;
    # the rest of an mm switch, fitted, is two hundred times that.
    assert profile["cost.cr3_noflush"] == 12
    assert profile["cost.switch_mm"] > 100 * profile["cost.cr3_noflush"]
