"""The core clock the measured times are converted at.

calib_clock times a chain of dependent adds (one cycle each); its 90th percentile is
taken, since a sample the scheduler or the hypervisor interrupted only ever reads
slower. The TSC rate is recorded beside it: under a hypervisor, or with frequency
scaling, the TSC is a fixed-rate timer and not a core cycle counter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from percpu.calibrate.measure import Measurement
from percpu.errors import UsageError


@dataclass(frozen=True)
class Clock:
    core_mhz: float
    core_spread: float
    tsc_mhz: float

    def cycles(self, ns: float) -> float:
        return ns * self.core_mhz / 1000.0


def clock_from(measurements: Mapping[str, Measurement]) -> Clock:
    core = measurements.get("core_mhz")
    if core is None or not core.samples or not core.value > 0:
        raise UsageError("calib_clock printed no core clock: cannot convert times to cycles")
    tsc = measurements.get("tsc_mhz")
    return Clock(core.value, core.spread, tsc.value if tsc and tsc.samples else 0.0)


def fixed_clock(mhz: float) -> Clock:
    """--clock-mhz: a clock given by the user instead of measured."""
    if not 100 <= mhz <= 10000:
        raise UsageError(f"--clock-mhz {mhz:g} is out of range: use 100..10000")
    return Clock(mhz, 0.0, 0.0)
