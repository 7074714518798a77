"""record(): the command under perf (and lackey), written as one trace file."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from percpu.errors import UsageError
from percpu.trace.format import (
    Trace,
    write_trace,
)
from percpu.trace.record.build import build_trace
from percpu.trace.record.lackey import run_lackey
from percpu.trace.record.perf_script import parse_perf_script
from percpu.trace.record.probe import _permission_hint, find_perf, probe_sources
from percpu.trace.record.proc import _MapsPoller

WRAPPER_SH = "/bin/sh"
WRAPPER_SCRIPT = 'echo $$ > "$0"; exec "$@"'


@dataclass
class RecordResult:
    path: Path
    trace: Trace
    warnings: list[str] = field(default_factory=list)


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
