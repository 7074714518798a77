"""Replay: every shipped trace becomes a valid op program that runs on the engine with no
checker violation under the shared and percpu schemes; random consistent traces do too;
max_ops bounds the program; snapshots replay; bad arguments are one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from percpu.errors import UsageError
from percpu.params import core, specs
from percpu.trace import read_trace, trace_to_program, write_trace
from percpu.workloads.program import parse_program

sys.path.insert(0, str(Path(__file__).parent))
from synth import synth_trace

TRACES = Path(__file__).resolve().parents[2] / "workloads" / "traces"
RUNS = sorted(p for p in TRACES.glob("*.trace*") if read_trace(p).kind == "run")
SNAPSHOTS = sorted(p for p in TRACES.glob("*.trace*") if read_trace(p).kind == "snapshot")


def run_engine(text: str, ncpus: int) -> dict[str, tuple[int, int]]:
    """Parse and run under shared and percpu with the checker: scheme -> (violations, refs)."""
    prog = parse_program(text, ncpus, source="replay")
    values = {s.key: s.default for s in specs().values()}
    values["machine.cpus"] = float(ncpus)
    out = {}
    for scheme in ("shared", "percpu"):
        res = core().run(values, scheme, check=True, **prog.core_args())
        out[scheme] = (int(res["violation_count"]), int(res["memory_references"]))
    return out


def n_ops(text: str, ncpus: int) -> int:
    return sum(len(t.ops) for t in parse_program(text, ncpus).tasks)


def test_fixtures_are_there_and_small() -> None:
    assert len(RUNS) >= 8 and SNAPSHOTS
    assert sum(p.stat().st_size for p in TRACES.iterdir()) < 4 << 20
    assert all(p.stat().st_size < 1 << 20 for p in TRACES.iterdir())
    readme = (TRACES / "README.md").read_text()
    for p in RUNS + SNAPSHOTS:
        assert p.name in readme, f"{p.name} is not listed in workloads/traces/README.md"


@pytest.mark.parametrize("path", RUNS, ids=lambda p: p.name)
def test_shipped_trace_replays_and_runs(path: Path) -> None:
    for ncpus in (1, 2, 4):
        text = trace_to_program(path, ncpus)
        assert text == trace_to_program(path, ncpus), "replay is not deterministic"
        result = run_engine(text, ncpus)
        for scheme, (violations, refs) in result.items():
            assert violations == 0, f"{path.name} at {ncpus} CPUs under {scheme}"
            assert refs > 0
        assert result["shared"][1] == result["percpu"][1]


@pytest.mark.parametrize("name", ["perf-bench-pipe.trace.gz", "pingpong.trace.gz",
                                  "ctxmix.trace.gz"])
def test_replay_reproduces_the_switches(name: str) -> None:
    """Every recorded switch to one of the command's tasks is one engine context switch
    (the engine counts switches to tasks, not to idle) on as many CPUs as recorded."""
    from percpu.trace.format import Switch

    path = TRACES / name
    trace = read_trace(path)
    mine = {t.tid for t in trace.tasks.values() if t.cls == "c"}
    recorded = sum(1 for e in trace.events if isinstance(e, Switch) and e.next in mine)
    ncpus = int(trace.meta["host_cpus"])
    prog = parse_program(trace_to_program(path, ncpus, others=False), ncpus)
    values = {s.key: s.default for s in specs().values()}
    values["machine.cpus"] = float(ncpus)
    res = core().run(values, "shared", check=True, **prog.core_args())
    switches = sum(v for name, v, _, _ in res["stats"] if name.endswith(".ctxSwitches"))
    assert abs(switches - recorded) <= 0.03 * recorded + 3, (switches, recorded)


def test_program_content() -> None:
    text = trace_to_program(TRACES / "forkexec.trace.gz", 2)
    assert "\n  fork " in text and "\n  exec " in text and "\n  wait " in text
    text = trace_to_program(TRACES / "threads-munmap.trace.gz", 2)
    assert "\n  munmap " in text and "\n  spawn " in text and "\n  mmap " in text
    text = trace_to_program(TRACES / "pingpong-memory.trace.gz", 2)
    assert "count=" in text and "access records" in text
    assert text.startswith("percpu-ops 1\n")


def test_max_ops_bounds_and_says_what_was_dropped() -> None:
    path = TRACES / "perf-bench-pipe.trace.gz"
    full = n_ops(trace_to_program(path, 2), 2)
    for limit in (300, 1500):
        assert limit < full
        text = trace_to_program(path, 2, max_ops=limit)
        assert n_ops(text, 2) <= limit
        assert "# dropped: everything after" in text
        assert run_engine(text, 2)["percpu"][0] == 0
    text = trace_to_program(TRACES / "pingpong-memory.trace.gz", 2, max_ops=600)
    assert n_ops(text, 2) <= 600 and "# dropped: lackey access records sampled" in text
    text = trace_to_program(TRACES / "stress-ng-vm.trace.gz", 2, max_ops=2000)
    assert n_ops(text, 2) <= 2000 and "# dropped:" in text


def test_options() -> None:
    path = TRACES / "ctxmix.trace.gz"
    plain = trace_to_program(path, 2)
    no_timing = trace_to_program(path, 2, timing=False)
    assert "compute" in plain and "compute" not in no_timing.split("\nprogram", 1)[1]
    no_others = trace_to_program(path, 2, others=False)
    assert "mm other.c" not in no_others
    for text in (no_timing, no_others):
        assert run_engine(text, 2)["shared"][0] == 0


def _timed_cycles(text: str) -> list[int]:
    import re

    body = text.split("\nprogram", 1)[1]
    return [int(n) for n in re.findall(r"^\s*(?:compute|sleep) (\d+)", body, re.MULTILINE)]


def test_measured_time_is_counted_at_the_runs_clock() -> None:
    """compute and sleep stand for measured ns: at half the clock, half the cycles (each
    rounded, at least 1); no clock given means the engine's default machine.freq_mhz."""
    path = TRACES / "ctxmix.trace.gz"
    default = specs()["machine.freq_mhz"].default
    at_default = _timed_cycles(trace_to_program(path, 2))
    assert at_default == _timed_cycles(trace_to_program(path, 2, freq_mhz=default))
    half = _timed_cycles(trace_to_program(path, 2, freq_mhz=default / 2))
    assert len(half) == len(at_default) and len(half) > 5
    for full, h in zip(at_default, half, strict=True):
        assert abs(h - full / 2) <= 1, (full, h)


def test_a_trace_run_uses_the_runs_clock(tmp_path: Path) -> None:
    """`percpu run -w trace:FILE` renders the replay at the run's machine.freq_mhz."""
    from percpu.workloads.definition import trace_workload

    wl = trace_workload(str(TRACES / "ctxmix.trace.gz"))
    params = wl.resolve({})
    default = specs()["machine.freq_mhz"].default
    fast = _timed_cycles(wl.render("engine", params, 2, freq_mhz=2 * default))
    slow = _timed_cycles(wl.render("engine", params, 2))
    assert sum(fast) > 1.9 * sum(slow)


@pytest.mark.parametrize("path", SNAPSHOTS, ids=lambda p: p.name)
def test_snapshot_replays(path: Path) -> None:
    snap = read_trace(path)
    text = trace_to_program(path, 2)
    pmds = sum(len(s.indices) for s in snap.slots if s.level == "pmd")
    assert text.count("\n  load ") == pmds
    assert run_engine(text, 2)["percpu"][0] == 0
    # As the shape of a run's first image.
    text = trace_to_program(TRACES / "pingpong.trace.gz", 2, snapshot=path)
    assert f"snapshot pmd touches: {pmds}" in text
    assert run_engine(text, 2)["percpu"][0] == 0


def test_bad_arguments(tmp_path: Path) -> None:
    run = TRACES / "pingpong.trace.gz"
    with pytest.raises(UsageError, match="out of range"):
        trace_to_program(run, 0)
    with pytest.raises(UsageError, match="too small"):
        trace_to_program(run, 2, max_ops=10)
    with pytest.raises(UsageError, match="not a snapshot"):
        trace_to_program(run, 2, snapshot=run)
    with pytest.raises(UsageError, match="no such trace file"):
        trace_to_program(tmp_path / "missing.trace", 2)
    empty = read_trace(run)
    empty.tasks = {k: v for k, v in empty.tasks.items() if v.cls != "c"}
    with pytest.raises(UsageError, match="no task of the traced command"):
        trace_to_program(write_trace(empty, tmp_path / "e.trace"), 2)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 1 << 30), st.integers(1, 4), st.sampled_from([1, 2, 3, 8]),
       st.booleans(), st.sampled_from([150, 600, 100_000]))
def test_random_traces_replay_and_run(seed: int, rec_cpus: int, ncpus: int,
                                      kill_on_exec: bool, max_ops: int) -> None:
    """Random consistent traces (synth.py): valid programs, no deadlock, no VMA used before
    its mmap or after its munmap (the engine raises on both), no violation, within max_ops."""
    trace = synth_trace(seed, cpus=rec_cpus, steps=200, kill_on_exec=kill_on_exec)
    text = trace_to_program(trace, ncpus, max_ops=max_ops)
    assert n_ops(text, ncpus) <= max_ops
    result = run_engine(text, ncpus)
    assert result["shared"][0] == 0 and result["percpu"][0] == 0
