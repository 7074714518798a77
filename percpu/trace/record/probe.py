"""Which event sources perf can record on this machine (tracepoints, or software events),
and the permission hints when it cannot."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from percpu.errors import UsageError

SCHED_TP = ["sched:sched_switch", "sched:sched_process_fork", "sched:sched_process_exec",
            "sched:sched_process_exit"]
FAULT_TP = ["exceptions:page_fault_user"]
SYSCALL_TP = ["syscalls:sys_enter_mmap", "syscalls:sys_exit_mmap", "syscalls:sys_enter_munmap",
              "syscalls:sys_enter_mprotect", "syscalls:sys_exit_brk"]


@dataclass
class Sources:
    """What perf can record here: the event list and the names for the trace header."""

    events: list[str]
    extra_args: list[str]
    names: list[str]
    software: bool


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
