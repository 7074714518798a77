"""`percpu guest check`: boot a build's bzImage under QEMU without KVM (TCG) and check
what /init prints (docs/guest.md, the init protocol). About 1.5 s to init here, against
minutes under gem5: check a guest before spending gem5 time on it."""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from percpu.errors import UsageError
from percpu.guest.cache import PERCPU, QEMU_KERNEL_ARGS, GuestBuild

QEMU = "qemu-system-x86_64"
BOOTED = re.compile(r"percpu-guest: booted kernel=(\S+) cpus=(\d+) pcid=(yes|no) "
                    r"invpcid=(yes|no) pti=(\S+)")
SMOKE = re.compile(r"percpu-guest: smoke (\S+) status=(\d+)")
SELFTEST_CASE = re.compile(r"percpu-selftest: (\S+) expected=([AB]) got=(\S) (ok|FAIL)")
SELFTEST_SUMMARY = re.compile(r"percpu-selftest: (\d+) passed, (\d+) failed")
DONE = "percpu-guest: qemu check done"
# The percpu kernel's counters (/proc/percpu_roots), the stress's summary and status.
ROOTS = re.compile(r"percpu-guest: roots (\S+) (\d+)$")
STRESS = re.compile(r"percpu-guest: stress: (roots_stress: .*)$")
STRESS_STATUS = re.compile(r"percpu-guest: stress status=(\d+)")
# What the kernel prints when something is wrong: a WARN (the roots' checker warns once
# per boot with the CPU, ASID, slot and both entries), a BUG, an oops, a panic.
KERNEL_TROUBLE = re.compile(r"(WARNING: |BUG: |Oops|Kernel panic|general protection fault"
                            r"|Call Trace:)")
TROUBLE_PREFIX = "the kernel printed: "


def kernel_trouble(line: str) -> str | None:
    """The kind of trouble a console line reports (its KERNEL_TROUBLE match), or None.
    'traps: prog[pid] general protection fault ...' is a user program's signal that the
    kernel logs, not trouble of the kernel's."""
    m = KERNEL_TROUBLE.search(line)
    if m is None or line.lstrip().startswith("traps:"):
        return None
    return m.group(1).strip()
# The gem5 path of /init (no percpu.host=qemu): under QEMU the m5 ops read the BIOS ROM
# at 0xFFFF0000 instead of reaching gem5, so `m5 exit` returns and readfile yields no
# script; what is checked is that /init goes through step 5 in order.
GEM5_PATH = (re.compile(r"percpu-guest: ready$"),
             re.compile(r"percpu-guest: running script \((\d+) bytes\)"),
             re.compile(r"percpu-guest: script exited with status (\d+)"))
# After DONE, /init runs poweroff -f; without ACPI the kernel halts instead of turning
# QEMU off, so the check ends QEMU itself once the kernel says so (or after a grace).
HALTED = ("reboot: Power down", "reboot: System halted")
GRACE_SECONDS = 3.0


@dataclass
class CheckResult:
    ok: bool
    lines: list[str]
    problems: list[str] = field(default_factory=list)
    boot_seconds: float | None = None     # QEMU start to the "booted" line (/init running)
    total_seconds: float = 0.0
    booted: dict[str, str] = field(default_factory=dict)
    smoke: dict[str, int] = field(default_factory=dict)
    selftest: list[tuple[str, str, str, str]] = field(default_factory=list)
    selftest_summary: tuple[int, int] | None = None
    selftest_skipped: str | None = None
    roots: dict[str, int] = field(default_factory=dict)   # /proc/percpu_roots
    stress: str | None = None                              # roots_stress's summary
    stress_status: int | None = None
    command: list[str] = field(default_factory=list)


def qemu_command(bzimage: Path, *, cpus: int = 2, memory_mb: int = 512, cpu: str = "max",
                 smoke: bool = True, selftest: bool = True, extra_args: str = "",
                 gem5_path: bool = False, initrd: Path | None = None) -> list[str]:
    append = QEMU_KERNEL_ARGS
    if gem5_path:
        append = append.replace(" percpu.host=qemu", "")
        smoke = False
    if smoke:
        append += " percpu.smoke=1"
    if selftest:
        append += " percpu.selftest=1"
    if extra_args:
        append += " " + extra_args
    # One CPU per socket: SeaBIOS's MP table lists one CPU per package, and without ACPI
    # the guest finds its CPUs in the MP table only (QEMU's default -smp 2 is one socket
    # of two cores: the guest would see one CPU).
    smp = f"{cpus},sockets={cpus},cores=1,threads=1"
    return [QEMU, "-cpu", cpu, "-smp", smp, "-m", str(memory_mb), "-nographic",
            "-no-reboot", "-monitor", "none", "-serial", "stdio",
            "-nic", "none",  # no network card: no iPXE option ROM at boot
            "-kernel", str(bzimage),
            # A second initramfs, unpacked over the built-in one (the kernel selftests).
            *(["-initrd", str(initrd)] if initrd else []),
            "-append", append]


ROOTS_WRITTEN = "percpu-guest: roots options written"


def roots_options(extra_args: str) -> set[str]:
    """The options of the kernel's percpu_roots=on|off[,nocheck][,time][,nokmap]
    [,kmapdirect] in a command line."""
    options: set[str] = set()
    for arg in extra_args.split():
        if arg.startswith("percpu_roots="):
            options |= set(arg.split("=", 1)[1].split(","))
    return options


def timing_problems(roots: dict[str, int], *, roots_off: bool) -> list[str]:
    """percpu_roots=time: the paths the run took must have counted cycles, and switches
    must be timed by what they did (no roots made or loaded with the roots off)."""
    if not roots.get("timing"):
        return ["percpu_roots=time: /proc/percpu_roots says timing 0"]
    kinds = ("newRoot", "keptRoot", "noRoot", "noLoad")
    switches = {k: roots.get(f"timedSwitches::{k}", 0) for k in kinds}
    cycles = {k: roots.get(f"switchCycles::{k}", 0) for k in kinds}
    problems = [f"percpu_roots=time: {n} {k} switches took {cycles[k]} cycles"
                for k, n in switches.items() if (n > 0) != (cycles[k] > 0)]
    if roots_off:
        if switches["noRoot"] == 0 or switches["newRoot"] or switches["keptRoot"]:
            problems.append(f"percpu_roots=off,time: switches timed as {switches}, "
                            "expected only noRoot and noLoad")
        return problems
    if switches["newRoot"] == 0:
        problems.append("percpu_roots=time: no switch that made a root was timed")
    for count, total in (("rootAllocs::total", "rootMakeCycles"),
                         ("lazyFaults", "lazyFaultFixupCycles")):
        if roots.get(count, 0) and not roots.get(total, 0):
            problems.append(f"percpu_roots=time: {roots[count]} {count} but {total} 0")
    return problems


def roots_problems(roots: dict[str, int], *, roots_off: bool,
                   timing: bool = False) -> list[str]:
    """What is wrong with a percpu kernel's /proc/percpu_roots counters: the checker saw
    a violation, a bound of the proposal broke, the roots did (not) run as asked, or
    (with percpu_roots=time) the paths went untimed."""
    if not roots:
        return ["no 'percpu-guest: roots' lines: the kernel has no /proc/percpu_roots"]
    problems = []
    missing = [n for n in ("enabled", "rootAllocs::total", "lazyFaults", "rootPoolPeakBytes",
                           "rootPoolBoundBytes", "maxLazyFaultsPerRoot", "lazyFaultBound",
                           "checkerViolations") if n not in roots]
    if missing:
        return [f"/proc/percpu_roots lacks {', '.join(missing)}"]
    if timing:
        problems += timing_problems(roots, roots_off=roots_off)
    if roots_off:
        if roots["enabled"] != 0 or roots["rootAllocs::total"] != 0:
            problems.append("percpu_roots=off: the roots still ran "
                            f"(enabled {roots['enabled']}, {roots['rootAllocs::total']} made)")
        return problems
    if roots["enabled"] != 1 or roots["rootAllocs::total"] == 0 or roots["lazyFaults"] == 0:
        problems.append(f"the roots did not run (enabled {roots['enabled']}, "
                        f"{roots['rootAllocs::total']} made, {roots['lazyFaults']} lazy faults)")
    if roots["checkerViolations"]:
        problems.append(f"the roots' checker saw {roots['checkerViolations']} violation(s)")
    if roots["rootPoolPeakBytes"] > roots["rootPoolBoundBytes"]:
        problems.append(f"root pool peak {roots['rootPoolPeakBytes']} B over the bound "
                        f"{roots['rootPoolBoundBytes']} B")
    # maxLazyFaultsPerRoot may pass lazyFaultBound (256) without anything being wrong:
    # a slot whose table is freed and allocated again within one root generation is
    # faulted in again, which the suggestion's bound did not foresee (docs/kernel.md).
    return problems


def kmap_problems(roots: dict[str, int], *, roots_off: bool, smoke: bool,
                  nokmap: bool = False, kmapdirect: bool = False) -> list[str]:
    """kmap_local in the roots' own slot (the series' CONFIG_X86_KMAP_LOCAL_MAP,
    docs/kernel.md): with the roots on (kmap.private 1) the smoke programs' copies
    (kmap_io) map there; with percpu_roots=off or nokmap nothing does; with kmapdirect
    (kmap_local=direct) nothing maps at all, as in the stock kernel. A series or config
    without it prints kmap.private 0 or no kmap lines, and nothing is asked of it."""
    if "kmap.private" not in roots:
        return []
    private = roots.get("kmap.localMaps::private", 0)
    if kmapdirect:
        maps = private + roots.get("kmap.localMaps::fixmap", 0)
        if roots.get("kmap.direct") != 1 or roots["kmap.private"]:
            return [(f"percpu_roots=kmapdirect: kmap.direct {roots.get('kmap.direct')}, "
                    f"kmap.private {roots['kmap.private']} (1 and 0 expected)")]
        return [f"percpu_roots=kmapdirect: {maps} kmap_local mappings were made"] if maps \
            else []
    if roots_off or nokmap:
        what = "off" if roots_off else "nokmap"
        return ([f"percpu_roots={what}: {private} kmap_local mappings went to a root's slot"]
                if private or roots["kmap.private"] else [])
    if roots["kmap.private"] == 1 and smoke and private == 0:
        return [("kmap.private 1 but no kmap_local mapping went to a root's slot "
                 "(kmap.localMaps::private 0)")]
    return []


def parse_output(lines: list[str], *, cpus: int, smoke: bool, selftest: bool,
                 programs: list[str], gem5_path: bool = False, percpu_kernel: bool = False,
                 roots_off: bool = False, stress: bool = False, timing: bool = False,
                 nokmap: bool = False, kmapdirect: bool = False
                 ) -> tuple[list[str], CheckResult]:
    """Check /init's lines; returns (problems, a result with what was parsed)."""
    result = CheckResult(ok=False, lines=lines)
    problems: list[str] = []
    for line in lines:
        if kernel_trouble(line):
            problems.append(TROUBLE_PREFIX + line.strip())
        if m := BOOTED.search(line):
            result.booted = dict(zip(("kernel", "cpus", "pcid", "invpcid", "pti"), m.groups(),
                                     strict=True))
        elif m := SMOKE.search(line):
            result.smoke[m.group(1)] = int(m.group(2))
        elif m := SELFTEST_CASE.search(line):
            result.selftest.append(m.groups())  # type: ignore[arg-type]
        elif m := SELFTEST_SUMMARY.search(line):
            result.selftest_summary = (int(m.group(1)), int(m.group(2)))
        elif "percpu-selftest: skipped" in line:
            result.selftest_skipped = line.split("percpu-selftest: ", 1)[1].strip()
        elif m := ROOTS.search(line):
            result.roots[m.group(1)] = int(m.group(2))
        elif m := STRESS.search(line):
            result.stress = m.group(1)
        elif m := STRESS_STATUS.search(line):
            result.stress_status = int(m.group(1))
    if not result.booted:
        problems.append("no 'percpu-guest: booted' line: the kernel did not reach /init")
    elif int(result.booted["cpus"]) != cpus:
        problems.append(f"guest saw {result.booted['cpus']} CPUs, QEMU gave it {cpus}")
    if smoke:
        for name in programs:
            if name not in result.smoke:
                problems.append(f"guest program {name} did not run")
        for name, status in result.smoke.items():
            if status != 0:
                problems.append(f"guest program {name} exited with status {status}")
        if percpu_kernel and not gem5_path:
            # /init writes the run-time options before the programs, timing on.
            if result.roots and not any(ROOTS_WRITTEN in line for line in lines):
                problems.append("/proc/percpu_roots refused the run-time options "
                                f"(no '{ROOTS_WRITTEN}' line)")
            timing = True
    if selftest:
        if result.selftest_skipped is None and result.selftest_summary is None:
            problems.append("the self-test printed no summary line")
        failed = [c[0] for c in result.selftest if c[3] != "ok"]
        if failed:
            problems.append(f"self-test cases failed: {', '.join(failed)}")
    if gem5_path:
        at = 0
        for pattern in GEM5_PATH:
            found = next((i for i in range(at, len(lines)) if pattern.search(lines[i])), None)
            if found is None:
                problems.append(f"gem5 path: no line matching '{pattern.pattern}' "
                                "(after the previous one)")
                break
            at = found + 1
    elif not any(DONE in line for line in lines):
        problems.append(f"no '{DONE}' line")
    if percpu_kernel and not gem5_path:
        problems += roots_problems(result.roots, roots_off=roots_off, timing=timing)
        if result.roots:
            problems += kmap_problems(result.roots, roots_off=roots_off, smoke=smoke,
                                      nokmap=nokmap, kmapdirect=kmapdirect)
    if stress:
        if result.stress is None or result.stress_status is None:
            problems.append("the stress printed no summary or status")
        elif result.stress_status != 0 or " errors=0" not in result.stress:
            problems.append(f"the stress failed (status {result.stress_status}): "
                            f"{result.stress}")
    return problems, result


def check(build: GuestBuild, *, timeout: float = 120.0, cpus: int = 2, memory_mb: int = 512,
          cpu: str = "max", smoke: bool = True, selftest: bool = True, extra_args: str = "",
          gem5_path: bool = False, echo=None, log: Path | None = None,
          initrd: Path | None = None) -> CheckResult:
    """Boot build's bzImage under QEMU TCG; lines stream to echo as they arrive."""
    if shutil.which(QEMU) is None:
        raise UsageError(f"percpu guest check needs {QEMU}: apt-get install qemu-system-x86")
    cmd = qemu_command(build.bzimage, cpus=cpus, memory_mb=memory_mb, cpu=cpu, smoke=smoke,
                       selftest=selftest, extra_args=extra_args, gem5_path=gem5_path,
                       initrd=initrd)
    smoke = smoke and not gem5_path
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    lines: list[str] = []
    pending = b""
    boot_seconds = None
    done_at = None
    timed_out = False
    try:
        while True:
            now = time.monotonic()
            if now - start > timeout:
                timed_out = True
                break
            if done_at is not None and now - done_at > GRACE_SECONDS:
                break
            if not sel.select(timeout=0.2):
                if proc.poll() is not None:
                    break
                continue
            chunk = proc.stdout.read()
            if not chunk:
                if proc.poll() is not None:
                    break
                continue
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                line = raw.decode(errors="replace").rstrip("\r")
                lines.append(line)
                if echo:
                    echo(line)
                if boot_seconds is None and BOOTED.search(line):
                    boot_seconds = time.monotonic() - start
                if DONE in line or (gem5_path and GEM5_PATH[2].search(line)):
                    done_at = time.monotonic()
                if done_at is not None and any(h in line for h in HALTED):
                    done_at = 0.0  # halted: stop now
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        sel.close()
    if pending:
        lines.append(pending.decode(errors="replace").rstrip("\r"))
    total = time.monotonic() - start
    programs = [p for p in build.manifest.get("programs", []) if p != "m5"]
    problems, result = parse_output(
        lines, cpus=cpus, smoke=smoke, selftest=selftest, programs=programs,
        gem5_path=gem5_path, percpu_kernel=build.manifest.get("kernel") == PERCPU,
        roots_off="off" in roots_options(extra_args),
        timing="time" in roots_options(extra_args),
        nokmap="nokmap" in roots_options(extra_args),
        kmapdirect="kmapdirect" in roots_options(extra_args),
        stress=any(a.startswith("percpu.stress=") for a in extra_args.split()))
    if timed_out:
        problems.insert(0, f"timed out after {timeout:.0f} s")
    result.problems = problems
    result.ok = not problems
    result.boot_seconds = boot_seconds
    result.total_seconds = total
    result.command = cmd
    if log is not None:
        log.write_text(" ".join(cmd) + "\n" + "\n".join(lines) + "\n")
    return result
