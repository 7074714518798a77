"""Which assumptions move the answer: each estimated parameter varied around its value.

At a workload point (workload, its parameters, the machine), every chosen parameter is
scaled by each factor (default 0.5x and 2x) with everything else held, both schemes are
run on the engine, and the overhead of percpu against shared (simulated time, simTicks,
in percent: the metric of `percpu run` and the report, docs/analysis.md) is recorded. The swing of a parameter is how far the overhead moves between its lowest
and highest setting, in percentage points; a tornado plot shows the swings sorted.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from percpu.atomic import write_atomic
from percpu.errors import UsageError

DEFAULT_FACTORS = (0.5, 2.0)
# A swing below this (percentage points of overhead over 0.5x..2x) does not matter.
MATTERS_PP = 0.1
# Parameters counted in whole units (cycles, entries): scaled values are rounded, and
# a value that rounds back onto the baseline is moved by one unit.
INTEGER_UNITS = ("cycles", "entries", "ways", "KiB", "levels", "cpus")


@dataclass(frozen=True)
class Point:
    """A workload point: the workload, its parameters and machine overrides."""

    label: str
    workload: str = "ctxmix"
    params: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, float] = field(default_factory=dict)


# The README's headline points (ctxmix on 4 CPUs).
README_POINTS = (
    Point("ctxmix, 4 CPUs, 4 processes per CPU", params={"procs_per_cpu": "4"}),
    Point("ctxmix, 4 CPUs, 7 processes per CPU (past the cliff)", params={"procs_per_cpu": "7"}),
    Point("ctxmix, 4 CPUs, 4 processes per CPU, --no-pcid", params={"procs_per_cpu": "4"},
          overrides={"machine.pcid": 0.0}),
)


@dataclass
class Swing:
    key: str
    base_value: float
    values: list[float]          # one per factor
    overheads: list[float]       # percent, one per factor
    baseline: float              # percent at base_value

    @property
    def low(self) -> float:
        return min([*self.overheads, self.baseline])

    @property
    def high(self) -> float:
        return max([*self.overheads, self.baseline])

    @property
    def swing(self) -> float:
        return self.high - self.low


@dataclass
class PointResult:
    point: Point
    baseline: float
    factors: tuple[float, ...]
    swings: list[Swing]

    def ranked(self) -> list[Swing]:
        return sorted(self.swings, key=lambda s: (-s.swing, s.key))


def estimated_keys() -> list[str]:
    """Every parameter whose source says it is an estimate."""
    from percpu.params import specs

    return [s.key for s in specs().values() if s.source.startswith("estimate")]


def choose_keys(text: str) -> list[str]:
    """--keys: 'estimates' (default), 'costs' (every cost.*), or a comma-separated list."""
    from percpu.params import specs

    spec = specs()
    if text == "estimates":
        return estimated_keys()
    if text == "costs":
        return [k for k in spec if k.startswith(("cost.", "cache.dram", "psc."))]
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise UsageError("--keys needs 'estimates', 'costs' or a list, e.g. cost.root_alloc")
    for key in keys:
        if key not in spec:
            raise UsageError(f"--keys: unknown parameter '{key}': run 'percpu params' for the list")
        if spec[key].unit == "bool" or key.startswith(("machine.", "check.", "fault.")):
            raise UsageError(f"--keys: {key} is a switch, not a cost to scale: "
                             "run the two settings as two points instead")
    return keys


def parse_factors(text: str) -> tuple[float, ...]:
    try:
        factors = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UsageError(f"--factors takes numbers, e.g. 0.5,2 (got '{text}')") from None
    if not factors or any(f <= 0 or f == 1 for f in factors):
        raise UsageError(f"--factors must be positive and not 1, e.g. 0.5,2 (got '{text}')")
    return factors


def scaled(key: str, base: float, factor: float) -> float:
    from percpu.params import specs

    spec = specs()[key]
    value = base * factor
    if spec.unit in INTEGER_UNITS:
        value = float(round(value))
        if value == base:
            value = base + (1 if factor > 1 else -1)
    return min(max(value, spec.min), spec.max)


def overhead(point: Point, overrides: dict[str, float], runner: Callable | None = None) -> float:
    """Overhead of percpu against shared at point, percent of shared's simulated time."""
    from percpu.runner import run_engine
    from percpu.workloads import find_workload

    wl = find_workload(point.workload)
    params = wl.resolve(dict(point.params))
    run = runner or run_engine
    ticks = {}
    for scheme in ("shared", "percpu"):
        result, _, _ = run(wl, params, scheme, {**point.overrides, **overrides})
        ticks[scheme] = result.stats["simTicks"]
    if not ticks["shared"]:
        raise UsageError(f"{point.label}: shared simulated no time; no overhead to compare")
    return (ticks["percpu"] - ticks["shared"]) / ticks["shared"] * 100.0


def analyse(point: Point, keys: Sequence[str], factors: Sequence[float] = DEFAULT_FACTORS,
            base: dict[str, float] | None = None,
            progress: Callable[[str], None] | None = None) -> PointResult:
    """Vary each key by each factor around its value at point (base: --config/--set)."""
    from percpu.params import specs

    spec = specs()
    base = dict(base or {})
    baseline = overhead(point, base)
    swings = []
    for key in keys:
        at = {**{k: s.default for k, s in spec.items()}, **point.overrides, **base}[key]
        values = [scaled(key, at, f) for f in factors]
        overheads = [overhead(point, {**base, key: v}) for v in values]
        swings.append(Swing(key, at, values, overheads, baseline))
        if progress:
            progress(f"  {key:28} {', '.join(f'{o:+.2f}%' for o in overheads)}")
    return PointResult(point, baseline, tuple(factors), swings)


# ---------------------------------------------------------------- outputs


def _factor(f: float) -> str:
    return f"{f:g}x"


def table_rows(result: PointResult) -> list[list[str]]:
    rows = []
    for s in result.ranked():
        rows.append([f"`{s.key}`", f"{s.base_value:g}",
                     *(f"{o:+.2f} % ({v:g})" for o, v in zip(s.overheads, s.values, strict=True)),
                     f"{s.swing:.2f}", "yes" if s.swing >= MATTERS_PP else "no"])
    return rows


def _header(result: PointResult) -> list[str]:
    return ["parameter", "value", *(f"overhead at {_factor(f)}" for f in result.factors),
            "swing (pp)", "matters"]


def markdown(results: Sequence[PointResult], note: str = "") -> str:
    lines = ["# Sensitivity of the overhead of percpu against shared", ""]
    if note:
        lines += [note, ""]
    lines += [(f"Each parameter is scaled by {', '.join(_factor(f) for f in results[0].factors)} "
              "with everything else held; the overhead is percpu's simulated time (simTicks) over "
              "shared's, minus one, at one seed (the same noise for every setting). The swing is the range of the overhead over the settings and the "
              f"baseline, in percentage points; 'matters' means a swing of at least "
              f"{MATTERS_PP} pp."), ""]
    if len(results) > 1:
        lines += summary_table(results) + [""]
    for r in results:
        lines += [f"## {r.point.label}", "",
                  f"Baseline overhead: {r.baseline:+.2f} %.", "",
                  f"![tornado plot: {r.point.label}](plots/{_slug(r.point.label)}.png)", ""]
        head = _header(r)
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + " --- |" * len(head))
        for row in table_rows(r):
            lines.append("| " + " | ".join(row) + " |")
        matters = [s.key for s in r.ranked() if s.swing >= MATTERS_PP]
        lines += ["", f"Sensitive to: {', '.join(matters) if matters else 'none of them'}.", ""]
    return "\n".join(lines)


def summary_table(results: Sequence[PointResult]) -> list[str]:
    """One row per parameter: its overhead range at every point, largest swing first."""
    keys = sorted({s.key for r in results for s in r.swings},
                  key=lambda k: -max(s.swing for r in results for s in r.swings if s.key == k))
    head = ["parameter", *(f"{r.point.label} (baseline {r.baseline:+.2f} %)" for r in results)]
    lines = ["## Summary: overhead range over the factors (swing in pp)", "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for key in keys:
        cells = [f"`{key}`"]
        for r in results:
            s = next((x for x in r.swings if x.key == key), None)
            cells.append("" if s is None else
                         f"{s.low:+.2f} .. {s.high:+.2f} % ({s.swing:.2f})")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _slug(label: str) -> str:
    out = "".join(c if c.isalnum() else "-" for c in label.lower())
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")


def tornado_png(result: PointResult, top: int = 15) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = result.ranked()[:top][::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(ranked) + 1.6))
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
    for i, s in enumerate(ranked):
        for j, (f, o) in enumerate(zip(result.factors, s.overheads, strict=True)):
            ax.barh(i, o - result.baseline, left=result.baseline, height=0.6,
                    color=colors[j % len(colors)], alpha=0.85,
                    label=_factor(f) if i == 0 else None)
    ax.axvline(result.baseline, color="black", linewidth=0.8)
    ax.set_yticks(range(len(ranked)))
    ax.set_yticklabels([s.key for s in ranked], fontsize=8)
    ax.set_xlabel("overhead of percpu vs shared (%)")
    ax.set_title(result.point.label, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def html_page(results: Sequence[PointResult], note: str = "") -> str:
    import base64

    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             ("<title>percpu sensitivity</title><style>body{font-family:sans-serif;max-width:"
             "60em;margin:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
             "padding:2px 6px;text-align:right}td:first-child{text-align:left}</style>"),
             "</head><body><h1>Sensitivity of the overhead of percpu against shared</h1>"]
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    for r in results:
        parts.append(f"<h2>{html.escape(r.point.label)}</h2>")
        parts.append(f"<p>Baseline overhead: {r.baseline:+.2f} %</p>")
        png = base64.b64encode(tornado_png(r)).decode()
        parts.append(f"<img alt='tornado plot' src='data:image/png;base64,{png}'>")
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in _header(r))
                     + "</tr>")
        for row in table_rows(r):
            parts.append("<tr>" + "".join(f"<td>{html.escape(c.strip('`'))}</td>" for c in row)
                         + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def csv_text(results: Sequence[PointResult]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["point", "workload", "params", "overrides", "key", "base_value", "factor",
                "value", "overhead_pct", "baseline_pct"])
    for r in results:
        for s in r.swings:
            for f, v, o in zip(r.factors, s.values, s.overheads, strict=True):
                w.writerow([r.point.label, r.point.workload,
                            " ".join(f"{k}={x}" for k, x in r.point.params.items()),
                            " ".join(f"{k}={x:g}" for k, x in r.point.overrides.items()),
                            s.key, f"{s.base_value:g}", f"{f:g}", f"{v:g}", f"{o:.4f}",
                            f"{r.baseline:.4f}"])
    return buf.getvalue()


def write_outputs(results: Sequence[PointResult], out: Path, formats: Sequence[str],
                  note: str = "") -> list[Path]:
    """sensitivity.md / .html, sensitivity.csv (every run's figure) and one tornado PNG
    per point under plots/; each file is written atomically."""
    try:
        (out / "plots").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write to --out {out}: {exc.strerror}") from None
    written: list[Path] = []
    for r in results:
        path = out / "plots" / f"{_slug(r.point.label)}.png"
        write_atomic(path, tornado_png(r))
        written.append(path)
    path = out / "sensitivity.csv"
    write_atomic(path, csv_text(results))
    written.append(path)
    if "md" in formats:
        path = out / "sensitivity.md"
        write_atomic(path, markdown(results, note))
        written.append(path)
    if "html" in formats:
        path = out / "sensitivity.html"
        write_atomic(path, html_page(results, note))
        written.append(path)
    return written


def summary(results: Sequence[PointResult]) -> dict[str, Any]:
    """key -> {point label: swing}: for docs and the README line."""
    out: dict[str, Any] = {}
    for r in results:
        for s in r.swings:
            out.setdefault(s.key, {})[r.point.label] = s.swing
    return out
