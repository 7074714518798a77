"""PTI's kernel entry and exit (core/linux/pti_entry.cc): two CR3 writes per syscall and
fault from user mode, charged at cost.pti_cr3 with PCID (SWITCH_TO_KERNEL_CR3 and
SWITCH_TO_USER_CR3 carry the no-flush bit) and at cost.cr3_flush without it; an mm
switch's CR3 write stays cost.cr3_noflush, which a calibration can only bound by the
whole mm switch (docs/parameters.md)."""

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


def _busy(stats: dict[str, float]) -> float:
    return sum(v for k, v in stats.items() if k.endswith(".cycles::total"))


def test_pti_entries_cost_pti_cr3_not_the_mm_switchs_cr3_write():
    base = {"machine.pti": 1.0, "machine.pcid": 1.0}
    stats = _run(base)
    step = 1000.0
    more_pti = _run({**base, "cost.pti_cr3": specs()["cost.pti_cr3"].default + step})
    # Every entry and exit pays two more CR3 writes: the busy cycles grow by 2 x step per
    # entry (the schedule does not move: the same entries happen).
    grown = _busy(more_pti) - _busy(stats)
    assert grown > 0
    assert grown % (2 * step) == 0
    # cost.cr3_noflush no longer reaches PTI's entries: with the mm switches' CR3 write
    # dearer by the same step, the growth is one step per mm switch, not per entry.
    # (a switch that flushes, cr3Flushes, writes CR3 at cost.cr3_flush instead).
    noflush = sum(v for k, v in stats.items() if k.endswith(".mmSwitches")) - sum(
        v for k, v in stats.items() if k.endswith(".cr3Flushes"))
    more_switch = _run({**base, "cost.cr3_noflush": specs()["cost.cr3_noflush"].default + step})
    assert _busy(more_switch) - _busy(stats) == noflush * step
    # Without PTI neither entry write is charged.
    off = {"machine.pti": 0.0, "machine.pcid": 1.0}
    assert _busy(_run({**off, "cost.pti_cr3": 5000.0})) == _busy(_run(off))


def test_the_simulated_machines_profile_measures_pti_cr3():
    from percpu.compare import DEFAULT_PROFILE

    profile = load_toml(DEFAULT_PROFILE)
    # Half of (getppid with pti=on) less (without), on the same gem5 binary: 12 cycles,
    # where the mm switch's upper bound is two hundred times that.
    assert profile["cost.pti_cr3"] == 12
    assert profile["cost.cr3_noflush"] > 100 * profile["cost.pti_cr3"]
