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
- `compute` stands for each run's measured duration (3 cycles per ns, the engine's
  default 3 GHz) unless timing=False.

Deterministic: the same trace and arguments give the same text. Bounded: max_ops caps the
ops; what was sampled or cut is said in the program's header comments.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field

from percpu.errors import UsageError
from percpu.trace.format import (
    Access,
    Exec,
    Fault,
    Fork,
    MemMap,
    Switch,
    Trace,
    Vma,
    read_trace,
)

PAGE = 4096
LINE = 64
SYNTH_BLOCK = 2 << 20
USER_TOP = 1 << 47
CYCLES_PER_NS = 3.0
SLEEP_MIN_NS = 1_000
COMPUTE_MIN_NS = 50
COMPUTE_SPLIT_NS = 20_000
DEFAULT_MAX_OPS = 100_000
END = -1  # slot index of a run's end
ACCESS_WORD = {"r": "load", "w": "store", "x": "fetch", "I": "fetch", "L": "load", "S": "store"}
KIND_OF = {"I": "x", "L": "r", "S": "w", "r": "r", "w": "w", "x": "x"}


def _page_up(x: int) -> int:
    return (x + PAGE - 1) & ~(PAGE - 1)


def _page_down(x: int) -> int:
    return x & ~(PAGE - 1)


def _engine_prot(bits: int) -> str:
    w, x = bits & 2, bits & 4
    return "rwx" if w and x else "rw" if w else "rx" if x else "r"


def _perm_bits(perms: str) -> int:
    bits = 0
    if perms[:1] == "r":
        bits |= 1
    if perms[1:2] == "w":
        bits |= 2
    if perms[2:3] == "x":
        bits |= 4
    return bits


# ------------------------------------------------------------------ structures


@dataclass(eq=False)
class Epoch:
    """One address space: a process from its start (or an exec) to its next exec or end."""

    eid: int
    pid: int
    k: int
    start: int
    parent: Epoch | None = None  # the forking epoch (k == 0, not the root)
    lineage: int = 0
    mode: str = "template"  # root | template | fork | exec
    name: str = ""
    actors: list[Actor] = field(default_factory=list)
    tids: set[int] = field(default_factory=set)
    template: list[tuple[str, int, int, str]] = field(default_factory=list)
    exec_run: Run | None = None  # the run (pre-exec part) whose exec starts this epoch


@dataclass(eq=False)
class Actor:
    name: str
    key: tuple
    ecpu: int
    epoch: Epoch | None  # first epoch (None for the foreign actors)
    tid: int
    runs: list[Run] = field(default_factory=list)
    how: str = ""  # start | fork | spawn | created-by-handoff
    mm_decl: str = ""


@dataclass
class Slot:
    t: int
    ops: list[tuple] = field(default_factory=list)
    pre: list[str] = field(default_factory=list)
    post: list[str] = field(default_factory=list)


@dataclass(eq=False)
class Run:
    idx: int
    tid: int  # -1 for a foreign run
    pid: int
    cpu: int
    ecpu: int
    start: int
    end: int
    epoch: Epoch | None = None
    actor: Actor | None = None
    items: list[tuple] = field(default_factory=list)  # (t, order, kind, payload)
    slots: list[Slot] = field(default_factory=list)
    head: list[str] = field(default_factory=list)
    tail: list[tuple] = field(default_factory=list)
    sleep_ns: int = 0
    exec_split: bool = False  # ends at an exec of its thread


@dataclass(frozen=True)
class Point:
    run: Run
    slot: int  # index in run.slots, or END
    t: int


@dataclass(eq=False)
class Piece:
    name: str
    start: int
    end: int
    prot: int
    creator: Point | None = None
    touched: set[tuple[int, str]] = field(default_factory=set)
    last_use: dict[int, Point] = field(default_factory=dict)  # id(actor) -> point


class Model:
    """The VMAs of one address space as the program's ops leave them."""

    def __init__(self) -> None:
        self.pieces: list[Piece] = []
        self.starts: list[int] = []
        self.freed: list[tuple[int, int, Point]] = []
        self.brk: int | None = None

    def copy(self) -> Model:
        m = Model()
        m.pieces = [Piece(p.name, p.start, p.end, p.prot) for p in self.pieces]
        m.starts = list(self.starts)
        m.brk = self.brk
        return m

    def find(self, addr: int) -> Piece | None:
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and self.pieces[i].start <= addr < self.pieces[i].end:
            return self.pieces[i]
        return None

    def overlapping(self, s: int, e: int) -> list[Piece]:
        i = max(0, bisect.bisect_right(self.starts, s) - 1)
        out = []
        while i < len(self.pieces) and self.pieces[i].start < e:
            if self.pieces[i].end > s:
                out.append(self.pieces[i])
            i += 1
        return out

    def gap_around(self, addr: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, addr)
        lo = self.pieces[i - 1].end if i > 0 else 0
        hi = self.pieces[i].start if i < len(self.pieces) else USER_TOP
        return lo, hi

    def insert(self, p: Piece) -> None:
        i = bisect.bisect_left(self.starts, p.start)
        self.pieces.insert(i, p)
        self.starts.insert(i, p.start)

    def remove(self, p: Piece) -> None:
        i = self.pieces.index(p)
        del self.pieces[i]
        del self.starts[i]


# ------------------------------------------------------------------ the builder


class _Builder:
    def __init__(self, trace: Trace, ncpus: int, *, snapshot: Trace | None, timing: bool,
                 others: bool, fault_every: int, access_every: int, cutoff: int | None,
                 hoist: dict[int, list[tuple[int, int]]], source: str):
        self.trace = trace
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

    # ---------------------------------------------------------- analysis

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
        """Tasks whose fork or clone is not in the program (lost, or after a kill) go."""
        created = {self.root}
        for r in self.runs:
            created.update(it[3].child for it in r.items if it[2] == "fork")
        gone = [tid for tid in self.runs_of if tid not in created]
        if not gone:
            return
        for tid in gone:
            self.counts["tasks without a seen fork dropped"] += 1
            del self.runs_of[tid]
        self.runs = [r for r in self.runs if r.tid < 0 or r.tid in created]
        for i, r in enumerate(self.runs):
            r.idx = i

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

    def _actors(self) -> None:
        """Engine tasks: one per (thread, epoch, CPU), merged across an exec where it can."""
        keys: dict[Epoch, dict[tuple, list[Run]]] = defaultdict(dict)
        for r in self.runs:
            if r.tid < 0:
                continue
            keys[r.epoch].setdefault((r.tid, r.epoch.eid, r.ecpu), []).append(r)
            r.epoch.tids.add(r.tid)
        self.actors: list[Actor] = []
        actor_of: dict[tuple, Actor] = {}
        # Modes first (parents before children: epochs are in creation order).
        for ep in self.epochs:
            n = len(keys.get(ep, {}))
            if ep.mode == "root":
                continue
            if ep.k == 0 and ep.parent is not None:
                single_parent = len(ep.parent.tids) <= 1 if ep.parent.tids else True
                ep.mode = "fork" if n == 1 and single_parent else "template"
            elif ep.k > 0:
                ep.mode = "template"
                if n == 1:
                    first = next(iter(keys[ep].values()))[0]
                    prev_runs = self.runs_of[first.tid]
                    i = prev_runs.index(first)
                    if i > 0 and prev_runs[i - 1].exec_split and prev_runs[i - 1].ecpu == \
                            first.ecpu and prev_runs[i - 1].end == first.start:
                        ep.mode = "exec"
                        ep.exec_run = prev_runs[i - 1]
        for ep in self.epochs:
            for key, runs in keys.get(ep, {}).items():
                if ep.mode == "exec" and ep.exec_run is not None:
                    prev = ep.exec_run
                    base = actor_of[(prev.tid, prev.epoch.eid, prev.ecpu)]
                    actor_of[key] = base
                    base.runs.extend(runs)
                    continue
                tid, _, ecpu = key
                name = f"t{tid}" + (f".e{ep.k}" if ep.k else "") + f".c{ecpu}"
                a = Actor(name, key, ecpu, ep, tid, list(runs))
                actor_of[key] = a
                self.actors.append(a)
                ep.actors.append(a)
        for r in self.runs:
            if r.tid >= 0:
                r.actor = actor_of[(r.tid, r.epoch.eid, r.ecpu)]
        foreign: dict[int, Actor] = {}
        for r in self.foreign_runs:
            if r.ecpu not in foreign:
                a = Actor(f"x.c{r.ecpu}", ("x", r.ecpu), r.ecpu, None, -1)
                a.how, a.mm_decl = "start", f"other.c{r.ecpu}"
                foreign[r.ecpu] = a
                self.actors.append(a)
            r.actor = foreign[r.ecpu]
            r.actor.runs.append(r)
        for a in self.actors:
            a.runs.sort(key=lambda r: (r.start, r.idx))
        self.foreign_actors = [foreign[c] for c in sorted(foreign)]

    def chan(self) -> str:
        self.chan_n += 1
        return f"e{self.chan_n}"

    def _chains(self) -> None:
        """CPU and thread predecessors; how each actor comes to exist."""
        root_runs = self.runs_of.get(self.root, [])
        if not root_runs:
            raise UsageError(f"{self.source}: the command's main thread never ran in the trace")
        created: set[int] = set()
        first_actor = root_runs[0].actor
        first_actor.how = "start"
        first_actor.mm_decl = first_actor.epoch.name
        created.add(id(first_actor))
        for a in self.foreign_actors:
            created.add(id(a))
        # Creations at fork events: the child's first actor.
        self.fork_creates: dict[tuple[int, int], Actor] = {}
        for r in self.runs:
            for it in r.items:
                if it[2] != "fork":
                    continue
                ev: Fork = it[3]
                child_runs = self.runs_of.get(ev.child)
                if not child_runs:
                    self.counts["forked tasks that never ran"] += 1
                    continue
                a = child_runs[0].actor
                if id(a) in created:
                    continue
                created.add(id(a))
                ep = a.epoch
                a.how = "fork" if ep.mode == "fork" else "spawn"
                a.mm_decl = "fork" if ep.mode == "fork" else ep.name
                self.fork_creates[(r.idx, it[1])] = a
        # CPU chains: the latest run on this CPU that ended before this one started.
        by_cpu: dict[int, list[Run]] = defaultdict(list)
        for r in self.runs:
            by_cpu[r.ecpu].append(r)
        self.handoff: dict[int, list[Actor]] = defaultdict(list)  # run idx -> actors to spawn
        for runs in by_cpu.values():
            by_end = sorted(runs, key=lambda r: (r.end, r.start, r.idx))
            j, best = 0, None
            for r in runs:  # start order
                while j < len(by_end) and by_end[j].end <= r.start:
                    cand = by_end[j]
                    if cand is not r and (best is None or (cand.end, cand.start) >=
                                          (best.end, best.start)):
                        best = cand
                    j += 1
                if best is None:
                    continue
                if best.actor is r.actor:
                    if r.start - best.end >= SLEEP_MIN_NS:
                        r.sleep_ns = r.start - best.end
                else:
                    ch = self.chan()
                    best.tail.append(("signal", ch))
                    r.head.append(ch)
        # Thread chains and hand-offs to a thread's next actor.
        for tid in sorted(self.runs_of):
            runs = self.runs_of[tid]
            for prev, r in itertools.pairwise(runs):
                if prev.actor is r.actor:
                    continue
                a = r.actor
                if id(a) not in created and a.runs and a.runs[0] is r:
                    created.add(id(a))
                    a.how, a.mm_decl = "spawn", a.epoch.name
                    self.handoff[prev.idx].append(a)
                    continue
                ch = self.chan()
                prev.tail.append(("signal", ch))
                r.head.append(ch)
        for a in self.actors:
            if id(a) not in created:  # a thread whose creation was not seen: start it
                a.how = "start"
                a.mm_decl = a.epoch.name
                if a.epoch.mode == "fork":
                    a.epoch.mode = "template"
                self.counts["tasks started without a seen fork"] += 1

    # ---------------------------------------------------------- model and ops

    def _lineage_cuts(self) -> dict[int, list[int]]:
        cuts: dict[int, set[int]] = defaultdict(set)
        for ev in self.trace.events:
            if isinstance(ev, MemMap) and ev.tid in self.traced and ev.t <= self.duration:
                pid = self.pid_of.get(ev.tid, ev.tid)
                lin = self.epoch_at(pid, ev.t).lineage
                if ev.op == "brk":
                    cuts[lin].add(_page_up(ev.addr))
                else:
                    cuts[lin].add(_page_down(ev.addr))
                    cuts[lin].add(_page_up(ev.addr + ev.length))
        return {k: sorted(v) for k, v in cuts.items()}

    def _map_ranges(self) -> dict[int, list[tuple[int, int]]]:
        """Per epoch: every range its map ops touch (initial VMAs there are not trusted)."""
        out: dict[int, list[tuple[int, int]]] = defaultdict(list)
        brk_lo: dict[int, int] = {}
        for ev in self.trace.events:
            if isinstance(ev, MemMap) and ev.tid in self.traced and ev.t <= self.duration:
                pid = self.pid_of.get(ev.tid, ev.tid)
                ep = self.epoch_at(pid, ev.t)
                if ev.op == "brk":
                    b = _page_up(ev.addr)
                    lo = brk_lo.setdefault(ep.eid, b)
                    out[ep.eid].append((min(lo, b), max(lo, b) + PAGE))
                else:
                    out[ep.eid].append((_page_down(ev.addr), _page_up(ev.addr + ev.length)))
        for v in out.values():
            v.sort()
        return out

    def new_vma(self) -> str:
        self.vma_n += 1
        return f"v{self.vma_n}"

    def _split(self, lineage: int, s: int, e: int) -> list[tuple[int, int]]:
        cuts = self.cuts.get(lineage, [])
        pts = cuts[bisect.bisect_right(cuts, s): bisect.bisect_left(cuts, e)]
        bounds = [s, *pts, e]
        return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]

    def _initial(self, ep: Epoch) -> Model:
        """The VMAs an exec'd (or the root) image starts with: observed, hoisted."""
        m = Model()
        vmas: list[Vma] = []
        if ep.pid == self.root and ep.k == 0 and self.snapshot is not None:
            vmas = list(self.snapshot.vmas)
        elif ep is self.epochs_of[ep.pid][-1]:
            vmas = [v for v in self.trace.vmas if v.pid == ep.pid]
        busy = self.map_ranges.get(ep.eid, [])
        ranges: list[tuple[int, int, int]] = []
        for v in vmas:
            if v.end > USER_TOP or v.start >= v.end:
                continue
            for s, e in _subtract(v.start, v.end, busy):
                ranges.append((s, e, _perm_bits(v.perms)))
        for s, e in self.hoist_in.get(ep.eid, []):
            if not any(s < e2 and s2 < e for s2, e2, _ in ranges):
                ranges.append((s, e, 7))
        for s, e, prot in sorted(ranges):
            if m.overlapping(s, e):
                continue
            for a, b in self._split(ep.lineage, s, e):
                m.insert(Piece(self.new_vma(), a, b, prot))
        return m

    def _simulate(self) -> None:
        self.cuts = self._lineage_cuts()
        self.map_ranges = self._map_ranges()
        self.models: dict[int, Model] = {}
        self.templates: dict[int, list[tuple[str, int, int, int]]] = {}
        self.fault_pmds: dict[int, set[int]] = defaultdict(set)
        self.fault_n = 0
        for ep in self.epochs:
            if ep.mode in ("root", "template", "exec") and (ep.parent is None or ep.k > 0):
                self._start_model(ep, self._initial(ep))
        # Every item of every run, in time order.
        work = []
        for r in self.runs:
            r.slots = [Slot(it[0]) for it in r.items]
            for i, it in enumerate(r.items):
                work.append((it[0], r.start, r.idx, i, r))
        work.sort(key=lambda w: w[:4])
        for _, _, _, i, r in work:
            self._item(r, i)
        for ep in self.epochs:
            if ep.mode == "exec" and ep.exec_run is not None:
                ep.exec_run.tail.insert(0, ("exec", ep.name))

    def _start_model(self, ep: Epoch, m: Model) -> None:
        self.models[ep.eid] = m
        self.templates[ep.eid] = [(p.name, p.start, p.end, p.prot) for p in m.pieces]

    def model(self, r: Run) -> Model:
        ep = r.epoch
        if ep.eid not in self.models:
            # A forked child whose fork event fell outside the trace: start it empty.
            self._start_model(ep, Model())
        return self.models[ep.eid]

    def edge(self, src: Point, dst_run: Run, dst_slot: int) -> None:
        """Make dst wait for src when they are different threads (threads chain already)."""
        sa, da = src.run.actor, dst_run.actor
        if sa is da or src.run.tid == dst_run.tid:
            return
        key = (id(da), id(sa))
        # Where src stands in its actor's program: runs in (start, idx) order, then slots.
        pos = (src.run.start, src.run.idx, src.slot if src.slot != END else 1 << 40)
        if key in self.synced and self.synced[key] >= pos:
            return
        self.synced[key] = pos
        ch = self.chan()
        self.counts["vma dependency edges"] += 1
        if src.slot == END:
            src.run.tail.append(("signal", ch))
        else:
            src.run.slots[src.slot].post.append(ch)
        if src.t <= dst_run.start or dst_slot == END:
            dst_run.head.append(ch)
        else:
            dst_run.slots[dst_slot].pre.append(ch)

    def _item(self, r: Run, i: int) -> None:
        t, order, kind, payload = r.items[i]
        slot = r.slots[i]
        here = Point(r, i, t)
        if kind == "fork":
            a = self.fork_creates.get((r.idx, order))
            if a is None:
                return
            ep = a.epoch
            parent_model = self.model(r)
            if ep.eid not in self.models:
                child = parent_model.copy()
                self._start_model(ep, child)
            slot.ops.append(("fork" if a.how == "fork" else "spawn", a.name))
            self.counts["forks" if a.how == "fork" else "spawns at clone"] += 1
            return
        m = self.model(r)
        if kind == "map":
            self._map_item(r, i, m, payload, here)
        elif kind == "fault":
            ev: Fault = payload
            page = _page_down(ev.addr)
            pkey = ev.addr >> 21
            new_pmd = pkey not in self.fault_pmds[r.epoch.eid]
            if not new_pmd:
                self.fault_n += 1
                if self.fault_n % self.fault_every:
                    self.counts["faults dropped by sampling"] += 1
                    return
            p = self._piece_for(r, i, m, ev.addr, here)
            if p is None:
                return
            k = KIND_OF[ev.kind]
            if (page, k) in p.touched:
                self.counts["repeated faults merged"] += 1
                return
            self.fault_pmds[r.epoch.eid].add(pkey)
            self._access(r, i, m, p, ev.addr, k, 1, 0, here)
        elif kind == "acc":
            a: Access = payload
            addrs = range(a.addr, a.addr + a.count * a.stride, a.stride) if a.count > 1 \
                else [a.addr]
            k = KIND_OF[a.kind]
            run_p, run_start, run_n = None, 0, 0
            for addr in addrs:
                p = m.find(addr) or self._piece_for(r, i, m, addr, here)
                if p is None:
                    continue
                if p is run_p and addr == run_start + run_n * a.stride:
                    run_n += 1
                    continue
                if run_p is not None:
                    self._access(r, i, m, run_p, run_start, k, run_n, a.stride, here)
                run_p, run_start, run_n = p, addr, 1
            if run_p is not None:
                self._access(r, i, m, run_p, run_start, k, run_n, a.stride, here)
        elif kind == "touch":
            base = payload
            ps = m.overlapping(base, base + (2 << 20))
            if not ps:
                self.counts["snapshot touches outside VMAs"] += 1
                return
            p = ps[0]
            self._access(r, i, m, p, max(base, p.start), "r", 1, 0, here)

    def _access(self, r: Run, i: int, m: Model, p: Piece, addr: int, kind: str, count: int,
                stride: int, here: Point) -> None:
        if kind == "w" and not p.prot & 2:
            kind = "r"
        if kind == "x" and not p.prot & 4:
            kind = "r"
        if p.creator is not None:
            self.edge(p.creator, r, i)
        p.last_use[id(r.actor)] = here
        if stride < 0:
            addr, stride = addr + (count - 1) * stride, -stride
        for n in range(count):
            p.touched.add((_page_down(addr + n * stride), kind))
        off = (addr - p.start) & ~(LINE - 1)
        r.slots[i].ops.append(("acc", kind, p.name, off, count, stride if count > 1 else 0))
        self.counts["accesses"] += 1

    def _piece_for(self, r: Run, i: int, m: Model, addr: int, here: Point) -> Piece | None:
        """The piece holding addr, synthesising one (inline mmap or hoisted) if none does."""
        if addr >= USER_TOP:
            self.counts["kernel addresses ignored"] += 1
            return None
        p = m.find(addr)
        if p is not None:
            return p
        lo, hi = m.gap_around(addr)
        blo = addr & ~(SYNTH_BLOCK - 1)
        s = max(lo, blo)
        e = min(hi, blo + SYNTH_BLOCK)
        cuts = self.cuts.get(r.epoch.lineage, [])
        j = bisect.bisect_right(cuts, addr)
        if j > 0:
            s = max(s, cuts[j - 1])
        if j < len(cuts):
            e = min(e, cuts[j])
        s, e = _page_down(s), _page_up(e)
        s = max(s, lo)
        e = min(e, hi)
        if not s <= addr < e:
            s, e = _page_down(addr), _page_down(addr) + PAGE
        ep = r.epoch
        hoistable = ep.mode in ("root", "exec") or (ep.mode == "template" and ep.k > 0)
        if hoistable and not any(s < b and a < e for a, b in self.map_ranges.get(ep.eid, [])):
            self.hoist_out[ep.eid].append((s, e))
            self.counts["VMAs synthesised (hoisted)"] += 1
        else:
            self.counts["VMAs synthesised (inline mmap)"] += 1
        p = Piece(self.new_vma(), s, e, 7, here)
        self._create(r, i, m, p, here)
        return p

    def _create(self, r: Run, i: int, m: Model, p: Piece, here: Point) -> None:
        for fs, fe, fpoint in m.freed:
            if fs < p.end and p.start < fe:
                self.edge(fpoint, r, i)
        m.freed = [f for f in m.freed if not (p.start <= f[0] and f[1] <= p.end)]
        m.insert(p)
        r.slots[i].ops.append(("mmap", p.name, p.start, p.end - p.start, _engine_prot(p.prot)))

    def _destroy(self, r: Run, i: int, m: Model, p: Piece, s: int, e: int,
                 here: Point) -> None:
        """Unmap [s, e) of piece p (whole piece, a head, a tail, or a middle)."""
        if p.creator is not None:
            self.edge(p.creator, r, i)
        for point in p.last_use.values():
            self.edge(point, r, i)
        ops = r.slots[i].ops
        s, e = max(s, p.start), min(e, p.end)
        m.freed.append((s, e, here))
        if s <= p.start and e >= p.end:
            ops.append(("munmap", p.name, None, None))
            m.remove(p)
            return
        if s <= p.start:  # head: the rest keeps the name
            ops.append(("munmap", p.name, 0, e - p.start))
            m.remove(p)
            p.start = e
            m.insert(p)
            return
        ops.append(("munmap", p.name, s - p.start, p.end - s))
        old_end = p.end
        p.end = s
        if e < old_end:  # middle: the engine would leave the tail unnamed; map it anew
            if any(a >= e for a, _ in p.touched):
                self.counts["tails re-mapped after a middle munmap (pages lost)"] += 1
            q = Piece(self.new_vma(), e, old_end, p.prot, here)
            q.touched = {(a, k) for a, k in p.touched if a >= e}
            m.insert(q)
            ops.append(("mmap", q.name, q.start, q.end - q.start, _engine_prot(q.prot)))
        p.touched = {(a, k) for a, k in p.touched if a < s}

    def _map_item(self, r: Run, i: int, m: Model, ev: MemMap, here: Point) -> None:
        lin = r.epoch.lineage
        if ev.op == "brk":
            b = _page_up(ev.addr)
            if m.brk is None:
                m.brk = b
                return
            if b > m.brk:
                s, e = m.brk, b
                for p in m.overlapping(s, e):
                    self._destroy(r, i, m, p, s, e, here)
                for a, bb in self._split(lin, s, e):
                    self._create(r, i, m, Piece(self.new_vma(), a, bb, 3, here), here)
                self.counts["brk"] += 1
            elif b < m.brk:
                for p in m.overlapping(b, m.brk):
                    self._destroy(r, i, m, p, b, m.brk, here)
                self.counts["brk"] += 1
            m.brk = b
            return
        s, e = _page_down(ev.addr), _page_up(ev.addr + ev.length)
        if e > USER_TOP or e <= s:
            return
        if ev.op == "mmap":
            for p in m.overlapping(s, e):
                self._destroy(r, i, m, p, s, e, here)
            for a, b in self._split(lin, s, e):
                self._create(r, i, m, Piece(self.new_vma(), a, b, ev.prot, here), here)
            self.counts["mmap"] += 1
        elif ev.op == "munmap":
            for p in m.overlapping(s, e):
                self._destroy(r, i, m, p, s, e, here)
            self.counts["munmap"] += 1
        elif ev.op == "mprotect":
            for p in m.overlapping(s, e):
                if p.creator is not None:
                    self.edge(p.creator, r, i)
                p.last_use[id(r.actor)] = here
                if p.start < s or p.end > e:
                    self.counts["partial mprotects skipped"] += 1
                    continue
                if _engine_prot(p.prot) != _engine_prot(ev.prot):
                    r.slots[i].ops.append(("mprotect", p.name, 0, p.end - p.start,
                                           _engine_prot(ev.prot)))
                p.prot = ev.prot
            self.counts["mprotect"] += 1

    # ---------------------------------------------------------- text

    def _run_ops(self, r: Run) -> list[str]:
        out: list[str] = []
        for ch in r.head:
            out.append(f"wait {ch}")
        if r.sleep_ns:
            out.append(f"sleep {self.cycles(r.sleep_ns)}")
        pending: list = []  # access ops being merged into count/stride runs
        last_t = r.start
        compute_ns = 0

        def flush() -> None:
            if pending:
                kind, name, off, count, stride = pending
                word = ACCESS_WORD[kind]
                if count > 1:
                    out.append(f"{word} {name} {off:#x} count={count} stride={stride}")
                else:
                    out.append(f"{word} {name} {off:#x}")
                pending.clear()

        def add_compute(ns: int) -> None:
            if self.timing and ns >= COMPUTE_MIN_NS:
                flush()
                out.append(f"compute {self.cycles(ns)}")

        for slot in r.slots:
            compute_ns += slot.t - last_t
            last_t = slot.t
            if compute_ns >= COMPUTE_SPLIT_NS and (slot.ops or slot.pre):
                add_compute(compute_ns)
                compute_ns = 0
            if slot.pre:
                flush()
                out.extend(f"wait {ch}" for ch in slot.pre)
            for op in slot.ops:
                if op[0] == "acc":
                    _, kind, name, off, count, stride = op
                    if pending and count == 1 and pending[0] == kind and pending[1] == name:
                        _, _, poff, pcount, pstride = pending
                        if pcount == 1 and off > poff:
                            pending[3], pending[4] = 2, off - poff
                            continue
                        if pcount > 1 and off == poff + pcount * pstride:
                            pending[3] += 1
                            continue
                    flush()
                    pending.extend([kind, name, off, count, stride])
                    continue
                flush()
                out.append(self._op_text(op))
            if slot.post:
                flush()
                out.extend(f"signal {ch}" for ch in slot.post)
        flush()
        compute_ns += r.end - last_t
        if r.tid < 0:
            out.append("load fx")
        add_compute(compute_ns)
        for a in self.handoff.get(r.idx, []):
            out.append(f"spawn {a.name}")
        for op in r.tail:
            out.append(self._op_text(op))
        return out

    def cycles(self, ns: int) -> int:
        return max(1, round(ns * CYCLES_PER_NS))

    @staticmethod
    def _op_text(op: tuple) -> str:
        kind = op[0]
        if kind == "mmap":
            _, name, start, size, prot = op
            return f"mmap {name} {start:#x} {size:#x} {prot}"
        if kind == "munmap":
            _, name, off, length = op
            return f"munmap {name}" if off is None else f"munmap {name} {off:#x} {length:#x}"
        if kind == "mprotect":
            _, name, off, length, prot = op
            return f"mprotect {name} {off:#x} {length:#x} {prot}"
        return " ".join(str(x) for x in op)

    def _text(self) -> str:
        tr = self.trace
        bodies: dict[str, list[str]] = {}
        n_ops = 0
        for a in self.actors:
            lines: list[str] = []
            for r in a.runs:
                lines.extend(self._run_ops(r))
            bodies[a.name] = lines
            n_ops += len(lines)
        self.n_ops = n_ops
        out = ["percpu-ops 1", ""]
        out.append(f"# Replay of {os.path.basename(self.source)} (percpu trace replay, "
                   "docs/traces.md)")
        command = tr.meta.get("command", "?").replace("\\", "\\\\").replace("\n", "\\n")
        out.append(f"# command: {command[:300]}")
        out.append(f"# recorded on {tr.meta.get('host_cpus', '?')} CPUs, kernel "
                   f"{tr.meta.get('kernel', '?')}; sources: {tr.meta.get('sources', '?')}")
        out.append(f"# replayed on {self.ncpus} CPUs (recorded CPU c runs on c mod "
                   f"{self.ncpus}); {len(self.actors)} tasks; {n_ops} ops")
        for key in sorted(self.counts):
            if self.counts[key]:
                out.append(f"#   {key}: {self.counts[key]}")
        if self.cutoff is not None:
            out.append(f"# dropped: everything after {self.cutoff} ns of the "
                       f"{tr.meta.get('duration_ns', '?')} ns trace (max_ops)")
        if self.fault_every > 1:
            out.append(f"# dropped: faults sampled, every {self.fault_every}th kept beyond the "
                       "first in each 2 MiB region (max_ops)")
        for note in self.notes:
            out.append(f"# dropped: {note}")
        out.append("# approximations: idle time between different tasks on a CPU is not "
                   "replayed; runs hand over with wait/signal (syscall costs the real switch "
                   "may not have had); compute stands for measured run time")
        out.append("")
        declared = {a.mm_decl for a in self.actors}
        for ep in self.epochs:
            if ep.mode == "fork" or (ep.name not in declared and ep.mode != "exec"):
                continue
            if ep.mode == "exec" and ep.eid not in self.templates:
                continue
            out.append(f"mm {ep.name}")
            for name, s, e, prot in self.templates.get(ep.eid, []):
                out.append(f"  vma {name} {s:#x} {e - s:#x} {_engine_prot(prot)}")
        for a in self.foreign_actors:
            out.append(f"mm {a.mm_decl}")
            out.append("  vma fx 0x10000000 0x1000 rw")
        out.append("")
        for a in self.actors:
            start = "yes" if a.how == "start" else "no"
            out.append(f"task {a.name} mm={a.mm_decl} cpus={a.ecpu} start={start}")
        out.append("")
        for a in self.actors:
            out.append(f"program {a.name}")
            out.extend(f"  {line}" for line in bodies[a.name])
        return "\n".join(out) + "\n"


def _subtract(s: int, e: int, busy: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    cur = s
    for a, b in busy:
        if b <= cur or a >= e:
            continue
        if a > cur:
            out.append((cur, a))
        cur = max(cur, b)
    if cur < e:
        out.append((cur, e))
    return [(_page_down(a), _page_up(b)) for a, b in out if _page_up(b) > _page_down(a)]


# ------------------------------------------------------------------ snapshots alone


def snapshot_program(snap: Trace, source: str, max_ops: int) -> str:
    """A program with one process shaped like the snapshot: its VMAs, one touch per pmd."""
    pid = int(snap.meta.get("pid", 0))
    vmas = [v for v in snap.vmas if v.end <= USER_TOP and v.end > v.start]
    if not vmas:
        raise UsageError(f"{source}: the snapshot holds no user VMA")
    head = (f"# Shape of process {pid} ({snap.meta.get('comm', '?')}) from "
            f"{os.path.basename(source)}: its VMAs, and one load in each populated pmd slot "
            f"({snap.meta.get('slot_source', '?')})")
    out = ["percpu-ops 1", "", head, "", "mm snap"]
    names = []
    last_end = 0
    for i, v in enumerate(sorted(vmas, key=lambda v: v.start)):
        if v.start < last_end:
            continue
        names.append((f"s{i}", v.start, v.end))
        out.append(f"  vma s{i} {v.start:#x} {v.end - v.start:#x} "
                   f"{_engine_prot(_perm_bits(v.perms))}")
        last_end = v.end
    starts = [s for _, s, _ in names]
    ops = []
    for s in snap.slots:
        if s.level != "pmd" or len(s.prefix) != 2:
            continue
        g, u = s.prefix
        for mi in s.indices:
            base = (g << 39) | (u << 30) | (mi << 21)
            j = bisect.bisect_right(starts, base + (2 << 20) - 1) - 1
            while j >= 0 and names[j][2] > base:
                name, vs, _ = names[j]
                if vs < base + (2 << 20):
                    ops.append(f"load {name} {(max(base, vs) - vs):#x}")
                    break
                j -= 1
    dropped = 0
    if len(ops) > max_ops:
        step = math.ceil(len(ops) / max_ops)
        dropped = len(ops) - len(ops[::step])
        ops = ops[::step]
    out += ["", "task shape mm=snap cpus=0", "", "program shape"]
    if dropped:
        out.insert(3, f"# dropped: {dropped} pmd touches (max_ops)")
    out += [f"  {op}" for op in ops] or ["  compute 1"]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ entry point


def _load(path: str | os.PathLike | Trace) -> tuple[Trace, str]:
    if isinstance(path, Trace):
        return path, "<trace>"
    return read_trace(path), str(path)


def trace_to_program(path: str | os.PathLike | Trace, ncpus: int, *,
                     snapshot: str | os.PathLike | Trace | None = None,
                     max_ops: int = DEFAULT_MAX_OPS, timing: bool = True,
                     others: bool = True) -> str:
    """Op-program text (docs/op-program.md) that replays the trace at PATH on NCPUS CPUs.

    snapshot: a `percpu trace snapshot` file whose VMAs (and populated pmd slots, touched
    first) shape the command's first address space. max_ops bounds the program: faults and
    lackey accesses are sampled first, then the trace is cut short; the header comments say
    what was dropped. timing=False leaves out the compute ops for measured run time;
    others=False leaves out other processes' runs between the command's.
    """
    if not 1 <= ncpus <= 256:
        raise UsageError(f"ncpus {ncpus} is out of range: use 1..256")
    if max_ops < 100:
        raise UsageError(f"max_ops {max_ops} is too small to replay anything: use >= 100")
    trace, source = _load(path)
    if any(b.t < a.t for a, b in itertools.pairwise(trace.events)):
        trace = Trace(meta=trace.meta, tasks=trace.tasks, vmas=trace.vmas, slots=trace.slots,
                      accesses=trace.accesses,
                      events=sorted(trace.events, key=lambda e: e.t))
    snap = None
    if snapshot is not None:
        snap, snap_source = _load(snapshot)
        if snap.kind != "snapshot":
            raise UsageError(f"{snap_source} is a {snap.kind} trace, not a snapshot: make one "
                             "with `percpu trace snapshot PID`")
    if trace.kind == "snapshot":
        return snapshot_program(trace, source, max_ops)
    if trace.kind != "run":
        raise UsageError(f"{source}: unknown trace kind '{trace.kind}' (expected run or "
                         "snapshot)")
    fault_every, access_every = 1, 1
    cutoff = _first_cutoff(trace, max_ops)
    hoist: dict[int, list[tuple[int, int]]] | None = None
    # The longest cutoff that fits, the shortest that does not (a first guess counts as one).
    fit_cut = None
    over_cut = int(trace.meta.get("duration_ns", 0)) + 1 if cutoff is not None else None
    best = ""
    for _ in range(16):
        b = _Builder(trace, ncpus, snapshot=snap, timing=timing, others=others,
                     fault_every=fault_every, access_every=access_every, cutoff=cutoff,
                     hoist=hoist or {}, source=source)
        text = b.build()
        if hoist is None:
            # Second pass: the VMAs synthesised for each image exist from its start.
            hoist = dict(b.hoist_out)
            if hoist:
                continue
        if b.n_ops <= max_ops:
            if cutoff is None:
                return text
            best, fit_cut = text, cutoff
            if over_cut is None or b.n_ops >= 0.75 * max_ops or over_cut - fit_cut <= 1000:
                return text
            cutoff = (fit_cut + over_cut) // 2
            continue
        acc_ops = b.counts.get("accesses", 0)
        if cutoff is None and b.counts.get("access records", 0) and access_every < 1 << 20:
            access_every *= max(2, math.ceil(b.n_ops / max_ops))
            continue
        if cutoff is None and acc_ops > 0.3 * b.n_ops and fault_every < 1 << 20:
            over = b.n_ops - max_ops
            fault_every *= max(2, math.ceil(acc_ops / max(1, acc_ops - over, acc_ops // 10)))
            continue
        over_cut = cutoff if cutoff is not None else b.duration
        if fit_cut is None:
            cutoff = max(0, int(over_cut * max_ops / b.n_ops * 0.9))
            if cutoff == 0:
                break
        else:
            cutoff = (fit_cut + over_cut) // 2
    return best or text


def _first_cutoff(trace: Trace, max_ops: int) -> int | None:
    """For huge traces, a first guess at where to cut: about 4 ops per switch involving the
    command's tasks, 1 per fault and 2 per map syscall, at most 3 x max_ops of them."""
    traced = {t.tid for t in trace.tasks.values() if t.cls == "c"}
    est = 0
    for ev in trace.events:
        if isinstance(ev, Switch):
            est += 4 if ev.prev in traced or ev.next in traced else 0
        elif isinstance(ev, MemMap):
            est += 2
        else:
            est += 1
        if est > 3 * max_ops:
            return ev.t
    return None
