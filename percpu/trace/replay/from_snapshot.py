"""A snapshot (percpu trace snapshot) alone as an op program: its address space, touched."""

from __future__ import annotations

import bisect
import math
import os

from percpu.errors import UsageError
from percpu.trace.format import (
    Trace,
)
from percpu.trace.replay.constants import USER_TOP, _engine_prot, _perm_bits

# ------------------------------------------------------------------ snapshots alone


def snapshot_program(snap: Trace, source: str, max_ops: int) -> str:
    """A program with one process shaped like the snapshot: its VMAs, one touch per pmd."""
    pid = int(snap.meta.get("pid", 0))
    vmas = [v for v in snap.vmas if v.end <= USER_TOP and v.end > v.start]
    if not vmas:
        raise UsageError(f"{source}: the snapshot holds no user VMA")
    head = (f"# Shape of process {pid} ({snap.meta.get('comm', '?')}) from "
            f"{os.path.basename(source)}: its VMAs, and one load in each populated pmd slot "
            f"({snap.meta.get('slot_source', '?')})")
    out = ["percpu-ops 1", "", head, "", "mm snap"]
    names = []
    last_end = 0
    for i, v in enumerate(sorted(vmas, key=lambda v: v.start)):
        if v.start < last_end:
            continue
        names.append((f"s{i}", v.start, v.end))
        out.append(f"  vma s{i} {v.start:#x} {v.end - v.start:#x} "
                   f"{_engine_prot(_perm_bits(v.perms))}")
        last_end = v.end
    starts = [s for _, s, _ in names]
    ops = []
    for s in snap.slots:
        if s.level != "pmd" or len(s.prefix) != 2:
            continue
        g, u = s.prefix
        for mi in s.indices:
            base = (g << 39) | (u << 30) | (mi << 21)
            j = bisect.bisect_right(starts, base + (2 << 20) - 1) - 1
            while j >= 0 and names[j][2] > base:
                name, vs, _ = names[j]
                if vs < base + (2 << 20):
                    ops.append(f"load {name} {(max(base, vs) - vs):#x}")
                    break
                j -= 1
    dropped = 0
    if len(ops) > max_ops:
        step = math.ceil(len(ops) / max_ops)
        dropped = len(ops) - len(ops[::step])
        ops = ops[::step]
    out += ["", "task shape mm=snap cpus=0", "", "program shape"]
    if dropped:
        out.insert(3, f"# dropped: {dropped} pmd touches (max_ops)")
    out += [f"  {op}" for op in ops] or ["  compute 1"]
    return "\n".join(out) + "\n"
