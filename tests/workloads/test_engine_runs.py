"""Every suite workload runs on the engine, with its defaults and with its main parameter
swept, under the checker, and its main parameter changes what the issue says it drives."""

from __future__ import annotations

import pytest

from percpu.runner import cpu_sum, prepare_program, run_engine
from percpu.workloads import find_workload, list_workloads
from percpu.workloads.definition import cycles_per_us

WORKLOADS = sorted(list_workloads())


def sweep_values(name: str) -> list[int]:
    wl = find_workload(name)
    p = wl.params[wl.main_param]
    low = int(p.min)
    return sorted({low, int(p.default), min(int(p.max), int(p.default) * 2)})


def test_the_suite_is_complete():
    assert set(WORKLOADS) == {"ctxmix", "pingpong", "forkexec", "threads-munmap", "kmap-io",
                              "server", "hotplug"}
    for name in WORKLOADS:
        wl = find_workload(name)
        assert wl.main_param in wl.params, name


@pytest.mark.parametrize("name", WORKLOADS)
@pytest.mark.parametrize("scheme", ["shared", "percpu"])
def test_defaults_run_clean(name, scheme):
    wl = find_workload(name)
    result, _, _ = run_engine(wl, wl.defaults(), scheme, {}, check=True)
    assert result.violation_count == 0, result.violations[:3]
    assert result.memory_references > 0


@pytest.mark.parametrize("name", WORKLOADS)
def test_main_parameter_sweep_runs_clean(name):
    wl = find_workload(name)
    for value in sweep_values(name):
        params = wl.resolve({wl.main_param: str(value)})
        result, _, _ = run_engine(wl, params, "percpu", {"machine.cpus": 2.0}, check=True)
        assert result.violation_count == 0, (value, result.violations[:3])


def test_hotplug_waits_for_pinned_kmap_holders():
    wl = find_workload("hotplug")
    result, _, _ = run_engine(wl, wl.defaults(), "percpu", {}, check=True)
    s = result.stats
    assert s["system.hotplug.offlines"] == wl.defaults()["cycles"]
    assert s["system.hotplug.pinnedAtOffline"] > 0
    # The holders sleep 2000 us holding their mappings: offline waits for most of it.
    assert s["system.hotplug.waitCycles"] > 1000 * cycles_per_us()


def test_hotplug_sleeps_stay_microseconds_at_another_clock():
    # The template converts microseconds at the run's machine.freq_mhz (--set reaches it).
    wl = find_workload("hotplug")
    p = wl.defaults()

    def sleeps(overrides: dict[str, float]) -> list[int]:
        _, text, _ = prepare_program(wl, p, overrides)
        return [int(line.split()[1]) for line in text.splitlines() if line.strip().startswith("sleep")]

    want = {p["offline_us"], p["sleep_us"]}
    assert {n / cycles_per_us() for n in sleeps({})} == want
    assert {n / 1500 for n in sleeps({"machine.freq_mhz": 1500.0})} == want
    assert {n / 2500.5 for n in sleeps({"machine.freq_mhz": 2500.5})} == want


def test_threads_munmap_exercises_freed_tables_under_active_roots():
    wl = find_workload("threads-munmap")
    result, _, _ = run_engine(wl, wl.defaults(), "percpu", {}, check=True)
    s = result.stats
    assert cpu_sum(s, "ipi.sent") > 0
    assert cpu_sum(s, "percpu.rootEntriesDropped") > 0
    # Each thread has a top-level slot of its own by default; sharing one, the other
    # threads' roots learn each new table through lazy faults.
    assert cpu_sum(s, "percpu.lazyFaults") == 0
    shared_slot, _, _ = run_engine(wl, wl.resolve({"fresh_slot": "false"}), "percpu", {},
                                   check=True)
    assert shared_slot.violation_count == 0
    assert cpu_sum(shared_slot.stats, "percpu.lazyFaults") > 0


def test_kmap_io_private_kmaps_avoid_save_restore():
    wl = find_workload("kmap-io")
    shared, _, _ = run_engine(wl, wl.defaults(), "shared", {})
    percpu, _, _ = run_engine(wl, wl.defaults(), "percpu", {})
    assert cpu_sum(shared.stats, "kmap.saves") > 0
    # Switches between different mms keep root-private mappings in place.
    assert cpu_sum(percpu.stats, "kmap.saves") == 0
    assert cpu_sum(percpu.stats, "cycles::kmap") < cpu_sum(shared.stats, "cycles::kmap")
