"""Replay: turn a recorded trace into an op program (docs/op-program.md, docs/traces.md).

The program reproduces, per CPU, the order in which the traced command's threads (and
other user processes between them) ran, with the page faults, memory-map syscalls, forks
and execs of each thread placed in the run where they happened:

- one engine task ("actor") per (thread, address space, CPU): a thread that ran on three
  CPUs becomes three tasks of its process's mm, handing over with wait/signal, because
  the engine cannot move a sleeping task to another CPU without running it there;
- a run waits for the run before it on its CPU and for the thread's previous run, and
  signals its successors when it ends: the chains reproduce the switching order; a task
  that runs again on the same CPU after idle time sleeps for that time;
- cross-thread dependencies on VMAs (one thread maps or unmaps what another touches) get
  wait/signal edges too, so the engine can never see an access before its mmap;
- `compute` stands for each run's measured duration, in cycles of the run's clock
  (machine.freq_mhz; the engine's default when none is given) unless timing=False.

Deterministic: the same trace and arguments give the same text. Bounded: max_ops caps the
ops; what was sampled or cut is said in the program's header comments.

One concept per module: records and vma_model (the data), runs (run derivation), graph
(the wait/signal graph), lineage (VMA lineage simulation), emit (the program text),
builder (the four together), from_snapshot, program (trace_to_program and its bisection).
"""

from percpu.trace.replay.constants import DEFAULT_MAX_OPS
from percpu.trace.replay.from_snapshot import snapshot_program
from percpu.trace.replay.program import trace_to_program

__all__ = ["DEFAULT_MAX_OPS", "snapshot_program", "trace_to_program"]
