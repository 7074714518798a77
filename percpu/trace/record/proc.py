"""/proc helpers: a process's children and memory maps, kernel threads, and the poller that
snapshots maps while the command runs."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

from percpu.trace.format import (
    Vma,
)

PF_KTHREAD = 0x00200000
KTHREAD_COMM = re.compile(r"^(kworker|ksoftirqd|migration|rcu_|kthreadd|irq/|cpuhp|watchdog|"
                          r"idle_inject|kcompactd|khugepaged|kswapd|oom_reaper|writeback|"
                          r"kblockd|kintegrityd|kdevtmpfs|jbd2|ext4-|scsi_|pool_workqueue)")


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
