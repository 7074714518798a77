"""trace_to_program: a trace file to an op program within max_ops, bisecting the time
cutoff when the whole trace would need more ops than that."""

from __future__ import annotations

import itertools
import math
import os
import re
import sys

from percpu.errors import UsageError
from percpu.trace.format import (
    MemMap,
    Switch,
    Trace,
    read_trace,
)
from percpu.trace.replay.builder import _Builder
from percpu.trace.replay.constants import DEFAULT_FREQ_MHZ, DEFAULT_MAX_OPS
from percpu.trace.replay.from_snapshot import snapshot_program

# ------------------------------------------------------------------ entry point


def _load(path: str | os.PathLike | Trace) -> tuple[Trace, str]:
    if isinstance(path, Trace):
        return path, "<trace>"
    return read_trace(path), str(path)


_LOSS = re.compile(r"^#\s+(?:dropped: (.*)|(.*(?:dropped|sampled|without a seen fork).*): "
                   r"(\d+))$")


def replay_losses(text: str) -> list[str]:
    """What a replay program's header says it dropped, sampled or had to invent."""
    out = []
    for line in text.splitlines()[1:]:  # after "percpu-ops 1", the header comments
        if not line.startswith("#"):
            if line.strip():
                break
            continue
        m = _LOSS.match(line)
        if m:
            out.append(m.group(1) or f"{m.group(2)}: {m.group(3)}")
    return out


def trace_to_program(path: str | os.PathLike | Trace, ncpus: int, *,
                     snapshot: str | os.PathLike | Trace | None = None,
                     max_ops: int = DEFAULT_MAX_OPS, timing: bool = True,
                     others: bool = True, warn: bool = True,
                     freq_mhz: float | None = None) -> str:
    """Op-program text (docs/traces.md) for the trace at PATH; with warn, every loss the
    header records (sampling, a cut, dropped events) is also a console warning. freq_mhz:
    the clock of the machine it is for (a run's machine.freq_mhz; None: the default)."""
    text = _trace_to_program(path, ncpus, snapshot=snapshot, max_ops=max_ops, timing=timing,
                             others=others, freq_mhz=freq_mhz)
    if warn:
        name = path if isinstance(path, str | os.PathLike) else "<trace>"
        for what in replay_losses(text):
            sys.stderr.write(f"percpu: warning: replay of {name}: {what}\n")
    return text


def _trace_to_program(path: str | os.PathLike | Trace, ncpus: int, *,
                      snapshot: str | os.PathLike | Trace | None = None,
                      max_ops: int = DEFAULT_MAX_OPS, timing: bool = True,
                      others: bool = True, freq_mhz: float | None = None) -> str:
    """Op-program text (docs/op-program.md) that replays the trace at PATH on NCPUS CPUs.

    snapshot: a `percpu trace snapshot` file whose VMAs (and populated pmd slots, touched
    first) shape the command's first address space. max_ops bounds the program: faults and
    lackey accesses are sampled first, then the trace is cut short; the header comments say
    what was dropped. timing=False leaves out the compute ops for measured run time;
    others=False leaves out other processes' runs between the command's.
    """
    if not 1 <= ncpus <= 256:
        raise UsageError(f"ncpus {ncpus} is out of range: use 1..256")
    if max_ops < 100:
        raise UsageError(f"max_ops {max_ops} is too small to replay anything: use >= 100")
    trace, source = _load(path)
    if any(b.t < a.t for a, b in itertools.pairwise(trace.events)):
        trace = Trace(meta=trace.meta, tasks=trace.tasks, vmas=trace.vmas, slots=trace.slots,
                      accesses=trace.accesses,
                      events=sorted(trace.events, key=lambda e: e.t))
    snap = None
    if snapshot is not None:
        snap, snap_source = _load(snapshot)
        if snap.kind != "snapshot":
            raise UsageError(f"{snap_source} is a {snap.kind} trace, not a snapshot: make one "
                             "with `percpu trace snapshot PID`")
    if trace.kind == "snapshot":
        return snapshot_program(trace, source, max_ops)
    if trace.kind != "run":
        raise UsageError(f"{source}: unknown trace kind '{trace.kind}' (expected run or "
                         "snapshot)")
    fault_every, access_every = 1, 1
    cutoff = _first_cutoff(trace, max_ops)
    hoist: dict[int, list[tuple[int, int]]] | None = None
    # The longest cutoff that fits, the shortest that does not (a first guess counts as one).
    fit_cut = None
    over_cut = int(trace.meta.get("duration_ns", 0)) + 1 if cutoff is not None else None
    best = ""
    for _ in range(16):
        b = _Builder(trace, ncpus, snapshot=snap, timing=timing, others=others,
                     fault_every=fault_every, access_every=access_every, cutoff=cutoff,
                     hoist=hoist or {}, source=source,
                     freq_mhz=DEFAULT_FREQ_MHZ if freq_mhz is None else float(freq_mhz))
        text = b.build()
        if hoist is None:
            # Second pass: the VMAs synthesised for each image exist from its start.
            hoist = dict(b.hoist_out)
            if hoist:
                continue
        if b.n_ops <= max_ops:
            if cutoff is None:
                return text
            best, fit_cut = text, cutoff
            if over_cut is None or b.n_ops >= 0.75 * max_ops or over_cut - fit_cut <= 1000:
                return text
            cutoff = (fit_cut + over_cut) // 2
            continue
        acc_ops = b.counts.get("accesses", 0)
        if cutoff is None and b.counts.get("access records", 0) and access_every < 1 << 20:
            access_every *= max(2, math.ceil(b.n_ops / max_ops))
            continue
        if cutoff is None and acc_ops > 0.3 * b.n_ops and fault_every < 1 << 20:
            over = b.n_ops - max_ops
            fault_every *= max(2, math.ceil(acc_ops / max(1, acc_ops - over, acc_ops // 10)))
            continue
        over_cut = cutoff if cutoff is not None else b.duration
        if fit_cut is None:
            cutoff = max(0, int(over_cut * max_ops / b.n_ops * 0.9))
            if cutoff == 0:
                break
        else:
            cutoff = (fit_cut + over_cut) // 2
    return best or text


def _first_cutoff(trace: Trace, max_ops: int) -> int | None:
    """For huge traces, a first guess at where to cut: about 4 ops per switch involving the
    command's tasks, 1 per fault and 2 per map syscall, at most 3 x max_ops of them."""
    traced = {t.tid for t in trace.tasks.values() if t.cls == "c"}
    est = 0
    for ev in trace.events:
        if isinstance(ev, Switch):
            est += 4 if ev.prev in traced or ev.next in traced else 0
        elif isinstance(ev, MemMap):
            est += 2
        else:
            est += 1
        if est > 3 * max_ops:
            return ev.t
    return None
