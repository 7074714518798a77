"""valgrind lackey: a second run of the command that records its user-space memory
accesses, windowed per process."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from percpu.errors import UsageError
from percpu.trace.format import (
    Access,
    Fork,
    Trace,
)

LACKEY_WINDOW = 4096
LINE = 64


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
