"""The op program's static check (core/engine/program_check.cc) at the binding boundary:
whatever tuples reach percpu._core.run, the answer is a run or a clear exception, never a
crash, a hang or a silently changed program."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from percpu import _core

CODE = {name: i + 1 for i, name in enumerate(_core.OP_CODES)}
PARAMS = {"machine.cpus": 2.0}
HEAP = (0, 0x10000000, 0x10004000, 3)  # vma_names[0], 4 pages rw


def run(ops, *, cpus=(0, 1), vmas=(HEAP,), chans=("c",), tasks=None, mm=0):
    """One task running ops in an mm holding vmas; vma_names a, b; channels chans."""
    tasks = tasks if tasks is not None else [("t", mm, list(cpus), True, list(ops))]
    return _core.run(PARAMS, "percpu", [("m", list(vmas))], tasks, ["a", "b"], list(chans))


def op(name, a=0, b=0, c=0, d=0, flags=0):
    return (CODE[name], flags, a, b, c, d)


def test_a_wellformed_program_runs():
    out = run([op("access", 0, 0, 4, 64), op("signal", 0, 1), op("wait", 0), op("exit")])
    assert out["memory_references"] == 4


@pytest.mark.parametrize(("ops", "message"), [
    ([op("wait", 3)], "channel 3 is not an index of chan_names (1 channels)"),
    ([op("signal", -1, 1)], "channel -1 is not an index"),
    ([op("end", 0)], "'end' without 'repeat'"),
    ([op("repeat", 2, 5)], "'repeat' must name its 'end'"),
    ([op("repeat", 2, 1), op("compute", 1)], "'repeat' must name its 'end'"),
    ([op("access", 7, 0, 1, 64)], "VMA 7 is not an index of vma_names (2 names)"),
    ([op("access", 0, 0, 1, 64, flags=3)], "expected kind 0..2"),
    ([op("access", 0, 0, -5, 64)], "count must be non-negative"),
    ([op("mmap", 1, -1, 0, 3)], "size must be 1 byte"),
    ([op("mmap", 1, 0x123, 4096, 3)], "page aligned"),
    ([op("mmap", 1, -1, 4096, 2)], "protection must be r, rw, rx or rwx"),
    ([op("munmap", 0, 0, 100)], "length must be page aligned"),
    ([op("mprotect", 0, 4096, -2, 3)], "length -2 is outside 0..2^47"),
    ([op("brk", 0, 0, -4096)], "size -4096 is outside 0..2^47"),
    ([op("spawn", 0, 2)], "spawn's waiting operand b must be 0 or 1"),
    ([op("compute", -1)], "cycles must be non-negative"),
    ([op("kcopy", -4096)], "bytes must be non-negative"),
    ([op("spawn", 9)], "task 9 is not a task index"),
    ([op("exec", 4)], "mm 4 is not an mm template index"),
    ([op("migrate", 2)], "CPU 2 does not exist on this 2-CPU machine"),
    ([op("cpu_offline", 1 << 32)], "does not exist on this 2-CPU machine"),
    ([op("yield", flags=16)], "flags 16 on an op that takes none"),
])
def test_malformed_ops_are_refused_before_the_run(ops, message):
    with pytest.raises(_core.ProgramError) as exc:
        run(ops)
    assert str(exc.value).startswith("task 't' op 0 ("), exc.value
    assert message in str(exc.value)
    assert isinstance(exc.value, ValueError)  # bad input, as the CLI reads it


def test_an_unknown_op_code_is_refused_not_ignored():
    for code in (0, len(_core.OP_CODES) + 1, 999):
        with pytest.raises(ValueError, match="is not one of percpu._core.OP_CODES"):
            run([(code, 0, 0, 0, 0, 0)])


def test_cpus_outside_0_255_are_refused_not_dropped():
    with pytest.raises(_core.ProgramError, match="CPU 256 is out of range 0..255"):
        run([op("exit")], cpus=(0, 256))
    with pytest.raises(_core.ProgramError, match="CPU -1 is out of range"):
        run([op("exit")], cpus=(-1, 0))


@pytest.mark.parametrize(("vmas", "message"), [
    ([(5, 0x10000000, 0x10001000, 3)], "VMA name 5 is not an index"),
    ([(0, 0x10000000, 0x10000000, 3)], "expected a non-empty, page-aligned range"),
    ([(0, 0x10000001, 0x10002000, 3)], "expected a non-empty, page-aligned range"),
    ([(0, 0x10000000, 0x10002000, 9)], "protection must be"),
    ([(0, 0x10000000, 0x10002000, 3), (0, 0x20000000, 0x20001000, 3)], "declared twice"),
    ([(0, 0x10000000, 0x10002000, 3), (1, 0x10001000, 0x10003000, 3)], "overlaps VMA 'a'"),
    # An auto-placed VMA (`vma NAME auto`): start exactly 2^63, end 2^63 + size.
    ([(0, (1 << 63) + 4096, (1 << 63) + 8192, 3)], "an auto-placed VMA starts at kVmaAuto"),
    ([(0, 1 << 63, 1 << 63, 3)], "expected a non-empty, page-aligned range"),
    ([(0, 1 << 63, (1 << 63) + (1 << 48), 3)], "expected a non-empty, page-aligned range"),
    ([(0, 1 << 63, (1 << 63) + (1 << 47) - (1 << 30), 3)], "no room below the mmap base"),
])
def test_malformed_vmas_are_refused(vmas, message):
    with pytest.raises(_core.ProgramError, match=message):
        run([op("exit")], vmas=vmas)


def test_an_auto_vma_is_placed_and_overlaps_nothing():
    # Two auto VMAs and a fixed one at the mmap base's address would-be: all placed apart.
    vmas = [(0, 1 << 63, (1 << 63) + 8192, 3), (1, 1 << 63, (1 << 63) + 4096, 3)]
    out = run([op("access", 0, 0, 2, 4096, flags=1), op("access", 1, 0, 1, 64, flags=1)],
              vmas=vmas)
    assert out["memory_references"] == 3


def test_tasks_mm_and_fork_targets_are_checked():
    with pytest.raises(_core.ProgramError, match="mm 3 is not an mm template index"):
        run([op("exit")], mm=3)
    tasks = [("t", 0, [0], True, [op("fork", 1)]), ("child", 0, [0], False, [op("exit")])]
    with pytest.raises(_core.ProgramError, match="fork target 'child' must be declared with"):
        run([], tasks=tasks)


def test_a_workload_error_is_its_own_exception():
    # Well formed, but kunmap without kmap is something the kernel refuses at run time.
    with pytest.raises(_core.WorkloadError, match="kunmap without a kmap"):
        run([op("kunmap", 1)])


# Op tuples at random: each field small or at an edge, so that indices, counts and codes
# go out of range often and a run that is accepted stays short.
_FIELD = st.one_of(st.integers(-3, 8), st.sampled_from([-1, 4096, 1 << 20, 1 << 47, -(1 << 63),
                                                      (1 << 63) - 1]))
_SMALL = st.integers(-2, 6)
_CODES = st.integers(-1, len(_core.OP_CODES) + 2)
_FLAGS = st.sampled_from([0, 0, 1, 3, 16, 17])
_OPS = st.lists(st.tuples(_CODES, _FLAGS, _FIELD, _FIELD, _SMALL, _SMALL), max_size=12)


@settings(max_examples=300)
@given(ops=_OPS, cpus=st.lists(st.integers(-2, 258), max_size=3),
       vmas=st.lists(st.tuples(st.integers(-1, 2), st.sampled_from([0, 0x10000000, 0x10000800]),
                               st.sampled_from([0x10000000, 0x10004000, 1 << 48]),
                               st.sampled_from([0, 1, 3, 5, 7, 8])), max_size=2),
       chans=st.lists(st.just("c"), max_size=2))
def test_random_op_tuples_give_a_run_or_an_error_never_a_crash(ops, cpus, vmas, chans):
    tasks = [("t", 0, cpus, True, ops), ("k", -1, [0], False, ops)]
    try:
        out = _core.run(PARAMS, "percpu", [("m", vmas)], tasks, ["a", "b"], chans, check=True)
    except (_core.ProgramError, _core.WorkloadError) as exc:
        assert str(exc).startswith(("task ", "program", "mm '", "workload")), exc
    else:
        assert out["violation_count"] == 0


def test_access_to_a_vma_brk_shrank_to_nothing_is_a_workload_error():
    # brk to 0 leaves the VMA empty; an access into it divided by its size (SIGFPE).
    with pytest.raises(_core.WorkloadError, match="which brk shrank to 0 bytes"):
        run([op("brk", 0, 0, 0), op("access", 0, 0, 4, 64)])
    with pytest.raises(_core.WorkloadError, match="which brk shrank to 0 bytes"):
        run([op("brk", 0, 0, 0), op("access", 0, 0, 4, 0, flags=16)])
    with pytest.raises(_core.WorkloadError, match="past the user half"):
        run([op("brk", 0, 0, (1 << 47) - 4096)])


def test_the_parser_names_the_line_of_an_empty_mmap():
    from percpu.workloads.program import ProgramError, parse_program

    text = "percpu-ops 1\nmm m\ntask t mm=m\nprogram t\n  mmap x auto 0 rw\n"
    with pytest.raises(ProgramError, match="<program>:5: mmap size must be 1 byte"):
        parse_program(text, 1)


def test_spawn_waiting_needs_a_task_that_begins_with_wait():
    tasks = [("t", 0, [0], True, [op("spawn", 1, 1)]), ("w", 0, [0], False, [op("exit")])]
    with pytest.raises(_core.ProgramError, match="spawn w waiting: the task's program must"):
        run([], tasks=tasks)
    tasks[0] = ("t", 0, [0], True, [op("spawn", 1, 2)])
    with pytest.raises(_core.ProgramError, match="waiting operand b must be 0 or 1"):
        run([], tasks=tasks)


@pytest.mark.parametrize(("program", "message"), [
    ("  spawn w waiting\nprogram w\n  compute 10\n",
     "<program>:6: spawn w waiting: w's program must begin with 'wait CHAN'"),
    ("  spawn w later\nprogram w\n  wait c\n", "<program>:6: spawn takes TASK [waiting], not 'later'"),
    ("  spawn w waiting x\nprogram w\n  wait c\n", "<program>:6: expected 'spawn TASK [waiting]'"),
])
def test_the_parser_checks_spawn_waiting(program, message):
    from percpu.workloads.program import ProgramError, parse_program

    text = "percpu-ops 1\nmm m\ntask t mm=m\ntask w mm=m start=no\nprogram t\n" + program
    with pytest.raises(ProgramError) as exc:
        parse_program(text, 1)
    assert message in str(exc.value)
