"""Each scheme against the baseline at the same workload point, with 95 % confidence
intervals over seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from percpu.analysis.tidy.dataset import Dataset
from percpu.analysis.tidy.queries import run_value

# Two-sided 95 % t quantiles (from scipy.stats.t.ppf(0.975, df)). A table rather
# than scipy: importing scipy.stats costs seconds, and the report must not depend
# on what happens to be installed. Between entries, t is nearly linear in 1/df
# (interpolation error below 2e-5).
_T975 = {
    1: 12.706205, 2: 4.302653, 3: 3.182446, 4: 2.776445, 5: 2.570582, 6: 2.446912,
    7: 2.364624, 8: 2.306004, 9: 2.262157, 10: 2.228139, 11: 2.200985, 12: 2.178813,
    13: 2.160369, 14: 2.144787, 15: 2.131450, 16: 2.119905, 17: 2.109816, 18: 2.100922,
    19: 2.093024, 20: 2.085963, 21: 2.079614, 22: 2.073873, 23: 2.068658, 24: 2.063899,
    25: 2.059539, 26: 2.055529, 27: 2.051831, 28: 2.048407, 29: 2.045230, 30: 2.042272,
    35: 2.030108, 40: 2.021075, 45: 2.014103, 50: 2.008559, 60: 2.000298, 70: 1.994437,
    80: 1.990063, 90: 1.986675, 100: 1.983972, 120: 1.979930, 150: 1.975905, 200: 1.971896,
    300: 1.967903, 500: 1.964720, 1000: 1.962339,
}  # fmt: skip
_Z975 = 1.959964


def t_quantile_975(df: int) -> float:
    """The 97.5 % quantile of Student's t with df degrees of freedom (95 % two-sided)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df in _T975:
        return _T975[df]
    lo = max(k for k in _T975 if k < df)
    above = [k for k in _T975 if k > df]
    if not above:
        # t -> z as 1/df -> 0
        return _Z975 + (_T975[lo] - _Z975) * lo / df
    hi = min(above)
    w = (1 / df - 1 / hi) / (1 / lo - 1 / hi)
    return _T975[hi] + w * (_T975[lo] - _T975[hi])


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95 % t confidence interval (nan with fewer than 2 values)."""
    xs = [float(v) for v in values if not math.isnan(float(v))]
    if not xs:
        return math.nan, math.nan
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, math.nan
    var = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
    return mean, t_quantile_975(len(xs) - 1) * math.sqrt(var / len(xs))


def versus_baseline(
    dataset: Dataset,
    stat: str = "simTicks",
    component: str = "",
    *,
    baseline: str = "shared",
    dump: int = -1,
    values: pd.Series | None = None,
) -> pd.DataFrame:
    """Every non-baseline run against the baseline at the same workload point.

    The run's value of stat (system-wide, else summed over CPUs; or the given
    per-run values) is compared with the baseline run of the same seed at the
    same point, or with the mean of the point's baseline runs when no seed
    matches. Columns: run, point, scheme, seed, value, baseline_value,
    baseline_runs, ratio, overhead_pct (100 x (value / baseline - 1)).
    Runs whose point has no baseline run are left out.
    """
    vals = values if values is not None else run_value(dataset.frame, stat, component, dump=dump)
    meta = dataset.runs_frame()
    meta = meta[meta["run"].isin(vals.index)].copy()
    meta["value"] = meta["run"].map(vals)
    rows = []
    for _point, group in meta.groupby("point", sort=False):
        base = group[group["scheme"] == baseline]
        if base.empty:
            continue
        base_mean = float(base["value"].mean())
        by_seed = {int(s): r for s, r in zip(base["seed"], base["run"]) if not pd.isna(s)}
        for _, r in group[group["scheme"] != baseline].iterrows():
            seed = r["seed"]
            if not pd.isna(seed) and int(seed) in by_seed:
                b_runs = [by_seed[int(seed)]]
                b_value = float(vals[by_seed[int(seed)]])
            else:
                b_runs = list(base["run"])
                b_value = base_mean
            ratio = r["value"] / b_value if b_value else math.nan
            rows.append(
                {
                    "run": r["run"],
                    "point": r["point"],
                    "scheme": r["scheme"],
                    "seed": r["seed"],
                    "value": r["value"],
                    "baseline_value": b_value,
                    "baseline_runs": tuple(b_runs),
                    "ratio": ratio,
                    "overhead_pct": 100.0 * (ratio - 1.0),
                }
            )
    cols = ["run", "point", "scheme", "seed", "value", "baseline_value", "baseline_runs",
            "ratio", "overhead_pct"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def summarise_vs_baseline(vs: pd.DataFrame) -> pd.DataFrame:
    """Mean overhead and its 95 % t interval per (point, scheme) over seeds.

    Columns: point, scheme, n, mean_pct, ci_half_pct (nan when n < 2),
    ci_low_pct, ci_high_pct, runs, baseline_runs.
    """
    rows = []
    for (point, scheme), g in vs.groupby(["point", "scheme"], sort=False):
        mean, half = mean_ci(list(g["overhead_pct"]))
        base_runs = sorted({b for t in g["baseline_runs"] for b in t})
        rows.append(
            {
                "point": point,
                "scheme": scheme,
                "n": len(g),
                "mean_pct": mean,
                "ci_half_pct": half,
                "ci_low_pct": mean - half,
                "ci_high_pct": mean + half,
                "runs": tuple(g["run"]),
                "baseline_runs": tuple(base_runs),
            }
        )
    cols = ["point", "scheme", "n", "mean_pct", "ci_half_pct", "ci_low_pct", "ci_high_pct",
            "runs", "baseline_runs"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)
