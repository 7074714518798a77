"""`trace record --memory` keeps lackey's order: the compressed records, expanded, give an LRU
TLB the misses the raw stream gives (any size), and a replay through the engine's small
fully associative dTLB misses as often as a plain LRU over the raw lackey stream."""

from __future__ import annotations

import random
import shutil
import subprocess
from collections import OrderedDict
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from percpu.params import core, specs
from percpu.trace.format import Switch, Task, Trace
from percpu.trace.record import parse_lackey_log
from percpu.trace.record.lackey import run_lackey
from percpu.trace.replay import trace_to_program
from percpu.workloads.program import parse_program

PAGE = 4096


def lru_misses(keys, entries: int) -> int:
    lru: OrderedDict[int, None] = OrderedDict()
    misses = 0
    for k in keys:
        if k in lru:
            lru.move_to_end(k)
            continue
        misses += 1
        lru[k] = None
        if len(lru) > entries:
            lru.popitem(last=False)
    return misses


def raw_stream(path: Path) -> list[tuple[str, int]]:
    """(kind, address) of every access of a lackey log, modify as load + store."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        s = line.strip()
        if line.startswith("==") or len(s) < 3 or s[0] not in "ILSM" or "," not in s:
            continue
        addr = int(s[1:].split(",", 1)[0], 16)
        out += [("L", addr), ("S", addr)] if s[0] == "M" else [(s[0], addr)]
    return out


def expand(runs) -> list[tuple[str, int]]:
    return [(a.kind, a.addr + i * a.stride) for a in runs for i in range(a.count)]


def write_log(path: Path, accesses: list[tuple[str, int]]) -> None:
    lines = ["==9== Lackey, an example Valgrind tool", "==9== Parent PID: 8"]
    lines += [f"{'I ' if k == 'I' else ' ' + k} {a:08x},8" for k, a in accesses]
    path.write_text("\n".join(lines) + "\n")


def data_pages(stream) -> list[int]:
    return [a // PAGE for k, a in stream if k != "I"]


accesses = st.lists(st.tuples(st.sampled_from("ILSM"),
                              st.integers(0, 40).map(lambda p: 0x10000 + p * 1024)),
                    min_size=1, max_size=400)


@settings(max_examples=150, deadline=None)
@given(acc=accesses)
def test_compression_keeps_every_lru_miss(tmp_path_factory, acc) -> None:
    log = tmp_path_factory.mktemp("lk") / "lackey.9"
    write_log(log, acc)
    _, runs, n, truncated = parse_lackey_log(log, 9, 10_000)
    assert (n, truncated) == (len(acc), False)
    raw = raw_stream(log)
    got = expand(runs)
    for entries in (1, 2, 3, 8):
        assert lru_misses(data_pages(got), entries) == lru_misses(data_pages(raw), entries)
        assert (lru_misses([a // PAGE for k, a in got if k == "I"], entries)
                == lru_misses([a // PAGE for k, a in raw if k == "I"], entries))
        # Cache lines, per stream, as well.
        assert (lru_misses([a // 64 for k, a in got if k != "I"], entries)
                == lru_misses([a // 64 for k, a in raw if k != "I"], entries))
    # Every store the raw stream makes to a line is still made, in order of first store.
    assert ({a // 64 for k, a in got if k == "S"} == {a // 64 for k, a in raw if k == "S"})


def test_runs_follow_program_order(tmp_path: Path) -> None:
    log = tmp_path / "lackey.77"
    raw = []
    for i in range(100):  # a loop over 100 lines of a buffer, with its code on one line
        raw += [("I", 0x401000), ("L", 0x5000 + 64 * i)]
    for i in range(50):  # then a descending run of modifies
        raw += [("I", 0x401000), ("M", 0x9000 - 64 * i)]
    write_log(log, raw)
    _, runs, n, truncated = parse_lackey_log(log, 77, 10_000)
    assert (n, truncated) == (300, False)
    # The fetches after the first hit the same line: dropped; the loads are one run; each
    # modify is a load and a store of its line, in that order.
    assert [(a.kind, a.addr, a.count, a.stride) for a in runs[:2]] == [
        ("I", 0x401000, 1, 0), ("L", 0x5000, 100, 64)]
    assert [(a.kind, a.addr) for a in runs[2:6]] == [
        ("L", 0x9000), ("S", 0x9000), ("L", 0x9000 - 64), ("S", 0x9000 - 64)]
    assert len(runs) == 2 + 100
    _, runs, n, truncated = parse_lackey_log(log, 77, 30)
    assert (n, truncated) == (30, True)
    _, runs, _, truncated = parse_lackey_log(log, 77, 10_000, max_records=10)
    assert len(runs) == 10 and truncated  # the size bound cuts the stream, in order


def _one_process_trace(runs, duration_ns: int = 5_000_000) -> Trace:
    tr = Trace(meta={"kind": "run", "root_pid": "100", "duration_ns": str(duration_ns)},
               tasks={100: Task(100, 100, "c", "chase"), 0: Task(0, 0, "i", "swapper")},
               events=[Switch(0, 0, 0, 100, "R"), Switch(duration_ns, 0, 100, 0, "S")])
    tr.accesses.extend(a._replace(pid=100) for a in runs)
    return tr


def replay_dtb_misses(trace: Trace, entries: int) -> int:
    text = trace_to_program(trace, 1, max_ops=1_000_000, timing=False, others=False)
    prog = parse_program(text, 1, source="replay")
    values = {s.key: s.default for s in specs().values()}
    values.update({"machine.cpus": 1.0, "tlb.l1d.entries": float(entries),
                   "tlb.l1d.ways": float(entries)})
    res = core().run(values, "shared", **prog.core_args())
    stats = {name: v for name, v, _, _ in res["stats"]}
    return int(stats["system.cpu0.mmu.dtb.rdMisses"] + stats["system.cpu0.mmu.dtb.wrMisses"])


def chase_stream(pages: int, steps: int, seed: int = 1) -> list[tuple[str, int]]:
    """A pointer chase over PAGES pages in a random cycle, with its loop's fetches."""
    rng = random.Random(seed)
    order = list(range(pages))
    rng.shuffle(order)
    out = []
    for i in range(steps):
        p = order[i % pages]
        out += [("I", 0x401000), ("I", 0x401040), ("L", 0x7F0000000000 + p * PAGE + 8 * (i % 8)),
                ("S", 0x600000 + 8 * (i % 4))]
    return out


def test_replayed_pointer_chase_misses_like_lru_over_the_raw_stream(tmp_path: Path) -> None:
    log = tmp_path / "lackey.100"
    write_log(log, chase_stream(pages=24, steps=3000))
    _, runs, _, _ = parse_lackey_log(log, 100, 10_000_000)
    raw = raw_stream(log)
    for entries in (16, 32):
        want = lru_misses(data_pages(raw), entries)
        got = replay_dtb_misses(_one_process_trace(runs), entries)
        # The replay adds a few accesses of its own (exit, the kernel's first touches).
        assert abs(got - want) <= 0.02 * want + 8, (entries, got, want)


CHASE_C = r"""
#include <stdlib.h>
int main(void) {
  enum { PAGES = 24, STEPS = 6000 };
  char *buf = aligned_alloc(4096, PAGES * 4096);
  int order[PAGES];
  for (int i = 0; i < PAGES; i++) order[i] = i;
  unsigned s = 7;
  for (int i = PAGES - 1; i > 0; i--) {
    s = s * 1103515245u + 12345u;
    int j = (s >> 8) % (i + 1), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  for (int i = 0; i < PAGES; i++)
    *(char **)(buf + order[i] * 4096) = buf + order[(i + 1) % PAGES] * 4096;
  char *p = buf;
  for (int i = 0; i < STEPS; i++) p = *(char **)p;
  return p == 0;
}
"""


def test_recorded_pointer_chase_misses_like_lru_over_lackey(tmp_path: Path) -> None:
    # A real program under valgrind lackey (installed where the suite runs: .ci/run): its
    # records, replayed through a 16- and a 32-entry dTLB, against LRU over the raw log.
    src = tmp_path / "chase.c"
    src.write_text(CHASE_C)
    exe = tmp_path / "chase"
    subprocess.run(["gcc", "-O1", "-static", "-o", str(exe), str(src)], check=True)
    assert shutil.which("valgrind"), "valgrind is needed: apt-get install valgrind"
    trace = _one_process_trace([])
    trace.meta["root_pid"] = "100"
    warnings = run_lackey([str(exe)], tmp_path, trace, 50_000_000)
    assert not warnings, warnings
    (log,) = (tmp_path / "lackey").glob("lackey.*")
    raw = raw_stream(log)
    assert len(raw) > 50_000
    for entries in (16, 32):
        want = lru_misses(data_pages(raw), entries)
        got = replay_dtb_misses(trace, entries)
        assert want > 5_000 or entries == 32
        assert abs(got - want) <= 0.02 * want + 20, (entries, got, want)
