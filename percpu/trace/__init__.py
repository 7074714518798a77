"""From real runs to traces (docs/traces.md): record with perf and valgrind lackey, snapshot
live address spaces, replay traces as engine op programs.

`trace_to_program(path, ncpus)` is what `--workload trace:FILE` calls.
"""

from percpu.trace.format import Trace, TraceError, parse_trace, read_trace, write_trace
from percpu.trace.replay import DEFAULT_MAX_OPS, trace_to_program

__all__ = [
    "DEFAULT_MAX_OPS",
    "Trace",
    "TraceError",
    "parse_trace",
    "read_trace",
    "trace_to_program",
    "write_trace",
]
