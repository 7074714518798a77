"""Repetition until stable, the spread, and malformed program output."""

import pytest

from percpu.calibrate.measure import Measurement, measure, parse_samples
from percpu.errors import UsageError


def fake(batches):
    it = iter(batches)

    def runner(cmd, timeout):
        return "".join(f"calib x {v} ns\n" for v in next(it))
    return runner


def test_stops_once_the_median_stops_moving():
    got = measure(["prog"], runner=fake([[100, 101, 99], [100, 100, 102], [500] * 3]),
                  tolerance=0.03)
    m = got["x"]
    assert m.stable and m.runs == 2 and len(m.samples) == 6
    assert m.value == pytest.approx(100, abs=1)


def test_gives_up_after_the_run_budget_and_says_so():
    batches = [[100 * (i + 1)] * 3 for i in range(10)]
    m = measure(["prog"], runner=fake(batches), max_runs=4)["x"]
    assert not m.stable and m.runs == 4


def test_spread_is_the_interquartile_range_over_the_median():
    m = Measurement("x", "ns", samples=[90, 95, 100, 105, 110])
    assert m.value == 100 and m.spread == pytest.approx(0.10)
    clock = Measurement("c", "MHz", samples=[1000, 3000, 3900, 3950, 4000], statistic="p90")
    assert clock.value > 3950  # preempted samples read slow: the clock is a high percentile


def test_malformed_output_is_one_clear_error():
    with pytest.raises(UsageError, match="printed no samples"):
        parse_samples("hello\n", "calib_x")
    with pytest.raises(UsageError, match="malformed"):
        parse_samples("calib x fast ns\n", "calib_x")
