"""The fit recovers known costs from timings the engine itself generates."""

import random

import pytest

from percpu.calibrate import fit as fitting
from percpu.calibrate.programs import FIT_KEYS, rows

SIZES = {"L1D": 24 * 1024, "L2": 512 * 1024, "LLC": 4 << 20, "DRAM": 64 << 20}
GEOMETRY = {"cache.l1d.size_kib": 48, "cache.l1d.ways": 12, "cache.l2.size_kib": 1024,
            "cache.l2.ways": 16, "cache.llc.size_kib": 32768, "cache.llc.ways": 16}


@pytest.fixture(scope="module")
def table():
    return rows(SIZES, 2)


@pytest.fixture(scope="module")
def base():
    return fitting.engine_values(GEOMETRY, 2)


@pytest.fixture(scope="module")
def system(table, base):
    names = {name for row in table for name, _ in row.measured}
    return fitting.prepare(table, names, base, FIT_KEYS)


@pytest.mark.parametrize("seed", [1, 2])
def test_fit_recovers_costs_the_engine_generated(table, base, system, seed):
    rng = random.Random(seed)
    truth = dict(base)
    for key in FIT_KEYS:
        truth[key] = float(round(base[key] * rng.uniform(0.5, 2.0)))
    truth["cache.l1d.latency"] = max(truth["cache.l1d.latency"], 2.0)
    measured = {k: (v, 0.02) for k, v in fitting.synthetic_measurements(table, truth).items()}
    result = fitting.solve(system, measured)
    assert result.rank == len(system.used) == len(FIT_KEYS)
    for key in FIT_KEYS:
        assert result.values[key] == pytest.approx(truth[key], rel=0.05, abs=2), key
    fitted_rows = [r for r in result.rows if r.fitted]
    assert all(r.after == pytest.approx(r.measured, rel=0.03) for r in fitted_rows)


def test_fit_at_the_starting_values_stays_there(table, base, system):
    measured = {k: (v, 0.02) for k, v in fitting.synthetic_measurements(table, base).items()}
    result = fitting.solve(system, measured)
    for key in FIT_KEYS:
        assert result.values[key] == pytest.approx(base[key], rel=0.03, abs=1), key


def test_one_timing_is_not_one_entry(system):
    """The pipe ping-pong contains syscalls, wake-ups and switches at once."""
    pipe = next(lin for row, lin in system.rows if row.name == "pipe_proc")
    assert pipe.slope["cost.syscall"] == pytest.approx(4)
    assert pipe.slope["cost.wakeup"] == pytest.approx(2)
    assert pipe.slope["cost.ctx_switch"] == pytest.approx(2)
    assert pipe.slope["cost.switch_mm"] == pytest.approx(2)
    read = next(lin for row, lin in system.rows if row.name == "fault_read")
    write = next(lin for row, lin in system.rows if row.name == "fault_write")
    assert write.slope["cost.zero_page"] > 1  # the page and, now and then, a page table
    assert read.slope.get("cost.zero_page", 0) < 0.01  # the zero page: nothing zeroed


def test_a_check_row_is_reported_not_fitted(table, base, system):
    truth = dict(base)
    measured = {k: (v, 0.02) for k, v in fitting.synthetic_measurements(table, truth).items()}
    measured["pipe_cross"] = (measured["pipe_cross"][0] * 50, 0.02)  # idle wake-ups of a VM
    result = fitting.solve(system, measured)
    assert result.values["cost.wakeup"] == pytest.approx(base["cost.wakeup"], rel=0.03)
    cross = next(r for r in result.rows if r.name == "pipe_cross")
    assert not cross.fitted and cross.measured > 10 * cross.after


def test_missing_measurements_leave_entries_unfitted(table, base):
    measured = {"syscall": (500.0, 0.02)}
    result = fitting.fit(table, measured, base)
    assert result.values == {"cost.syscall": 500.0}
    assert "cost.ctx_switch" in result.unfitted


def test_bounded_lstsq_keeps_entries_in_range():
    import numpy as np

    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    b = np.array([10.0, 5.0])  # unconstrained: x = (10, -5)
    x = fitting.bounded_lstsq(a, b, np.zeros(2), np.full(2, 100.0))
    assert x[1] == 0.0 and 5.0 <= x[0] <= 10.0
