"""Run a workload point on gem5: boot once (or reuse the checkpoint), then one gem5
process per scheme, and write each scheme's directory in the engine's layout.

<outdir>/<scheme>/ holds gem5's own stats.txt, config.ini and config.json, the
guest's console log (console.log), percpu.json (workload, scheme, params, machine,
how gem5 was run, what the guest reported) and summary.txt. percpu.json is what
lets `percpu report` read gem5 runs beside engine runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from percpu import __version__
from percpu.analysis.stats_txt import parse_stats_txt
from percpu.atomic import make_temp_dir, replace_dir, write_atomic
from percpu.errors import UsageError
from percpu.gem5host import console
from percpu.gem5host.kernel_stats import merge_kernel_roots
from percpu.gem5host.plan import (
    Gem5Options,
    Machine,
    as_json,
    boot_inputs,
    boot_plan,
    checkpoint_key,
    roi_plan,
)

SYSTEM_SCRIPT = Path(__file__).with_name("system.py")
CONSOLE_FILE = "board.pc.com_1.device"
CONSOLE_TAIL = 20


class GuestFailure(Exception):
    """A gem5 phase that did not end as the guest should: one line, details in files."""


@dataclass
class PhaseResult:
    outdir: Path
    phase: dict[str, Any]
    report: console.GuestReport
    host_seconds: float


def _say(quiet: bool, text: str, nl: bool = True) -> None:
    if not quiet:
        sys.stderr.write(text + ("\n" if nl else ""))
        sys.stderr.flush()


def run_phase(opts: Gem5Options, plan: dict[str, Any], outdir: Path, label: str, quiet: bool,
              program: str | None = None) -> PhaseResult:
    """One gem5 process: write its plan, run it with a wall-clock limit, watch the guest's
    console for a panic, and return what it did."""
    outdir.mkdir(parents=True, exist_ok=True)
    plan_path = outdir / "plan.json"
    plan_path.write_text(as_json(plan))
    cmd = [str(opts.gem5), "-d", str(outdir), "--listener-mode=off", "-r", "-e",
           "--silent-redirect", str(SYSTEM_SCRIPT), str(plan_path)]
    (outdir / "command.txt").write_text(" ".join(cmd) + "\n")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True)
    cons = outdir / CONSOLE_FILE
    tty = sys.stderr.isatty() and not quiet
    last_note = 0.0
    fatal = None
    try:
        while proc.poll() is None:
            time.sleep(0.5)
            elapsed = time.monotonic() - start
            text = console.read_console(cons)
            rep = console.parse_console(text, program)
            if rep.fatal:
                fatal = rep.fatal
                break
            if elapsed > opts.timeout_s:
                fatal = f"no end after {opts.timeout_s:.0f} s of host time (--timeout)"
                break
            if tty and elapsed - last_note >= 1.0 or not tty and elapsed - last_note >= 60:
                last_note = elapsed
                tail = next((ln for ln in reversed(console.last_lines(text, 5)) if ln.strip()), "")
                line = f"  [{label}] {elapsed:6.0f} s  guest: {tail[:70]}"
                if tty:
                    sys.stderr.write("\r\033[K" + line)
                    sys.stderr.flush()
                elif not quiet:
                    _say(quiet, line)
    except BaseException:
        _kill(proc)
        raise
    finally:
        if tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
    if fatal:
        _kill(proc)
    seconds = time.monotonic() - start
    text = console.read_console(cons)
    rep = console.parse_console(text, program)
    if cons.is_file():
        shutil.copyfile(cons, outdir / "console.log")
    phase_file = outdir / "phase.json"
    phase = json.loads(phase_file.read_text()) if phase_file.is_file() else {}
    if fatal or proc.returncode != 0 or not phase:
        why = fatal or rep.fatal or _gem5_error(outdir) or f"gem5 exited with {proc.returncode}"
        raise GuestFailure(f"{label}: {why}")
    return PhaseResult(outdir, phase, rep, seconds)


def keep_failed(work: Path, failed: Path) -> Path:
    """Keep a failed phase's directory under its .failed name, with the console's last
    lines in console-tail.txt (the one place to look first)."""
    text = console.read_console(work / CONSOLE_FILE)
    (work / "console-tail.txt").write_text("\n".join(console.last_lines(text, CONSOLE_TAIL))
                                           + "\n")
    shutil.rmtree(failed, ignore_errors=True)
    os.replace(work, failed)
    return failed


def _gem5_error(outdir: Path) -> str | None:
    """gem5's own fatal/panic line, if it printed one."""
    for name in ("simerr.txt", "simout.txt"):
        path = outdir / name
        if path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith(("fatal:", "panic:", "Traceback")) or "Error" in line[:40]:
                    return "gem5 " + line.strip()
    return None


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def ensure_checkpoint(opts: Gem5Options, machine: Machine, quiet: bool) -> tuple[Path, dict]:
    """The post-boot checkpoint of this machine: reused when it exists, else booted now.
    Returns its directory and the boot's record (what the guest reported)."""
    inputs = boot_inputs(opts, machine)
    key = checkpoint_key(inputs)
    final = opts.checkpoint_dir / key
    record_path = final / "boot.json"
    if (final / "cpt" / "m5.cpt").is_file() and record_path.is_file():
        _say(quiet, f"checkpoint: reusing {final}")
        return final, json.loads(record_path.read_text())
    opts.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    work = make_temp_dir(opts.checkpoint_dir, f".{key}.")
    try:
        _say(quiet, f"boot: {machine.cpus} atomic CPUs, PCID {'on' if machine.pcid else 'off'}, "
                    f"PTI {'on' if machine.pti else 'off'} (a few minutes; the checkpoint is "
                    f"kept in {final})")
        result = run_phase(opts, boot_plan(opts, machine, work / "cpt"), work, "boot", quiet)
        rep = result.report
        if not result.phase.get("checkpointed") or not rep.ready:
            raise GuestFailure(f"boot: the guest did not reach init's ready point "
                               f"({result.phase.get('cause', 'no exit')})")
        record = {"inputs": inputs, "host_seconds": round(result.host_seconds, 1),
                  "ticks": result.phase.get("tick"), "booted": rep.booted,
                  "selftest": rep.selftest, "selftest_passed": rep.selftest_passed,
                  "selftest_failed": rep.selftest_failed,
                  "selftest_skipped": rep.selftest_skipped}
        check_boot(record, machine)
        write_atomic(work / "boot.json", json.dumps(record, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(work, final)
    except GuestFailure as exc:
        failed = keep_failed(work, opts.checkpoint_dir / f"{key}.failed")
        raise GuestFailure(f"{exc}; the boot's files (console.log, simerr.txt) are in "
                           f"{failed}") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _say(quiet, f"boot: done in {record['host_seconds']:.0f} s; guest: "
                f"{' '.join(f'{k}={v}' for k, v in record['booted'].items())}")
    return final, record


def check_boot(record: dict, machine: Machine) -> None:
    """The guest's own report must match the machine asked for: PCID visible or not, PTI
    on or off, every CPU online, and the PCID self-test passing."""
    booted = record["booted"]
    want_pcid = "yes" if machine.pcid else "no"
    if booted.get("pcid") != want_pcid:
        raise GuestFailure(f"boot: the guest reports pcid={booted.get('pcid')} where the machine "
                           f"has PCID {'on' if machine.pcid else 'off'}: is this gem5 built with "
                           "src_patches/? (percpu gem5 check)")
    pti_on = console.GuestReport(booted=booted).pti_enabled
    if machine.pti != bool(pti_on):
        raise GuestFailure(f"boot: the guest reports PTI {'on' if pti_on else 'off'} "
                           f"(ptiflag={booted.get('ptiflag')}, meltdown={booted.get('pti')}) "
                           f"where {'--pti asked for it' if machine.pti else 'nopti was given'}")
    if str(booted.get("cpus")) != str(machine.cpus):
        raise GuestFailure(f"boot: {booted.get('cpus')} CPUs online in the guest, "
                           f"{machine.cpus} simulated")
    if record.get("selftest_failed"):
        bad = [c["case"] for c in record["selftest"] if c["verdict"] == "FAIL"]
        raise GuestFailure(f"boot: the guest's PCID self-test failed: {', '.join(bad)}")


def run_scheme(opts: Gem5Options, machine: Machine, checkpoint: Path, scheme: str, script: str,
               workdir: Path, program: str, quiet: bool,
               roots: dict[str, Any] | None = None) -> PhaseResult:
    readfile = workdir / "workload.sh"
    readfile.write_text(script)
    plan = roi_plan(opts, machine, checkpoint / "cpt", readfile, scheme, roots)
    result = run_phase(opts, plan, workdir, scheme, quiet, program=program)
    rep = result.report
    dumps = _dump_count(workdir / "stats.txt")
    if result.phase.get("fallback_dump") or dumps == 0:
        raise GuestFailure(f"{scheme}: the guest never dumped its region of interest's stats "
                           f"({result.phase.get('cause')})")
    if not rep.summary_lines:
        raise GuestFailure(f"{scheme}: no summary line from {program} "
                           f"({result.phase.get('cause')})")
    failed = rep.summary.get("failed")
    if failed not in (None, "0"):
        raise GuestFailure(f"{scheme}: {program} reports failed={failed}: {rep.summary_lines[-1]}")
    return result


def run_script(opts: Gem5Options, machine: Machine, checkpoint: Path, script: str,
               workdir: Path, label: str, quiet: bool) -> tuple[PhaseResult, str]:
    """A script of one's own as the guest's readfile script on the restored checkpoint
    (the calibration's; the percpu kernel's stress under gem5): no region of interest is
    asked of it. Returns the phase and the guest's console text."""
    readfile = workdir / f"{label}.sh"
    readfile.write_text(script)
    plan = roi_plan(opts, machine, checkpoint / "cpt", readfile, "shared")
    result = run_phase(opts, plan, workdir, label, quiet)
    return result, (workdir / "console.log").read_text(errors="replace")


def _dump_count(stats: Path) -> int:
    if not stats.is_file():
        return 0
    try:
        return len([d for d in parse_stats_txt(stats) if not d.partial])
    except UsageError:
        return 0


def write_scheme_dir(result: PhaseResult, final: Path, info: dict[str, Any]) -> dict[str, float]:
    """Give a finished scheme's gem5 directory its percpu files and move it into place.
    Returns its headline figures (stats.txt is parsed once, here)."""
    work = result.outdir
    # The percpu kernel's counts, under the models' names (kernel_stats).
    merge_kernel_roots(work / "stats.txt", result.report.kernel_roots)
    h = headline(work / "stats.txt")
    write_atomic(work / "percpu.json", json.dumps(info, indent=2) + "\n")
    write_atomic(work / "summary.txt", summary_text(h, info, result))
    replace_dir(work, final)
    return h


def headline(stats_path: Path) -> dict[str, float]:
    """Sums over CPUs of the figures the summary and the comparison show, from the
    region-of-interest dump (the first complete one)."""
    from percpu.analysis.tidy import normalise_name

    dumps = [d for d in parse_stats_txt(stats_path) if not d.partial]
    out: dict[str, float] = {}
    for stat in dumps[0].stats if dumps else []:
        parts = normalise_name(stat.name)
        key = parts.component + ("." if parts.component else "") + parts.stat
        if parts.bucket:
            key += "::" + parts.bucket
        if isinstance(stat.value, (int, float)):
            out[key] = out.get(key, 0.0) + float(stat.value)
    return out


GEM5_FIGURES: list[tuple[str, str | Callable[[dict[str, float]], float | None]]] = [
    ("simulated time (ms)", lambda h: h.get("simSeconds", 0.0) * 1e3),
    ("instructions", "commitStats0.numInsts"),
    ("CR3 writes", "percpu.cr3Writes"),
    ("  with no-flush bit", "percpu.cr3WritesNoFlush"),
    ("  with non-zero PCID", "percpu.cr3WritesNonZeroPcid"),
    ("mm switches", "percpu.mmSwitches"),
    ("  that flushed", "percpu.mmSwitchesFlushed"),
    ("flushing CR3 writes per mm switch",
     lambda h: (h["percpu.mmSwitchesFlushed"] / h["percpu.mmSwitches"])
     if h.get("percpu.mmSwitches") else None),
    ("PTI entry/exit CR3 writes", "percpu.ptiSwitches"),
    ("INVLPG", "percpu.invlpg"),
    ("DTLB misses", lambda h: h.get("mmu.dtb.rdMisses", 0) + h.get("mmu.dtb.wrMisses", 0)),
    ("ITLB misses", lambda h: h.get("mmu.itb.rdMisses", 0) + h.get("mmu.itb.wrMisses", 0)),
    # The root model's (src_patches/percpu_gem5): 0 under shared.
    # Summed here: a gem5 binary built before the stat had its total flag prints no ::total.
    ("root allocs", lambda h: _root_alloc_total(h)),
    ("  firstUse", "percpu.rootAllocs::firstUse"),
    ("  evicted", "percpu.rootAllocs::evicted"),
    ("  flushedInactive", "percpu.rootAllocs::flushedInactive"),
    ("  noPcid", "percpu.rootAllocs::noPcid"),
    ("lazy faults", "percpu.lazyFaults"),
    ("  max per root generation", "percpu.maxLazyFaultsPerRoot"),
    ("root pool peak (KiB)", lambda h: h["percpu.rootPoolPeakBytes"] / 1024
     if "percpu.rootPoolPeakBytes" in h else None),
    ("kernel entries synced", "percpu.kernelSyncs"),
    ("root entries dropped by flushes", "percpu.rootEntriesDropped"),
    ("cycles charged to root walks", "percpu.rootChargedCycles"),
    ("cycles allocating and copying roots", "percpu.rootCopyCycles"),
    ("  walks that made copies", "percpu.rootCopies"),
    ("checker violations", "percpu.checkerViolations"),
]


def _root_alloc_total(h: dict[str, float]) -> float | None:
    from percpu.params import core

    keys = [f"percpu.rootAllocs::{c}" for c in core().ROOT_ALLOC_CAUSES]
    return sum(h.get(k, 0.0) for k in keys) if any(k in h for k in keys) else None


def figures(h: dict[str, float]) -> dict[str, str]:
    out = {}
    for label, how in GEM5_FIGURES:
        value = how(h) if callable(how) else h.get(how)
        if value is None:
            continue
        out[label] = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3f}"
    return out


def summary_text(h: dict[str, float], info: dict[str, Any], result: PhaseResult) -> str:
    m, g = info["machine"], info["gem5"]
    params = " ".join(f"{k}={v}" for k, v in info["params"].items())
    lines = [
        f"percpu {__version__} on gem5: workload {info['workload']} ({params})",
        (f"scheme {info['scheme']} on {m['cpus']} CPUs ({g['cpu_type']}, caches {g['caches']}), "
         f"PCID {'on' if m['pcid'] else 'off'}, PTI {'on' if m['pti'] else 'off'}"),
        f"guest: {' '.join(f'{k}={v}' for k, v in info['guest']['booted'].items())}",
        f"guest summary: {info['guest']['summary']}",
        "stats: the region of interest's dump (the guest program's resetstats .. dumpstats)",
        "",
    ]
    for label, value in figures(h).items():
        lines.append(f"{label:36} {value}")
    lines.append(f"{'host time (s)':36} {result.host_seconds:,.1f}")
    return "\n".join(lines) + "\n"
