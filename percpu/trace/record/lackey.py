"""valgrind lackey: a second run of the command that records its user-space memory
accesses, per process, in program order."""

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

LINE = 64
# Most access records one process keeps (the stream is cut there, in order): about 30
# bytes of trace text each before gzip.
MAX_RECORDS = 1_000_000


# ------------------------------------------------------------------ lackey


class _Stream:
    """Compresses one process's accesses in program order, without reordering anything.

    - A modify is a load then a store of its line.
    - An access that repeats its stream's current line (fetches: the line fetched last;
      loads and stores: the data line accessed last, with a kind already seen on it since)
      is dropped, whatever the other stream did in between: it hits the L1 TLB entry and
      the cache line its predecessor left most recently used, and changes no LRU order of
      the split L1 TLBs. Counted in `dropped`.
    - Consecutive records of one kind whose lines advance by a constant stride become one
      record (COUNT accesses, STRIDE apart): only the last record can grow, so the order
      of the output is the order of the input.
    """

    def __init__(self, pid: int, out: list[Access], max_records: int = MAX_RECORDS):
        self.pid = pid
        self.out = out
        self.max_records = max_records
        self.last_i = -1
        self.last_d = -1
        self.d_kinds: set[str] = set()
        self.dropped = 0
        self.full = False
        # The open record: kind, first line, count, stride.
        self.kind = ""
        self.start = self.count = self.stride = 0

    def add(self, kind: str, addr: int) -> None:
        line = addr // LINE * LINE
        if kind == "I":
            if line == self.last_i:
                self.dropped += 1
                return
            self.last_i = line
        else:
            if line == self.last_d and kind in self.d_kinds:
                self.dropped += 1
                return
            if line != self.last_d:
                self.last_d, self.d_kinds = line, set()
            self.d_kinds.add(kind)
        self._emit(kind, line)

    def _emit(self, kind: str, line: int) -> None:
        if self.count and kind == self.kind:
            last = self.start + (self.count - 1) * self.stride
            if self.count == 1 and line != self.start:
                self.stride, self.count = line - self.start, 2
                return
            if self.count > 1 and line - last == self.stride:
                self.count += 1
                return
        self.close()
        if len(self.out) >= self.max_records:
            self.full = True
            return
        self.kind, self.start, self.count, self.stride = kind, line, 1, 0

    def close(self) -> None:
        if self.count:
            self.out.append(Access(self.pid, self.kind, self.start, self.count,
                                   self.stride if self.count > 1 else 0))
        self.count = 0


def parse_lackey_log(path: Path, pid: int, limit: int,
                     max_records: int = MAX_RECORDS) -> tuple[int | None, list[Access], int,
                                                              bool]:
    """(parent pid, access runs in program order, raw accesses read, truncated) of one lackey
    log file; at most `limit` raw accesses and `max_records` records are kept."""
    out: list[Access] = []
    stream = _Stream(pid, out, max_records)
    parent = None
    n = 0
    truncated = False
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("=="):
                if "Parent PID:" in line:
                    parent = int(line.rsplit(":", 1)[1])
                continue
            s = line.strip()
            if len(s) < 3 or s[0] not in "ILSM" or "," not in s:
                continue
            if n >= limit or stream.full:
                truncated = True
                break
            try:
                addr = int(s[1:].split(",", 1)[0], 16)
            except ValueError:
                continue
            if s[0] == "M":
                stream.add("L", addr)
                stream.add("S", addr)
            else:
                stream.add(s[0], addr)
            n += 1
    stream.close()
    if len(out) > max_records:
        del out[max_records:]
        truncated = True
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
    trace.meta["mem_compression"] = "program-order"
    trace.meta["mem_processes"] = str(len(parsed) - unmatched)
    if truncated:
        trace.meta["mem_truncated_per_process"] = str(per_proc)
        warnings.append(f"lackey accesses cut at {per_proc} per process (--memory-limit)")
    if unmatched:
        trace.meta["mem_unmatched_processes"] = str(unmatched)
        warnings.append(f"{unmatched} process(es) of the valgrind run had no counterpart in "
                        "the perf run; their accesses were dropped")
    return warnings
