"""An independent model of Linux's ASID and tlb_gen logic (arch/x86/mm/tlb.c: cpu_tlbstate,
choose_new_asid, switch_mm_irqs_off, flush_tlb_mm_range and flush_tlb_func), written from
docs/references.md ("Linux's TLB and ASID rules") and the kernel source, sharing no code with core/.

Two users:
- tests/core/test_asid_oracle.py feeds it the engine's ASID event log
  (`_core.run(..., record_asid_events=True)`: switches, lazy entries, flush requests,
  hotplug) and checks the engine's choice at every switch (asid, flush, cause, root
  allocated) and its root allocations by cause;
- `linux_count(trace)` runs a recorded trace's switches through it: how many mm switches
  and new (cpu, asid) generations Linux's 6-slot round-robin gives for them, to check a
  replay against (docs/traces.md, "Checking a replay").

With `global_asids=True` it follows Linux 6.15's rules as well (Rik van Riel's "AMD
broadcast TLB invalidation", docs/linux-2025.md): an mm that consider_global_asid finds
running on more than 3 CPUs gets an ASID from the global space (handed out from
TLB_NR_DYN_ASIDS up, reset when the search reaches MAX_ASID_AVAILABLE - 1, freed ASIDs
reusable only after a reset); switching to it never flushes; its flushes are broadcast
(no flush_tlb_func anywhere) and, while some CPU still runs it under a dynamic ASID,
followed by the ordinary IPIs, whose handler moves that CPU to the global ASID.

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
    new_global_root: bool = False  # 6.15: first use of (cpu, global asid) by this mm


class LinuxAsidModel:
    """cpu_tlbstate per CPU, tlb_gen and mm_cpumask per mm, as Linux keeps them."""

    def __init__(self, pcid: bool = True, nr_asids: int = TLB_NR_DYN_ASIDS,
                 global_asids: bool = False, max_asid_available: int = 2046):
        self.pcid = pcid
        self.nr_asids = nr_asids
        # Linux 6.15's global ASID space (only with PCID, as choose_new_asid has it).
        self.global_asids = global_asids and pcid
        self.max_asid = max_asid_available
        self.global_of: dict[int, int] = {}  # ctx -> its global ASID
        self.in_transition: set[int] = set()
        self.used: set[int] = set()
        self.freed: set[int] = set()
        self.last_global = max_asid_available
        self.available = max_asid_available - nr_asids - 1
        self.resets = 0
        self.assigned = 0
        self.rooted: dict[tuple[int, int], int] = {}  # (cpu, global asid) -> ctx of its root
        self.to_transition: list[int] = []  # IPI receivers that must reload the global ASID
        self.last_flush: tuple[int, int, bool] | None = None  # (cpu, ctx, went to others)
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

    def _needs_global(self, ctx: int, asid: int) -> bool:
        return self.global_asids and ctx in self.global_of and asid != self.global_of[ctx]

    def _load_global(self, cpu: int, st: CpuState, ctx: int) -> Choice:
        g = self.global_of[ctx]
        new = self.rooted.get((cpu, g)) != ctx
        self.rooted[(cpu, g)] = ctx
        if new:
            self.per_cpu[cpu]["firstUse"] += 1
        st.loaded_asid = g
        return Choice(g, False, "none", new)

    def switch_mm(self, cpu: int, ctx: int, gen: int | None = None) -> Choice:
        """switch_mm_irqs_off(loaded, ctx) on CPU. gen: the mm's tlb_gen if first seen."""
        st = self.cpus[cpu]
        next_gen = self.gen(ctx, gen)
        if cpu in self.to_init_mm and ctx == self.init_ctx:
            self.to_init_mm.remove(cpu)
        if st.loaded == ctx and self._needs_global(ctx, st.loaded_asid):
            if cpu in self.to_transition:
                self.to_transition.remove(cpu)
            st.is_lazy = False
            return self._load_global(cpu, st, ctx)
        if st.loaded == ctx and st.loaded_asid >= self.nr_asids:
            st.is_lazy = False  # a global ASID is always up to date
            return Choice(st.loaded_asid, False, "none")
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
        if self.global_asids and ctx in self.global_of:
            self.seen.add((cpu, ctx))
            st.loaded = ctx
            self.mm_switches += 1
            return self._load_global(cpu, st, ctx)
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
        if self._needs_global(ctx, st.loaded_asid):
            self.to_transition.append(cpu)  # switch_mm_irqs_off(NULL, loaded_mm)
            return
        if st.loaded_asid >= self.nr_asids:
            return  # broadcast ASIDs are always kept up to date
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
        if self.global_asids and ctx in self.global_of:
            # broadcast_tlb_flush: INVLPGB everywhere, no handler; finish_asid_transition.
            self.last_flush = (cpu, ctx, False)
            if ctx in self.in_transition:
                g = self.global_of[ctx]
                for other in sorted(self.cpumask[ctx]):
                    o = self.cpus.get(other)
                    if o is not None and o.loaded == ctx and o.loaded_asid != g:
                        self._multi(cpu, ctx, gen, freed_tables, False)
                        return
                self.in_transition.discard(ctx)
            return
        others = bool(self.cpumask[ctx] - {cpu})
        self._multi(cpu, ctx, gen, freed_tables, trim)
        self.last_flush = (cpu, ctx, others)

    def _multi(self, cpu: int, ctx: int, gen: int, freed_tables: bool, trim: bool) -> None:
        """flush_tlb_multi: flush_tlb_func here and on the CPUs should_flush_tlb picks."""
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

    # ---------------------------------------------------------------- 6.15: global ASIDs

    def active_cpus_exceeds(self, ctx: int, threshold: int) -> bool:
        """mm_active_cpus_exceeds: CPUs running ctx now, not lazily, above threshold."""
        running = [c for c in self.cpumask[ctx]
                   if (st := self.cpus.get(c)) is not None and st.online and st.loaded == ctx
                   and not st.is_lazy]
        return len(running) > threshold

    def _allocate_global(self) -> int:
        if self.last_global >= self.max_asid - 1:  # reset_global_asid_space
            self.used -= self.freed
            self.freed.clear()
            self.last_global = self.nr_asids
            self.resets += 1
        free = [a for a in range(self.last_global, self.max_asid) if a not in self.used]
        if not free:
            return 0
        self.used.add(free[0])
        self.last_global = free[0]
        self.available -= 1
        return free[0]

    def consider_global_asid(self, cpu: int, ctx: int) -> int:
        """consider_global_asid after the sample passed on cpu: use_global_asid when ctx
        runs on 4 or more CPUs. Returns ctx's global ASID after it (0: none)."""
        if (self.global_asids and ctx not in self.global_of and self.available > 0
                and self.active_cpus_exceeds(ctx, 3)):
            g = self._allocate_global()
            if g:
                self.global_of[ctx] = g
                self.in_transition.add(ctx)
                self.assigned += 1
        return self.global_of.get(ctx, 0)

    def free_global_asid(self, ctx: int) -> int:
        """mm_free_global_asid at the mm's end; returns the ASID freed (0: none)."""
        g = self.global_of.pop(ctx, 0)
        if g:
            self.freed.add(g)
            self.available += 1
            self.in_transition.discard(ctx)
        return g


def ring_steady_state(first: list[int], ring: list[int], *, nr_asids: int = TLB_NR_DYN_ASIDS,
                      init_ctx: int = 1) -> float:
    """New (cpu, asid) generations per mm switch that one CPU settles at when it switches
    to the mms of `first` in that order (from boot: init_ctx in slot 0, next_asid 1), then
    round the ring `ring` (starting at ring[0]) forever; no flushes.

    choose_new_asid hands a missing mm the slot next_asid points at and moves next_asid
    only then, so for a ring of more mms than slots the slots and next_asid run into a
    cycle whose rate depends on the state the first switches left: for 8 mms over 6
    slots, 1 (every switch), 1/2 or 1/3 (docs/gem5.md, "Past the cliff")."""
    model = LinuxAsidModel(pcid=True, nr_asids=nr_asids)
    model.cpu_online(0, init_ctx)
    last = None
    for ctx in first:
        if ctx != last:
            model.switch_mm(0, ctx, 1)
            last = ctx
    st = model.cpus[0]
    seen: dict[tuple, int] = {}
    allocs: list[int] = []
    pos = 0
    while True:
        key = (tuple(c for c, _ in st.ctxs), st.next_asid, pos, last)
        if key in seen:
            cycle = allocs[seen[key]:]
            return sum(cycle) / len(cycle)
        seen[key] = len(allocs)
        ctx = ring[pos]
        pos = (pos + 1) % len(ring)
        if ctx == last:
            allocs.append(0)
            continue
        choice = model.switch_mm(0, ctx, 1)
        last = ctx
        allocs.append(1 if choice.need_flush else 0)


def linux_count(trace, *, pcid: bool = True) -> dict[str, int]:
    """Linux's ASID logic over a recorded trace's own switches (not the replay's).

    Each process image is one mm (an exec makes a new one); other users' processes have one
    mm each; kernel threads, idle and the recorder leave the mm loaded (lazy TLB). Besides
    the switches, what changes a CPU's loaded mm or an mm's tlb_gen:
    - fork (dup_mmap) flushes the parent's mm with flush_tlb_mm (freed_tables): lazy CPUs
      still holding it switch to init_mm, the others' slots are stale from then on;
    - exec switches the task to its new mm (exec_mmap: activate_mm) and drops the old one;
    - the last thread's exit (or the exec) drops an mm: exit_mmap's freed-tables flush
      makes every CPU that still has it loaded (lazily, the exiting CPU too) switch to
      init_mm;
    - munmap and mprotect of the traced command flush their mm.
    Returns mm switches and new (cpu, asid) generations by cause."""
    from percpu.trace.format import Exec, Exit, Fork, MemMap, Switch

    model = LinuxAsidModel(pcid=pcid)
    model.tlb_gen[1] = 0  # init_mm: never flushed, its slot 0 is current on every CPU
    for cpu in sorted({ev.cpu for ev in trace.events if isinstance(ev, Switch)}):
        model.cpu_online(cpu, 1)
    ctx_of: dict[int, int] = {}  # pid -> ctx of its current image
    next_ctx = [2]
    users: dict[int, set[int]] = defaultdict(set)  # ctx -> live tids in it

    def pid_of(tid: int) -> int:
        task = trace.tasks.get(tid)
        return task.pid if task is not None else tid

    def user(tid: int) -> bool:
        task = trace.tasks.get(tid)
        return task is not None and task.cls in ("c", "u")

    def ctx(pid: int) -> int:
        if pid not in ctx_of:
            ctx_of[pid] = next_ctx[0]
            next_ctx[0] += 1
        return ctx_of[pid]

    def online(cpu: int) -> None:
        if cpu not in model.cpus:
            model.cpu_online(cpu, 1)

    def to_init_mm() -> None:
        """flush_tlb_func on a lazy CPU: switch_mm_irqs_off(NULL, &init_mm)."""
        for cpu in list(model.to_init_mm):
            model.switch_mm(cpu, model.init_ctx)
            model.enter_lazy_tlb(cpu)
        model.to_init_mm.clear()

    def exit_mmap(cpu: int, c: int) -> None:
        """The mm's last user is gone: unmap everything, free the tables, flush."""
        model.flush_tlb_mm_range(cpu, c, freed_tables=True)
        model.to_init_mm.clear()
        for other in sorted(model.cpus):
            if model.cpus[other].loaded == c:  # lazily: nobody runs in it any more
                model.switch_mm(other, model.init_ctx)
                model.enter_lazy_tlb(other)

    for ev in sorted(trace.events, key=lambda e: e.t):
        if isinstance(ev, Switch):
            online(ev.cpu)
            if user(ev.next):
                c = ctx(pid_of(ev.next))
                users[c].add(ev.next)
                model.switch_mm(ev.cpu, c)
            else:
                model.enter_lazy_tlb(ev.cpu)
        elif isinstance(ev, Fork):
            if not user(ev.tid):
                continue
            online(ev.cpu)
            parent = ctx(pid_of(ev.tid))
            users[parent].add(ev.tid)
            if pid_of(ev.child) == pid_of(ev.tid):  # a thread: the same mm
                users[parent].add(ev.child)
                continue
            model.flush_tlb_mm_range(ev.cpu, parent, freed_tables=True)  # dup_mmap
            to_init_mm()
            users[ctx(pid_of(ev.child))].add(ev.child)
        elif isinstance(ev, Exec):
            if not user(ev.tid) or ev.t == 0:
                continue  # t=0: the command's own exec, where the trace starts
            online(ev.cpu)
            pid = pid_of(ev.tid)
            old = ctx(pid)
            ctx_of.pop(pid)
            new = ctx(pid)
            users[new].add(ev.tid)
            users.pop(old, None)  # de_thread: the other threads are gone
            model.switch_mm(ev.cpu, new)
            exit_mmap(ev.cpu, old)
        elif isinstance(ev, Exit):
            if not user(ev.tid):
                continue
            online(ev.cpu)
            c = ctx(pid_of(ev.tid))
            live = users[c]
            live.discard(ev.tid)
            if not live:
                exit_mmap(ev.cpu, c)
                ctx_of.pop(pid_of(ev.tid), None)
                users.pop(c, None)
        elif isinstance(ev, MemMap) and ev.op in ("munmap", "mprotect") and user(ev.tid):
            online(ev.cpu)
            model.flush_tlb_mm_range(ev.cpu, ctx(pid_of(ev.tid)), freed_tables=ev.op == "munmap")
            to_init_mm()
    gens = dict(model.new_generations)
    return {"mm_switches": model.mm_switches, "new_generations": sum(gens.values()), **gens}
