"""Run derivation: processes and their execs and forks as epochs, the scheduler switches as
runs per CPU, and each event (fault, memory-map call, access) placed in the run where it
happened."""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict

from percpu.trace.format import (
    Access,
    Exec,
    Fault,
    Fork,
    MemMap,
    Switch,
)
from percpu.trace.replay.records import Epoch, Run


class _RunsMixin:
    """Part of _Builder (builder.py): the runs methods; state lives on the builder."""

    def _epochs(self) -> None:
        """Processes, their execs and forks: one Epoch per address space."""
        tr = self.trace
        self.epochs: list[Epoch] = []
        self.epochs_of: dict[int, list[Epoch]] = defaultdict(list)
        self.proc_parent: dict[int, tuple[int, int]] = {}  # child pid -> (parent tid, t)
        self.thread_parent: dict[int, tuple[int, int]] = {}  # tid -> (creator tid, t)
        self.execs: list[Exec] = []
        root_epoch = self._new_epoch(self.root, 0, None)
        root_epoch.mode = "root"
        for ev in tr.events:
            if ev.t > self.duration:
                break
            if isinstance(ev, Fork) and ev.tid in self.traced and ev.child in self.traced:
                ppid = self.pid_of.get(ev.tid, ev.tid)
                cpid = self.pid_of.get(ev.child, ev.child)
                if cpid == ppid:
                    self.thread_parent[ev.child] = (ev.tid, ev.t)
                elif cpid not in self.epochs_of:
                    self.proc_parent[cpid] = (ev.tid, ev.t)
                    self.thread_parent[ev.child] = (ev.tid, ev.t)
                    parent_ep = self.epoch_at(ppid, ev.t)
                    self._new_epoch(cpid, ev.t, parent_ep)
            elif isinstance(ev, Exec) and ev.tid in self.traced:
                if ev.tid == self.root and ev.t == 0 and len(self.epochs_of[self.root]) == 1:
                    continue  # the command's own exec: where the trace starts
                pid = self.pid_of.get(ev.tid, ev.tid)
                if pid not in self.epochs_of:
                    self._new_epoch(pid, 0, None)
                prev = self.epochs_of[pid][-1]
                ep = self._new_epoch(pid, ev.t, None, k=prev.k + 1)
                ep.lineage = ep.eid
                self.execs.append(ev)
        for tid in sorted(self.traced):
            pid = self.pid_of.get(tid, tid)
            if pid not in self.epochs_of:
                self._new_epoch(pid, 0, None)

    def _new_epoch(self, pid: int, t: int, parent: Epoch | None, k: int = 0) -> Epoch:
        ep = Epoch(len(self.epochs), pid, k, t, parent)
        ep.lineage = parent.lineage if parent is not None else ep.eid
        ep.name = f"p{pid}" + (f".e{k}" if k else "")
        self.epochs.append(ep)
        self.epochs_of[pid].append(ep)
        return ep

    def epoch_at(self, pid: int, t: int) -> Epoch:
        eps = self.epochs_of[pid]
        for ep in reversed(eps):
            if ep.start <= t:
                return ep
        return eps[0]

    def _runs(self) -> None:
        """Runs of every task from the per-CPU switch order; traced ones split at execs."""
        per_cpu: dict[int, list[Switch]] = defaultdict(list)
        for ev in self.trace.events:
            if isinstance(ev, Switch) and ev.t <= self.duration:
                per_cpu[ev.cpu].append(ev)
        raw: list[tuple[int, int, int, int]] = []  # (tid, cpu, start, end)
        for cpu, sws in sorted(per_cpu.items()):
            since = 0
            for sw in sws:  # the task switched out ran since the previous switch
                raw.append((sw.prev, cpu, since, sw.t))
                since = sw.t
            raw.append((sws[-1].next, cpu, since, self.duration))
        by_tid: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        foreign: dict[int, list[tuple[int, int, int]]] = defaultdict(list)  # cpu -> runs
        for tid, cpu, s, e in raw:
            if tid in self.traced:
                by_tid[tid].append((s, e, cpu))
            elif self.cls.get(tid) == "u":
                foreign[cpu].append((s, e, tid))
        # Tasks with events but no switch seen: one run around their events.
        first_ev: dict[int, tuple[int, int, int]] = {}
        for ev in self.trace.events:
            if not isinstance(ev, Switch) and ev.tid in self.traced and ev.t <= self.duration:
                lo, hi, cpu = first_ev.get(ev.tid, (ev.t, ev.t, ev.cpu))
                first_ev[ev.tid] = (min(lo, ev.t), max(hi, ev.t), cpu)
        for tid, (lo, hi, cpu) in first_ev.items():
            if tid not in by_tid:
                by_tid[tid].append((lo, hi, cpu))
        execs_of: dict[int, list[int]] = defaultdict(list)
        for ev in self.execs:
            execs_of[ev.tid].append(ev.t)
        self.runs: list[Run] = []
        self.runs_of: dict[int, list[Run]] = {}
        for tid in sorted(by_tid):
            spans = sorted(by_tid[tid])
            clean: list[tuple[int, int, int]] = []
            for s, e, cpu in spans:
                if clean and s < clean[-1][1]:  # lost switch-out: clip the earlier run
                    ps, _, pc = clean[-1]
                    clean[-1] = (ps, s, pc)
                clean.append((s, max(s, e), cpu))
            pid = self.pid_of.get(tid, tid)
            born = self.thread_parent.get(tid, (None, 0))[1]
            runs: list[Run] = []
            for s, e, cpu in clean:
                s = max(s, born)
                if e < s:
                    continue
                cuts = [x for x in execs_of.get(tid, []) if s < x < e]
                bounds = [s, *cuts, e]
                for i in range(len(bounds) - 1):
                    r = Run(0, tid, pid, cpu, cpu % self.ncpus, bounds[i], bounds[i + 1])
                    r.exec_split = i < len(bounds) - 2 or bounds[i + 1] in execs_of.get(tid, [])
                    r.epoch = self.epoch_at(pid, bounds[i])
                    runs.append(r)
            # A thread lives in the image it was born in until it execs itself; another
            # thread's exec kills it (de_thread): nothing of it after that.
            expected = self.epoch_at(pid, born) if runs else None
            for i, r in enumerate(runs):
                if r.epoch is not expected:
                    self.counts["runs after another thread's exec dropped"] += len(runs) - i
                    del runs[i:]
                    break
                if r.exec_split:
                    expected = self.epoch_at(pid, r.end)
            self.runs_of[tid] = runs
            self.runs.extend(runs)
        # Other users' time between traced runs on one CPU becomes one foreign run.
        self.foreign_runs: list[Run] = []
        if self.others:
            traced_on: dict[int, list[tuple[int, int]]] = defaultdict(list)
            for r in self.runs:
                traced_on[r.cpu].append((r.start, r.end))
            for cpu, spans in traced_on.items():
                spans.sort()
                fl = sorted(foreign.get(cpu, []))
                fl_starts = [s for s, _, _ in fl]
                for (_, e0), (s1, _) in itertools.pairwise(spans):
                    j = bisect.bisect_left(fl_starts, e0)
                    inside = []
                    while j < len(fl) and fl[j][0] < s1:
                        if fl[j][1] <= s1 and fl[j][1] > fl[j][0]:
                            inside.append(fl[j])
                        j += 1
                    if inside:
                        s, e = inside[0][0], inside[-1][1]
                        self.foreign_runs.append(Run(0, -1, -1, cpu, cpu % self.ncpus, s, e))
        self.runs.extend(self.foreign_runs)
        self.runs.sort(key=lambda r: (r.start, r.end, r.cpu, r.tid))
        for i, r in enumerate(self.runs):
            r.idx = i
        self.counts["runs"] = len(self.runs) - len(self.foreign_runs)
        self.counts["foreign runs"] = len(self.foreign_runs)

    def _run_at(self, tid: int, t: int) -> Run | None:
        runs = self.runs_of.get(tid)
        if not runs:
            return None
        starts = self.run_starts.get(tid)
        if starts is None or len(starts) != len(runs):
            starts = self.run_starts[tid] = [r.start for r in runs]
        i = bisect.bisect_right(starts, t) - 1
        if i < 0:
            return runs[0]
        # At an exec boundary the event belongs to the earlier run (it ends there).
        if i > 0 and runs[i].start == t and runs[i - 1].end == t and runs[i - 1].exec_split:
            return runs[i - 1]
        r = runs[i]
        if r.epoch is not self.epoch_at(r.pid, max(t, r.start)):
            return None  # after another thread's exec: this thread is being killed
        return r

    def _assign_items(self) -> None:
        order = 0
        faults_seen = 0
        for ev in self.trace.events:
            if ev.t > self.duration or isinstance(ev, Switch):
                continue
            if ev.tid not in self.traced:
                continue
            if isinstance(ev, Fault):
                faults_seen += 1
                kind = "fault"
            elif isinstance(ev, MemMap):
                kind = "map"
            elif isinstance(ev, Fork):
                if ev.child not in self.thread_parent:
                    continue
                kind = "fork"
            else:
                continue
            r = self._run_at(ev.tid, ev.t)
            if r is None:
                self.counts["events outside any run dropped"] += 1
                continue
            t = min(max(ev.t, r.start), r.end)
            r.items.append((t, order, kind, ev))
            order += 1
        self.counts["faults in trace"] = faults_seen
        self._assign_accesses(order)
        self._assign_snapshot()
        for r in self.runs:
            r.items.sort(key=lambda it: (it[0], it[1]))

    def _drop_uncreated(self) -> None:
        """Tasks whose fork or clone is not in the trace (it happened before the recording
        began, was lost, or came after a kill) are kept: each starts at its first run, in
        the address space of its process (graph.py, "started without a seen fork")."""
        created = {self.root}
        for r in self.runs:
            created.update(it[3].child for it in r.items if it[2] == "fork")
        kept = [tid for tid in self.runs_of if tid not in created and self.runs_of[tid]]
        if kept:
            self.counts["tasks without a seen fork, started at their first run"] += len(kept)

    def _assign_accesses(self, order: int) -> None:
        """Lackey accesses: spread over the main thread's runs in the process's last image."""
        by_pid: dict[int, list[Access]] = defaultdict(list)
        for a in self.trace.accesses:
            by_pid[a.pid].append(a)
        total = sum(len(v) for v in by_pid.values())
        if not total:
            return
        kept = 0
        for pid in sorted(by_pid):
            if pid not in self.epochs_of:
                continue
            ep = self.epochs_of[pid][-1]
            runs = [r for r in self.runs_of.get(pid, []) if r.epoch is ep]
            if not runs:  # the main thread did not run in that image: any of its threads
                runs = sorted((r for tid, rs in self.runs_of.items()
                               if self.pid_of.get(tid, tid) == pid
                               for r in rs if r.epoch is ep), key=lambda r: (r.start, r.idx))
            if not runs:
                continue
            recs = by_pid[pid][:: self.access_every]
            kept += len(recs)
            weights = [max(1, r.end - r.start) for r in runs]
            cum = [0]
            for w in weights:
                cum.append(cum[-1] + w)
            span = cum[-1]
            for j, a in enumerate(recs):
                pos = (j + 0.5) / len(recs) * span
                i = min(len(runs) - 1, bisect.bisect_right(cum, pos) - 1)
                r = runs[i]
                frac = (pos - cum[i]) / weights[i]
                t = r.start + int(frac * (r.end - r.start))
                r.items.append((t, order, "acc", a))
                order += 1
        self.counts["access records"] = total
        if kept < total:
            self.notes.append(f"lackey access records sampled: every {self.access_every}th kept "
                              f"({kept} of {total})")

    def _assign_snapshot(self) -> None:
        """A snapshot's populated pmd slots: touched first by the root's first run."""
        snap = self.snapshot
        if snap is None or not snap.slots:
            return
        runs = self.runs_of.get(self.root)
        if not runs:
            return
        addrs = []
        for s in snap.slots:
            if s.level == "pmd" and len(s.prefix) == 2:
                g, u = s.prefix
                addrs.extend((g << 39) | (u << 30) | (m << 21) for m in s.indices)
        for i, base in enumerate(sorted(addrs)):
            runs[0].items.append((runs[0].start, -len(addrs) + i, "touch", base))
        self.counts["snapshot pmd touches"] = len(addrs)
