"""The whole calibration: machine, build, measurements, clock, fit, proxies, profile."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from percpu.calibrate import fit as fitting
from percpu.calibrate.benches import Bench, benches
from percpu.calibrate.build import build_programs
from percpu.calibrate.clock import Clock, clock_from, fixed_clock
from percpu.calibrate.kernel_roots import (
    baseline_console,
    kernel_roots_notes,
    parse_kernel_roots,
)
from percpu.calibrate.machine import Machine, describe_machine, machine_from_info
from percpu.calibrate.measure import Measurement, measure, measurements_from_text
from percpu.calibrate.programs import FIT_KEYS, rows
from percpu.errors import UsageError

# What no user-space program can measure, and why; the profile leaves these alone.
NOT_MEASURED = {
    "cost.cr3_flush": "a CR3 write is privileged; the cited figure stays",
    "cost.cr3_noflush": "a CR3 write is privileged; the estimate stays (the rest of an mm "
                        "switch is cost.switch_mm, fitted)",
    "cost.invlpg": "INVLPG is privileged; the cited figure stays",
    "cost.pte_write": "one store inside the kernel; no user-space figure isolates it",
    "cost.flush_ipi_send_per_cpu": "needs flushes to several remote CPUs; this calibration "
                                   "has one target (see the sensitivity analysis)",
    "cost.flush_full_extra": "a full flush differs from a one-page flush by the CR3 reload; "
                             "the cited figure stays",
    "cost.kmap_local": "x86-64 has no HIGHMEM: kmap_local is page_address() (sensitivity)",
    "cost.kmap": "x86-64 has no HIGHMEM pkmap pool to time (sensitivity)",
    "cost.gs_prefix": "not measured (sensitivity)",
    "cost.clone_thread": "the engine charges a thread's exit as a process's (cost.exit), so "
                         "thread_create_join (in [profile]) cannot split it off (sensitivity)",
    "psc.top.entries": "paging-structure-cache sizes are not architectural (sensitivity)",
    "psc.upper.entries": "paging-structure-cache sizes are not architectural (sensitivity)",
    "psc.pde.entries": "paging-structure-cache sizes are not architectural (sensitivity)",
}
# What a lazy fault adds to a touch, measured against a kernel without roots: the first
# is the one that needs no ASID to be taken from the mm (calib_fault --bench lazy).
TOUCHES = ("slot_touch", "lazy_touch")
# Entries the fit determines, and which rows carry them (for the profile's comments).
CARRIERS = {
    "cost.syscall": "syscall, yield_*, pipe_*",
    "cost.ctx_switch": "yield_thread, pipe_thread, exit_to_wait",
    "cost.switch_mm": "yield_proc - yield_thread, pipe_proc - pipe_thread (the whole mm "
                      "switch beyond a thread switch and the CR3 write: paid on flushing "
                      "switches too)",
    "cost.wakeup": "pipe_*, exit_to_wait",
    "cost.page_fault": "fault_read (zero page), fault_write",
    "cost.zero_page": "fault_write - fault_read: zeroing and allocating the page",
    "cost.fork": "fork_exit",
    "cost.exec": "fork_exec_exit",
    "cost.exit": "exit_to_wait, fork_exit (a process's exit)",
    "cost.flush_ipi_send": "mprotect_remote - mprotect_local",
    "cost.ipi_receive": "ipi_lost (time the remote CPU lost per flush)",
    "cache.l1d.latency": "chase_* (L1D-sized buffer)",
    "cache.l2.latency": "chase_* (L2-sized buffer)",
    "cache.llc.latency": "chase_* (LLC-sized buffer)",
    "cache.dram.latency": "chase_* (4x LLC, TLB misses included as the engine models them)",
}
BOOTSTRAP = 200


@dataclass
class Entry:
    key: str
    value: float
    how: str                    # fitted | proxy | sysfs | measured
    note: str
    spread: float | None = None  # relative IQR


@dataclass
class Calibration:
    machine: Machine
    clock: Clock
    measurements: dict[str, Measurement]
    cycles: dict[str, tuple[float, float]]       # name -> (cycles, relative spread)
    fit: fitting.FitResult | None
    entries: list[Entry]
    not_measured: list[tuple[str, str]]
    seconds: float
    command: str
    static: bool
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    notes: list[str] = field(default_factory=list)
    # name -> (measured cycles, engine cycles, what): figures compared, not fitted
    checks: dict[str, tuple[float, float, str]] = field(default_factory=dict)
    realtime: bool = False

    def overrides(self) -> dict[str, float]:
        return {e.key: e.value for e in self.entries}


def geometry(machine: Machine) -> list[Entry]:
    """Cache sizes and associativity as the kernel reports them (sysfs)."""
    out = []
    for level, prefix in (("L1D", "cache.l1d"), ("L2", "cache.l2"), ("LLC", "cache.llc")):
        kib, ways = machine.cache_kib(level), machine.cache_ways(level)
        where = ("/sys/devices/system/cpu/cpu0/cache" if machine.source == "sysfs"
                 else machine.source) + f" ({level})"
        how = "sysfs" if machine.source == "sysfs" else "reported"
        if kib:
            out.append(Entry(f"{prefix}.size_kib", float(kib), how, where))
        if ways:
            out.append(Entry(f"{prefix}.ways", float(ways), how, where))
    return out


def _select(machine: Machine, quick: bool, only: list[str] | None) -> list[Bench]:
    every = benches(machine, quick)
    if not only:
        return every
    known = {b.key: b for b in every}
    unknown = [k for k in only if k not in known]
    if unknown:
        raise UsageError(f"--only: unknown benchmark '{unknown[0]}': choose from "
                         f"{', '.join(known)}")
    chosen = [known[k] for k in only]
    if "clock" not in only:
        chosen.insert(0, known["clock"])
    return chosen


def _cycles(meas: dict[str, Measurement], clock: Clock) -> dict[str, tuple[float, float]]:
    return {name: (clock.cycles(m.value), m.spread) for name, m in meas.items()
            if m.unit == "ns"}


def _proxies(cyc: dict[str, tuple[float, float]], values: dict[str, float],
             machine: Machine) -> list[Entry]:
    """cost.lazy_fault and cost.root_alloc where no kernel with per-CPU roots ran:
    the nearest figures user space can time on a stock kernel."""
    out = []
    if "fault_read" in cyc:
        # The leanest fault user space can cause that installs an entry for a page that
        # exists (the zero page): exception entry and exit, the VMA lookup and one PTE.
        # A lazy top-level fault needs no VMA lookup, so this is an upper bound.
        read, sp = cyc["fault_read"]
        pti = 2 * values["cost.cr3_noflush"] if machine.pti == "on" else 0.0
        lazy = max(0.0, read - values["cost.pte_write"] - values["cache.l1d.latency"] - pti)
        out.append(Entry("cost.lazy_fault", float(round(lazy)), "proxy",
                         "upper bound: a read fault that maps the existing zero page "
                         "(fault_read) minus the entry write and read the engine adds; a "
                         "page-cache minor fault (fault_minor) is heavier still", sp))
    if all(k in cyc for k in ("fault_write", "fault_read", "zero_page")):
        write, read, zero = cyc["fault_write"][0], cyc["fault_read"][0], cyc["zero_page"][0]
        alloc = max(0.0, write - read - zero)
        spread = sum(cyc[k][0] * cyc[k][1] for k in ("fault_write", "fault_read", "zero_page"))
        floored = (f"; floored at 0: zero_page ({zero:,.0f} cycles) exceeds fault_write - "
                   f"fault_read ({write - read:,.0f}), so user space clears a page slower "
                   "than the kernel does here" if write - read - zero < 0 else "")
        out.append(Entry("cost.root_alloc", float(round(alloc)), "proxy",
                         "allocating a page: fault_write - fault_read - zero_page (clearing a "
                         "cold page); the 2 KiB copy itself runs through the modelled caches"
                         + floored, spread / alloc if alloc else None))
    return out


def root_costs(cyc: dict[str, tuple[float, float]], values: dict[str, float],
               roots: dict[str, int], baseline_touch: dict[str, float] | None,
               tsc_to_core: float, engine_copy: float | None) -> list[Entry]:
    """cost.lazy_fault and cost.root_alloc measured on the percpu kernel (its calib-roots
    lines, docs/kernel.md), where it ran with its roots on; [] otherwise.

    lazy_fault: what a lazy fault adds to an access, less the entry write and read the
    engine adds. Against the stock kernel's figures (baseline_touch, --baseline, cycles):
    slot_touch (the first read in a slot whose tables were freed: a demand fault, then
    the lazy fault) less the stock kernel's, else lazy_touch (each read a TLB miss and a
    lazy fault, once CPU 0's root is made anew) less the stock kernel's. Without a
    baseline, lazy_touch less tlb_miss_touch (the same reads after a local flush, from
    warmer caches: an upper bound). root_alloc: the kernel's own TSC cycles per root made
    (percpu_roots=time) less what the engine charges for the copy it models through its
    caches (engine_copy), so that the engine's whole allocation costs what the kernel's
    did."""
    out = []
    base = baseline_touch or {}
    if roots.get("lazyFaults"):
        diff = how = None
        for name in TOUCHES:
            if name in cyc and name in base:
                touch = cyc[name][0]
                diff = touch - base[name]
                how = (f"{name} on the percpu kernel ({touch:,.0f} cycles) less the stock "
                       f"kernel's ({base[name]:,.0f}, --baseline)")
                sp = cyc[name][1]
                break
        if diff is None and "lazy_touch" in cyc and "tlb_miss_touch" in cyc:
            touch, sp = cyc["lazy_touch"]
            diff = touch - cyc["tlb_miss_touch"][0]
            how = (f"upper bound: lazy_touch ({touch:,.0f} cycles) less tlb_miss_touch "
                   f"({cyc['tlb_miss_touch'][0]:,.0f}, from warmer caches; give --baseline "
                   "for the stock kernel's figures)")
        if diff is not None:
            lazy = max(0.0, diff - values["cost.pte_write"] - values["cache.l1d.latency"])
            fixup = roots.get("lazyFaultFixupCycles", 0) / roots["lazyFaults"] * tsc_to_core
            kernel = (f"; the kernel's own fix-up is {fixup:,.0f} of them" if
                      roots.get("timing") else "")
            out.append(Entry("cost.lazy_fault", float(round(lazy)), "measured",
                             f"one lazy top-level fault of the percpu kernel: {how}, minus "
                             f"the entry write and read the engine adds{kernel}", sp))
    made = roots.get("rootAllocs::total", 0)
    if roots.get("timing") and made and engine_copy is not None:
        make = roots["rootMakeCycles"] / made * tsc_to_core
        alloc = max(0.0, make - engine_copy)
        floored = (f"; floored at 0: the engine's copy ({engine_copy:,.0f}) is slower than "
                   "the kernel's whole root" if make < engine_copy else "")
        out.append(Entry("cost.root_alloc", float(round(alloc)), "measured",
                         f"the percpu kernel's own cycles per root made ({make:,.0f} over "
                         f"{made:,} roots, percpu_roots=time) less the engine's copy of a "
                         f"kernel half through its caches ({engine_copy:,.0f})" + floored))
    return out


def root_copy_check(values: dict[str, float]) -> float:
    """The engine's cycles for copying one root's kernel half (through its caches), with
    values: ctxmix past the cliff on 2 CPUs, rootCopy cycles per allocation minus
    root_alloc. Compared with copy_2k, the measured 2 KiB copy into a cold page."""
    from percpu.runner import cpu_sum, run_engine
    from percpu.workloads import find_workload

    wl = find_workload("ctxmix")
    params = wl.resolve({"procs_per_cpu": "7", "rounds": "20"})
    result, _, _ = run_engine(wl, params, "percpu", {**values, "machine.cpus": 2.0})
    allocs = cpu_sum(result.stats, "percpu.rootAllocs::total")
    copy = cpu_sum(result.stats, "cycles::rootCopy")
    return copy / allocs - values["cost.root_alloc"] if allocs else 0.0


def _bootstrap(system: fitting.System, meas: dict[str, Measurement], clock: Clock,
               rng: np.random.Generator) -> dict[str, float]:
    """Relative IQR of each fitted entry over resampled measurements."""
    draws: dict[str, list[float]] = {k: [] for k in system.used}
    for _ in range(BOOTSTRAP):
        resampled = {}
        for name, m in meas.items():
            if m.unit != "ns" or not m.samples:
                continue
            pick = rng.choice(np.asarray(m.samples), size=len(m.samples), replace=True)
            resampled[name] = (clock.cycles(float(np.median(pick))), m.spread)
        result = fitting.solve(system, resampled)
        for k, v in result.values.items():
            draws[k].append(v)
    out = {}
    for k, vs in draws.items():
        med = float(np.median(vs))
        out[k] = float(np.percentile(vs, 75) - np.percentile(vs, 25)) / med if med else 0.0
    return out


def run_calibration(*, quick: bool = False, only: list[str] | None = None,
                    clock_mhz: float | None = None, command: str = "percpu calibrate",
                    progress: Callable[[str], None] | None = None,
                    build_dir: Path | None = None,
                    samples_file: Path | None = None, realtime: bool = False,
                    baseline: Path | None = None) -> Calibration:
    """Measure here (or read samples from samples_file), fit, and return the calibration.
    baseline: the profile of the same machine on a kernel without per-CPU roots, whose
    costs are fitted instead of this one's, and whose TOUCHES figures are taken off this
    one's when this kernel made roots (kernel_roots.py): a profile of the baseline machine with
    what the roots measurably cost."""
    say = progress or (lambda _msg: None)
    notes_pre: list[str] = []
    start = time.perf_counter()
    roots: dict[str, int] = {}
    if samples_file is not None:
        try:
            text = samples_file.read_text(errors="replace")
        except OSError as exc:
            raise UsageError(f"cannot read --from-samples {samples_file}: {exc.strerror}") from None
        machine = machine_from_info(text.splitlines(), samples_file.name)
        meas = measurements_from_text(text, str(samples_file))
        static = True
        if clock_mhz is None and "core_mhz" not in meas:
            raise UsageError(f"{samples_file} has no core_mhz figure to convert at: "
                             "give --clock-mhz")
        say(f"read {sum(len(m.samples) for m in meas.values())} samples of {len(meas)} "
            f"figures from {samples_file}")
        roots = parse_kernel_roots(text)
    else:
        machine = describe_machine()
        meas, static = _measure_here(machine, quick, only, build_dir, say, realtime)
        if realtime:
            notes_pre.append("measured with --realtime (SCHED_FIFO 1): scheduler figures are "
                             "the real-time class's")
    baseline_touch: dict[str, float] | None = None
    if baseline is not None:
        # The machine's costs are the baseline kernel's (what the engine adds roots to);
        # this kernel gives only what its roots cost.
        base_text = baseline_console(baseline).read_text(errors="replace")
        base_machine = machine_from_info(base_text.splitlines(), baseline.name)
        mine = {"cpus": machine.cpus, "pcid": machine.pcid, "pti": machine.pti}
        theirs = {"cpus": base_machine.cpus, "pcid": base_machine.pcid, "pti": base_machine.pti}
        differ = [k for k in mine if mine[k] != theirs[k]]
        if differ:
            what = ", ".join(f"{k} {theirs[k]} there, {mine[k]} here" for k in differ)
            raise UsageError(f"--baseline {baseline} is another machine ({what}): calibrate "
                             "the stock kernel with the same --cpus, --no-pcid and --pti")
        own = meas
        meas = measurements_from_text(base_text, baseline.name)
        if "lazy_touch" not in meas:
            raise UsageError(f"--baseline {baseline} has no lazy_touch sample: calibrate the "
                             "stock kernel again with this percpu (2 CPUs or more)")
        baseline_touch = {name: meas[name].value for name in TOUCHES if name in meas}
        for name in ("tlb_miss_touch", *TOUCHES):
            meas.pop(name, None)
            if name in own:
                meas[name] = own[name]
        notes_pre.append(f"costs fitted on the baseline kernel's samples ({baseline.name}, "
                         f"{base_machine.kernel}); cost.lazy_fault and cost.root_alloc "
                         f"measured on this kernel ({samples_file.name if samples_file else ''})")
    cal = _finish(machine, meas, static, clock_mhz, command, start, say, roots,
                  baseline_touch)
    cal.notes[:0] = notes_pre
    cal.realtime = realtime
    return cal


def realtime_wrapper() -> list[str]:
    """--realtime: run every program as SCHED_FIFO priority 1 (threads and children
    inherit it), so that ordinary load on the machine preempts no sample: a sched_yield
    then switches only between the benchmark's own tasks. The scheduler figures are then
    those of the real-time class, a little leaner than the fair class the engine models."""
    import shutil

    chrt = shutil.which("chrt")
    if chrt is None:
        raise UsageError("--realtime needs chrt (util-linux): install it or drop --realtime")
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except PermissionError:
        raise UsageError("--realtime needs the right to use SCHED_FIFO (root or "
                         "CAP_SYS_NICE): drop --realtime") from None
    return [chrt, "-f", "1"]


def _measure_here(machine: Machine, quick: bool, only: list[str] | None,
                  build_dir: Path | None, say: Callable[[str], None],
                  realtime: bool = False) -> tuple[dict[str, Measurement], bool]:
    chosen = _select(machine, quick, only)
    wrapper = realtime_wrapper() if realtime else []
    with tempfile.TemporaryDirectory(prefix="percpu-calib-") as tmp:
        where = build_dir or Path(tmp)
        programs = tuple(dict.fromkeys(b.program for b in chosen))
        built = build_programs(where, programs)
        say(f"built {len(programs)} programs with {built.compiler} "
            f"({'static' if built.static else 'dynamic: no static C library'})")
        meas: dict[str, Measurement] = {}
        for bench in chosen:
            cmd = [*wrapper, str(built.path(bench.program)), *bench.args]
            if "--samples" not in bench.args:
                cmd += ["--samples", "10" if quick else "30"]
            got = measure(cmd, statistic=bench.statistic, max_runs=2 if quick else 8,
                          min_runs=1 if quick else 3, max_seconds=2.0 if quick else 5.0)
            for name in bench.emits:
                if name not in got:
                    raise UsageError(f"{bench.program} printed no '{name}' figure")
            meas.update(got)
            shown = ", ".join(f"{n} {got[n].value:,.1f} {got[n].unit} "
                              f"(IQR {got[n].spread * 100:.0f} %"
                              f"{'' if got[n].stable else ', unstable'})" for n in bench.emits)
            say(f"  {bench.key:20} {shown}")
    return meas, built.static


def _finish(machine: Machine, meas: dict[str, Measurement], static: bool,
            clock_mhz: float | None, command: str, start: float,
            say: Callable[[str], None], roots: dict[str, int] | None = None,
            baseline_touch: dict[str, float] | None = None) -> Calibration:
    """baseline_touch: the baseline kernel's TOUCHES figures in ns."""
    roots = roots or {}
    clock = fixed_clock(clock_mhz) if clock_mhz else clock_from(meas)
    cyc = _cycles(meas, clock)
    geo = geometry(machine)
    two = {"pipe_cross", "mprotect_remote", "ipi_lost"} & set(meas)
    cpus = 2 if machine.cpus >= 2 or two else 1
    base = fitting.engine_values({e.key: e.value for e in geo}, cpus)
    base["machine.freq_mhz"] = float(round(clock.core_mhz))
    entries = [Entry("machine.freq_mhz", base["machine.freq_mhz"], "measured",
                     "core clock: dependent-add chain, 90th percentile" if not clock_mhz
                     else "given with --clock-mhz", clock.core_spread or None)]
    entries += geo
    # The chase rows follow the buffers that were measured (chase_<KiB>k).
    sizes = {f"{int(m.group(1))} KiB": int(m.group(1)) * 1024
             for m in (re.fullmatch(r"chase_(\d+)k", n) for n in meas) if m}
    table = rows(sizes, cpus)
    result = None
    notes: list[str] = []
    values = dict(base)
    try:
        system = fitting.prepare(table, set(cyc), base, FIT_KEYS)
    except fitting.NothingToFit:
        system = None
        notes.append("no benchmark measured a fitted entry (--only): nothing fitted")
    if system is not None:
        say(f"fitting {len(system.used)} entries to {len(system.rows)} rows through the engine")
        result = fitting.solve(system, cyc)
        spreads = _bootstrap(system, meas, clock, np.random.default_rng(1))
        values.update(result.values)
        for key in system.used:
            entries.append(Entry(key, result.values[key], "fitted", CARRIERS.get(key, ""),
                                 spreads.get(key)))
        notes += result.notes
    # The engine's copy of one root's kernel half, with the fitted caches: checked
    # against copy_2k, and taken off the kernel's own cycles per root made.
    current = {**values, **{e.key: e.value for e in entries}}
    engine_copy = (root_copy_check(current)
                   if "copy_2k" in cyc or roots.get("timing") else None)
    measured = root_costs(cyc, current, roots,
                          None if baseline_touch is None else
                          {k: clock.cycles(v) for k, v in baseline_touch.items()},
                          clock.core_mhz / clock.tsc_mhz if clock.tsc_mhz
                          else 1.0, engine_copy)
    have = {e.key for e in measured}
    entries += measured + [e for e in _proxies(cyc, values, machine) if e.key not in have]
    notes += kernel_roots_notes(roots)
    done = {e.key for e in entries}
    not_measured = [(k, why) for k, why in NOT_MEASURED.items() if k not in done]
    if result is not None:
        not_measured += [(k, "no benchmark of this run determines it (--only or one CPU)")
                         for k in result.unfitted if k not in NOT_MEASURED]
    elif system is None:
        not_measured += [(k, "not measured in this run (--only)") for k in FIT_KEYS
                         if k not in done]
    checks: dict[str, tuple[float, float, str]] = {}
    if "copy_2k" in cyc:  # engine_copy was computed for it
        checks["root_copy"] = (cyc["copy_2k"][0], engine_copy,
                               ("copying a root's kernel half: copy_2k measured against the "
                               "engine's cached copy per root allocation (ctxmix, 7 per CPU)"))
    for name, m in meas.items():
        if not m.stable:
            notes.append(f"{name} did not settle within its run budget (IQR "
                         f"{m.spread * 100:.0f} %): repeat on a quieter machine")
    return Calibration(machine, clock, meas, cyc, result, entries, not_measured,
                       time.perf_counter() - start, command, static,
                       os.getloadavg(), notes, checks)
