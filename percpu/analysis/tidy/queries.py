"""One-call questions of the tidy frame: a dump, selected stats, per-CPU sums, deltas."""

from __future__ import annotations

from typing import Any

import pandas as pd

# ---------------------------------------------------------------------------
# Queries


def pick_dump(df: pd.DataFrame, dump: int) -> pd.DataFrame:
    """Rows of one dump per run; negative dump counts back over complete dumps only."""
    if dump >= 0:
        return df[df["dump"] == dump]
    complete = df[~df["partial"]]
    if complete.empty:
        return complete
    order = complete.groupby("run", observed=True)["dump"].unique()
    wanted: dict[Any, int] = {}
    for run, dumps in order.items():
        ds = sorted(int(x) for x in dumps)
        if len(ds) >= -dump:
            wanted[run] = ds[dump]
    if not wanted:
        return complete.iloc[0:0]
    key = complete["run"].astype(object).map(wanted)
    return complete[complete["dump"] == key]


def select(
    df: pd.DataFrame,
    stat: str,
    component: str = "",
    *,
    dump: int | None = -1,
    cpu: str = "any",
) -> pd.DataFrame:
    """Rows of one stat ("walks", "rootAllocs::evicted") of one component.

    dump: a dump index, negative to count back over complete dumps (-1: the
    last complete one), None for all. cpu: "any", "per-cpu" (cpu not NA) or
    "global" (cpu NA).
    """
    name, _, bucket = stat.partition("::")
    rows = df[(df["stat"] == name) & (df["component"] == component) & (df["bucket"] == bucket)]
    if cpu == "per-cpu":
        rows = rows[rows["cpu"].notna()]
    elif cpu == "global":
        rows = rows[rows["cpu"].isna()]
    elif cpu != "any":
        raise ValueError(f"cpu must be 'any', 'per-cpu' or 'global', got {cpu!r}")
    if dump is not None:
        rows = pick_dump(rows, dump)
    return rows


def per_cpu_sum(df: pd.DataFrame, stat: str, component: str = "", *, dump: int = -1) -> pd.Series:
    """Sum of a per-CPU stat over every CPU (and core set), one value per run."""
    rows = select(df, stat, component, dump=dump, cpu="per-cpu")
    return rows.groupby("run", observed=True)["value"].sum(min_count=1)


def per_cpu_table(
    df: pd.DataFrame, stat: str, component: str = "", *, dump: int = -1
) -> pd.DataFrame:
    """A per-CPU stat as a run x cpu table (core sets summed)."""
    rows = select(df, stat, component, dump=dump, cpu="per-cpu")
    return rows.pivot_table(
        index="run", columns="cpu", values="value", aggfunc="sum", observed=True
    )


def global_value(df: pd.DataFrame, stat: str, component: str = "", *, dump: int = -1) -> pd.Series:
    """A system-wide stat (cpu NA), one value per run."""
    rows = select(df, stat, component, dump=dump, cpu="global")
    return rows.groupby("run", observed=True)["value"].sum(min_count=1)


def run_value(df: pd.DataFrame, stat: str, component: str = "", *, dump: int = -1) -> pd.Series:
    """A stat per run: the system-wide value, else the sum over CPUs."""
    out = global_value(df, stat, component, dump=dump)
    per_cpu = per_cpu_sum(df, stat, component, dump=dump)
    return out.combine_first(per_cpu) if not per_cpu.empty else out


def dump_delta(df: pd.DataFrame, first: int = 0, second: int = 1) -> pd.DataFrame:
    """value(second dump) - value(first dump) for every stat present in both.

    Useful when stats were dumped without a reset (cumulative counters). One
    row per (run, cpu, cpu_set, component, stat, bucket) with columns first,
    second and delta.
    """
    keys = ["run", "name"]
    a = df[df["dump"] == first].set_index(keys)["value"]
    b = df[df["dump"] == second].set_index(keys)["value"]
    meta = df[df["dump"] == second].set_index(keys)[
        ["cpu", "cpu_set", "component", "stat", "bucket"]
    ]
    out = pd.concat({"first": a, "second": b}, axis=1, join="inner")
    out["delta"] = out["second"] - out["first"]
    return meta.join(out, how="inner").reset_index()
