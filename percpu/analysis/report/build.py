"""build_report: every section of the report for one dataset, against a baseline scheme."""

from __future__ import annotations

from percpu.analysis.report.context import _Ctx, _make_labels
from percpu.analysis.report.model import Report
from percpu.analysis.report.numbers import _plural
from percpu.analysis.report.plots import _plots_section
from percpu.analysis.report.sections import (
    _bounds_section,
    _cache_section,
    _cycles_section,
    _overhead_section,
    _per_run_section,
    _roots_section,
    _sources_section,
)
from percpu.analysis.tidy import (
    Dataset,
    pick_dump,
)
from percpu.errors import UsageError
from percpu.text import natural_key

# ---------------------------------------------------------------------------
# Build and render


def build_report(ds: Dataset, baseline: str = "shared", dump: int = -1, *,
                 require_baseline: bool = False) -> Report:
    """Assemble every section of the report from a loaded Dataset. require_baseline: the
    user named the baseline, so a scheme no run has is an error (else the report has no
    overhead against it)."""
    meta_all = ds.runs_frame()
    if meta_all.empty:
        raise UsageError("no runs to report on: the directories hold no stats.txt")
    known = sorted(set(meta_all["scheme"]))
    if require_baseline and baseline not in known:
        raise UsageError(f"--baseline {baseline}: no run has that scheme; the runs' schemes "
                         f"are {', '.join(known)}: pass one of them")
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
            natural_key(ds.runs[r].workload),
            natural_key(ds.runs[r].point),
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
