"""The percpu-trace 1 format: round trips (hypothesis) and one-line errors for bad files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from percpu.errors import UsageError
from percpu.trace.format import (
    ACCESS_KINDS,
    FAULT_KINDS,
    MAP_OPS,
    TASK_CLASSES,
    Access,
    Exec,
    Exit,
    Fault,
    Fork,
    MemMap,
    Slots,
    Switch,
    Task,
    Trace,
    TraceError,
    format_trace,
    parse_trace,
    read_trace,
    write_trace,
)
from percpu.trace.format import Vma as VmaRec

text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30)
nat = st.integers(0, 1 << 40)
addr = st.integers(0, (1 << 64) - 1)
cpu = st.integers(0, 255)
tid = st.integers(0, 1 << 22)

events = st.one_of(
    st.builds(Switch, nat, cpu, tid, tid, st.sampled_from(["R", "S", "D", "Z", "X", "-", "R+"])),
    st.builds(Fork, nat, cpu, tid, tid),
    st.builds(Exec, nat, cpu, tid, text),
    st.builds(Exit, nat, cpu, tid),
    st.builds(Fault, nat, cpu, tid, addr, st.sampled_from(FAULT_KINDS),
              st.one_of(st.just(-1), st.integers(0, 0xFFFF))),
    st.builds(MemMap, nat, cpu, tid, st.sampled_from(MAP_OPS), addr, nat, st.integers(0, 7)),
)


@st.composite
def slots(draw) -> Slots:
    level = draw(st.sampled_from(["pgd", "pud", "pmd"]))
    n = {"pgd": 0, "pud": 1, "pmd": 2}[level]
    prefix = tuple(draw(st.lists(st.integers(0, 511), min_size=n, max_size=n)))
    return Slots(draw(tid), level, prefix, tuple(draw(st.lists(st.integers(0, 511),
                                                               max_size=8))))


traces = st.builds(
    Trace,
    meta=st.dictionaries(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), text, max_size=6),
    tasks=st.lists(st.builds(Task, tid, tid, st.sampled_from(TASK_CLASSES), text),
                   max_size=6).map(lambda ts: {t.tid: t for t in ts}),
    events=st.lists(events, max_size=20),
    vmas=st.lists(st.builds(VmaRec, tid, addr, addr, st.sampled_from(["r-xp", "rw-p", "---p"]),
                            nat, text), max_size=5),
    accesses=st.lists(st.builds(Access, tid, st.sampled_from(ACCESS_KINDS), addr,
                                st.integers(1, 1 << 20), st.integers(-(1 << 20), 1 << 20)),
                      max_size=5),
    slots=st.lists(slots(), max_size=5),
)


@given(traces)
def test_round_trip_text(trace: Trace) -> None:
    assert parse_trace(format_trace(trace)) == trace


@settings(max_examples=40)
@given(traces)
def test_round_trip_files(tmp_path_factory, trace: Trace) -> None:
    d = tmp_path_factory.mktemp("rt")
    for name in ("t.trace", "t.trace.gz"):
        path = write_trace(trace, d / name)
        assert read_trace(path) == trace
    assert (d / "t.trace.gz").read_bytes()[:2] == b"\x1f\x8b"


def _one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert "\n" not in msg and msg
    return msg


def _sample() -> Trace:
    return Trace(meta={"kind": "run", "command": "a b\n#c"},
                 tasks={5: Task(5, 5, "c", "x y")},
                 events=[Switch(0, 0, 0, 5, "R"), Fault(10, 0, 5, 0x1000, "w", 6)])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        read_trace(tmp_path / "nope.trace")
    assert "no such trace file" in _one_line(e.value)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        read_trace(tmp_path)
    assert "directory" in _one_line(e.value)


@pytest.mark.parametrize("content, expect", [
    (b"", "empty file"),
    (b"hello world\n", "not a percpu trace"),
    (b"\x00\x01\x02\xff\xfe", "not a percpu trace"),
    (b"percpu-trace 2\nend 0\n", "unsupported trace version"),
    (b"percpu-trace 1\nS 1 2 3\nend 1\n", "expected 'S T CPU PREV NEXT STATE'"),
    (b"percpu-trace 1\nS 1 x 3 4 R\nend 1\n", "malformed 'S' record"),
    (b"percpu-trace 1\nQ 1\nend 1\n", "unknown record 'Q'"),
    (b"percpu-trace 1\nP 1 0 5 0x1000 q -\nend 1\n", "fault kind"),
    (b"percpu-trace 1\nE 1 0 5\nend 2\n", "damaged"),
    (b"percpu-trace 1\nE 1 0 5\nend 1\nE 2 0 5\n", "after the 'end' line"),
])
def test_not_a_trace(tmp_path: Path, content: bytes, expect: str) -> None:
    path = tmp_path / "bad.trace"
    path.write_bytes(content)
    with pytest.raises(TraceError) as e:
        read_trace(path)
    assert expect in _one_line(e.value)
    assert str(path) in str(e.value)


def test_truncated_text_and_gzip(tmp_path: Path) -> None:
    good = format_trace(_sample()).encode()
    cut = tmp_path / "cut.trace"
    cut.write_bytes(good[: good.index(b"\nend ") + 1])
    with pytest.raises(TraceError) as e:
        read_trace(cut)
    assert "truncated" in _one_line(e.value)
    half = tmp_path / "cut.trace.gz"
    half.write_bytes(gzip.compress(good)[:-12])
    with pytest.raises(TraceError) as e:
        read_trace(half)
    assert "truncated" in _one_line(e.value)


def test_free_text_is_one_field(tmp_path: Path) -> None:
    t = _sample()
    out = format_trace(t)
    assert "a%20b%0A%23c" in out and "x%20y" in out
    assert read_trace(write_trace(t, tmp_path / "s.trace")) == t


def test_write_is_atomic_and_names_the_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError) as e:
        write_trace(_sample(), blocker / "sub" / "t.trace")
    assert "--out" in _one_line(e.value)
    write_trace(_sample(), tmp_path / "ok.trace")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
