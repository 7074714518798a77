"""`percpu trace import`: a recording made elsewhere (perf script text, or perf.data where
perf is installed here) to a `percpu-trace 1` file, without this machine's /proc."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from percpu.errors import UsageError
from percpu.trace.format import Exec, Fork, Switch, Trace, write_trace
from percpu.trace.record.build import build_trace
from percpu.trace.record.perf_script import parse_perf_script

# perf script's default line starts with the comm, and may show only the tid.
_LINE = re.compile(r"^\s*(?:(?P<comm>\S.*?)\s+)?(?P<pid>-?\d+)(?:/(?P<tid>-?\d+))?\s+"
                   r"\[(?P<cpu>\d+)\]\s+(?P<time>\d+\.\d+):\s+(?P<body>.*)$")
RECORDER_COMMS = {"perf", "perf-exec"}


def _normalise(lines):
    """Lines in the pid/tid [cpu] time: body form parse_perf_script reads."""
    for line in lines:
        m = _LINE.match(line.rstrip("\n"))
        if not m:
            continue
        tid = m.group("tid") or m.group("pid")
        yield f"{m.group('pid')}/{tid} [{m.group('cpu')}] {m.group('time')}: {m.group('body')}"


def _script_lines(src: Path) -> list[str]:
    with open(src, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PERFILE"):
        perf = shutil.which("perf")
        if perf is None:
            raise UsageError(f"{src} is a perf.data file and perf is not installed here: "
                             "install it (Debian: apt-get install linux-perf) or import the "
                             "text of `perf script` run where it was recorded")
        proc = subprocess.run([perf, "script", "-i", str(src), "--ns", "--show-task-events",
                               "--show-switch-events", "-F", "pid,tid,cpu,time,event,trace"],
                              capture_output=True, text=True, errors="replace", check=False)
        if proc.returncode != 0:
            proc = subprocess.run([perf, "script", "-i", str(src), "--ns",
                                   "--show-task-events", "--show-switch-events"],
                                  capture_output=True, text=True, errors="replace",
                                  check=False)
        if proc.returncode != 0:
            raise UsageError(f"perf script could not read {src}: "
                             f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        return proc.stdout.splitlines()
    try:
        return src.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read {src}: {exc.strerror}") from None


def import_perf(src: Path, out: Path, *, pid: int | None = None,
                comm: str | None = None) -> tuple[Path, Trace]:
    """Import SRC; the traced command is the process tree of PID, or of the first task named
    COMM, or of the first task that execs in the recording."""
    lines = list(_normalise(_script_lines(src)))
    if not lines:
        raise UsageError(f"{src} holds no perf script records: give the output of `perf "
                         "script` (fields pid,tid,cpu,time,event,trace) or a perf.data file")
    software = not any("sched:sched_switch" in ln for ln in lines)
    raw = parse_perf_script(lines, software)
    if not raw.events:
        raise UsageError(f"{src}: no sched_switch, fork, exec or switch records: record with "
                         "`perf record -e sched:sched_switch,sched:sched_process_fork,"
                         "sched:sched_process_exec,sched:sched_process_exit -a`")
    root = pid
    if root is None and comm is not None:
        for _, ev in raw.events:
            for t in ((ev.prev, ev.next) if isinstance(ev, Switch) else (ev.tid,)):
                if raw.comm.get(t) == comm:
                    root = t
                    break
            if root is not None:
                break
        if root is None:
            raise UsageError(f"{src}: no task named '{comm}': check --comm")
    if root is None:
        execs = [ev.tid for _, ev in raw.events if isinstance(ev, Exec)]
        if not execs:
            raise UsageError(f"{src}: no exec in the recording to find the command by: give "
                             "--pid PID or --comm NAME")
        root = execs[0]
    seen = {t for _, ev in raw.events
            for t in ((ev.prev, ev.next) if isinstance(ev, Switch) else
                      (ev.tid, ev.child) if isinstance(ev, Fork) else (ev.tid,))}
    if root not in seen:
        raise UsageError(f"{src}: task {root} does not appear in the recording: check --pid")
    # The command starts at its exec if the recording has one, else at its first record.
    has_exec = any(isinstance(ev, Exec) and ev.tid == root for _, ev in raw.events)
    if not has_exec:
        first, cpu = next((ns, ev.cpu) for ns, ev in raw.events
                          if root in ((ev.prev, ev.next) if isinstance(ev, Switch) else
                                      (ev.tid,)))
        raw.events.append((first, Exec(0, cpu, root, raw.comm.get(root, "") or "-")))
        raw.events.sort(key=lambda p: p[0])
    recorder = {raw.pid_of.get(t, t) for t, c in raw.comm.items() if c in RECORDER_COMMS}
    cpus = {ev.cpu for _, ev in raw.events}
    meta = {"kind": "run", "command": raw.comm.get(root, "") or f"pid {root}",
            "host_cpus": str(max(cpus) + 1 if cpus else 1), "kernel": "?", "perf": "?",
            "sources": "imported:" + ("software" if software else "tracepoints"),
            "clock": "perf", "imported_from": src.name, "exit_status": "0",
            "lost_chunks": "0", "switches_from_in_records": str(raw.filled_switches)}
    trace = build_trace(raw, root, wrapper_path="/percpu-no-wrapper", recorder_pids=recorder - {0}, meta=meta,
                        local=False)
    if comm is not None:
        # Every task of that name is the command's, forked in the recording or before it.
        for tid, task in trace.tasks.items():
            if task.cls == "u" and task.comm == comm:
                trace.tasks[tid] = task._replace(cls="c")
    return write_trace(trace, out), trace
