"""The report's view of a dataset: runs grouped by workload point and scheme, their labels,
the stat values per run and the source line under every table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from percpu.analysis.report.stat_names import Candidates
from percpu.analysis.tidy import (
    Dataset,
    normalise_name,
    select,
)


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
    dims: dict[str, Any] = {"workload": info.workload, "host": info.host}
    for k, v in info.machine.items():
        dims[k] = v
    for k, v in info.params.items():
        dims[k] = v
    return dims


def _make_labels(meta: pd.DataFrame, ds: Dataset) -> dict[str, str]:
    """Point labels: the workload plus every dimension that varies between the points of
    that workload (pingpong's points are not labelled with ctxmix's parameters)."""
    dims = {p: _dims(g.iloc[0], ds) for p, g in meta.groupby("point", sort=False)}
    keys: list[str] = []
    for d in dims.values():
        for k in d:
            if k not in keys:
                keys.append(k)
    varying: dict[str, list[str]] = {}
    for workload in {d["workload"] for d in dims.values()}:
        mine = [d for d in dims.values() if d["workload"] == workload]
        varying[workload] = [k for k in keys if k != "workload"
                             and len({repr(d.get(k)) for d in mine}) > 1]
    labels: dict[str, str] = {}
    for p, d in dims.items():
        # A dimension this point's host does not have (gem5's mode and cpu_type on an
        # engine run) is left out rather than shown as unknown.
        bits = [f"{k}={_fmt_dim(d.get(k))}" for k in varying[d["workload"]]
                if d.get(k) is not None]
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


def _mean_by_group(ctx: _Ctx, values: pd.Series, how: str = "mean") -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for point, scheme, runs in _group_rows(ctx):
        xs = [float(values[r]) for r in runs if r in values.index and not pd.isna(values[r])]
        if xs:
            out[(point, scheme)] = max(xs) if how == "max" else sum(xs) / len(xs)
    return out


def _used_dumps(ctx: _Ctx) -> dict[str, int]:
    out: dict[str, int] = {}
    for run in ctx.meta["run"]:
        complete = [s.index for s in ctx.ds.dumps[run] if not s.partial]
        if ctx.dump >= 0:
            out[run] = ctx.dump
        elif len(complete) >= -ctx.dump:
            out[run] = complete[ctx.dump]
    return out
