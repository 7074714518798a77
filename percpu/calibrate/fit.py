"""Fits cost entries to measured timings through the engine itself.

A measured figure (cycles per iteration of a microbenchmark) contains several cost
entries at once. Each row of programs.py runs the same microbenchmark as an engine op
program; the engine is linear in its cost entries, so finite differences give, per row,
how many cycles each entry adds per iteration (the row of a design matrix). A weighted,
bounded least-squares solve then finds the entries that make every row's engine figure
match its measurement. Rows are weighted by 1 / (figure x relative spread): a noisy or
large figure counts for less.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from percpu.calibrate.programs import FIT_KEYS, Row
from percpu.errors import UsageError
from percpu.params import core, specs
from percpu.workloads.program import parse_program

MIN_SPREAD = 0.02  # a row is never trusted to better than 2 %


def engine_values(overrides: Mapping[str, float], cpus: int) -> dict[str, float]:
    values = {s.key: s.default for s in specs().values()}
    # The fit reads the engine as linear in its costs: without run-to-run noise (ticks,
    # jitter: docs/noise.md), which would blur the slopes; an override can turn it on.
    values["noise.enabled"] = 0.0
    values.update(overrides)
    values["machine.cpus"] = cpus
    return values


def _cpu(stats: Mapping[str, float], cpu: int, what: str) -> float:
    return stats.get(f"system.cpu{cpu}.{what}", 0.0)


def run_clock(text: str, values: Mapping[str, float], clock: str) -> tuple[float, dict]:
    """Run one op program on the engine and read the named clock, in cycles."""
    cpus = int(values["machine.cpus"])
    program = parse_program(text, cpus, source="calibration program")
    try:
        out = core().run(dict(values), "shared", check=False, record_log=False,
                         **program.core_args())
    except (ValueError, core().WorkloadError) as exc:  # any other exception is a bug (exit 3)
        raise UsageError(f"calibration program failed on the engine: {exc}") from None
    stats = {name: value for name, value, _, _ in out["stats"]}
    if clock == "elapsed":
        ticks = round(1e6 / values["machine.freq_mhz"])
        cycles = stats["simTicks"] / ticks
    elif clock == "busy0":
        cycles = _cpu(stats, 0, "numCycles") - _cpu(stats, 0, "cycles::idle")
    elif clock == "kernel1":
        cycles = (_cpu(stats, 1, "numCycles") - _cpu(stats, 1, "cycles::idle")
                  - _cpu(stats, 1, "cycles::user"))
    else:  # pragma: no cover - rows name one of the three
        raise ValueError(f"unknown clock {clock}")
    return cycles, stats


def _stat_sum(stats: Mapping[str, float], suffix: str) -> float:
    return sum(v for k, v in stats.items() if k.startswith("system.cpu") and k.endswith("." + suffix))


def marginal(row: Row, values: Mapping[str, float]) -> tuple[float, dict[str, float]]:
    """Engine cycles (and adjust-stat counts) per iteration of row, start-up cancelled."""
    assert row.text is not None
    n1, n2 = row.n
    results = []
    for n in (n1, n2):
        cycles, stats = run_clock(row.text(n), values, row.clock)
        counts = {stat: _stat_sum(stats, stat) for _, stat, _ in row.adjust}
        if row.minus is not None:
            minus, mstats = run_clock(row.minus(n), values, row.clock)
            cycles -= minus
            for stat in counts:
                counts[stat] -= _stat_sum(mstats, stat)
        results.append((cycles, counts))
    (c1, k1), (c2, k2) = results
    span = n2 - n1
    return (c2 - c1) / span, {s: (k2[s] - k1[s]) / span for s in k1}


def _step(key: str, value: float) -> float:
    return float(max(8, round(abs(value) * 0.5)))


@dataclass
class Linear:
    """A row around values: figure(c) = at + sum_k slope[k] x (c[k] - values[k])."""

    at: float
    slope: dict[str, float]


def linearize(row: Row, values: Mapping[str, float], keys: tuple[str, ...]) -> Linear:
    if row.analytic:
        at = sum(coef * values[k] for k, coef in row.analytic.items())
        return Linear(at, {k: c for k, c in row.analytic.items() if k in keys})
    at, counts = marginal(row, values)
    slope: dict[str, float] = {}
    for key in row.columns:
        if key not in keys:
            continue
        delta = _step(key, values[key])
        moved = dict(values)
        moved[key] = values[key] + delta
        m, _ = marginal(row, moved)
        if abs(m - at) > 1e-9:
            slope[key] = (m - at) / delta
    for key, stat, factor in row.adjust:
        count = counts.get(stat, 0.0) * factor
        at += count * values[key]
        if key in keys:
            slope[key] = slope.get(key, 0.0) + count
    return Linear(at, slope)


def bounded_lstsq(a: np.ndarray, b: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """min |a x - b| with low <= x <= high: least squares on the free variables,
    fixing the worst violator at its bound until none is left (enough here: the
    system is well determined and few entries hit a bound)."""
    n = a.shape[1]
    x = np.zeros(n)
    free = np.ones(n, dtype=bool)
    for _ in range(n + 1):
        rhs = b - a[:, ~free] @ x[~free]
        sol, *_ = np.linalg.lstsq(a[:, free], rhs, rcond=None)
        x[free] = sol
        over = np.where(free, np.maximum(low - x, x - high), -np.inf)
        worst = int(np.argmax(over))
        if over[worst] <= 1e-9:
            break
        x[worst] = np.clip(x[worst], low[worst], high[worst])
        free[worst] = False
    return np.clip(x, low, high)


@dataclass
class RowFit:
    name: str
    what: str
    measured: float      # cycles per iteration
    spread: float        # relative
    before: float        # the engine's figure with the starting values
    after: float         # with the fitted values
    slope: dict[str, float]
    fitted: bool = True  # False: a check beside the fit


@dataclass
class FitResult:
    values: dict[str, float]           # fitted entries (cycles), rounded
    rows: list[RowFit]
    unfitted: list[str]                # FIT_KEYS no row determined
    rank: int
    residual: float = 0.0              # weighted relative RMS after the fit
    notes: list[str] = field(default_factory=list)


@dataclass
class System:
    """The linearized rows of one fit, reusable for many sets of measurements."""

    rows: list[tuple[Row, Linear]]
    used: list[str]        # entries some row determines
    unfitted: list[str]    # entries asked for that no row determines
    values: dict[str, float]


class NothingToFit(UsageError):
    """No measured row determines a fitted entry (--only chose none): not an engine
    failure, which stays a plain UsageError."""


def prepare(rows: list[Row], available: set[str], values: Mapping[str, float],
            keys: tuple[str, ...] = FIT_KEYS) -> System:
    """Linearize the rows whose measurements are all available."""
    lins = [(row, linearize(row, values, keys)) for row in rows
            if all(name in available for name, _ in row.measured)]
    used = [k for k in keys
            if any(row.fitted and abs(lin.slope.get(k, 0.0)) > 1e-9 for row, lin in lins)]
    if not lins or not used:
        raise NothingToFit("no measurement to fit: run percpu calibrate without --only, "
                         "or with benchmarks that measure cost entries")
    return System(lins, used, [k for k in keys if k not in used], dict(values))


def _figure(row: Row, measured: Mapping[str, tuple[float, float]]) -> tuple[float, float]:
    figure = sum(sign * measured[name][0] for name, sign in row.measured)
    spread_abs = sum(abs(sign) * abs(measured[name][0]) * max(measured[name][1], MIN_SPREAD)
                     for name, sign in row.measured)
    return figure, (spread_abs / abs(figure) if figure else 1.0)


def solve(system: System, measured: Mapping[str, tuple[float, float]]) -> FitResult:
    """measured: name -> (cycles per iteration, relative spread)."""
    used = system.used
    figs = [_figure(row, measured) for row, _ in system.rows]
    a = np.array([[lin.slope.get(k, 0.0) for k in used] for _, lin in system.rows])
    start = np.array([system.values[k] for k in used])
    b = np.array([fig - lin.at for (fig, _), (_, lin) in zip(figs, system.rows, strict=True)])
    b = b + a @ start
    weight = np.array([1.0 / max(abs(fig) * max(sp, MIN_SPREAD), 1e-9) if row.fitted else 0.0
                       for (fig, sp), (row, _) in zip(figs, system.rows, strict=True)])
    spec = specs()
    low = np.array([max(spec[k].min, 1.0 if k == "cache.l1d.latency" else 0.0) for k in used])
    high = np.array([spec[k].max for k in used])
    aw = a * weight[:, None]
    x = bounded_lstsq(aw, b * weight, low, high)
    rank = int(np.linalg.matrix_rank(aw[weight > 0]))
    fitted = {k: float(round(v)) for k, v in zip(used, x, strict=True)}
    moved = np.array([fitted[k] for k in used]) - start
    out_rows, resid = [], []
    for (fig, sp), (row, lin), arow in zip(figs, system.rows, a, strict=True):
        after = lin.at + float(arow @ moved)
        out_rows.append(RowFit(row.name, row.what, fig, sp, lin.at, after, lin.slope,
                               row.fitted))
        if row.fitted:
            resid.append((after - fig) / max(abs(fig) * max(sp, MIN_SPREAD), 1e-9))
    result = FitResult(fitted, out_rows, list(system.unfitted), rank,
                       float(np.sqrt(np.mean(np.square(resid)))))
    if rank < len(used):
        result.notes.append(f"the rows determine only {rank} of {len(used)} entries: "
                            "some fitted values are one of many that fit equally well")
    return result


def fit(rows: list[Row], measured: Mapping[str, tuple[float, float]],
        values: Mapping[str, float], keys: tuple[str, ...] = FIT_KEYS) -> FitResult:
    """Fit keys so that each row's engine figure matches its measurement. Rows with a
    missing measurement are left out."""
    return solve(prepare(rows, set(measured), values, keys), measured)


def synthetic_measurements(rows: list[Row], values: Mapping[str, float]) -> dict[str, float]:
    """What each measurement would read if the machine were the engine at values: the
    fit's own test (it must recover values) and a check of a profile."""
    import dataclasses

    out: dict[str, float] = {}
    for row in rows:
        if row.analytic:
            out[row.measured[0][0]] = sum(c * values[k] for k, c in row.analytic.items())
            continue
        if row.minus is not None:
            (plus_name, _), (minus_name, _) = row.measured
            out[plus_name] = marginal(dataclasses.replace(row, minus=None), values)[0]
            out[minus_name] = marginal(dataclasses.replace(row, text=row.minus, minus=None),
                                       values)[0]
            continue
        lin = linearize(row, values, ())
        out[row.measured[0][0]] = lin.at
    return out
