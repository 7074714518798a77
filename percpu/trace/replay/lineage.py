"""Lineage: each address space and its forks simulated through the runs, so that every
access finds its VMA mapped (VMAs created, split and freed as the trace did), with the
wait/signal edges those dependencies need."""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict

from percpu.trace.format import (
    Access,
    Fault,
    MemMap,
    Vma,
)
from percpu.trace.replay.constants import (
    KIND_OF,
    LINE,
    PAGE,
    SYNTH_BLOCK,
    USER_TOP,
    _engine_prot,
    _page_down,
    _page_up,
    _perm_bits,
)
from percpu.trace.replay.emit import _subtract
from percpu.trace.replay.records import Epoch, Point, Run, Slot
from percpu.trace.replay.vma_model import Model, Piece


class _LineageMixin:
    """Part of _Builder (builder.py): the lineage methods; state lives on the builder."""
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
