"""The stats the report reads (candidates per host), the cycle groups and the proposal's bounds
(the bounds and cause names come from core/ through the binding)."""

from __future__ import annotations

from collections.abc import Sequence

from percpu.params import core

FORMATS = ("md", "html")
ASID_SLOTS = core().TLB_NR_DYN_ASIDS  # per-CPU dynamic ASIDs in x86 Linux
LAZY_FAULT_BOUND = core().LAZY_FAULT_BOUND  # per root generation (one per user pgd slot)


def root_pool_bound_bytes(cpus: int, pti: bool) -> int:
    """The proposal's root pool bound: 4 KiB x CPUs x 6, x2 with PTI (core/root/bounds.h)."""
    return int(core().root_pool_bound_bytes(int(cpus), bool(pti)))


# (label, cycles:: buckets) in the order the issue lists them; the rest follow.
CYCLE_GROUPS: list[tuple[str, tuple[str, ...]]] = [
    ("TLB-miss walks", ("walk",)),
    ("root copies", ("rootCopy",)),
    ("lazy faults", ("lazyFault",)),
    ("flushes + IPIs", ("flush", "ipi")),
    ("kmap", ("kmap",)),
    ("context switches", ("ctxSwitch",)),
    ("per-CPU data", ("percpuData",)),
    ("page faults", ("pageFault",)),
    ("syscalls", ("syscall",)),
    ("user", ("user",)),
    ("idle", ("idle",)),
    ("other", ("other",)),
]
ROOT_CAUSES = (*core().ROOT_ALLOC_CAUSES, "total")

# Where each host keeps a quantity: (component, stat) candidates, first found wins.
Candidates = Sequence[tuple[str, str]]
TIME = [("", "simTicks")]
CYCLES = [("", "numCycles")]
L1D_MISSES = [
    ("l1d", "misses"),
    ("l1d", "overallMisses::total"),
    ("dcache", "overallMisses::total"),
]
L2_MISSES = [("l2", "misses"), ("l2", "overallMisses::total"), ("l2cache", "overallMisses::total")]
LLC_MISSES = [("llc", "misses"), ("l3", "overallMisses::total")]
