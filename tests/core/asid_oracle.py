"""The engine's ASID event log through percpu.trace.linux_asid, an independent Python model
of Linux's cpu_tlbstate / choose_new_asid / switch_mm_irqs_off / flush_tlb_mm_range: what
the engine chose at each switch against what Linux would have, and root allocations by
cause against the model's new generations."""

from __future__ import annotations

from collections import Counter

from percpu import _core
from percpu.trace.linux_asid import LinuxAsidModel

KINDS = _core.ASID_EVENT_KINDS
ALLOCATING = {"percpu", "percpu-eager"}  # schemes that allocate a root per new generation


def check_events(events: list[tuple], *, ncpus: int, pcid: bool, scheme: str,
                 limit: int = 5, global_asids: bool = False,
                 max_asid: int = 2046) -> tuple[list[str], LinuxAsidModel]:
    """Replays the log's inputs through the model; returns (disagreements, model).
    global_asids: Linux 6.15's rules (machine.linux=6.15 with INVLPGB)."""
    model = LinuxAsidModel(pcid=pcid, global_asids=global_asids, max_asid_available=max_asid)
    for cpu in range(ncpus):  # booted before the log starts: init_mm is the first mm, ctx 1
        model.cpu_online(cpu, 1)
    problems: list[str] = []
    allocates = scheme in ALLOCATING
    for i, ev in enumerate(events):
        kind, cpu, ctx, gen, _pages, freed, trim, asid, flush, cause, alloc = ev
        k = KINDS[kind]
        if k == "cpuOnline":
            model.cpu_online(cpu, ctx)
        elif k == "cpuOffline":
            model.cpu_offline(cpu)
        elif k == "lazy":
            model.enter_lazy_tlb(cpu)
        elif k == "invalidateOther":
            model.set_invalidate_other(cpu)
        elif k == "considerGlobalAsid":
            # gen: jiffies, pages: current's pid; asid: the mm's global ASID after it.
            if (_pages & 0x1F) != (gen & 0x1F):
                problems.append(f"event {i}: consider_global_asid ran for pid {_pages} at "
                                f"jiffies {gen}, which the sample skips")
            if model.last_flush != (cpu, ctx, True):
                problems.append(f"event {i}: consider_global_asid of ctx {ctx} on cpu {cpu} "
                                f"follows no flush of it to other CPUs ({model.last_flush})")
            want_g = model.consider_global_asid(cpu, ctx)
            if want_g != asid:
                problems.append(f"event {i}: ctx {ctx}'s global ASID is {asid}, Linux "
                                f"{want_g}")
        elif k == "globalAsidFree":
            want_g = model.free_global_asid(ctx)
            if want_g != gen:
                problems.append(f"event {i}: ctx {ctx} freed global ASID {gen}, Linux "
                                f"{want_g}")
        elif k == "flush":
            if model.to_transition:
                problems.append(f"event {i}: CPUs {model.to_transition} got a flush IPI during "
                                "the global ASID transition but did not reload it")
                model.to_transition.clear()
            if model.to_init_mm:
                problems.append(f"event {i}: lazy CPUs {model.to_init_mm} got a freed-tables "
                                "flush but did not switch to init_mm")
                model.to_init_mm.clear()
            before = model.tlb_gen.get(ctx)
            if before is not None and before + 1 != gen:
                problems.append(f"event {i}: flush of ctx {ctx} makes tlb_gen {gen}, the "
                                f"model {before + 1}")
            model.flush_tlb_mm_range(cpu, ctx, freed_tables=freed, trim=trim, new_gen=gen)
        elif k == "switch":
            known = model.tlb_gen.get(ctx)
            if known is not None and known != gen:
                problems.append(f"event {i}: cpu {cpu} switches to ctx {ctx} at tlb_gen {gen}, "
                                f"the model has {known}")
            was_loaded = model.cpus[cpu].loaded == ctx
            want = model.switch_mm(cpu, ctx, gen)
            got = (asid, flush, cause)
            if (want.asid, want.need_flush, want.cause) != got:
                problems.append(f"event {i}: cpu {cpu} switch to ctx {ctx}: engine (asid, flush, "
                                f"cause) = {got}, Linux {(want.asid, want.need_flush, want.cause)}")
            want_alloc = allocates and (want.new_global_root
                                        or (want.need_flush and not was_loaded))
            if alloc != want_alloc:
                problems.append(f"event {i}: cpu {cpu} switch to ctx {ctx}: root allocated "
                                f"{alloc}, expected {want_alloc}")
        if len(problems) >= limit:
            break
    if model.to_init_mm:
        problems.append(f"at the end: lazy CPUs {model.to_init_mm} never switched to init_mm")
    if model.to_transition:
        problems.append(f"at the end: CPUs {model.to_transition} never reloaded the global ASID")
    return problems, model


def allocs_by_cause(stats: dict[str, float], ncpus: int) -> dict[int, Counter[str]]:
    """The engine's per-CPU root allocations by cause, from its stats."""
    out: dict[int, Counter[str]] = {}
    for cpu in range(ncpus):
        c: Counter[str] = Counter()
        for cause in _core.ROOT_ALLOC_CAUSES:
            n = stats.get(f"system.cpu{cpu}.percpu.rootAllocs::{cause}", 0)
            if n:
                c[cause] = int(n)
        out[cpu] = c
    return out
