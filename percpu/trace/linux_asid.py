"""An independent model of Linux's ASID and tlb_gen logic (arch/x86/mm/tlb.c: cpu_tlbstate,
choose_new_asid, switch_mm_irqs_off, flush_tlb_mm_range and flush_tlb_func), written from
shared/reference/linux-x86-mm.md and the kernel source, sharing no code with core/.

Two users:
- tests/core/test_asid_oracle.py feeds it the engine's ASID event log
  (`_core.run(..., record_asid_events=True)`: switches, lazy entries, flush requests,
  hotplug) and checks the engine's choice at every switch (asid, flush, cause, root
  allocated) and its root allocations by cause;
- `linux_count(trace)` runs a recorded trace's switches through it: how many mm switches
  and new (cpu, asid) generations Linux's 6-slot round-robin gives for them, to check a
  replay against (docs/traces.md, "Checking a replay").

Causes follow core's names (firstUse, evicted, flushedInactive, noPcid): first use of the mm
on this CPU, its slot went to another mm, its slot survived but the mm was flushed while
inactive, no PCID.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

TLB_NR_DYN_ASIDS = 6
FLUSH_CEILING = 33  # tlb_single_page_flush_ceiling


@dataclass
class CpuState:
    """cpu_tlbstate of one CPU."""

    loaded: int  # ctx_id of loaded_mm
    loaded_asid: int = 0
    next_asid: int = 1
    ctxs: list[list[int]] = field(default_factory=lambda: [[0, 0] for _ in range(6)])
    is_lazy: bool = True
    invalidate_other: bool = False
    online: bool = True


@dataclass
class Choice:
    asid: int
    need_flush: bool
    cause: str  # "none" when no new generation


class LinuxAsidModel:
    """cpu_tlbstate per CPU, tlb_gen and mm_cpumask per mm, as Linux keeps them."""

    def __init__(self, pcid: bool = True, nr_asids: int = TLB_NR_DYN_ASIDS):
        self.pcid = pcid
        self.nr_asids = nr_asids
        self.cpus: dict[int, CpuState] = {}
        self.tlb_gen: dict[int, int] = {}
        self.cpumask: dict[int, set[int]] = defaultdict(set)
        self.seen: set[tuple[int, int]] = set()  # (cpu, ctx) that ever had a slot there
        self.init_ctx = 1
        self.mm_switches = 0
        self.new_generations: Counter[str] = Counter()
        self.per_cpu: dict[int, Counter[str]] = defaultdict(Counter)
        self.to_init_mm: list[int] = []  # lazy IPI receivers that must switch to init_mm

    # ---------------------------------------------------------------- CPUs

    def cpu_online(self, cpu: int, init_ctx: int = 1) -> None:
        """A CPU comes up in init_mm (slot 0, next_asid 1), idle and lazy."""
        self.init_ctx = init_ctx
        st = CpuState(loaded=init_ctx)
        st.ctxs[0] = [init_ctx, self.tlb_gen.get(init_ctx, 0)]
        self.cpus[cpu] = st
        self.cpumask[init_ctx].add(cpu)
        self.seen.add((cpu, init_ctx))  # init_mm holds slot 0: losing it is an eviction

    def cpu_offline(self, cpu: int) -> None:
        self.cpus[cpu].online = False
        for mask in self.cpumask.values():
            mask.discard(cpu)

    def enter_lazy_tlb(self, cpu: int) -> None:
        self.cpus[cpu].is_lazy = True

    def set_invalidate_other(self, cpu: int) -> None:
        self.cpus[cpu].invalidate_other = True

    def gen(self, ctx: int, known: int | None = None) -> int:
        """The mm's tlb_gen; the first sighting of an mm may say where it starts."""
        if ctx not in self.tlb_gen:
            self.tlb_gen[ctx] = known if known is not None else 1
        return self.tlb_gen[ctx]

    # ---------------------------------------------------------------- switch_mm

    def choose_new_asid(self, st: CpuState, ctx: int, next_gen: int) -> tuple[int, bool, bool]:
        """(asid, need_flush, the mm's slot was still there)."""
        if not self.pcid:
            return 0, True, False
        if st.invalidate_other:
            for a in range(self.nr_asids):
                if a != st.loaded_asid:
                    st.ctxs[a][0] = 0
            st.invalidate_other = False
        for a in range(self.nr_asids):
            if st.ctxs[a][0] == ctx:
                return a, st.ctxs[a][1] < next_gen, True
        asid = st.next_asid
        st.next_asid += 1
        if asid >= self.nr_asids:
            asid, st.next_asid = 0, 1
        return asid, True, False

    def switch_mm(self, cpu: int, ctx: int, gen: int | None = None) -> Choice:
        """switch_mm_irqs_off(loaded, ctx) on CPU. gen: the mm's tlb_gen if first seen."""
        st = self.cpus[cpu]
        next_gen = self.gen(ctx, gen)
        if cpu in self.to_init_mm and ctx == self.init_ctx:
            self.to_init_mm.remove(cpu)
        if st.loaded == ctx:
            if not st.is_lazy:
                return Choice(st.loaded_asid, False, "none")
            st.is_lazy = False
            slot = st.ctxs[st.loaded_asid]
            if slot[0] == ctx and slot[1] < next_gen:
                slot[1] = next_gen
                return Choice(st.loaded_asid, True, "none")
            return Choice(st.loaded_asid, False, "none")
        st.is_lazy = False
        self.cpumask[ctx].add(cpu)
        had = (cpu, ctx) in self.seen
        asid, need_flush, kept = self.choose_new_asid(st, ctx, next_gen)
        self.seen.add((cpu, ctx))
        if not need_flush:
            cause = "none"
        elif not self.pcid:
            cause = "noPcid"
        elif kept:
            cause = "flushedInactive"
        else:
            cause = "evicted" if had else "firstUse"
        if need_flush:
            st.ctxs[asid] = [ctx, next_gen]
            self.new_generations[cause] += 1
            self.per_cpu[cpu][cause] += 1
        st.loaded_asid = asid
        st.loaded = ctx
        self.mm_switches += 1
        return Choice(asid, need_flush, cause)

    # ---------------------------------------------------------------- flushes

    def _flush_func(self, cpu: int, ctx: int, new_gen: int, local: bool) -> None:
        st = self.cpus[cpu]
        if not local:
            if st.loaded != ctx:
                self.cpumask[ctx].discard(cpu)
                return
            if st.is_lazy:
                self.to_init_mm.append(cpu)  # switch_mm_irqs_off(NULL, &init_mm)
                return
        slot = st.ctxs[st.loaded_asid]
        if new_gen <= slot[1]:
            return
        slot[1] = self.tlb_gen[ctx]

    def flush_tlb_mm_range(self, cpu: int, ctx: int, freed_tables: bool = False,
                           trim: bool = False, new_gen: int | None = None) -> None:
        """A flush request from CPU: a new tlb_gen, then flush_tlb_func here and on the
        CPUs in mm_cpumask that should_flush_tlb picks (all of them when tables were freed,
        those that left the mm only when trimming the cpumask)."""
        gen = self.gen(ctx, None if new_gen is None else new_gen - 1) + 1
        self.tlb_gen[ctx] = gen
        me = self.cpus[cpu]
        if me.loaded == ctx and not me.is_lazy:
            self._flush_func(cpu, ctx, gen, True)
        for other in sorted(self.cpumask[ctx]):
            o = self.cpus.get(other)
            if other == cpu or o is None or not o.online:
                continue
            if not freed_tables and o.is_lazy:
                continue
            if not freed_tables and o.loaded != ctx and not trim:
                continue
            self._flush_func(other, ctx, gen, False)


def linux_count(trace, *, pcid: bool = True) -> dict[str, int]:
    """Linux's ASID logic over a recorded trace's own switches (not the replay's): each
    process image is one mm (an exec makes a new one), kernel threads, idle and the
    recorder leave the mm loaded (lazy TLB), munmap and mprotect of the traced command flush
    their mm. Returns mm switches and new (cpu, asid) generations by cause."""
    from percpu.trace.format import Exec, MemMap, Switch

    model = LinuxAsidModel(pcid=pcid)
    for cpu in sorted({ev.cpu for ev in trace.events if isinstance(ev, Switch)}):
        model.cpu_online(cpu, 1)
    ctx_of: dict[int, int] = {}
    next_ctx = [2]

    def ctx(pid: int) -> int:
        if pid not in ctx_of:
            ctx_of[pid] = next_ctx[0]
            next_ctx[0] += 1
        return ctx_of[pid]

    running: dict[int, int] = {}  # cpu -> tid
    for ev in sorted(trace.events, key=lambda e: e.t):
        if isinstance(ev, Switch):
            if ev.cpu not in model.cpus:
                model.cpu_online(ev.cpu, 1)
            running[ev.cpu] = ev.next
            task = trace.tasks.get(ev.next)
            if task is None or task.cls in ("k", "i", "r"):
                model.enter_lazy_tlb(ev.cpu)
            else:
                model.switch_mm(ev.cpu, ctx(task.pid))
        elif isinstance(ev, Exec):
            task = trace.tasks.get(ev.tid)
            if task is None or ev.t == 0:
                continue
            ctx_of.pop(task.pid, None)
            if ev.cpu in model.cpus and running.get(ev.cpu) == ev.tid:
                model.switch_mm(ev.cpu, ctx(task.pid))
        elif isinstance(ev, MemMap) and ev.op in ("munmap", "mprotect"):
            task = trace.tasks.get(ev.tid)
            if task is not None and ev.cpu in model.cpus:
                model.flush_tlb_mm_range(ev.cpu, ctx(task.pid), freed_tables=ev.op == "munmap")
    gens = dict(model.new_generations)
    return {"mm_switches": model.mm_switches, "new_generations": sum(gens.values()), **gens}
