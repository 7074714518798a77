"""The report's plots (matplotlib, PNG): overhead against each varying dimension."""

from __future__ import annotations

import io
import math
from typing import Any

import pandas as pd

from percpu.analysis.report.context import _Ctx, _dims, _fmt_dim, _source
from percpu.analysis.report.model import Plot, Section
from percpu.analysis.report.numbers import _one
from percpu.analysis.report.stat_names import ASID_SLOTS
from percpu.text import natural_key

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
                     "n": r.n, "runs": r.runs, "baseline_runs": r.baseline_runs})  # fmt: skip
    return pd.DataFrame(rows)


_NOT_DIMS = {"scheme", "mean", "half", "n", "runs", "baseline_runs", "workload"}
LABEL_CHARS = 44  # a label longer than this wraps onto more lines


def _missing(v: Any) -> bool:
    return v is None or (not isinstance(v, str | bool | tuple) and pd.isna(v))


def _labels(pf: pd.DataFrame, exclude: set[str]) -> list[str]:
    """Each row's series label: its scheme, its workload when there are several, and the
    dimensions that vary among its own workload's rows (pingpong's points are not labelled
    with ctxmix's parameters), never a dimension it does not have."""
    multi = "workload" in pf.columns and pf["workload"].nunique() > 1
    varying: dict[Any, list[str]] = {}
    for workload, g in pf.groupby("workload", sort=False) if "workload" in pf.columns else []:
        varying[workload] = [
            c for c in pf.columns if c not in _NOT_DIMS | exclude
            and g[c].map(lambda v: None if _missing(v) else repr(v)).dropna().nunique() > 1]
    out = []
    for _, row in pf.iterrows():
        dims = varying.get(row.get("workload"), [])
        bits = [f"{k}={_fmt_dim(row[k])}" for k in dims if not _missing(row[k])]
        head = f"{row['workload']} " if multi else ""
        out.append(f"{head}{row['scheme']}" + (f" ({', '.join(bits)})" if bits else ""))
    return out


def _by_series(pf: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The rows of each series, series in natural order (procs_per_cpu=2 before 10)."""
    keys = sorted(pf["_series"].unique(), key=natural_key)
    return [(str(k), pf[pf["_series"] == k]) for k in keys]


def _wrap(label: str) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(label, LABEL_CHARS, break_on_hyphens=False)) or label


def _figure(height: float = 4.2) -> tuple[Any, Any]:
    # The object API with an Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _bar_height(bars: int) -> float:
    """Figure height in inches for horizontal bars: room for every label, however many."""
    return max(2.6, 1.5 + 0.42 * bars)


def _line_plot(ctx: _Ctx, pf: pd.DataFrame, x: str, xlabel: str, cliff: float | None) -> bytes:
    from matplotlib.ticker import NullFormatter

    fig, ax = _figure()
    pf = pf.assign(_series=_labels(pf, {x}))
    for key, g in _by_series(pf):
        g = g.sort_values(x)
        line = ax.plot(g[x].astype(float), g["mean"], marker="o", label=_wrap(str(key)))[0]
        # Error bars only where there are seeds to give an interval (n >= 2).
        seeds = g[g["n"] >= 2]
        if not seeds.empty:
            ax.errorbar(seeds[x].astype(float), seeds["mean"], yerr=seeds["half"],
                        fmt="none", capsize=3, ecolor=line.get_color())
    xs = sorted({float(v) for v in pf[x]})
    if xs[0] > 0 and xs[-1] / xs[0] >= 10:  # values spanning a decade: a log axis
        powers = all(math.log2(v).is_integer() for v in xs)
        ax.set_xscale("log", base=2 if powers else 10)
        ax.xaxis.set_minor_formatter(NullFormatter())
    if len(xs) <= 16:
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
    """Overhead with dim off and on, side by side for each otherwise equal series: one
    horizontal pair of bars per series, so that its label has the room it needs."""
    pairs: list[tuple[str, pd.Series, pd.Series]] = []
    pf = pf.assign(_series=_labels(pf, {dim}))
    for key, g in _by_series(pf):
        on = g[g[dim].map(lambda v: _flag(v) is True)]
        off = g[g[dim].map(lambda v: _flag(v) is False)]
        if not on.empty and not off.empty:
            pairs.append((str(key), off.iloc[0], on.iloc[0]))
    if not pairs:
        return None
    fig, ax = _figure(_bar_height(len(pairs)))
    height = 0.38
    ys = list(range(len(pairs)))
    bars = ((-height / 2, names[0], [off for _, off, _ in pairs]),
            (height / 2, names[1], [on for _, _, on in pairs]))  # fmt: skip
    for offset, label, rows in bars:
        means = [float(r["mean"]) for r in rows]
        ax.barh([y + offset for y in ys], means, height, label=label)
        # Error bars only where there are seeds to give an interval (n >= 2).
        seeds = [(y + offset, float(r["mean"]), float(r["half"])) for y, r in zip(ys, rows)
                 if r["n"] >= 2 and not pd.isna(r["half"])]
        if seeds:
            ax.errorbar([m for _, m, _ in seeds], [y for y, _, _ in seeds],
                        xerr=[h for _, _, h in seeds], fmt="none", capsize=3, ecolor="black")
    ax.set_yticks(ys)
    ax.set_yticklabels([_wrap(p[0]) for p in pairs], fontsize=8)
    ax.invert_yaxis()  # the first series on top, as a table reads
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlabel(f"overhead vs {ctx.baseline} (%)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


MAX_CYCLE_BARS = 30  # beyond this many (point, scheme) bars, one bar per scheme


def cycle_breakdown_plot(bars: list[tuple[str, dict[str, float]]], categories: list[str],
                         what: str) -> bytes:
    """Stacked horizontal bars, one per (label, {category: cycles}), the categories in
    order from the left (user first, so the kernel-side rest lines up at the right)."""
    from matplotlib import colormaps
    from matplotlib.ticker import EngFormatter

    fig, ax = _figure(_bar_height(len(bars)) + 0.5)
    colours = colormaps["tab20"].colors
    left = [0.0] * len(bars)
    ys = list(range(len(bars)))
    for i, cat in enumerate(categories):
        widths = [values.get(cat, 0.0) for _, values in bars]
        if not any(widths):
            continue
        ax.barh(ys, widths, 0.6, left=left, label=cat, color=colours[i % len(colours)])
        left = [a + b for a, b in zip(left, widths)]
    ax.set_yticks(ys)
    ax.set_yticklabels([_wrap(label) for label, _ in bars], fontsize=8)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(EngFormatter())
    ax.set_xlabel(f"cycles, {what}")
    ax.grid(True, axis="x", alpha=0.3)
    # Below the bars, not beside them: the bars keep the figure's width.
    fig.legend(fontsize=7, loc="outside lower center", ncol=5, frameon=False)
    return _png(fig)


def _plots_section(ctx: _Ctx, summary: pd.DataFrame, time_patterns: list[str]) -> Section:
    sec = Section("Plots", "Mean overhead over seeds; error bars are 95 % confidence intervals, "
                  "where a point has two seeds or more. The cycle breakdown is plotted with "
                  "its table, above.")
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
