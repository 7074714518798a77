"""`percpu trace record`: run a real command under perf (and optionally valgrind lackey) and
write one `percpu-trace 1` file (docs/traces.md).

perf records system-wide (-a) so that every context switch on every CPU is seen; the
command's own tasks are picked out afterwards (its process tree, followed through fork
events from the pid that a tiny /bin/sh wrapper writes before it execs the command).
Event sources, best first:

- tracepoints: sched:sched_switch, sched:sched_process_fork/exec/exit, the page-fault
  tracepoint exceptions:page_fault_user (address and error code), and the mmap, munmap,
  mprotect and brk syscall tracepoints; plus perf's switch records, whose IN records stand
  in for the switches from the idle task that some kernels never emit;
- software events, when tracefs is not available: context-switch records
  (--switch-events), task records (fork, exit, comm on exec) and one page-faults sample
  per fault (-c 1 -d: the address, no error code).

The trace header says which sources were used.

One concept per module: probe (what perf can record here), proc (/proc helpers),
perf_script (parsing perf's output), build (raw events to a Trace), lackey (memory
accesses), command (record() itself).
"""

from percpu.trace.record.build import build_trace
from percpu.trace.record.command import RecordResult, default_out, record
from percpu.trace.record.lackey import _Stream, parse_lackey_log, run_lackey
from percpu.trace.record.perf_script import parse_perf_script
from percpu.trace.record.probe import (
    Sources,
    find_perf,
    probe_sources,
    probe_sources_uncached,
)
from percpu.trace.record.proc import is_kernel_thread, parse_maps, read_maps

__all__ = [
    "RecordResult",
    "Sources",
    "_Stream",
    "build_trace",
    "default_out",
    "find_perf",
    "is_kernel_thread",
    "parse_lackey_log",
    "parse_maps",
    "parse_perf_script",
    "probe_sources",
    "probe_sources_uncached",
    "read_maps",
    "record",
    "run_lackey",
]
