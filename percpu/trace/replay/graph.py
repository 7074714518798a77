"""The wait/signal graph: one actor per (thread, address space, CPU), the chains that
reproduce each CPU's switching order and each thread's hand-over between CPUs, and the
edges that order a VMA's use after its creation."""

from __future__ import annotations

import itertools
from collections import defaultdict

from percpu.errors import UsageError
from percpu.trace.format import (
    Fork,
)
from percpu.trace.replay.constants import END, SLEEP_MIN_NS
from percpu.trace.replay.records import Actor, Epoch, Point, Run


class _GraphMixin:
    """Part of _Builder (builder.py): the graph methods; state lives on the builder."""

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
                a = r.actor
                if a.tid < 0 and id(a) not in created and a.runs[0] is r:
                    # Another user's first run here: spawned when the run before it on
                    # this CPU ends, not started at time 0 (it would switch this CPU to
                    # its mm at once, before any of the command had run).
                    created.add(id(a))
                    a.how = "spawn"
                    self.handoff[best.idx].append(a)
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
        for a in self.foreign_actors:
            if id(a) not in created:
                created.add(id(a))
                a.how = "start"
        for a in self.actors:
            if id(a) not in created:  # a thread whose creation was not seen: start it
                a.how = "start"
                a.mm_decl = a.epoch.name
                if a.epoch.mode == "fork":
                    a.epoch.mode = "template"
                self.counts["tasks started without a seen fork"] += 1

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
