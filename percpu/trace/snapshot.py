"""`percpu trace snapshot PID`: the real address-space shape of a live process.

Reads /proc/PID/maps (the VMAs and their protections) and, where readable (root, or the
process's owner with ptrace access), /proc/PID/pagemap: which pages are present or
swapped, hence which pgd (VA bits 47..39), pud (38..30) and pmd (29..21) slots hold page
tables. Without pagemap the slots are those the VMA ranges span (an upper bound). The
result is a `percpu-trace 1` file of kind snapshot (docs/traces.md).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from percpu.errors import UsageError
from percpu.trace.format import Slots, Task, Trace, Vma, write_trace
from percpu.trace.record import parse_maps

PAGE = 4096
USER_TOP = 1 << 47
PAGEMAP_PRESENT = 1 << 63
PAGEMAP_SWAPPED = 1 << 62
# Largest VMA whose pagemap is read (8 bytes per page: 16 GiB costs 32 MiB of reads);
# larger ones (reservations, sanitizer shadows) count by their range.
PAGEMAP_MAX_VMA = 16 << 30
VMA_SLOT_MAX = 512  # pmd slots listed per VMA when counting by range


def slot_of(va: int) -> tuple[int, int, int]:
    return (va >> 39) & 511, (va >> 30) & 511, (va >> 21) & 511


def _pagemap_present(fd: int, start: int, end: int):
    """Virtual addresses of present (or swapped) pages in [start, end)."""
    import numpy as np

    step = 1 << 18  # pages per read (2 MiB of pagemap)
    first = start // PAGE
    last = end // PAGE
    for lo in range(first, last, step):
        hi = min(last, lo + step)
        data = os.pread(fd, (hi - lo) * 8, lo * 8)
        if not data:
            return
        words = np.frombuffer(data[: len(data) // 8 * 8], dtype="<u8")
        hits = np.nonzero(words & np.uint64(PAGEMAP_PRESENT | PAGEMAP_SWAPPED))[0]
        for i in hits.tolist():
            yield (lo + i) * PAGE


def slots_from_addresses(addrs) -> tuple[set[int], dict[int, set[int]],
                                         dict[tuple[int, int], set[int]]]:
    pgd: set[int] = set()
    pud: dict[int, set[int]] = {}
    pmd: dict[tuple[int, int], set[int]] = {}
    for va in addrs:
        g, u, m = slot_of(va)
        pgd.add(g)
        pud.setdefault(g, set()).add(u)
        pmd.setdefault((g, u), set()).add(m)
    return pgd, pud, pmd


def _vma_addresses(vmas: list[Vma]):
    """One address per pmd slot a VMA spans (at most VMA_SLOT_MAX per VMA, then per pud)."""
    for v in vmas:
        base = v.start & ~((1 << 21) - 1)
        n = (v.end - base + (1 << 21) - 1) >> 21
        step = 1 << 21 if n <= VMA_SLOT_MAX else 1 << 30
        va = v.start if step == 1 << 21 else v.start & ~((1 << 30) - 1)
        while va < v.end:
            yield max(va, v.start)
            va = (va & ~(step - 1)) + step


def snapshot(pid: int) -> Trace:
    """Snapshot of /proc/PID: VMAs and populated page-table slots."""
    proc = Path(f"/proc/{pid}")
    try:
        maps_text = (proc / "maps").read_text()
    except FileNotFoundError:
        raise UsageError(f"no process {pid}: give the pid of a running process") from None
    except PermissionError:
        raise UsageError(f"cannot read /proc/{pid}/maps: permission denied (snapshot a process "
                         "you own, or run as root)") from None
    except OSError as exc:
        raise UsageError(f"cannot read /proc/{pid}/maps: {exc.strerror}") from None
    vmas = [v for v in parse_maps(maps_text, pid) if v.end <= USER_TOP]
    if not vmas:
        raise UsageError(f"process {pid} has no user address space (a kernel thread?): "
                         "snapshot a user process")
    try:
        comm = (proc / "comm").read_text().strip()
    except OSError:
        comm = ""
    try:
        exe = os.readlink(proc / "exe")
    except OSError:
        exe = ""
    source = "vmas"
    pages = 0
    addrs: list[int] = []
    skipped = 0
    try:
        fd = os.open(proc / "pagemap", os.O_RDONLY)
    except OSError:
        fd = -1
    if fd >= 0:
        try:
            for v in vmas:
                if v.end - v.start > PAGEMAP_MAX_VMA:
                    skipped += 1
                    addrs.extend(_vma_addresses([v]))
                    continue
                for va in _pagemap_present(fd, v.start, v.end):
                    addrs.append(va)
                    pages += 1
            source = "pagemap"
        except OSError:
            addrs, pages, source = [], 0, "vmas"
        finally:
            os.close(fd)
    if source == "vmas":
        addrs = list(_vma_addresses(vmas))
    pgd, pud, pmd = slots_from_addresses(addrs)
    trace = Trace()
    trace.meta.update({
        "kind": "snapshot",
        "pid": str(pid),
        "comm": comm,
        "exe": exe,
        "taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kernel": os.uname().release,
        "slot_source": source,
        "present_pages": str(pages),
        "vmas": str(len(vmas)),
        "pgd_slots": str(len(pgd)),
        "pud_slots": str(sum(len(s) for s in pud.values())),
        "pmd_slots": str(sum(len(s) for s in pmd.values())),
    })
    if skipped:
        trace.meta["vmas_counted_by_range"] = str(skipped)
    trace.tasks[pid] = Task(pid, pid, "c", comm)
    trace.vmas = vmas
    if pgd:
        trace.slots.append(Slots(pid, "pgd", (), tuple(sorted(pgd))))
    for g in sorted(pud):
        trace.slots.append(Slots(pid, "pud", (g,), tuple(sorted(pud[g]))))
    for g, u in sorted(pmd):
        trace.slots.append(Slots(pid, "pmd", (g, u), tuple(sorted(pmd[(g, u)]))))
    return trace


def write_snapshot(pid: int, out: Path) -> tuple[Path, Trace]:
    trace = snapshot(pid)
    return write_trace(trace, out), trace
