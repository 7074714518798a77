"""What the guest says on its serial console, read by the orchestrator.

The guest's init (workloads/guest/init.sh) and the guest programs print one-line
reports; this module finds them in gem5's console log (board.pc.com_1.device).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# Linux's own words for a dead guest (kernel/panic.c, lib/bug.c, arch/x86/mm/fault.c,
# and arch/x86/kernel/head64.c's early_fixup_exception before the console is up).
FATAL_PATTERNS = ("Kernel panic - not syncing", "BUG: unable to handle", "general protection fault",
                  "Oops:", "---[ end Kernel panic", "PANIC: early exception")

_BOOTED = re.compile(r"percpu-guest: booted (?P<fields>.*)$")
_FIELD = re.compile(r"(\w+)=(\S*)")
_SELFTEST = re.compile(r"percpu-selftest: (?P<case>.+?) expected=(?P<want>\S+) got=(?P<got>\S+) "
                       r"(?P<verdict>ok|FAIL)")
_SELFTEST_TOTAL = re.compile(r"percpu-selftest: (?P<passed>\d+) passed, (?P<failed>\d+) failed")
_SCRIPT_EXIT = re.compile(r"percpu-guest: script exited with status (?P<rc>\d+)")
_WORKLOAD_EXIT = re.compile(r"percpu: (?P<name>[\w-]+) exited with status (?P<rc>\d+)")


@dataclass
class GuestReport:
    """The guest's own account of a phase."""

    booted: dict[str, str] = field(default_factory=dict)  # kernel, cpus, pcid, invpcid, pti
    selftest: list[dict[str, str]] = field(default_factory=list)
    selftest_passed: int | None = None
    selftest_failed: int | None = None
    selftest_skipped: str | None = None
    ready: bool = False
    script_status: int | None = None
    workload_status: int | None = None
    summary_lines: list[str] = field(default_factory=list)
    # The percpu kernel's /proc/percpu_roots over the guest program's ROI
    # ("percpu-roots: <name> <value>", workloads/guest/common.c; docs/kernel.md).
    kernel_roots: dict[str, int] = field(default_factory=dict)
    fatal: str | None = None

    @property
    def summary(self) -> dict[str, str]:
        """key=value fields of the program's last summary line."""
        return dict(_FIELD.findall(self.summary_lines[-1])) if self.summary_lines else {}

    @property
    def pcid(self) -> bool | None:
        v = self.booted.get("pcid")
        return None if v is None else v == "yes"

    @property
    def pti_enabled(self) -> bool | None:
        """PTI on: /proc/cpuinfo's pti flag (ptiflag=), else the meltdown file's words."""
        if "ptiflag" in self.booted:
            return self.booted["ptiflag"] == "yes"
        v = self.booted.get("pti")
        return None if v is None else "PTI" in v


_KERNEL_ROOTS = re.compile(r"^percpu-roots: (?P<name>\S+) (?P<value>\d+)\s*$")


def read_console(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def parse_console(text: str, program: str | None = None) -> GuestReport:
    """The guest's reports in a console log; program is the guest program whose
    summary line ("ctxmix: procs=16 ... failed=0 ...") to collect."""
    rep = GuestReport()
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if rep.fatal is None and any(p in line for p in FATAL_PATTERNS):
            rep.fatal = line.strip()
        if m := _BOOTED.search(line):
            rep.booted = dict(_FIELD.findall(m.group("fields")))
        elif m := _SELFTEST.search(line):
            rep.selftest.append(m.groupdict())
        elif m := _SELFTEST_TOTAL.search(line):
            rep.selftest_passed, rep.selftest_failed = int(m["passed"]), int(m["failed"])
        elif "percpu-selftest: skipped" in line:
            rep.selftest_skipped = line.split("percpu-selftest: skipped", 1)[1].strip(" ()")
        elif "percpu-guest: ready" in line:
            rep.ready = True
        elif m := _SCRIPT_EXIT.search(line):
            rep.script_status = int(m["rc"])
        elif m := _WORKLOAD_EXIT.search(line):
            rep.workload_status = int(m["rc"])
        elif m := _KERNEL_ROOTS.match(line):
            rep.kernel_roots[m["name"]] = int(m["value"])
        elif program and line.startswith(f"{program}: ") and "=" in line \
                and not line.startswith((f"{program}: warning", f"{program}: error")):
            rep.summary_lines.append(line.strip())
    return rep


def last_lines(text: str, n: int = 20) -> list[str]:
    return [ln.rstrip("\r") for ln in text.splitlines()[-n:]]
