"""`percpu trace import` of perf script text from another machine; every task kept; replay
warnings on the console; the replay's mm switches against Linux's ASID logic counted
independently (percpu.trace.linux_asid) over the recorded switches."""

from __future__ import annotations

from pathlib import Path

import pytest

from percpu.params import core, specs
from percpu.trace import read_trace, trace_to_program
from percpu.trace.linux_asid import linux_count
from percpu.trace.record.importer import import_perf
from percpu.workloads.program import parse_program

TRACES = Path(__file__).resolve().parents[2] / "workloads" / "traces"


def _script() -> str:
    # Default `perf script` form (comm first), a benchmark whose 3 workers were forked
    # before the recording began: no fork records for them, no exec of the root.
    lines = []
    t = 100.000000000
    tasks = [("bench", 500, 500), ("bench", 501, 501), ("bench", 502, 502), ("bench", 503, 503)]
    for i in range(60):
        cpu = i % 2
        prev = tasks[i % 4]
        nxt = tasks[(i + 2) % 4] if i % 5 else ("kworker/0:1", 33, 33)
        lines.append(f"{prev[0]:>16} {prev[1]}/{prev[2]} [{cpu:03d}] {t:.9f}: sched:sched_switch: "
                     f"prev_comm={prev[0]} prev_pid={prev[2]} prev_prio=120 prev_state=S ==> "
                     f"next_comm={nxt[0]} next_pid={nxt[2]} next_prio=120")
        t += 0.0001
    return "\n".join(lines) + "\n"


def test_import_keeps_tasks_without_a_seen_fork_and_warns(tmp_path: Path, capsys) -> None:
    src = tmp_path / "bench.script"
    src.write_text(_script())
    path, trace = import_perf(src, tmp_path / "bench.trace.gz", comm="bench")
    assert read_trace(path).meta["sources"] == "imported:tracepoints"
    assert trace.tasks[33].cls == "k"  # by its name: this machine's /proc is not asked
    text = trace_to_program(path, 2)
    err = capsys.readouterr().err
    assert "tasks without a seen fork, started at their first run: 3" in text
    assert "percpu: warning:" in err and "without a seen fork" in err
    prog = parse_program(text, 2)
    assert len({t.name.split(".")[0] for t in prog.tasks}) >= 4  # t500, t501, t502, t503


def test_import_errors_are_one_line(tmp_path: Path) -> None:
    from percpu.errors import UsageError

    empty = tmp_path / "empty.txt"
    empty.write_text("nothing here\n")
    with pytest.raises(UsageError, match="no perf script records"):
        import_perf(empty, tmp_path / "x.trace")
    src = tmp_path / "bench.script"
    src.write_text(_script())
    with pytest.raises(UsageError, match="no task named"):
        import_perf(src, tmp_path / "x.trace", comm="nope")


@pytest.mark.parametrize("name", ["ctxmix", "pingpong", "perf-bench-pipe"])
def test_replay_mm_switches_match_linux_count(name: str) -> None:
    path = TRACES / f"{name}.trace.gz"
    want = linux_count(read_trace(path))
    prog = parse_program(trace_to_program(path, 2, warn=False), 2)
    values = {s.key: s.default for s in specs().values()}
    values["machine.cpus"] = 2.0
    stats = {n: v for n, v, *_ in core().run(values, "percpu", **prog.core_args())["stats"]}
    got = sum(v for n, v in stats.items() if n.endswith(".mmSwitches"))
    assert abs(got - want["mm_switches"]) <= 0.06 * want["mm_switches"], (got, want)
