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
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from percpu.errors import UsageError
from percpu.trace.format import (
    Access,
    Event,
    Exec,
    Exit,
    Fault,
    Fork,
    MemMap,
    Switch,
    Task,
    Trace,
    Vma,
    write_trace,
)

WRAPPER_SH = "/bin/sh"
WRAPPER_SCRIPT = 'echo $$ > "$0"; exec "$@"'
SCHED_TP = ["sched:sched_switch", "sched:sched_process_fork", "sched:sched_process_exec",
            "sched:sched_process_exit"]
FAULT_TP = ["exceptions:page_fault_user"]
SYSCALL_TP = ["syscalls:sys_enter_mmap", "syscalls:sys_exit_mmap", "syscalls:sys_enter_munmap",
              "syscalls:sys_enter_mprotect", "syscalls:sys_exit_brk"]
PF_KTHREAD = 0x00200000
KTHREAD_COMM = re.compile(r"^(kworker|ksoftirqd|migration|rcu_|kthreadd|irq/|cpuhp|watchdog|"
                          r"idle_inject|kcompactd|khugepaged|kswapd|oom_reaper|writeback|"
                          r"kblockd|kintegrityd|kdevtmpfs|jbd2|ext4-|scsi_|pool_workqueue)")
LACKEY_WINDOW = 4096
LINE = 64


@dataclass
class Sources:
    """What perf can record here: the event list and the names for the trace header."""

    events: list[str]
    extra_args: list[str]
    names: list[str]
    software: bool


@dataclass
class RecordResult:
    path: Path
    trace: Trace
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ probing


def find_perf() -> str:
    perf = shutil.which("perf")
    if perf is None:
        raise UsageError("perf not found on PATH: install it (Debian: apt-get install "
                         "linux-perf) and run `percpu trace record` again")
    return perf


def _paranoid() -> str:
    try:
        return Path("/proc/sys/kernel/perf_event_paranoid").read_text().strip()
    except OSError:
        return "?"


def _try_perf(perf: str, args: list[str], tmp: Path) -> tuple[bool, str]:
    try:
        proc = subprocess.run([perf, "record", "-q", "-a", "-o", str(tmp / "probe.data"), *args,
                               "--", "true"], check=False, capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return proc.returncode == 0, proc.stderr


def _permission_hint(stderr: str) -> str:
    low = stderr.lower()
    if "paranoid" in low or "permission" in low or "access" in low or "eacces" in low:
        return (f"perf may not record system-wide here (kernel.perf_event_paranoid="
                f"{_paranoid()}, not root?): run as root or `sysctl -w "
                f"kernel.perf_event_paranoid=-1`")
    if "tracefs" in low or "debugfs" in low or "tracepoint" in low:
        return ("perf finds no tracefs: `mount -t tracefs nodev /sys/kernel/tracing` "
                "(as root) or record with --events software")
    first = next((ln.strip() for ln in stderr.splitlines() if ln.strip()), "no message")
    return f"perf record fails here ({first[:120]}): check `perf record -a -- true` as root"


_PROBED: dict[tuple[str, str], Sources] = {}


def probe_sources(perf: str, mode: str = "auto") -> Sources:
    """probe_sources_uncached, remembered per (perf, mode) for the life of the process."""
    key = (perf, mode)
    if key not in _PROBED:
        _PROBED[key] = probe_sources_uncached(perf, mode)
    return _PROBED[key]


def probe_sources_uncached(perf: str, mode: str = "auto") -> Sources:
    """Find the best event set perf can record system-wide here; UsageError if none.

    One short `perf record -a -- true` per try (about a second each): the full tracepoint
    set first, then, if that fails, piece by piece down to the software events.
    """
    tp_names = ["sched_switch", "sched_process_fork", "sched_process_exec",
                "sched_process_exit"]
    with tempfile.TemporaryDirectory(prefix="percpu-probe.") as d:
        tmp = Path(d)
        clock = ["-k", "CLOCK_MONOTONIC"]
        full = SCHED_TP + FAULT_TP + SYSCALL_TP
        sw_in = ["--switch-events"]
        if mode in ("auto", "tracepoints") and _try_perf(perf, ["-e", ",".join(full), *sw_in,
                                                                *clock], tmp)[0]:
            return Sources(full, [*sw_in, *clock],
                           tp_names + ["switch-events", "page_fault_user", "mmap", "munmap",
                                       "mprotect", "brk"], software=False)
        ok, err = _try_perf(perf, ["-e", "dummy", *clock], tmp)
        if not ok:
            ok2, err2 = _try_perf(perf, ["-e", "dummy"], tmp)
            if not ok2:
                raise UsageError(_permission_hint(err2 or err))
            clock = []
        if mode in ("auto", "tracepoints"):
            ok, err_tp = _try_perf(perf, ["-e", ",".join(SCHED_TP), *clock], tmp)
            if ok:
                events = list(SCHED_TP)
                names = list(tp_names)
                extra: list[str] = []
                if _try_perf(perf, ["-e", "dummy", *sw_in, *clock], tmp)[0]:
                    extra += sw_in
                    names.append("switch-events")
                if _try_perf(perf, ["-e", ",".join(FAULT_TP), *clock], tmp)[0]:
                    events += FAULT_TP
                    names.append("page_fault_user")
                else:  # the software event gives the address (no error code)
                    events.append("page-faults")
                    extra += ["-c", "1", "-d"]
                    names.append("page-faults(software)")
                if _try_perf(perf, ["-e", ",".join(SYSCALL_TP), *clock], tmp)[0]:
                    events += SYSCALL_TP
                    names += ["mmap", "munmap", "mprotect", "brk"]
                return Sources(events, [*extra, *clock], names, software=False)
            if mode == "tracepoints":
                raise UsageError(_permission_hint(err_tp))
        ok, err_sw = _try_perf(perf, ["-e", "page-faults", "-c", "1", "-d", "--switch-events",
                                      *clock], tmp)
        if not ok:
            raise UsageError(_permission_hint(err_sw))
        return Sources(["page-faults"], ["-c", "1", "-d", "--switch-events", *clock],
                       ["switch-events(software)", "task-events(software)",
                        "page-faults(software)"], software=True)


# ------------------------------------------------------------------ /proc helpers


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            except OSError:
                continue
            out.extend(int(x) for x in text.split())
    except OSError:
        pass
    return out


def read_maps(pid: int) -> list[Vma]:
    """The VMAs of /proc/PID/maps (empty if the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return []
    return parse_maps(text, pid)


def parse_maps(text: str, pid: int) -> list[Vma]:
    vmas = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5 or "-" not in parts[0]:
            continue
        lo, hi = parts[0].split("-", 1)
        name = parts[5].strip() if len(parts) > 5 else ""
        vmas.append(Vma(pid, int(lo, 16), int(hi, 16), parts[1], int(parts[2], 16), name))
    return vmas


def is_kernel_thread(pid: int) -> bool | None:
    """True/False from /proc/PID/stat's flags (PF_KTHREAD); None if the task is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        fields = stat.rsplit(")", 1)[1].split()
        return bool(int(fields[6]) & PF_KTHREAD)
    except (IndexError, ValueError):
        return None


class _MapsPoller(threading.Thread):
    """Reads /proc/PID/maps of the command's processes every few ms while it runs."""

    def __init__(self, pidfile: Path, interval: float = 0.02):
        super().__init__(daemon=True)
        self.pidfile = pidfile
        self.interval = interval
        self.stop = threading.Event()
        self.latest: dict[int, tuple[int, list[Vma]]] = {}  # pid -> (monotonic ns, vmas)

    def run(self) -> None:
        root = None
        while not self.stop.is_set():
            if root is None:
                try:
                    root = int(self.pidfile.read_text().strip())
                except (OSError, ValueError):
                    root = None
            if root is not None:
                todo, seen = [root], set()
                while todo:
                    pid = todo.pop()
                    if pid in seen:
                        continue
                    seen.add(pid)
                    now = time.monotonic_ns()
                    vmas = read_maps(pid)
                    if vmas:
                        self.latest[pid] = (now, vmas)
                    todo.extend(_children(pid))
            self.stop.wait(self.interval)


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


# ------------------------------------------------------------------ building the trace


def _with_time(ev: Event, t: int) -> Event:
    return ev._replace(t=t)


def build_trace(raw: _Raw, root: int, *, wrapper_path: str, recorder_pids: set[int],
                meta: dict[str, str], maps: dict[int, tuple[int, list[Vma]]] | None = None,
                ) -> Trace:
    """Pick the command's tree out of the system-wide events; times relative to its exec."""
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
            kt = tid in raw.kthread or is_kernel_thread(pid)
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


# ------------------------------------------------------------------ lackey


class _Window:
    """Compresses a stream of accesses into per-window, per-kind, first-touch line runs."""

    def __init__(self, pid: int, out: list[Access]):
        self.pid = pid
        self.out = out
        self.lines: dict[str, dict[int, None]] = {"I": {}, "L": {}, "S": {}}
        self.n = 0

    def add(self, kind: str, addr: int) -> None:
        self.lines[kind].setdefault(addr // LINE * LINE, None)
        self.n += 1
        if self.n >= LACKEY_WINDOW:
            self.flush()

    def flush(self) -> None:
        for kind in ("I", "L", "S"):
            seq = list(self.lines[kind])
            i = 0
            while i < len(seq):
                start, count, stride = seq[i], 1, 0
                if i + 1 < len(seq):
                    stride = seq[i + 1] - seq[i]
                    while i + count < len(seq) and seq[i + count] - seq[i + count - 1] == stride:
                        count += 1
                if count == 1:
                    stride = 0
                self.out.append(Access(self.pid, kind, start, count, stride))
                i += count
            self.lines[kind] = {}
        self.n = 0


def parse_lackey_log(path: Path, pid: int, limit: int) -> tuple[int | None, list[Access], int,
                                                                 bool]:
    """(parent pid, access runs, raw accesses read, truncated) of one lackey log file."""
    out: list[Access] = []
    win = _Window(pid, out)
    parent = None
    n = 0
    truncated = False
    kinds = {"I": "I", "L": "L", "S": "S", "M": "S"}
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("=="):
                if "Parent PID:" in line:
                    parent = int(line.rsplit(":", 1)[1])
                continue
            s = line.strip()
            if len(s) < 3 or s[0] not in kinds or "," not in s:
                continue
            if n >= limit:
                truncated = True
                break
            try:
                addr = int(s[1:].split(",", 1)[0], 16)
            except ValueError:
                continue
            win.add(kinds[s[0]], addr)
            n += 1
    win.flush()
    return parent, out, n, truncated


def run_lackey(cmd: list[str], tmp: Path, trace: Trace, limit: int) -> list[str]:
    """Run the command under lackey and add its accesses (A records) to trace."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise UsageError("--memory needs valgrind: install it (Debian: apt-get install "
                         "valgrind) or record without --memory")
    logdir = tmp / "lackey"
    logdir.mkdir()
    with open(tmp / "lackey.out", "wb") as out:
        proc = subprocess.run([valgrind, "--tool=lackey", "--trace-mem=yes",
                               "--trace-children=yes", f"--log-file={logdir}/lackey.%p",
                               *cmd], check=False, stdout=out, stderr=subprocess.STDOUT)
    warnings = []
    if proc.returncode != 0:
        warnings.append(f"the command exited with status {proc.returncode} under valgrind")
    logs = sorted(logdir.glob("lackey.*"), key=lambda p: int(p.suffix[1:] or 0))
    if not logs:
        raise UsageError("valgrind lackey wrote no log: check `valgrind --tool=lackey true`")
    per_proc = max(1, limit // len(logs))
    parsed: dict[int, tuple[int | None, list[Access], int, bool]] = {}
    for log in logs:
        vpid = int(log.suffix[1:])
        parsed[vpid] = parse_lackey_log(log, vpid, per_proc)
    # Match valgrind's process tree to perf's: root to root, then children in creation order.
    vchildren: dict[int | None, list[int]] = {}
    for vpid, (parent, *_rest) in parsed.items():
        key = parent if parent in parsed else None
        vchildren.setdefault(key, []).append(vpid)
    pchildren: dict[int, list[int]] = {}
    pid_of = {t.tid: t.pid for t in trace.tasks.values()}
    for ev in trace.events:
        if isinstance(ev, Fork) and ev.tid in pid_of and ev.child in pid_of:
            ppid, cpid = pid_of[ev.tid], pid_of[ev.child]
            if ppid != cpid and trace.tasks[ev.child].cls == "c":
                pchildren.setdefault(ppid, []).append(cpid)
    root = int(trace.meta["root_pid"])
    mapping: dict[int, int] = {}

    def match(vpid: int, pid: int) -> None:
        mapping[vpid] = pid
        for v, p in zip(sorted(vchildren.get(vpid, [])), pchildren.get(pid, [])):
            match(v, p)

    vroots = sorted(vchildren.get(None, []))
    if vroots:
        match(vroots[0], root)
    raw_total = {"I": 0, "L": 0, "S": 0}
    total_raw = 0
    truncated = False
    unmatched = 0
    for vpid, (_parent, runs, n, trunc) in sorted(parsed.items()):
        if vpid not in mapping:
            unmatched += 1
            continue
        pid = mapping[vpid]
        trace.accesses.extend(a._replace(pid=pid) for a in runs)
        total_raw += n
        truncated |= trunc
        for a in runs:
            raw_total[a.kind] += a.count
    trace.meta["mem_source"] = "valgrind-lackey(separate run)"
    trace.meta["mem_raw_accesses"] = str(total_raw)
    trace.meta["mem_window"] = str(LACKEY_WINDOW)
    trace.meta["mem_processes"] = str(len(parsed) - unmatched)
    if truncated:
        trace.meta["mem_truncated_per_process"] = str(per_proc)
        warnings.append(f"lackey accesses cut at {per_proc} per process (--memory-limit)")
    if unmatched:
        trace.meta["mem_unmatched_processes"] = str(unmatched)
        warnings.append(f"{unmatched} process(es) of the valgrind run had no counterpart in "
                        "the perf run; their accesses were dropped")
    return warnings


# ------------------------------------------------------------------ record


def _perf_version(perf: str) -> str:
    try:
        return subprocess.run([perf, "--version"], check=False, capture_output=True,
                              text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def record(cmd: list[str], out: Path, *, memory: bool = False, events: str = "auto",
           memory_limit: int = 5_000_000, stdout=None, stderr=None) -> RecordResult:
    """Run CMD under perf (and lackey with memory=True); write the trace to OUT."""
    if not cmd:
        raise UsageError("trace record needs a command: percpu trace record -- CMD ARGS")
    exe = shutil.which(cmd[0])
    if exe is None:
        raise UsageError(f"command '{cmd[0]}' not found: give a path or a program on PATH")
    if memory and shutil.which("valgrind") is None:
        raise UsageError("--memory needs valgrind: install it (Debian: apt-get install "
                         "valgrind) or record without --memory")
    perf = find_perf()
    sources = probe_sources(perf, events)
    warnings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="percpu-record.") as d:
        tmp = Path(d)
        pidfile = tmp / "root.pid"
        data = tmp / "perf.data"
        argv = [perf, "record", "-q", "-a", "-m", "1024", "-o", str(data),
                "-e", ",".join(sources.events), *sources.extra_args,
                "--", WRAPPER_SH, "-c", WRAPPER_SCRIPT, str(pidfile), exe, *cmd[1:]]
        poller = _MapsPoller(pidfile)
        started = time.time()
        proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
        poller.start()
        try:
            _, perf_err = proc.communicate()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            raise
        finally:
            poller.stop.set()
            poller.join()
        perf_err_text = perf_err.decode(errors="replace")
        if stderr is not None:
            stderr.write(perf_err_text)
        try:
            root = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            raise UsageError(_permission_hint(perf_err_text) if proc.returncode else
                             "the command never started under perf") from None
        if not data.exists():
            raise UsageError(_permission_hint(perf_err_text))
        script = [perf, "script", "-i", str(data), "--ns"]
        if sources.software:
            script += ["-F", "pid,tid,cpu,time,event,addr,ip", "--show-task-events",
                       "--show-switch-events"]
        elif "page-faults" in sources.events:
            script += ["-F", "tracepoint:pid,tid,cpu,time,event,trace",
                       "-F", "sw:pid,tid,cpu,time,event,addr,ip"]
        else:
            script += ["-F", "pid,tid,cpu,time,event,trace"]
        if not sources.software and "--switch-events" in sources.extra_args:
            script.append("--show-switch-events")
        sp = subprocess.Popen(script, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              errors="replace")
        assert sp.stdout is not None
        raw = parse_perf_script(sp.stdout, sources.software)
        script_err = sp.stderr.read() if sp.stderr else ""
        sp.wait()
        if sp.returncode != 0:
            raise UsageError(f"perf script failed on the recording: "
                             f"{script_err.strip().splitlines()[-1:] or ['?']}")
        lost = sum(int(x) for x in re.findall(r"lost (\d+) chunks", script_err))
        lost += sum(int(x) for x in re.findall(r"(\d+) lost events", script_err))
        if lost:
            warnings.append(f"perf lost {lost} event chunks (the trace has gaps): record a "
                            "shorter run")
        meta = {
            "kind": "run",
            "command": shlex.join(cmd),
            "host_cpus": str(os.cpu_count() or 1),
            "kernel": os.uname().release,
            "perf": _perf_version(perf),
            "sources": ",".join(sources.names),
            "clock": "monotonic" if "CLOCK_MONOTONIC" in sources.extra_args else "perf",
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "exit_status": str(proc.returncode),
            "lost_chunks": str(lost),
            "switches_from_in_records": str(raw.filled_switches),
        }
        recorder = {proc.pid, os.getpid()}
        maps = poller.latest if meta["clock"] == "monotonic" else None
        trace = build_trace(raw, root, wrapper_path=WRAPPER_SH, recorder_pids=recorder,
                            meta=meta, maps=maps)
        if memory:
            warnings += run_lackey([exe, *cmd[1:]], tmp, trace, memory_limit)
        path = write_trace(trace, out)
    return RecordResult(path, trace, warnings)


def default_out(cmd: list[str]) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(cmd[0]) if cmd else "trace")
    return Path(f"{name}.trace.gz")
