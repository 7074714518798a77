"""The report's tables, one function per section: overhead, cycle breakdown, root allocations,
the proposal's bounds, caches, per-run values and sources."""

from __future__ import annotations

import math

import pandas as pd

from percpu.analysis.report.context import (
    _compress_ids,
    _Ctx,
    _fmt_dim,
    _group_rows,
    _mean_by_group,
    _source,
    _used_dumps,
)
from percpu.analysis.report.model import Plot, Section, Table
from percpu.analysis.report.numbers import _num, _pct, _si
from percpu.analysis.report.stat_names import (
    CYCLE_GROUPS,
    CYCLES,
    L1D_MISSES,
    L2_MISSES,
    LAZY_FAULT_BOUND,
    LLC_MISSES,
    ROOT_CAUSES,
    TIME,
    Candidates,
    root_pool_bound_bytes,
)
from percpu.analysis.tidy import (
    select,
    summarise_vs_baseline,
    versus_baseline,
)

# ---------------------------------------------------------------------------
# Sections


def _overhead_section(ctx: _Ctx) -> tuple[Section, pd.DataFrame, list[str]]:
    sec = Section(
        "Overhead against the baseline",
        f"The overhead is of simulated time (`simTicks`, the run's makespan; docs/analysis.md "
        f"says why): each scheme against `{ctx.baseline}` at the same workload point "
        "(same workload, parameters and machine), in percent: 100 × (scheme / baseline − 1). "
        "Each run is paired with the baseline run of the same seed, or with the mean of the "
        "point's baseline runs when no seed matches; with several seeds the table gives the "
        "mean and a 95 % t confidence interval. The interval covers the run-to-run noise the "
        "seeds draw (ASLR, tick phase, compute and sleep jitter, wake-up ties: docs/noise.md), "
        "which a seed gives every scheme alike, so it is the interval of a paired difference; "
        "it does not cover the cost table's estimates (see `percpu sensitivity`). The "
        "busy-cycle column is the same comparison of CPU time (numCycles minus idle, summed "
        "over CPUs), which tells extra work from extra waiting.",
    )
    values, patterns = ctx.values(TIME)
    missing = [r for r in ctx.meta["run"] if r not in values.index]
    if missing:
        cyc, cpat = ctx.values(CYCLES, runs=missing)
        values = pd.concat([values, cyc]) if not values.empty else cyc
        patterns += cpat
        if not cyc.empty:
            sec.notes.append(
                "Runs without simTicks use numCycles summed over CPUs: "
                + _compress_ids(list(cyc.index), ctx.ids)
                + "."
            )
    empty = pd.DataFrame()
    if values.empty:
        sec.notes.append("No run has simTicks or numCycles: nothing to compare.")
        return sec, empty, patterns
    schemes = set(ctx.meta["scheme"])
    if ctx.baseline not in schemes:
        sec.notes.append(
            f"Skipped: no run of the baseline scheme `{ctx.baseline}` (schemes present: "
            f"{', '.join(sorted(schemes))}). Pass --baseline to pick another."
        )
        return sec, empty, patterns
    vs = versus_baseline(ctx.ds, values=values, baseline=ctx.baseline)
    vs = vs[vs["run"].isin(ctx.meta["run"])]
    if vs.empty:
        sec.notes.append(
            f"Skipped: no workload point has both `{ctx.baseline}` and another scheme."
        )
        return sec, empty, patterns
    summary = summarise_vs_baseline(vs)
    no_base = sorted(
        set(ctx.meta[ctx.meta["scheme"] != ctx.baseline]["run"]) - set(vs["run"]),
        key=lambda r: int(ctx.ids[r][1:]),
    )
    if no_base:
        sec.notes.append(
            f"Runs with no `{ctx.baseline}` run at their point (not compared): "
            f"{_compress_ids(no_base, ctx.ids)}."
        )
    order = {(p, s): i for i, (p, s, _) in enumerate(_group_rows(ctx))}
    summary["order"] = [order[(p, s)] for p, s in zip(summary["point"], summary["scheme"])]
    summary = summary.sort_values("order")
    busy_pct = _busy_overheads(ctx, vs)
    rows = []
    zero_spread = []
    for r in summary.itertuples():
        ci = "—" if r.n < 2 else f"[{r.ci_low_pct:+.2f}, {r.ci_high_pct:+.2f}]"
        if r.n >= 2 and r.ci_half_pct == 0:
            zero_spread.append(f"{ctx.labels[r.point]} / {r.scheme}")
        busy = busy_pct.get((r.point, r.scheme))
        rows.append(
            [
                ctx.labels[r.point],
                r.scheme,
                str(r.n),
                _pct(r.mean_pct),
                ci,
                "—" if busy is None or math.isnan(busy) else _pct(busy),
                _compress_ids(list(r.runs), ctx.ids),
                _compress_ids(list(r.baseline_runs), ctx.ids),
            ]
        )
    if zero_spread:
        sec.notes.append(
            "Warning: zero spread over seeds (every seed gave the same overhead, so the "
            "interval has no width and says nothing about run-to-run variation; were the runs "
            "made with noise.enabled=0, or before seeds varied anything?): "
            + "; ".join(zero_spread) + "."
        )
    used = [r for t in summary["runs"] for r in t] + [
        r for t in summary["baseline_runs"] for r in t
    ]
    sec.tables.append(
        Table(
            "Overhead of simulated time (simTicks) per workload point",
            ["workload point", "scheme", "seeds", "overhead (simTicks)", "95 % CI",
             "busy-cycle overhead", "runs", "baseline runs"],
            rows,
            _source(ctx, patterns, used, "1 tick = 1 ps"),
        )
    )
    return sec, summary, patterns


def _busy_overheads(ctx: _Ctx, vs: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Mean busy-cycle overhead (numCycles minus cycles::idle, over CPUs) per (point, scheme),
    paired as vs pairs the simTicks comparison; runs without the idle breakdown are left out."""
    cyc, _ = ctx.values(CYCLES)
    idle, _ = ctx.values([("", "cycles::idle")])
    busy = (cyc - idle).dropna()
    out: dict[tuple[str, str], float] = {}
    for (point, scheme), g in vs.groupby(["point", "scheme"], sort=False):
        pcts = []
        for r in g.itertuples():
            base = [busy[b] for b in r.baseline_runs if b in busy.index]
            if r.run in busy.index and len(base) == len(r.baseline_runs) and base:
                b = sum(base) / len(base)
                if b:
                    pcts.append(100.0 * (busy[r.run] / b - 1.0))
        if pcts:
            out[(point, scheme)] = sum(pcts) / len(pcts)
    return out


def _cycles_section(ctx: _Ctx) -> Section:
    sec = Section(
        "Cycle breakdown",
        "Cycles by category, summed over CPUs (mean over seeds); in parentheses the "
        f"difference from `{ctx.baseline}` at the same point.",
    )
    frame = ctx.frame
    rows = frame[(frame["stat"] == "cycles") & (frame["component"] == "") & frame["cpu"].notna()]
    if rows.empty:
        sec.notes.append(
            "Skipped: no run has the per-CPU `cycles::<category>` vector (written by the engine "
            "and the percpu gem5 plugin; stock gem5 has no such breakdown)."
        )
        return sec
    present = set(rows["bucket"].astype(str))
    groups = [(label, b) for label, b in CYCLE_GROUPS if present & set(b)]
    known = {x for _, b in CYCLE_GROUPS for x in b}
    extra = sorted(present - known - {"total"})
    groups += [(x, (x,)) for x in extra]
    per_group: dict[str, dict[tuple[str, str], float]] = {}
    patterns: list[str] = []
    for label, buckets in groups:
        # A group of several buckets (flush + ipi) is their sum.
        total = pd.Series(dtype="float64")
        for b in buckets:
            v, p = ctx.values([("", f"cycles::{b}")])
            total = total.add(v, fill_value=0) if not total.empty else v
            patterns += p
        per_group[label] = _mean_by_group(ctx, total)
    table_rows = []
    used: list[str] = []
    for point, scheme, runs in _group_rows(ctx):
        if not any((point, scheme) in per_group[g] for g, _ in groups):
            continue
        used += runs
        cells = [ctx.labels[point], scheme]
        for label, _ in groups:
            mine = per_group[label].get((point, scheme), math.nan)
            base = per_group[label].get((point, ctx.baseline), math.nan)
            cell = _si(mine)
            if scheme != ctx.baseline and not math.isnan(base):
                cell += f" ({_si(mine - base, signed=True)})"
            cells.append(cell)
        table_rows.append(cells)
    source = _source(ctx, patterns, used)
    sec.tables.append(
        Table(
            "Cycles by category",
            ["workload point", "scheme"] + [g for g, _ in groups],
            table_rows,
            source,
        )
    )
    sec.plots.append(_cycles_plot(ctx, per_group, source))
    return sec


def _cycles_plot(ctx: _Ctx, per_group: dict[str, dict[tuple[str, str], float]],
                 source: str) -> Plot:
    """The busy cycles of each (point, scheme) as a stacked bar, every report having at
    least this figure; past MAX_CYCLE_BARS bars, one per scheme summed over the points."""
    from percpu.analysis.report.plots import MAX_CYCLE_BARS, cycle_breakdown_plot

    categories = [g for g in ("user", *per_group) if g in per_group and g != "idle"]
    categories = list(dict.fromkeys(categories))
    keys = [(p, s) for p, s, _ in _group_rows(ctx)
            if any((p, s) in per_group[c] for c in categories)]
    points = list(dict.fromkeys(p for p, _ in keys))
    if len(keys) <= MAX_CYCLE_BARS:
        bars = [(s if len(points) == 1 else f"{ctx.labels[p]} / {s}",
                 {c: per_group[c].get((p, s), 0.0) for c in categories}) for p, s in keys]
        what = "summed over CPUs (mean over seeds)"
    else:
        bars = [(s, {c: sum(per_group[c].get((p, s), 0.0) for p in points) for c in categories})
                for s in ctx.scheme_order if any(k[1] == s for k in keys)]
        what = f"summed over CPUs and the {len(points)} workload points"
    title = "Busy cycles by category" + ("" if len(keys) <= MAX_CYCLE_BARS else " per scheme")
    return Plot("cycles_by_category", title, cycle_breakdown_plot(bars, categories, what),
                source)


def _roots_section(ctx: _Ctx) -> Section:
    sec = Section(
        "Root allocations by cause",
        "Page-table roots allocated, summed over CPUs (mean over seeds): first use of a "
        "(cpu, ASID), evicted from the 6 per-CPU ASID slots, flushed while inactive, and every "
        "switch without PCID. The last column is allocations per CPU per simulated second.",
    )
    per_cause: dict[str, dict[tuple[str, str], float]] = {}
    patterns: list[str] = []
    for cause in ROOT_CAUSES:
        vals, pats = ctx.values([("percpu", f"rootAllocs::{cause}")])
        per_cause[cause] = _mean_by_group(ctx, vals)
        patterns += pats
    if not any(per_cause.values()):
        sec.notes.append(
            "Skipped: no run has `percpu.rootAllocs` (only schemes with per-CPU roots count them)."
        )
        return sec
    secs, spat = ctx.values([("", "simSeconds")])
    seconds = _mean_by_group(ctx, secs)
    rows = []
    used: list[str] = []
    for point, scheme, runs in _group_rows(ctx):
        if not any((point, scheme) in per_cause[c] for c in ROOT_CAUSES):
            continue
        used += runs
        cpus = ctx.ds.runs[runs[0]].machine.get("cpus") or math.nan
        total = per_cause["total"].get((point, scheme), math.nan)
        s = seconds.get((point, scheme), math.nan)
        rate = total / cpus / s if s and not math.isnan(s) else math.nan
        rows.append(
            [ctx.labels[point], scheme]
            + [_num(per_cause[c].get((point, scheme), math.nan)) for c in ROOT_CAUSES]
            + [_num(rate)]
        )
    sec.tables.append(
        Table(
            "Root allocations",
            ["workload point", "scheme", *ROOT_CAUSES, "total / CPU / s"],
            rows,
            _source(ctx, patterns + spat, used, "CPUs from each run's config (machine.cpus)"),
        )
    )
    return sec


def _bounds_section(ctx: _Ctx) -> Section:
    sec = Section(
        "The proposal's bounds",
        "Lazy top-level faults: at most 256 per root generation (one per user pgd slot). Root "
        "pool: at most 4 KiB × CPUs × 6 ASIDs, × 2 with PTI. Counts are summed over CPUs and "
        "averaged over seeds; maxima are the largest over seeds.",
    )
    lazy, lpat = ctx.values([("percpu", "lazyFaults")])
    maxroot, mpat = ctx.values([("percpu", "maxLazyFaultsPerRoot")])
    bound, bpat = ctx.values([("percpu", "lazyFaultBound")])
    lazy_m = _mean_by_group(ctx, lazy)
    max_m = _mean_by_group(ctx, maxroot, "max")
    bound_m = _mean_by_group(ctx, bound, "max")
    rows, used = [], []
    for point, scheme, runs in _group_rows(ctx):
        key = (point, scheme)
        if key not in lazy_m and key not in max_m:
            continue
        used += runs
        b = bound_m.get(key, float(LAZY_FAULT_BOUND))
        mx = max_m.get(key, math.nan)
        status = "—" if math.isnan(mx) else ("within" if mx <= b else "**EXCEEDED**")
        rows.append([ctx.labels[point], scheme, _num(lazy_m.get(key)), _num(mx), _num(b), status])
    if rows:
        sec.tables.append(
            Table(
                "Lazy faults against the bound",
                ["workload point", "scheme", "lazy faults", "max per root", "bound", "status"],
                rows,
                _source(ctx, lpat + mpat + bpat, used,
                        f"Bound {LAZY_FAULT_BOUND} where a run has no lazyFaultBound stat"),
            )
        )  # fmt: skip
    else:
        sec.notes.append("Lazy faults skipped: no run has `percpu.lazyFaults`.")
    peak, ppat = ctx.values([("percpu", "rootPoolPeakBytes")])
    stat_bound, sbpat = ctx.values([("percpu", "rootPoolBoundBytes")])
    peak_m = _mean_by_group(ctx, peak, "max")
    sb_m = _mean_by_group(ctx, stat_bound, "max")
    rows, used = [], []
    for point, scheme, runs in _group_rows(ctx):
        key = (point, scheme)
        if key not in peak_m:
            continue
        used += runs
        machine = ctx.ds.runs[runs[0]].machine
        cpus = machine.get("cpus")
        pti = machine.get("pti")
        proposal = root_pool_bound_bytes(cpus, pti) if cpus else math.nan
        pk = peak_m[key]
        status = "within" if pk <= proposal else "**EXCEEDED**"
        rows.append(
            [ctx.labels[point], scheme, _num(pk), _num(proposal), _num(sb_m.get(key)),
             f"{100 * pk / proposal:.1f} %" if proposal else "—", status]
        )  # fmt: skip
    if rows:
        sec.tables.append(
            Table(
                "Root pool bytes against 4 KiB × CPUs × 6 (× 2 with PTI)",
                ["workload point", "scheme", "peak bytes", "proposal bound", "engine bound stat",
                 "peak / bound", "status"],
                rows,
                _source(ctx, ppat + sbpat, used,
                        "Proposal bound from each run's config (machine.cpus, machine.pti)"),
            )
        )  # fmt: skip
    else:
        sec.notes.append("Root pool skipped: no run has `percpu.rootPoolPeakBytes`.")
    return sec


def _cache_section(ctx: _Ctx) -> Section:
    sec = Section(
        "Extra cache misses",
        f"Cache misses summed over CPUs (mean over seeds) and the difference from "
        f"`{ctx.baseline}` at the same point: the cost of the extra root lines in walker and "
        "data caches.",
    )
    levels = [("L1D", L1D_MISSES), ("L2", L2_MISSES), ("LLC", LLC_MISSES)]
    data: list[tuple[str, dict[tuple[str, str], float]]] = []
    patterns: list[str] = []
    for label, cands in levels:
        vals, pats = ctx.values(cands)
        if not vals.empty:
            data.append((label, _mean_by_group(ctx, vals)))
            patterns += pats
    if not data:
        sec.notes.append(
            "Skipped: no run has cache miss stats in the dump used (gem5 leaves out vectors "
            "that are all zero)."
        )
        return sec
    rows, used = [], []
    for point, scheme, runs in _group_rows(ctx):
        if not any((point, scheme) in d for _, d in data):
            continue
        used += runs
        cells = [ctx.labels[point], scheme]
        for _, d in data:
            v = d.get((point, scheme), math.nan)
            b = d.get((point, ctx.baseline), math.nan)
            cells.append(_num(v))
            if scheme == ctx.baseline or math.isnan(b):
                cells.append("—")
            else:
                rel = f", {100 * (v - b) / b:+.2f} %" if b else ""
                cells.append(f"{_num(v - b)}{rel}")
        rows.append(cells)
    cols = ["workload point", "scheme"]
    for label, _ in data:
        cols += [f"{label} misses", f"{label} Δ vs {ctx.baseline}"]
    sec.tables.append(Table("Cache misses", cols, rows, _source(ctx, patterns, used)))
    return sec


def _per_run_section(ctx: _Ctx) -> Section:
    sec = Section(
        "Per-run summary",
        "Headline stats of every run and dump (the dump the other tables use is marked *), "
        "summed over CPUs where the stat is per CPU.",
    )
    cols_spec: list[tuple[str, Candidates]] = [
        ("simTicks", TIME),
        ("simSeconds", [("", "simSeconds")]),
        ("cycles (Σ CPUs)", CYCLES),
        ("instructions", [("", "simInsts")]),
        ("DTLB misses", [("mmu.dtb", "rdMisses"), ("mmu.dtb", "wrMisses")]),
        ("ITLB misses", [("mmu.itb", "rdMisses"), ("mmu.itb", "wrMisses")]),
        ("walks", [("mmu.walker", "walks")]),
        ("context switches", [("", "ctxSwitches")]),
        # Both hosts' (and the kernel's) percpu.checkerViolations (core/root/names.h).
        ("checker violations", [("percpu", "checkerViolations")]),
    ]
    frame = ctx.ds.frame
    patterns: list[str] = []
    rows = []
    present_cols: list[int] = []
    table: dict[tuple[str, int], list[float]] = {}
    for ci, (_label, cands) in enumerate(cols_spec):
        # TLB misses add rd and wr; the other columns take the first candidate found.
        additive = cands[0][0].startswith("mmu.") and cands[0][1] != "walks"
        found = False
        for component, stat in cands:
            rows_ = select(frame, stat, component, dump=None)
            rows_ = rows_[~rows_["partial"] & rows_["run"].isin(ctx.meta["run"])]
            if rows_.empty:
                continue
            glob = rows_[rows_["cpu"].isna()]
            use = glob if not glob.empty else rows_
            sums = use.groupby(["run", "dump"], observed=True)["value"].sum(min_count=1)
            for (run, dump), v in sums.items():
                cell = table.setdefault((str(run), int(dump)), [math.nan] * len(cols_spec))
                cell[ci] = v if math.isnan(cell[ci]) else cell[ci] + v
            patterns += ctx._note_names(use)
            found = True
            if not additive:
                break
        if found:
            present_cols.append(ci)
    used_dump = _used_dumps(ctx)
    for (run, dump), vals in sorted(
        table.items(), key=lambda kv: (int(ctx.ids[kv[0][0]][1:]), kv[0][1])
    ):
        mark = "*" if used_dump.get(run) == dump else ""
        rows.append([ctx.ids[run], f"{dump}{mark}"] + [_num(vals[i]) for i in present_cols])
    if rows:
        sec.tables.append(
            Table(
                "Headline stats",
                ["run", "dump"] + [cols_spec[i][0] for i in present_cols],
                rows,
                _source(ctx, patterns, list(ctx.meta["run"]), "Every complete dump is listed"),
            )
        )
    return sec


def _sources_section(ctx: _Ctx) -> Section:
    sec = Section(
        "Sources",
        "Run ids used in the tables, with the directory and the files each run's numbers and "
        "parameters come from. Stat names below are as written in stats.txt, with the CPU "
        "index as `*`.",
    )
    rows = []
    for run in sorted(ctx.ds.runs, key=lambda r: int(ctx.ids[r][1:])):
        info = ctx.ds.runs[run]
        spans = ctx.ds.dumps[run]
        used = _used_dumps(ctx).get(run)
        dumps = (
            "; ".join(
                f"{s.index}{'*' if s.index == used else ''}: lines {s.begin_line}–"
                f"{s.end_line if s.end_line is not None else 'EOF (partial)'}"
                for s in spans
            )
            or "none"
        )
        machine = ", ".join(f"{k}={_fmt_dim(v)}" for k, v in info.machine.items())
        rows.append(
            [ctx.ids[run], f"`{info.path}`", info.host, info.workload, info.scheme,
             "—" if info.seed is None else str(info.seed), info.params_str or "—", machine,
             ", ".join(["stats.txt", *info.config_files]), dumps]
        )  # fmt: skip
    sec.tables.append(
        Table(
            "Runs",
            ["run", "directory", "host", "workload", "scheme", "seed", "params", "machine",
             "files", "dumps (* used)"],
            rows,
            "Each run directory's config.json (engine), or gem5's config.json/config.ini plus "
            "percpu.json (gem5); dump line ranges refer to its stats.txt.",
        )
    )  # fmt: skip
    stat_rows = [
        [f"`{p}`", desc or "—", unit or "—"] for p, (desc, unit) in sorted(ctx.used_names.items())
    ]
    if stat_rows:
        sec.tables.append(
            Table("Stats read", ["stat", "description (from stats.txt)", "unit"], stat_rows,
                  "Descriptions and units as the simulator wrote them.")
        )  # fmt: skip
    return sec
