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
