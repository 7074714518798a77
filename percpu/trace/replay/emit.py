"""Emission: the op program's text, one task per actor, compute for measured run times."""

from __future__ import annotations

import os

from percpu.trace.replay.constants import (
    ACCESS_WORD,
    COMPUTE_MIN_NS,
    COMPUTE_SPLIT_NS,
    _engine_prot,
    _page_down,
    _page_up,
)
from percpu.trace.replay.records import Run


def _subtract(s: int, e: int, busy: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    cur = s
    for a, b in busy:
        if b <= cur or a >= e:
            continue
        if a > cur:
            out.append((cur, a))
        cur = max(cur, b)
    if cur < e:
        out.append((cur, e))
    return [(_page_down(a), _page_up(b)) for a, b in out if _page_up(b) > _page_down(a)]


class _EmitMixin:
    """Part of _Builder (builder.py): the emit methods; state lives on the builder."""
    # ---------------------------------------------------------- text

    def _run_ops(self, r: Run) -> list[str]:
        out: list[str] = []
        for ch in r.head:
            out.append(f"wait {ch}")
        if r.sleep_ns:
            out.append(f"sleep {self.cycles(r.sleep_ns)}")
        pending: list = []  # access ops being merged into count/stride runs
        last_t = r.start
        compute_ns = 0

        def flush() -> None:
            if pending:
                kind, name, off, count, stride = pending
                word = ACCESS_WORD[kind]
                if count > 1:
                    out.append(f"{word} {name} {off:#x} count={count} stride={stride}")
                else:
                    out.append(f"{word} {name} {off:#x}")
                pending.clear()

        def add_compute(ns: int) -> None:
            if self.timing and ns >= COMPUTE_MIN_NS:
                flush()
                out.append(f"compute {self.cycles(ns)}")

        for slot in r.slots:
            compute_ns += slot.t - last_t
            last_t = slot.t
            if compute_ns >= COMPUTE_SPLIT_NS and (slot.ops or slot.pre):
                add_compute(compute_ns)
                compute_ns = 0
            if slot.pre:
                flush()
                out.extend(f"wait {ch}" for ch in slot.pre)
            for op in slot.ops:
                if op[0] == "acc":
                    _, kind, name, off, count, stride = op
                    if pending and count == 1 and pending[0] == kind and pending[1] == name:
                        _, _, poff, pcount, pstride = pending
                        if pcount == 1 and off > poff:
                            pending[3], pending[4] = 2, off - poff
                            continue
                        if pcount > 1 and off == poff + pcount * pstride:
                            pending[3] += 1
                            continue
                    flush()
                    pending.extend([kind, name, off, count, stride])
                    continue
                flush()
                out.append(self._op_text(op))
            if slot.post:
                flush()
                out.extend(f"signal {ch}" for ch in slot.post)
        flush()
        compute_ns += r.end - last_t
        if r.tid < 0:
            out.append("load fx")
        add_compute(compute_ns)
        for a in self.handoff.get(r.idx, []):
            out.append(f"spawn {a.name}")
        for op in r.tail:
            out.append(self._op_text(op))
        return out

    def cycles(self, ns: int) -> int:
        return max(1, round(ns * self.freq_mhz / 1000.0))

    @staticmethod
    def _op_text(op: tuple) -> str:
        kind = op[0]
        if kind == "mmap":
            _, name, start, size, prot = op
            return f"mmap {name} {start:#x} {size:#x} {prot}"
        if kind == "munmap":
            _, name, off, length = op
            return f"munmap {name}" if off is None else f"munmap {name} {off:#x} {length:#x}"
        if kind == "mprotect":
            _, name, off, length, prot = op
            return f"mprotect {name} {off:#x} {length:#x} {prot}"
        return " ".join(str(x) for x in op)

    def _text(self) -> str:
        tr = self.trace
        bodies: dict[str, list[str]] = {}
        n_ops = 0
        for a in self.actors:
            lines: list[str] = []
            for r in a.runs:
                lines.extend(self._run_ops(r))
            bodies[a.name] = lines
            n_ops += len(lines)
        self.n_ops = n_ops
        # A task whose first run begins with a wait (for the run before it on its CPU, or
        # for its thread's previous run elsewhere) did not run before that wait ended:
        # it is spawned already blocked on it, not switched in only to block.
        waiting = {name for name, body in bodies.items() if body and body[0].startswith("wait ")}
        for body in bodies.values():
            for i, line in enumerate(body):
                if line.startswith("spawn ") and line.split()[1] in waiting:
                    body[i] = f"{line} waiting"
                    self.counts["spawned waiting"] += 1
        out = ["percpu-ops 1", ""]
        out.append(f"# Replay of {os.path.basename(self.source)} (percpu trace replay, "
                   "docs/traces.md)")
        command = tr.meta.get("command", "?").replace("\\", "\\\\").replace("\n", "\\n")
        out.append(f"# command: {command[:300]}")
        out.append(f"# recorded on {tr.meta.get('host_cpus', '?')} CPUs, kernel "
                   f"{tr.meta.get('kernel', '?')}; sources: {tr.meta.get('sources', '?')}")
        out.append(f"# replayed on {self.ncpus} CPUs (recorded CPU c runs on c mod "
                   f"{self.ncpus}); {len(self.actors)} tasks; {n_ops} ops")
        for key in sorted(self.counts):
            if self.counts[key]:
                out.append(f"#   {key}: {self.counts[key]}")
        if self.cutoff is not None:
            out.append(f"# dropped: everything after {self.cutoff} ns of the "
                       f"{tr.meta.get('duration_ns', '?')} ns trace (max_ops)")
        if self.fault_every > 1:
            out.append(f"# dropped: faults sampled, every {self.fault_every}th kept beyond the "
                       "first in each 2 MiB region (max_ops)")
        for note in self.notes:
            out.append(f"# dropped: {note}")
        out.append("# approximations: idle time between different tasks on a CPU is not "
                   "replayed; runs hand over with wait/signal (syscall costs the real switch "
                   "may not have had); compute stands for measured run time")
        out.append("")
        declared = {a.mm_decl for a in self.actors}
        for ep in self.epochs:
            if ep.mode == "fork" or (ep.name not in declared and ep.mode != "exec"):
                continue
            if ep.mode == "exec" and ep.eid not in self.templates:
                continue
            out.append(f"mm {ep.name}")
            for name, s, e, prot in self.templates.get(ep.eid, []):
                out.append(f"  vma {name} {s:#x} {e - s:#x} {_engine_prot(prot)}")
        for a in self.foreign_actors:
            out.append(f"mm {a.mm_decl}")
            out.append("  vma fx 0x10000000 0x1000 rw")
        out.append("")
        for a in self.actors:
            start = "yes" if a.how == "start" else "no"
            out.append(f"task {a.name} mm={a.mm_decl} cpus={a.ecpu} start={start}")
        out.append("")
        for a in self.actors:
            out.append(f"program {a.name}")
            out.extend(f"  {line}" for line in bodies[a.name])
        return "\n".join(out) + "\n"
