"""The invariant checker catches a scheme that keeps a freed page table reachable.

fault.skip_root_invalidate makes the per-CPU roots ignore the flush that follows
freeing page tables (the use-after-free docs/references.md, "The model", warns about); the checker must
report it, and must stay silent for the correct schemes on the same program.
"""

from __future__ import annotations

import pytest

from percpu import _core
from percpu.workloads.program import parse_program

# Thread a frees the page tables of slot 1 while thread b, running on CPU 1, has the
# slot in its root; the freed PUD frame is reused for slot 2, so a stale root entry
# translates y through z's page tables.
STALE_ROOT = """percpu-ops 1
mm m
task a mm=m cpus=0
task b mm=m cpus=1
program a
  mmap x 0x8000000000 4096 rw
  store x
  signal ready
  wait touched
  munmap x
  mmap z 0x10040000000 4096 rw
  store z
  mmap y 0x8040000000 4096 rw
  store y
program b
  wait ready
  load x
  signal touched
  compute 5000000
  load y
"""


def run(scheme: str, **params: float) -> dict:
    prog = parse_program(STALE_ROOT, 2)
    return _core.run({"machine.cpus": 2.0, **params}, scheme, check=True, **prog.core_args())


@pytest.mark.parametrize("scheme", ["shared", "percpu", "percpu-eager"])
def test_correct_schemes_pass_the_checker(scheme):
    out = run(scheme)
    assert out["violation_count"] == 0, out["violations"]


@pytest.mark.parametrize("scheme", ["percpu", "percpu-eager"])
def test_checker_reports_a_root_that_keeps_freed_tables(scheme):
    out = run(scheme, **{"fault.skip_root_invalidate": 1.0})
    assert out["violation_count"] >= 1
    # Caught at the flush itself: a's munmap (op 4) leaves the freed slot in a's root and
    # (IPI) in b's.
    first = out["violations"][0]
    assert first[:4] == ("the root keeps a top-level entry its mm freed, after the flush", 0,
                         "a#0", 4)
    assert any(v[1] == 1 and v[3] == 4 for v in out["violations"])  # b's CPU, same flush
    # And later when a walks it: `store y`, op 8, reads the freed PUD frame, reused
    # meanwhile as z's data page.
    assert any(v[1:] == (0, "a#0", 8, 0x8040000000) and "freed page-table frame" in v[0]
               for v in out["violations"])
    # b, on CPU 1, walks it too with lazy roots (eager pushes y's new entry over it).
    assert scheme == "percpu-eager" or any(
        v[1] == 1 and v[2] == "b#1" and v[4] == 0x8040000000 for v in out["violations"])

def test_stale_entries_are_dropped_by_the_flush():
    out = run("percpu")
    stats = {name: value for name, value, _, _ in out["stats"]}
    # Slot 1 is dropped by munmap's flush IPI and again (y's PUD) by exit_mmap's flush.
    assert stats["system.cpu1.percpu.rootEntriesDropped"] == 2
    assert stats["system.cpu1.percpu.lazyFaults"] == 2  # x, then y after the drop
    faulty = run("percpu", **{"fault.skip_root_invalidate": 1.0})
    faulty_stats = {name: value for name, value, _, _ in faulty["stats"]}
    assert faulty_stats["system.cpu1.percpu.rootEntriesDropped"] == 0
