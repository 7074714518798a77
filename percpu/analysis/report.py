"""The percpu report: tables, plots and their sources, as Markdown and HTML.

write_report() loads every run under the given directories, compares each
scheme with the baseline at the same workload point, and writes report.md
(plots beside it in plots/) and/or report.html (one file, plots embedded).
Every table is followed by its source: the stat names it reads (with the CPU
index as '*'), the dump used and the run ids, which the Sources section maps
to run directories and config files.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import pandas as pd

from percpu.analysis.tidy import (
    Dataset,
    load_dataset,
    normalise_name,
    pick_dump,
    select,
    summarise_vs_baseline,
    versus_baseline,
)
from percpu.atomic import write_atomic
from percpu.errors import UsageError

__all__ = ["FORMATS", "Plot", "Report", "Section", "Table", "build_report", "write_report"]

FORMATS = ("md", "html")
PAGE_BYTES = 4096
ASID_SLOTS = 6  # TLB_NR_DYN_ASIDS: per-CPU dynamic ASIDs in x86 Linux
LAZY_FAULT_BOUND = 256  # the proposal's bound per root generation (user pgd slots)

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
ROOT_CAUSES = ("firstUse", "evicted", "flushedInactive", "noPcid", "total")

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


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    source: str
    note: str = ""


@dataclass
class Plot:
    slug: str
    title: str
    png: bytes
    source: str


@dataclass
class Section:
    title: str
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")


@dataclass
class Report:
    title: str
    summary: list[str]
    warnings: list[str]
    sections: list[Section]


# ---------------------------------------------------------------------------
# Formatting


def _num(x: Any) -> str:
    """Counts exactly (with separators), fractions to 3 significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return "—"
    v = float(x)
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if abs(v) >= 1000 or v.is_integer():
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _si(x: float, signed: bool = False) -> str:
    if x is None or math.isnan(x):
        return "—"
    sign = "+" if signed and x > 0 else ""
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{sign}{x / factor:.3g} {suffix}"
    return f"{sign}{x:.3g}" if not float(x).is_integer() else f"{sign}{x:.0f}"


def _pct(x: float, signed: bool = True) -> str:
    if x is None or math.isnan(x):
        return "—"
    return f"{x:+.2f} %" if signed else f"{x:.2f} %"


def _ids(runs: Sequence[str], ids: dict[str, str]) -> str:
    return ", ".join(ids[r] for r in runs)


# ---------------------------------------------------------------------------
# Data access


@dataclass
class _Ctx:
    ds: Dataset
    baseline: str
    dump: int
    meta: pd.DataFrame  # one row per usable run
    ids: dict[str, str]  # run -> R<n>
    labels: dict[str, str]  # point -> display label
    scheme_order: list[str]
    frame: pd.DataFrame = field(default_factory=pd.DataFrame)  # usable runs, chosen dump only
    groups: list[tuple[str, str, list[str]]] = field(default_factory=list)
    used_names: dict[str, tuple[str, str]] = field(default_factory=dict)  # pattern -> desc, unit

    def dump_text(self) -> str:
        if self.dump == -1:
            return "the last complete dump of each run"
        if self.dump < 0:
            return f"complete dump {self.dump} (counted from the end) of each run"
        return f"dump {self.dump} of each run"

    def values(
        self, candidates: Candidates, runs: Sequence[str] | None = None
    ) -> tuple[pd.Series, list[str]]:
        """Per-run values of the first candidate any run has, and the stat patterns read.

        Each run uses its own first available candidate, so engine and gem5
        runs can share a table.
        """
        out = pd.Series(dtype="float64")
        patterns: list[str] = []
        for component, stat in candidates:
            rows = select(self.frame, stat, component, dump=None)
            if rows.empty:
                continue
            rows = rows[~rows["run"].isin(out.index)]
            if runs is not None:
                rows = rows[rows["run"].isin(runs)]
            if rows.empty:
                continue
            glob = rows[rows["cpu"].isna()]
            use = glob if not glob.empty else rows
            vals = use.groupby("run", observed=True)["value"].sum(min_count=1)
            vals.index = vals.index.astype(str)
            out = pd.concat([out, vals]) if not out.empty else vals
            patterns.extend(self._note_names(use))
        return out, patterns

    def _note_names(self, rows: pd.DataFrame) -> list[str]:
        found: list[str] = []
        for name, desc, unit in (
            rows[["name", "desc", "unit"]].drop_duplicates("name").itertuples(index=False)
        ):
            pattern = normalise_name(str(name)).pattern
            if pattern not in found:
                found.append(pattern)
            self.used_names.setdefault(pattern, (str(desc), str(unit)))
        return found


def _source(ctx: _Ctx, patterns: Sequence[str], runs: Sequence[str], extra: str = "") -> str:
    shown = list(dict.fromkeys(patterns))
    # Name every stat a table reads; only very wide tables defer to "Stats read".
    limit = 20
    stats = ", ".join(f"`{p}`" for p in shown[:limit])
    if len(shown) > limit:
        stats += f" and {len(shown) - limit} more (see Stats read)"
    ordered = sorted(set(runs), key=lambda r: int(ctx.ids[r][1:]))
    text = f"Stats: {stats or '—'}; {ctx.dump_text()}; runs {_compress_ids(ordered, ctx.ids)}"
    if extra:
        text += f". {extra}"
    return text + "."


def _compress_ids(runs: Sequence[str], ids: dict[str, str]) -> str:
    nums = sorted(int(ids[r][1:]) for r in runs)
    if not nums:
        return "—"
    # runs of consecutive ids collapse to "R3–R7"
    spans: list[list[int]] = []
    for n in nums:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        elif not spans or n != spans[-1][1]:
            spans.append([n, n])
    return ", ".join(f"R{a}" if a == b else f"R{a}–R{b}" for a, b in spans)


def _dims(info_row: pd.Series, ds: Dataset) -> dict[str, Any]:
    info = ds.runs[info_row["run"]]
    dims: dict[str, Any] = {"workload": info.workload}
    for k, v in info.machine.items():
        dims[k] = v
    for k, v in info.params.items():
        dims[k] = v
    return dims


def _make_labels(meta: pd.DataFrame, ds: Dataset) -> dict[str, str]:
    """Point labels: the workload plus every dimension that varies between points."""
    dims = {p: _dims(g.iloc[0], ds) for p, g in meta.groupby("point", sort=False)}
    keys: list[str] = []
    for d in dims.values():
        for k in d:
            if k not in keys:
                keys.append(k)
    varying = [
        k for k in keys if k != "workload" and len({repr(d.get(k)) for d in dims.values()}) > 1
    ]
    labels: dict[str, str] = {}
    for p, d in dims.items():
        bits = [f"{k}={_fmt_dim(d.get(k))}" for k in varying]
        labels[p] = d["workload"] + (f" ({', '.join(bits)})" if bits else "")
    # Points that differ only in costs/geometry would share a label: number them.
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label] = seen.get(label, 0) + 1
    counter: dict[str, int] = {}
    for p, label in list(labels.items()):
        if seen[label] > 1:
            counter[label] = counter.get(label, 0) + 1
            labels[p] = f"{label} #{counter[label]}"
    return labels


def _fmt_dim(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if v is None:
        return "?"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _sort_key(d: dict[str, Any]) -> tuple[Any, ...]:
    out: list[Any] = []
    for k in sorted(d):
        v = d[k]
        out.append((k, 0, float(v)) if isinstance(v, int | float) and not isinstance(v, bool)
                   else (k, 1, str(v)))  # fmt: skip
    return tuple(out)


def _group_rows(ctx: _Ctx) -> list[tuple[str, str, list[str]]]:
    """(point, scheme, runs) in display order: points by their dimensions, baseline first."""
    if ctx.groups:
        return ctx.groups
    rows = []
    for (point, scheme), g in ctx.meta.groupby(["point", "scheme"], sort=False):
        rows.append((str(point), str(scheme), list(g["run"])))
    first = {p: ctx.meta[ctx.meta["point"] == p].iloc[0] for p in {r[0] for r in rows}}
    rows.sort(
        key=lambda r: (
            _sort_key(_dims(first[r[0]], ctx.ds)),
            ctx.scheme_order.index(r[1]),
        )
    )
    ctx.groups = rows
    return rows


# ---------------------------------------------------------------------------
# Sections


def _overhead_section(ctx: _Ctx) -> tuple[Section, pd.DataFrame, list[str]]:
    sec = Section(
        "Overhead against the baseline",
        f"Simulated time of each scheme against `{ctx.baseline}` at the same workload point "
        "(same workload, parameters and machine), in percent: 100 × (scheme / baseline − 1). "
        "Each run is paired with the baseline run of the same seed, or with the mean of the "
        "point's baseline runs when no seed matches; with several seeds the table gives the "
        "mean and a 95 % t confidence interval.",
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
    rows = []
    for r in summary.itertuples():
        ci = "—" if r.n < 2 else f"[{r.ci_low_pct:+.2f}, {r.ci_high_pct:+.2f}]"
        rows.append(
            [
                ctx.labels[r.point],
                r.scheme,
                str(r.n),
                _pct(r.mean_pct),
                ci,
                _compress_ids(list(r.runs), ctx.ids),
                _compress_ids(list(r.baseline_runs), ctx.ids),
            ]
        )
    used = [r for t in summary["runs"] for r in t] + [
        r for t in summary["baseline_runs"] for r in t
    ]
    sec.tables.append(
        Table(
            "Overhead per workload point",
            ["workload point", "scheme", "seeds", "overhead", "95 % CI", "runs", "baseline runs"],
            rows,
            _source(ctx, patterns, used, "1 tick = 1 ps"),
        )
    )
    return sec, summary, patterns


def _mean_by_group(ctx: _Ctx, values: pd.Series, how: str = "mean") -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for point, scheme, runs in _group_rows(ctx):
        xs = [float(values[r]) for r in runs if r in values.index and not pd.isna(values[r])]
        if xs:
            out[(point, scheme)] = max(xs) if how == "max" else sum(xs) / len(xs)
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
    sec.tables.append(
        Table(
            "Cycles by category",
            ["workload point", "scheme"] + [g for g, _ in groups],
            table_rows,
            _source(ctx, patterns, used),
        )
    )
    return sec


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
        proposal = PAGE_BYTES * cpus * ASID_SLOTS * (2 if pti else 1) if cpus else math.nan
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
        ("checker violations", [("checker", "violations")]),
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


def _used_dumps(ctx: _Ctx) -> dict[str, int]:
    out: dict[str, int] = {}
    for run in ctx.meta["run"]:
        complete = [s.index for s in ctx.ds.dumps[run] if not s.partial]
        if ctx.dump >= 0:
            out[run] = ctx.dump
        elif len(complete) >= -ctx.dump:
            out[run] = complete[ctx.dump]
    return out


# ---------------------------------------------------------------------------
# Plots


def _plot_frame(ctx: _Ctx, summary: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in summary.itertuples():
        first = ctx.meta[ctx.meta["point"] == r.point].iloc[0]
        dims = _dims(first, ctx.ds)
        if "procs_per_cpu" not in dims and "procs" in dims and dims.get("cpus"):
            dims["procs_per_cpu"] = dims["procs"] / dims["cpus"]
        rows.append({**dims, "scheme": r.scheme, "mean": r.mean_pct, "half": r.ci_half_pct,
                     "runs": r.runs, "baseline_runs": r.baseline_runs})  # fmt: skip
    return pd.DataFrame(rows)


def _series_key(row: pd.Series, others: list[str]) -> str:
    bits = [f"{k}={_fmt_dim(row[k])}" for k in others]
    return f"{row['scheme']}" + (f" ({', '.join(bits)})" if bits else "")


def _varying(pf: pd.DataFrame, exclude: set[str]) -> list[str]:
    skip = {"scheme", "mean", "half", "runs", "baseline_runs"} | exclude
    return [c for c in pf.columns if c not in skip and pf[c].map(repr).nunique() > 1]


def _figure() -> tuple[Any, Any]:
    # The object API with an Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _line_plot(ctx: _Ctx, pf: pd.DataFrame, x: str, xlabel: str, cliff: float | None) -> bytes:
    fig, ax = _figure()
    others = _varying(pf, {x})
    for key, g in pf.groupby(pf.apply(lambda r: _series_key(r, others), axis=1), sort=True):
        g = g.sort_values(x)
        ax.errorbar(g[x].astype(float), g["mean"], yerr=g["half"].fillna(0.0), marker="o",
                    capsize=3, label=str(key))  # fmt: skip
    xs = sorted({float(v) for v in pf[x]})
    if all(v > 0 and math.log2(v).is_integer() for v in xs) and len(xs) > 2:
        ax.set_xscale("log", base=2)
    ax.set_xticks(xs)
    ax.set_xticklabels([_fmt_dim(v) for v in xs])
    if cliff is not None:
        ax.axvline(cliff, color="grey", linestyle="--", linewidth=1)
        ax.annotate(f"{int(cliff)} ASIDs per CPU", (cliff, 0.98), xycoords=("data", "axes fraction"),
                    ha="left", va="top", fontsize=8, color="grey")  # fmt: skip
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"overhead vs {ctx.baseline} (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def _flag(v: Any) -> bool | None:
    """A machine on/off setting as a bool, None when unknown (gem5 runs without percpu.json)."""
    return None if v is None or pd.isna(v) else bool(v)


def _bar_plot(ctx: _Ctx, pf: pd.DataFrame, dim: str, names: tuple[str, str]) -> bytes | None:
    others = _varying(pf, {dim})
    pairs: list[tuple[str, pd.Series, pd.Series]] = []
    for key, g in pf.groupby(pf.apply(lambda r: _series_key(r, others), axis=1), sort=True):
        on = g[g[dim].map(lambda v: _flag(v) is True)]
        off = g[g[dim].map(lambda v: _flag(v) is False)]
        if not on.empty and not off.empty:
            pairs.append((str(key), off.iloc[0], on.iloc[0]))
    if not pairs:
        return None
    fig, ax = _figure()
    width = 0.38
    xs = range(len(pairs))
    bars = ((-width / 2, names[0], [off for _, off, _ in pairs]),
            (width / 2, names[1], [on for _, _, on in pairs]))  # fmt: skip
    for offset, label, rows in bars:
        means = [float(r["mean"]) for r in rows]
        errs = [0.0 if pd.isna(r["half"]) else float(r["half"]) for r in rows]
        ax.bar([x + offset for x in xs], means, width, yerr=errs, capsize=3, label=label)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([p[0] for p in pairs], rotation=20, ha="right", fontsize=8)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel(f"overhead vs {ctx.baseline} (%)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def _plots_section(ctx: _Ctx, summary: pd.DataFrame, time_patterns: list[str]) -> Section:
    sec = Section("Plots", "Mean overhead over seeds; error bars are 95 % confidence intervals.")
    if summary.empty:
        sec.notes.append("All plots skipped: there are no overhead results (see above).")
        return sec
    pf = _plot_frame(ctx, summary)
    runs = [r for t in pf["runs"] for r in t] + [r for t in pf["baseline_runs"] for r in t]
    src = _source(ctx, time_patterns, runs)

    def distinct(col: str) -> list[Any]:
        if col not in pf.columns:
            return []
        return sorted({v for v in pf[col] if v is not None and not pd.isna(v)}, key=repr)

    cpus = distinct("cpus")
    if len(cpus) > 1:
        sec.plots.append(Plot("overhead_vs_cpus", "Overhead against CPUs",
                              _line_plot(ctx, pf, "cpus", "CPUs", None), src))  # fmt: skip
    else:
        sec.notes.append(
            f"Overhead against CPUs skipped: every compared run has cpus={_one(cpus)}."
        )
    ppc = distinct("procs_per_cpu")
    if len(ppc) > 1:
        sec.plots.append(
            Plot("overhead_vs_procs_per_cpu", "Overhead against processes per CPU (the 6-ASID cliff)",
                 _line_plot(ctx, pf[pf["procs_per_cpu"].notna()], "procs_per_cpu",
                            "processes per CPU", float(ASID_SLOTS)), src)
        )  # fmt: skip
    elif not ppc:
        sec.notes.append(
            "Overhead against processes per CPU skipped: no run has a procs_per_cpu parameter."
        )
    else:
        sec.notes.append(
            f"Overhead against processes per CPU skipped: every compared run has "
            f"procs_per_cpu={_one(ppc)}."
        )
    for dim, title, names, slug in (
        ("pcid", "PCID against no PCID", ("no PCID", "PCID"), "pcid"),
        ("pti", "PTI against no PTI", ("no PTI", "PTI"), "pti"),
    ):
        vals = distinct(dim)
        if len(vals) < 2:
            why = f"every compared run has {dim}={_one(vals)}" if vals else f"{dim} is unknown"
            sec.notes.append(f"{title} skipped: {why}.")
            continue
        png = _bar_plot(ctx, pf, dim, names)
        if png is None:
            sec.notes.append(
                f"{title} skipped: runs have {dim} on and off but never at otherwise equal points."
            )
            continue
        sec.plots.append(Plot(f"overhead_{slug}", title, png, src))
    return sec


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _one(vals: list[Any]) -> str:
    return _fmt_dim(vals[0]) if vals else "?"


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


# ---------------------------------------------------------------------------
# Build and render


def build_report(ds: Dataset, baseline: str = "shared", dump: int = -1) -> Report:
    """Assemble every section of the report from a loaded Dataset."""
    meta_all = ds.runs_frame()
    if meta_all.empty:
        raise UsageError("no runs to report on: the directories hold no stats.txt")
    warnings = list(ds.warnings)
    usable = []
    for run in meta_all["run"]:
        complete = [s.index for s in ds.dumps[run] if not s.partial]
        ok = dump in complete if dump >= 0 else len(complete) >= -dump
        if ok:
            usable.append(run)
        else:
            warnings.append(
                f"{ds.runs[run].stats_path}: no complete dump {dump} "
                f"({len(complete)} complete dumps); run left out of the tables"
            )
    if not usable:
        which = "the last complete dump" if dump == -1 else f"complete dump {dump}"
        raise UsageError(
            f"--dump {dump}: expected runs with {which}, got none among "
            f"{_plural(len(meta_all), 'run')}"
        )
    meta = meta_all[meta_all["run"].isin(usable)]
    ordered = sorted(
        meta_all["run"],
        key=lambda r: (
            ds.runs[r].workload,
            ds.runs[r].point,
            ds.runs[r].scheme != baseline,
            ds.runs[r].scheme,
            -1 if ds.runs[r].seed is None else ds.runs[r].seed,
            r,
        ),
    )
    ids = {r: f"R{i}" for i, r in enumerate(ordered, start=1)}
    schemes = sorted(set(meta_all["scheme"]), key=lambda s: (s != baseline, s))
    ctx = _Ctx(ds, baseline, dump, meta, ids, _make_labels(meta_all, ds), schemes)
    usable_rows = ds.frame[ds.frame["run"].isin(usable)]
    ctx.frame = pick_dump(usable_rows, dump).reset_index(drop=True)
    overhead, summary, time_patterns = _overhead_section(ctx)
    sections = [
        overhead,
        _cycles_section(ctx),
        _roots_section(ctx),
        _bounds_section(ctx),
        _cache_section(ctx),
        _plots_section(ctx, summary, time_patterns),
        _per_run_section(ctx),
        _sources_section(ctx),
    ]
    hosts = sorted(set(meta_all["host"]))
    n_runs, n_points = len(meta_all), meta_all["point"].nunique()
    summary_lines = [
        (
            f"{_plural(n_runs, 'run')} ({', '.join(hosts)}), "
            f"{_plural(n_points, 'workload point')}, schemes: {', '.join(schemes)}; "
            f"baseline `{baseline}`."
        ),
        f"Tables use {ctx.dump_text()}.",
    ]
    return Report("percpu report", summary_lines, warnings, sections)


_MD = jinja2.Environment(autoescape=False, keep_trailing_newline=True, trim_blocks=True,
                         lstrip_blocks=True)  # fmt: skip
_HTML = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_MD.filters["cell"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")

_MD_TEMPLATE = """\
# {{ r.title }}

{% for line in r.summary %}
{{ line }}
{% endfor %}

{% if r.warnings %}
## Warnings

{% for w in r.warnings %}
- {{ w }}
{% endfor %}

{% endif %}
{% for s in r.sections %}
## {{ s.title }}

{% if s.intro %}
{{ s.intro }}

{% endif %}
{% for t in s.tables %}
**{{ t.title }}**

| {{ t.columns | map("cell") | join(" | ") }} |
|{% for c in t.columns %} --- |{% endfor %}

{% for row in t.rows %}
| {{ row | map("cell") | join(" | ") }} |
{% endfor %}

*Source: {{ t.source }}*

{% endfor %}
{% for p in s.plots %}
**{{ p.title }}**

![{{ p.title }}](plots/{{ p.slug }}.png)

*Source: {{ p.source }}*

{% endfor %}
{% for n in s.notes %}
- {{ n }}
{% endfor %}
{% if s.notes %}

{% endif %}
{% endfor %}
"""

_HTML_TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ r.title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #eee; padding-bottom: .2rem; }
nav ul { columns: 2; }
.scroll { overflow-x: auto; margin: .6rem 0; }
table { border-collapse: collapse; font-size: .86rem; }
th, td { border: 1px solid #d0d0d0; padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
tr:nth-child(even) td { background: #fafafa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.source { font-size: .8rem; color: #555; margin: .2rem 0 1.2rem; }
.warn { background: #fff4e5; border-left: 4px solid #f0a020; padding: .5rem 1rem; }
code { background: #f3f4f6; padding: 0 .2rem; border-radius: 3px; font-size: .85em; }
figure { margin: 1rem 0 1.5rem; } figure img { max-width: 100%; height: auto; }
figcaption { font-weight: 600; margin-bottom: .3rem; }
</style>
</head>
<body>
<h1>{{ r.title }}</h1>
{% for line in r.summary %}<p>{{ line | md }}</p>
{% endfor %}
<nav><ul>
{% if r.warnings %}<li><a href="#warnings">Warnings</a></li>{% endif %}
{% for s in r.sections %}<li><a href="#{{ s.anchor }}">{{ s.title }}</a></li>
{% endfor %}
</ul></nav>
{% if r.warnings %}
<h2 id="warnings">Warnings</h2>
<div class="warn"><ul>{% for w in r.warnings %}<li>{{ w | md }}</li>{% endfor %}</ul></div>
{% endif %}
{% for s in r.sections %}
<h2 id="{{ s.anchor }}">{{ s.title }}</h2>
{% if s.intro %}<p>{{ s.intro | md }}</p>{% endif %}
{% for t in s.tables %}
<h3>{{ t.title }}</h3>
<div class="scroll"><table>
<thead><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in t.rows %}<tr>{% for c in row %}<td{% if c | isnum %} class="num"{% endif %}>{{ c | md }}</td>{% endfor %}</tr>
{% endfor %}
</tbody></table></div>
<p class="source">Source: {{ t.source | md }}</p>
{% endfor %}
{% for p in s.plots %}
<figure><figcaption>{{ p.title }}</figcaption>
<img alt="{{ p.title }}" src="data:image/png;base64,{{ p.png | b64 }}">
<p class="source">Source: {{ p.source | md }}</p></figure>
{% endfor %}
{% if s.notes %}<ul>{% for n in s.notes %}<li>{{ n | md }}</li>{% endfor %}</ul>{% endif %}
{% endfor %}
</body>
</html>
"""


def _inline_md(text: str) -> Any:
    """Escape, then turn `code` and **bold** into tags (the only markup the report uses)."""
    out = html.escape(str(text))
    parts = out.split("`")
    out = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    parts = out.split("**")
    out = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    return markupsafe.Markup(out)


def _is_num(text: str) -> bool:
    t = str(text).replace(",", "").replace(" %", "").replace("+", "").strip()
    t = t.split(" (")[0].rstrip("kMGT ").strip()
    try:
        float(t)
    except ValueError:
        return t == "—"
    return True


_HTML.filters["md"] = _inline_md
_HTML.filters["b64"] = lambda b: base64.b64encode(b).decode("ascii")
_HTML.filters["isnum"] = _is_num


def render_markdown(report: Report) -> str:
    return _MD.from_string(_MD_TEMPLATE).render(r=report)


def render_html(report: Report) -> str:
    return _HTML.from_string(_HTML_TEMPLATE).render(r=report)


def _atomic_write(path: Path, data: bytes) -> None:
    write_atomic(path, data)


def parse_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """ "md,html" or ["md", "html"] -> ("md", "html"); UsageError for anything else."""
    items = formats.split(",") if isinstance(formats, str) else [
        f for item in formats for f in str(item).split(",")
    ]  # fmt: skip
    out = tuple(dict.fromkeys(f.strip().lower() for f in items if f.strip()))
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise UsageError(
            f"--format: expected a comma-separated list of {', '.join(FORMATS)}, "
            f"got {','.join(bad) or 'nothing'}"
        )
    return out


def write_report(
    dirs: Sequence[str | os.PathLike[str]],
    baseline: str = "shared",
    out: str | os.PathLike[str] = Path("percpu-report"),
    formats: str | Sequence[str] = FORMATS,
    *,
    dump: int = -1,
    allow_partial: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write the report for the runs under dirs into the directory out.

    Produces out/report.md with out/plots/*.png, and/or out/report.html with
    the plots embedded. Returns the paths written. Every input is read and
    every output rendered before the first file is written, and each file is
    replaced atomically, so bad input (UsageError, exit 2 on the CLI) leaves
    no half-written report behind.
    """
    fmts = parse_formats(formats)
    if not dirs:
        raise UsageError("expected at least one run directory, got none")
    ds = load_dataset(dirs, allow_partial=allow_partial)
    report = build_report(ds, baseline=baseline, dump=dump)
    outputs: list[tuple[Path, bytes]] = []
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: expected a directory for the report, got a file")
    if "md" in fmts:
        outputs.append((out_dir / "report.md", render_markdown(report).encode("utf-8")))
        for sec in report.sections:
            for p in sec.plots:
                outputs.append((out_dir / "plots" / f"{p.slug}.png", p.png))
    if "html" in fmts:
        outputs.append((out_dir / "report.html", render_html(report).encode("utf-8")))
    written: list[Path] = []
    for path, data in outputs:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, data)
        written.append(path)
        if progress is not None:
            progress(str(path))
    return written
