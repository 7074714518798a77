"""Parsing `perf script` output (tracepoints or software events) into raw events."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from percpu.trace.format import (
    Event,
    Exec,
    Exit,
    Fault,
    Fork,
    MemMap,
    Switch,
)

# ------------------------------------------------------------------ perf script parsing

_HEAD = re.compile(r"^\s*(-?\d+)/(-?\d+)\s+\[(\d+)\]\s+(\d+)\.(\d+):\s+(.*)$")
_SWITCH = re.compile(r"prev_comm=(.*) prev_pid=(\d+) prev_prio=\S+ prev_state=(\S+) ==> "
                     r"next_comm=(.*) next_pid=(\d+) next_prio=")
_FORK = re.compile(r"pid=(\d+) child_comm=(.*) child_pid=(\d+)")
_EXEC = re.compile(r"filename=(.*) pid=(\d+) old_pid=(\d+)")
_PF = re.compile(r"address=(0x[0-9a-f]+) ip=(0x[0-9a-f]+) error_code=(0x[0-9a-f]+)")
_KV = re.compile(r"(\w+): (0x[0-9a-f]+)")
_SW_SWITCH = re.compile(r"PERF_RECORD_SWITCH_CPU_WIDE (OUT|IN)\s+(preempt)?\s*"
                        r"(?:next|prev) pid/tid:\s*(-?\d+)/(-?\d+)")
_SW_FORK = re.compile(r"PERF_RECORD_(FORK|EXIT)\((-?\d+):(-?\d+)\):\((-?\d+):(-?\d+)\)")
_SW_COMM = re.compile(r"PERF_RECORD_COMM( exec)?: (.*):(-?\d+)/(-?\d+)\s*$")
_SW_PF = re.compile(r"page-faults:\s+([0-9a-f]+)\s+([0-9a-f]+)")


@dataclass
class _Raw:
    """What perf script said, before the command's tree is picked out."""

    events: list[tuple[int, Event]] = field(default_factory=list)  # (abs ns, event)
    pid_of: dict[int, int] = field(default_factory=dict)
    comm: dict[int, str] = field(default_factory=dict)
    kthread: set[int] = field(default_factory=set)
    lost: int = 0
    filled_switches: int = 0


def _fault_kind(err: int) -> str:
    if err & 0x10:
        return "x"
    return "w" if err & 0x2 else "r"


def parse_perf_script(lines, software: bool) -> _Raw:
    """Parse `perf script --ns` output (tracepoint or software-event form)."""
    raw = _Raw()
    pending_mmap: dict[int, tuple[int, int]] = {}  # tid -> (len, prot) of sys_enter_mmap
    last_next: dict[int, int] = {}  # cpu -> the task the last switch there switched to
    for line in lines:
        m = _HEAD.match(line)
        if not m:
            continue
        pid, tid, cpu = int(m.group(1)), int(m.group(2)), int(m.group(3))
        ns = int(m.group(4)) * 1_000_000_000 + int(m.group(5).ljust(9, "0")[:9])
        body = m.group(6)
        if pid >= 0 and tid >= 0 and not body.startswith("PERF_RECORD"):
            raw.pid_of.setdefault(tid, pid)
        ev: Event | None = None
        if body.startswith("sched:sched_switch"):
            s = _SWITCH.search(body)
            if s:
                raw.comm[int(s.group(2))] = s.group(1)
                raw.comm[int(s.group(5))] = s.group(4)
                ev = Switch(0, cpu, int(s.group(2)), int(s.group(5)), s.group(3))
        elif body.startswith("sched:sched_process_fork"):
            s = _FORK.search(body)
            if s:
                raw.comm[int(s.group(3))] = s.group(2)
                ev = Fork(0, cpu, tid, int(s.group(3)))
        elif body.startswith("sched:sched_process_exec"):
            s = _EXEC.search(body)
            if s:
                ev = Exec(0, cpu, tid, s.group(1))
        elif body.startswith("sched:sched_process_exit"):
            ev = Exit(0, cpu, tid)
        elif body.startswith("exceptions:page_fault_user"):
            s = _PF.search(body)
            if s:
                err = int(s.group(3), 16)
                ev = Fault(0, cpu, tid, int(s.group(1), 16), _fault_kind(err), err)
        elif body.startswith("syscalls:"):
            name = body.split(":", 2)[1]
            kv = {k: int(v, 16) for k, v in _KV.findall(body)}
            if name == "sys_enter_mmap":
                pending_mmap[tid] = (kv.get("len", 0), kv.get("prot", 0))
            elif name == "sys_exit_mmap":
                ret = body.rsplit(None, 1)[-1]
                got = pending_mmap.pop(tid, None)
                if got and ret.startswith("0x"):
                    addr = int(ret, 16)
                    if addr < 1 << 47 and addr % 4096 == 0 and got[0] > 0:
                        ev = MemMap(0, cpu, tid, "mmap", addr, got[0], got[1])
            elif name == "sys_enter_munmap" and kv.get("len"):
                ev = MemMap(0, cpu, tid, "munmap", kv.get("addr", 0), kv["len"], 0)
            elif name == "sys_enter_mprotect" and kv.get("len"):
                ev = MemMap(0, cpu, tid, "mprotect", kv.get("start", 0), kv["len"],
                            kv.get("prot", 0))
            elif name == "sys_exit_brk":
                ret = body.rsplit(None, 1)[-1]
                if ret.startswith("0x"):
                    ev = MemMap(0, cpu, tid, "brk", int(ret, 16), 0, 3)
        elif body.startswith("page-faults"):
            s = _SW_PF.search(body)
            if s:
                addr, ip = int(s.group(1), 16), int(s.group(2), 16)
                ev = Fault(0, cpu, tid, addr, "x" if addr == ip else "r", -1)
        elif body.startswith("PERF_RECORD_SWITCH_CPU_WIDE"):
            s = _SW_SWITCH.search(body)
            if s and s.group(1) == "OUT" and software:
                ev = Switch(0, cpu, tid, int(s.group(4)), "R" if s.group(2) else "-")
            elif s and s.group(1) == "IN" and last_next.get(cpu) != tid:
                # The switch-in record, written in the incoming task's context, stands for a
                # switch whose record is missing: the kernel emits no sched_switch (and perf
                # no OUT record) from the idle task's context on some machines.
                ev = Switch(0, cpu, int(s.group(4)), tid, "-")
                raw.filled_switches += 1
        elif body.startswith(("PERF_RECORD_FORK", "PERF_RECORD_EXIT")):
            s = _SW_FORK.search(body)
            if s:
                cpid, ctid, ppid = int(s.group(2)), int(s.group(3)), int(s.group(4))
                raw.pid_of[ctid] = cpid
                if ppid == 2 or cpid == 2:
                    raw.kthread.add(ctid)
                if ns > 0:
                    if s.group(1) == "FORK":
                        ev = Fork(0, cpu, int(s.group(5)), ctid)
                    else:
                        ev = Exit(0, cpu, ctid)
        elif body.startswith("PERF_RECORD_COMM"):
            s = _SW_COMM.search(body)
            if s:
                ctid = int(s.group(4))
                raw.pid_of[ctid] = int(s.group(3))
                raw.comm[ctid] = s.group(2)
                if s.group(1) and ns > 0:
                    ev = Exec(0, cpu, ctid, s.group(2))
        if ev is not None:
            if isinstance(ev, Switch):
                last_next[cpu] = ev.next
            raw.events.append((ns, ev))
    raw.events.sort(key=lambda p: p[0])
    return raw
