"""Runs a microbenchmark until its figures are stable, and reports them with their spread.

A run of a calibration program prints one line per sample, "calib NAME VALUE UNIT".
Runs are repeated until, for every figure the program prints, the statistic over all
samples so far moved by less than the tolerance since the previous run (or the run or
time budget is spent: the figure is then marked unstable). The spread is the
interquartile range over the median.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from percpu.errors import UsageError

Runner = Callable[[Sequence[str], float], str]


@dataclass
class Measurement:
    name: str
    unit: str
    samples: list[float] = field(default_factory=list)
    runs: int = 0
    stable: bool = False
    seconds: float = 0.0
    # median for times; p90 for the clock (a preempted sample only ever reads slower)
    statistic: str = "median"

    def _q(self, q: float) -> float:
        return float(np.percentile(self.samples, q)) if self.samples else float("nan")

    @property
    def value(self) -> float:
        return self._q(90 if self.statistic == "p90" else 50)

    @property
    def p25(self) -> float:
        return self._q(25)

    @property
    def p75(self) -> float:
        return self._q(75)

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median."""
        med = self._q(50)
        return abs(self.p75 - self.p25) / abs(med) if med else float("inf")


def parse_samples(text: str, source: str) -> dict[str, tuple[list[float], str]]:
    out: dict[str, tuple[list[float], str]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[0] != "calib":
            continue
        try:
            value = float(parts[2])
        except ValueError:
            raise UsageError(f"{source} printed a malformed sample line: {line!r}") from None
        out.setdefault(parts[1], ([], parts[3]))[0].append(value)
    if not out:
        raise UsageError(f"{source} printed no samples (expected 'calib NAME VALUE UNIT' lines)")
    return out


def run_program(cmd: Sequence[str], timeout: float) -> str:
    try:
        done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(f"{cmd[0]} did not finish within {timeout:.0f} s: the machine is "
                         "too loaded, or use --quick") from None
    except OSError as exc:
        raise UsageError(f"cannot run {cmd[0]}: {exc.strerror}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise UsageError(f"{' '.join(cmd)} failed: {last}")
    return done.stdout


def measure(cmd: Sequence[str], *, tolerance: float = 0.03, min_runs: int = 2,
            max_runs: int = 6, max_seconds: float = 10.0, statistic: str = "median",
            timeout: float = 120.0, runner: Runner = run_program) -> dict[str, Measurement]:
    """Run cmd until every figure it prints is stable; name -> Measurement."""
    start = time.perf_counter()
    found: dict[str, Measurement] = {}
    previous: dict[str, float] = {}
    for run in range(1, max_runs + 1):
        for name, (values, unit) in parse_samples(runner(cmd, timeout), cmd[0]).items():
            m = found.setdefault(name, Measurement(name, unit, statistic=statistic))
            m.samples.extend(values)
            m.runs = run
        moved = {name: abs(m.value - previous[name]) / abs(m.value) if name in previous and m.value
                 else float("inf") for name, m in found.items()}
        for name, m in found.items():
            m.stable = run >= min_runs and moved[name] < tolerance
            previous[name] = m.value
        elapsed = time.perf_counter() - start
        if all(m.stable for m in found.values()) or elapsed > max_seconds:
            break
    elapsed = time.perf_counter() - start
    for m in found.values():
        m.seconds = elapsed
    return found


def measurements_from_text(text: str, source: str, min_samples: int = 3) -> dict[str, Measurement]:
    """Measurements from sample lines captured elsewhere (a gem5 guest's console): one
    run; a figure with fewer than min_samples samples is marked unstable."""
    out = {}
    for name, (values, unit) in parse_samples(text, source).items():
        statistic = "p90" if name == "core_mhz" else "median"
        out[name] = Measurement(name, unit, list(values), 1, len(values) >= min_samples,
                                0.0, statistic)
    return out
