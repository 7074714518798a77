"""Run-to-run noise (docs/noise.md): seeds vary every workload, each source is switchable
and one switch turns them all off, and a seed gives every scheme the same draws (common
random numbers), so an overhead is a paired difference."""

from __future__ import annotations

import pytest

from percpu.params import specs
from percpu.runner import run_engine
from percpu.workloads import find_workload, list_workloads

# Smaller than the defaults where a workload has a size knob: the test is about variation.
SMALL = {"ctxmix": {"rounds": "40"}, "forkexec": {"forks": "10"}, "pingpong": {"rounds": "50"}}
SOURCES_OFF = {"noise.aslr": 0.0, "noise.compute_jitter": 0.0, "noise.kernel_jitter": 0.0,
               "noise.sleep_slack_us": 0.0, "noise.tick_hz": 0.0, "noise.wake_ties": 0.0,
               "noise.start_order": 0.0}


def stats(workload: str, scheme: str = "shared", params: dict | None = None,
          **overrides: float) -> dict[str, float]:
    wl = find_workload(workload)
    known = {k: v for k, v in {**SMALL.get(workload, {}), **(params or {})}.items()
             if k in wl.params}
    res, _, _ = run_engine(wl, wl.resolve(known), scheme,
                           {k.replace("__", "."): v for k, v in overrides.items()})
    return res.stats


def test_the_switches_are_parameters_and_noise_is_on_by_default():
    s = specs()
    assert s["noise.enabled"].default == 1
    for key in (*SOURCES_OFF, "cost.tick"):
        assert key in s, key
        assert s[key].source, key  # cited, or marked as an estimate
    assert s["noise.compute_jitter"].source.startswith("estimate")
    assert "init_task.c" in s["noise.sleep_slack_us"].source
    assert "STACK_RND_MASK" in s["noise.aslr"].source


@pytest.mark.parametrize("workload", sorted(list_workloads()))
def test_every_workload_differs_across_seeds(workload: str):
    one = stats(workload, machine__seed=1.0)
    two = stats(workload, machine__seed=2.0)
    assert one["simTicks"] != two["simTicks"]
    assert one != two


@pytest.mark.parametrize("workload", ["ctxmix", "server"])
def test_noise_off_makes_the_seed_move_nothing(workload: str):
    off = {"noise__enabled": 0.0}
    assert stats(workload, machine__seed=1.0, **off) == stats(workload, machine__seed=7.0, **off)


def test_every_source_off_is_noise_off():
    # The master switch and the seven sources off give the same run (no random accesses).
    sources_off = {k.replace(".", "__"): v for k, v in SOURCES_OFF.items()}
    assert stats("server", machine__seed=3.0, **sources_off) == stats(
        "server", machine__seed=3.0, noise__enabled=0.0)


@pytest.mark.parametrize(("source", "workload", "params"), [
    ("noise.aslr", "ctxmix", {}),
    ("noise.compute_jitter", "ctxmix", {}),
    ("noise.kernel_jitter", "threads-munmap", {}),
    ("noise.sleep_slack_us", "hotplug", {}),
    ("noise.tick_hz", "ctxmix", {}),
    ("noise.wake_ties", "server", {}),
    ("noise.start_order", "ctxmix", {"procs_per_cpu": 8}),
])
def test_each_source_alone_varies_the_run(source: str, workload: str, params: dict):
    only = {k.replace(".", "__"): v for k, v in SOURCES_OFF.items() if k != source}
    one = stats(workload, params=params, machine__seed=1.0, **only)
    two = stats(workload, params=params, machine__seed=2.0, **only)
    assert one != two, source
    counter = {"noise.aslr": "system.noise.aslrImages", "noise.tick_hz": "system.noise.ticks",
               "noise.sleep_slack_us": "system.noise.sleepSlackCycles",
               "noise.wake_ties": "system.noise.wakeTieDraws",
               "noise.start_order": "system.noise.startOrderDraws"}.get(source)
    if counter:
        assert one[counter] > 0


@pytest.mark.parametrize("workload", ["ctxmix", "server", "forkexec"])
def test_a_seed_gives_every_scheme_the_same_noise(workload: str):
    runs = {scheme: stats(workload, scheme, machine__seed=5.0)
            for scheme in ("shared", "percpu", "percpu-eager")}
    for name in ("system.noise.workCycles", "system.noise.sleepSlackCycles",
                 "system.noise.aslrImages"):
        assert len({r[name] for r in runs.values()}) == 1, name
    other = stats(workload, "shared", machine__seed=6.0)
    assert other["system.noise.workCycles"] != runs["shared"]["system.noise.workCycles"]


def test_the_cli_shows_the_switch_and_names_the_metric(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    params = subprocess.run([sys.executable, "-m", "percpu", "params"], capture_output=True,
                            text=True, check=True, env=env).stdout
    assert "noise.enabled" in params and "noise.tick_hz" in params
    out = subprocess.run(
        [sys.executable, "-m", "percpu", "run", "--no-report", "-o", str(tmp_path / "m"),
         "-p", "rounds=5", "--set", "noise.enabled=0"],
        capture_output=True, text=True, check=True, env=env).stdout
    assert "noise off" in out
    assert "overhead vs shared (simulated time)" in out
    assert "busy-cycle overhead vs shared" in out
