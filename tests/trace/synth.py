"""Synthetic traces for the replay tests: a tiny random "kernel" that schedules processes
and threads on a few CPUs and emits what perf would have recorded (switches, forks,
clones, execs, exits, faults, mmap/munmap/mprotect/brk), consistent by construction."""

from __future__ import annotations

import random

from percpu.trace.format import Exec, Exit, Fault, Fork, MemMap, Switch, Task, Trace

PAGE = 4096
IDLE, FOREIGN, KTHREAD = 0, 50, 60


def synth_trace(seed: int, cpus: int = 2, steps: int = 150, kill_on_exec: bool = True) -> Trace:
    rng = random.Random(seed)
    root = 1000
    next_tid = [root + 1]
    pid_of = {root: root}
    alive = {root}
    regions: dict[int, list[tuple[int, int]]] = {root: []}  # pid -> mapped ranges
    brk: dict[int, int] = {}
    cur = {c: IDLE for c in range(cpus)}
    cur[0] = root
    t = 0
    events: list = [Exec(0, 0, root, "/bin/synth")]

    def emit(ev) -> None:
        events.append(ev)

    def switch(c: int, nxt: int, state: str = "S") -> None:
        emit(Switch(t, c, cur[c], nxt, state))
        cur[c] = nxt

    def running() -> set[int]:
        return set(cur.values())

    def new_region(pid: int) -> tuple[int, int]:
        base = rng.choice([0x400000, 0x7F0000000000, 0x100000000000, 0x55D000000000])
        addr = base + rng.randrange(0, 1 << 12) * PAGE * 16
        length = rng.randint(1, 48) * PAGE
        return addr, length

    for _ in range(steps):
        t += rng.randint(200, 8000)
        c = rng.randrange(cpus)
        me = cur[c]
        roll = rng.random()
        if roll < 0.35 or me not in alive:
            choices = [x for x in sorted(alive) if x not in running()] + [IDLE, FOREIGN, KTHREAD]
            nxt = rng.choice(choices)
            if nxt != me:
                switch(c, nxt, "R" if rng.random() < 0.3 else "S")
            continue
        pid = pid_of[me]
        regs = regions[pid]
        if roll < 0.6:
            if regs and rng.random() < 0.85:
                a, n = rng.choice(regs)
                addr = a + rng.randrange(0, n)
            else:
                addr = rng.randrange(0x1000, 1 << 47) & ~7
            kind = rng.choice("rwx")
            err = {"r": 4, "w": 6, "x": 0x14}[kind]
            emit(Fault(t, c, me, addr, kind, err))
        elif roll < 0.7:
            a, n = new_region(pid)
            regs.append((a, n))
            emit(MemMap(t, c, me, "mmap", a, n, rng.choice([0, 1, 3, 5, 7])))
        elif roll < 0.76 and regs:
            a, n = regs.pop(rng.randrange(len(regs)))
            off = rng.randrange(0, n // PAGE) * PAGE
            ln = rng.randint(1, (n - off) // PAGE) * PAGE
            emit(MemMap(t, c, me, "munmap", a + off, ln, 0))
            if off:
                regs.append((a, off))
            if off + ln < n:
                regs.append((a + off + ln, n - off - ln))
        elif roll < 0.8 and regs:
            a, n = rng.choice(regs)
            emit(MemMap(t, c, me, "mprotect", a, rng.randint(1, n // PAGE) * PAGE,
                        rng.choice([1, 3, 5])))
        elif roll < 0.84:
            b = brk.get(pid)
            if b is None:
                b = 0x2000000 + rng.randrange(0, 256) * PAGE
            else:
                b = max(0x2000000, b + rng.randint(-8, 16) * PAGE + rng.randrange(0, 64))
            brk[pid] = b
            emit(MemMap(t, c, me, "brk", b, 0, 3))
        elif roll < 0.89 and len(alive) < 12:
            child = next_tid[0]
            next_tid[0] += 1
            if rng.random() < 0.5:  # a new process (fork): copies the regions
                pid_of[child] = child
                regions[child] = list(regs)
                if pid in brk:
                    brk[child] = brk[pid]
            else:  # a thread (clone)
                pid_of[child] = pid
            alive.add(child)
            emit(Fork(t, c, me, child))
        elif roll < 0.92:
            # de_thread: the process's other threads die before the exec completes.
            for other in sorted(x for x in alive if pid_of[x] == pid and x != me
                                and kill_on_exec):
                oc = next((k for k, v in cur.items() if v == other), None)
                emit(Exit(t, oc if oc is not None else c, other))
                alive.discard(other)
                t += 50
                if oc is not None:
                    switch(oc, IDLE, "Z")
            regions[pid] = []
            brk.pop(pid, None)
            emit(Exec(t, c, me, "/bin/other"))
        elif roll < 0.95 and me != root:
            emit(Exit(t, c, me))
            alive.discard(me)
            t += 100
            switch(c, IDLE, "Z")
        else:
            t += rng.randint(1000, 20000)  # compute
    for c in range(cpus):  # the end: everyone exits
        t += 1000
        me = cur[c]
        if me in alive and me != IDLE:
            emit(Exit(t, c, me))
            alive.discard(me)
            t += 100
            switch(c, IDLE, "Z")
    tasks = {tid: Task(tid, pid, "c", f"synth{tid}") for tid, pid in pid_of.items()}
    tasks[IDLE] = Task(IDLE, 0, "i", "swapper")
    tasks[FOREIGN] = Task(FOREIGN, FOREIGN, "u", "other user")
    tasks[KTHREAD] = Task(KTHREAD, KTHREAD, "k", "kworker/0:1")
    meta = {"kind": "run", "command": f"synth {seed}", "host_cpus": str(cpus),
            "root_pid": str(root), "duration_ns": str(t), "sources": "synthetic"}
    return Trace(meta=meta, tasks=tasks, events=events)
