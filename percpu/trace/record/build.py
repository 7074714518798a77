"""Raw perf events to a Trace: the traced command's tasks, their switches, forks, execs,
faults and memory-map calls, in time order."""

from __future__ import annotations

import os

from percpu.errors import UsageError
from percpu.trace.format import (
    Event,
    Exec,
    Fork,
    Switch,
    Task,
    Trace,
    Vma,
)
from percpu.trace.record.perf_script import _Raw
from percpu.trace.record.proc import KTHREAD_COMM, is_kernel_thread

# ------------------------------------------------------------------ building the trace


def _with_time(ev: Event, t: int) -> Event:
    return ev._replace(t=t)


def build_trace(raw: _Raw, root: int, *, wrapper_path: str, recorder_pids: set[int],
                meta: dict[str, str], maps: dict[int, tuple[int, list[Vma]]] | None = None,
                local: bool = True) -> Trace:
    """Pick the command's tree out of the system-wide events; times relative to its exec.
    local=False (an import from another machine): kernel threads are told by perf's records
    and their names only, never by this machine's /proc."""
    # The root's exec of the command: the first exec that is not the /bin/sh wrapper's.
    execs = [(ns, ev) for ns, ev in raw.events if isinstance(ev, Exec) and ev.tid == root]
    if not execs:
        raise UsageError(f"the trace holds no exec of the command (pid {root}): was it "
                         "started? Check that the command exists and runs")
    cut = execs[0][0]
    wrapper_names = {wrapper_path, os.path.basename(wrapper_path)}
    if execs[0][1].path in wrapper_names and len(execs) > 1:
        cut = execs[1][0]
    traced: set[int] = {root}
    procs: set[int] = {root}
    raw.pid_of[root] = root
    kept: list[tuple[int, Event]] = []
    last_traced = cut
    for ns, ev in raw.events:
        if ns < cut:
            continue
        if isinstance(ev, Fork):
            if ev.tid in traced:
                traced.add(ev.child)
                parent_pid = raw.pid_of.get(ev.tid, ev.tid)
                if raw.pid_of.get(ev.child, ev.child) != parent_pid:
                    procs.add(raw.pid_of.get(ev.child, ev.child))
                kept.append((ns, ev))
                last_traced = ns
            continue
        if isinstance(ev, Switch):
            kept.append((ns, ev))
            if ev.prev in traced or ev.next in traced:
                last_traced = ns
            continue
        if ev.tid in traced:
            kept.append((ns, ev))
            last_traced = ns
    events = [_with_time(ev, ns - cut) for ns, ev in kept if ns <= last_traced]
    tids: set[int] = set()
    for ev in events:
        if isinstance(ev, Switch):
            tids.update((ev.prev, ev.next))
        else:
            tids.add(ev.tid)
            if isinstance(ev, Fork):
                tids.add(ev.child)
    tasks: dict[int, Task] = {}
    for tid in sorted(tids):
        pid = raw.pid_of.get(tid, tid)
        comm = raw.comm.get(tid, "")
        if tid in traced:
            cls = "c"
        elif tid == 0:
            cls, pid = "i", 0
        elif pid in recorder_pids:
            cls = "r"
        else:
            kt = tid in raw.kthread or (is_kernel_thread(pid) if local else None)
            if kt is None:
                kt = bool(KTHREAD_COMM.match(comm))
            cls = "k" if kt else "u"
        tasks[tid] = Task(tid, pid, cls, comm)
    trace = Trace(meta=dict(meta), tasks=tasks, events=events)
    trace.meta["root_pid"] = str(root)
    trace.meta["duration_ns"] = str(last_traced - cut)
    if maps:
        # A pid's last observed maps, if taken after its last exec: its final image's VMAs.
        last_exec = {ev.tid: ns for ns, ev in kept if isinstance(ev, Exec)}
        for pid in sorted(maps):
            when, vmas = maps[pid]
            if pid in procs and when >= last_exec.get(pid, cut):
                trace.vmas.extend(vmas)
    return trace
