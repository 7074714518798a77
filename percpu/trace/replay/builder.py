"""The builder: one trace to one op program, through run derivation, the wait/signal
graph, the lineage simulation and emission (one mixin each)."""

from __future__ import annotations

from collections import defaultdict

from percpu.errors import UsageError
from percpu.trace.format import (
    Trace,
)
from percpu.trace.replay.emit import _EmitMixin
from percpu.trace.replay.graph import _GraphMixin
from percpu.trace.replay.lineage import _LineageMixin
from percpu.trace.replay.runs import _RunsMixin


class _Builder(_RunsMixin, _GraphMixin, _LineageMixin, _EmitMixin):
    def __init__(self, trace: Trace, ncpus: int, *, snapshot: Trace | None, timing: bool,
                 others: bool, fault_every: int, access_every: int, cutoff: int | None,
                 hoist: dict[int, list[tuple[int, int]]], source: str, freq_mhz: float):
        self.trace = trace
        self.freq_mhz = freq_mhz  # the clock compute and sleep cycles are counted at
        self.ncpus = ncpus
        self.snapshot = snapshot
        self.timing = timing
        self.others = others
        self.fault_every = fault_every
        self.access_every = access_every
        self.cutoff = cutoff
        self.hoist_in = hoist
        self.hoist_out: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self.source = source
        self.notes: list[str] = []
        self.counts: dict[str, int] = defaultdict(int)
        self.chan_n = 0
        self.vma_n = 0
        self.synced: dict[tuple[int, int], tuple[int, int, int]] = {}
        self.run_starts: dict[int, list[int]] = {}


    def build(self) -> str:
        tr = self.trace
        self.pid_of = {t.tid: t.pid for t in tr.tasks.values()}
        self.cls = {t.tid: t.cls for t in tr.tasks.values()}
        self.traced = {t.tid for t in tr.tasks.values() if t.cls == "c"}
        self.root = int(tr.meta.get("root_pid", min(self.traced) if self.traced else 0))
        self.duration = int(tr.meta.get("duration_ns", 0)) or max(
            (e.t for e in tr.events), default=0)
        if self.cutoff is not None:
            self.duration = min(self.duration, self.cutoff)
        if not self.traced:
            raise UsageError(f"{self.source}: the trace holds no task of the traced command "
                             "(no 'task ... c' line): record it again")
        self._epochs()
        self._runs()
        self._assign_items()
        self._drop_uncreated()
        self._actors()
        self._chains()
        self._simulate()
        return self._text()
