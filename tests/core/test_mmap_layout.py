"""Where an image's mmap'd buffers go: Linux 6.1's mmap base and top-down allocator.

A template's `vma NAME auto` (a buffer the program mmaps before it starts, as the guest
programs' alloc_pages does) and `mmap NAME auto` both take the highest free range below
the mmap base (mm/mmap.c unmapped_area_topdown). The base is arch/x86/mm/mmap.c's
mmap_base: 2^47 - 4 KiB less 128 MiB without ASLR; under ASLR less 8 MiB + 1 MiB + the
stack's largest shift (16 GiB - 4 KiB), then down by up to 2^28 pages. So a process's
mmap'd heap sits in top-level slot 255 or 254 (253 for 1.6 % of draws), the reason the guest's processes take two
or three lazy faults per root allocation (docs/gem5.md).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from percpu import _core
from percpu.workloads.program import parse_program

MAP_VMA = 1  # LogRecord::Kind (core/engine/engine.h)
TASK_SIZE_MAX = (1 << 47) - 4096
MMAP_BASE = TASK_SIZE_MAX - (128 << 20)
MMAP_BASE_ASLR = TASK_SIZE_MAX - ((8 << 20) + 256 * 4096 + 0x3FFFFF * 4096)
SLOT = 1 << 39


def run(text: str, aslr: bool, seed: int = 1, scheme: str = "shared") -> dict:
    # root.fill_at_fault=0: each new pgd entry is a lazy fault, as under gem5.
    prog = parse_program(text, 1)
    values = {"machine.cpus": 1.0, "machine.seed": float(seed), "noise.tick_hz": 0.0,
              "noise.aslr": 1.0 if aslr else 0.0, "root.fill_at_fault": 0.0}
    return _core.run(values, scheme, check=True, record_log=True, **prog.core_args())


def mapped(out: dict) -> list[tuple[int, int]]:
    return [(r[3], r[4]) for r in out["log"] if r[0] == MAP_VMA]


IMAGE = """percpu-ops 1
mm m
  vma text 0x400000 64K rx
  vma heap auto 16K rw
  vma buf auto 8K rw
  vma stack 0x7ffffff00000 64K rw
task t mm=m cpus=0
program t
  fetch text
  store stack 0xf000
  store heap
  store buf
"""


def layout(out: dict) -> dict[str, tuple[int, int]]:
    """The image's VMAs by name: the log lists them by address (text < buf < heap < stack)."""
    return dict(zip(("text", "buf", "heap", "stack"), sorted(mapped(out))))


def test_without_aslr_auto_vmas_stack_down_from_linuxs_base():
    ranges = layout(run(IMAGE, aslr=False))
    assert ranges["text"] == (0x400000, 0x410000)
    assert ranges["stack"] == (0x7FFFFFF00000, 0x7FFFFFF10000)
    # In template order, each below the last: the heap first, right under the base.
    assert ranges["heap"] == (MMAP_BASE - 16384, MMAP_BASE)
    assert ranges["buf"] == (MMAP_BASE - 16384 - 8192, MMAP_BASE - 16384)


def test_under_aslr_the_heap_lands_in_slot_255_or_254_and_costs_a_lazy_fault_more_in_254():
    lazy_by_slot: dict[int, set[float]] = {}
    for seed in range(1, 41):
        out = run(IMAGE, aslr=True, seed=seed, scheme="percpu")
        ranges = layout(out)
        heap = ranges["heap"][0]
        assert MMAP_BASE_ASLR - (1 << 40) - 16384 <= heap < MMAP_BASE_ASLR
        assert ranges["buf"][1] == heap  # the next auto VMA right below it
        stats = {name: value for name, value, _, _ in out["stats"]}
        lazy_by_slot.setdefault(heap // SLOT, set()).add(stats["system.cpu0.percpu.lazyFaults"])
    # Slots 255 and 254 each take about half the draws (253 the last 16 GiB of the 1 TiB
    # range, 1.6 %), and the lazy faults count the top-level slots touched: the text's 0,
    # the stack's 255 and, below slot 255, the heap's (buf with it: a 24 KiB pair
    # straddles a slot boundary with odds of 2^-26, not in these seeds).
    assert {254, 255} <= set(lazy_by_slot) <= {253, 254, 255}
    assert lazy_by_slot.pop(255) == {2.0}
    assert set().union(*lazy_by_slot.values()) == {3.0}


# A reference top-down allocator: the highest gap of `size` below `base` among `vmas`.
def reference_top_down(vmas: list[tuple[int, int]], base: int, size: int) -> int:
    top = base
    for start, end in sorted(vmas, reverse=True):
        if start >= top:
            continue
        if top - end >= size:
            break
        top = start
    return top - size


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["map", "unmap"]), st.integers(0, 5),
                          st.integers(1, 64)), min_size=1, max_size=24))
def test_mmap_auto_is_linuxs_top_down_first_fit(steps):
    """Any sequence of `mmap auto` and `munmap` places each buffer where the reference
    allocator does: the highest free range below the base, reusing freed holes."""
    lines, live, expect_vmas = [], {}, [(0x400000, 0x410000), (0x7FFFFFF00000, 0x7FFFFFF10000)]
    expected = []
    for op, name, pages in steps:
        if op == "map" and name not in live:
            start = reference_top_down(expect_vmas, MMAP_BASE, pages * 4096)
            expect_vmas.append((start, start + pages * 4096))
            live[name] = (start, start + pages * 4096)
            expected.append(live[name])
            lines += [f"  mmap b{name} auto {pages * 4096} rw", f"  store b{name}"]
        elif op == "unmap" and name in live:
            expect_vmas.remove(live.pop(name))
            lines.append(f"  munmap b{name}")
    text = ("percpu-ops 1\nmm m\n  vma text 0x400000 64K rx\n  vma stack 0x7ffffff00000 64K rw\n"
            "task t mm=m cpus=0\nprogram t\n  fetch text\n" + "\n".join(lines) + "\n")
    out = run(text, aslr=False)
    assert out["violation_count"] == 0
    assert mapped(out)[2:] == expected  # after the template's text and stack


TWO_PROCESSES = """percpu-ops 1
mm a
  vma text 0x400000 64K rx
  vma heap auto 16K rw
  vma stack 0x7ffffff00000 64K rw
mm b
  vma text 0x400000 64K rx
  vma heap auto 16K rw
  vma stack 0x7ffffff00000 64K rw
mm img
  vma text 0x400000 64K rx
  vma heap auto 16K rw
  vma stack 0x7ffffff00000 64K rw
task pa mm=a cpus=0
program pa
  store heap
task pb mm=b cpus=0
program pb
  store heap
  exec img
  store heap
"""


def test_start_processes_share_one_layout_and_exec_draws_anew():
    """The program's processes are forked by one launcher (fork keeps its layout), so they
    share one ASLR draw, as the guest programs' children do; an exec'd image draws its own."""
    differs = 0
    for seed in range(1, 9):
        out = run(TWO_PROCESSES, aslr=True, seed=seed)
        by_mm: dict[int, list[tuple[int, int]]] = {}
        for r in out["log"]:
            if r[0] == MAP_VMA:
                by_mm.setdefault(r[1], []).append((r[3], r[4]))
        a, b, img = (sorted(v) for _, v in sorted(by_mm.items()))
        assert a == b  # text, heap and stack alike
        assert a[1][0] < MMAP_BASE_ASLR
        differs += img != a
    assert differs == 8
