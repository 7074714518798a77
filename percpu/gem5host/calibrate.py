"""`percpu gem5 calibrate`: the calibration microbenchmarks in the gem5 guest, fitted into
a cost profile of the simulated machine (issue 13, part 2; docs/gem5.md).

The guest image carries the programs of workloads/guest/calib/ in /sbin (percpu guest
build). A gem5 process restores the post-boot checkpoint on the region-of-interest CPU
model and caches, runs percpu.calibrate.guest_script's shell script as the readfile
script, and its console log is fitted exactly as `percpu calibrate --from-samples` fits
one, at the board's clock (gem5's CPUs tick at plan.CLK_FREQ; the guest's own clock
figure is kept as a check). One gem5 run, no repeats: a simulation does not need
repeating until stable.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from percpu.atomic import make_temp_dir
from percpu.errors import UsageError
from percpu.gem5host.plan import (
    CLK_FREQ,
    CLK_MHZ,
    Gem5Options,
    Machine,
    guest_script,
)
from percpu.gem5host.run import GuestFailure, ensure_checkpoint, keep_failed, run_script
from percpu.run_request import check_gem5_options, check_machine_flags

# The caches the guest script describes (and sizes its pointer chases by): system.py's
# cache_hierarchy, the same sizes under classic and ruby; the 1 MiB L2 is the last level.
GUEST_CACHES = ("classic", "ruby")
GUEST_CACHE_KIB = {"l1d_kib": 32, "l2_kib": 1024, "llc_kib": 1024}
# The DRAM chase: 4x the last level, 16x the 64-entry TLB's reach: past both, and 1,024
# first-touch faults instead of the 16,384 of a real machine's 64 MiB.
DRAM_CHASE_KIB = 4096


def guest_cpu(opts: Gem5Options) -> tuple[str, str]:
    """The simulated CPU and the simulator, as the profile names them."""
    from percpu.gem5host.probe_run import probe

    version = probe(opts.gem5).get("gem5_version", "?")
    return (f"gem5 {version} X86 {opts.cpu_type} CPU at {CLK_FREQ}, {opts.caches} caches",
            f"gem5 {version}")


def calibrate_gem5(*, opts: Gem5Options, machine: Machine, out: Path, scale: int, samples: int,
                   quiet: bool, command: str, baseline: Path | None = None) -> int:
    from percpu.calibrate.calibrate import run_calibration
    from percpu.calibrate.guest_script import render
    from percpu.calibrate.kernel_roots import baseline_console
    from percpu.calibrate.profile import write_profile
    from percpu.paths import check_writable_dir

    check_gem5_options(opts)
    check_machine_flags(machine.cpus, None, "gem5")
    if opts.caches not in GUEST_CACHES:
        raise UsageError(f"--caches {opts.caches}: the calibration measures cache latencies; "
                         f"choose {' or '.join(GUEST_CACHES)}")
    if baseline is not None:
        if opts.kernel_kind != "percpu":
            raise UsageError("--baseline needs --kernel percpu: only a kernel with per-CPU "
                             "roots has a lazy fault to measure against it")
        baseline_console(baseline)  # refused now, not after minutes of gem5
    if scale < 1 or samples < 1:
        raise UsageError("--scale and --samples must be at least 1")
    target = out.resolve()
    if target.is_dir():
        raise UsageError(f"--out {out} is a directory: give a file name, e.g. {out}/gem5.toml")
    check_writable_dir(target.parent, "--out")
    cpu, simulator = guest_cpu(opts)
    # The percpu kernel: its checker off, its timing as asked (--kernel-time).
    script = guest_script(render(cpus=machine.cpus, **GUEST_CACHE_KIB, scale=scale,
                                 samples=samples, cpu=cpu, dram_kib=DRAM_CHASE_KIB,
                                 simulator=simulator), opts, check=False)
    try:
        checkpoint, _boot = ensure_checkpoint(opts, machine, quiet)
    except GuestFailure as exc:
        sys.stderr.write(f"percpu: error: {exc}\n")
        return 1
    work = make_temp_dir(target.parent, f".{target.name}.")
    console = target.with_suffix(".console.log")
    try:
        if not quiet:
            sys.stderr.write(f"calibrating in the gem5 guest ({opts.cpu_type}, {opts.caches} "
                             f"caches, {machine.cpus} CPUs): one gem5 run of minutes ...\n")
        result, text = run_script(opts, machine, checkpoint, script, work, "calibrate", quiet)
        failed = [ln.split()[-1] for ln in text.splitlines() if ln.startswith("calib-info failed")]
        if failed or "script exited with status 0" not in text:
            why = (f"benchmarks failed in the guest: {', '.join(failed)}" if failed
                   else "the guest's calibration script did not exit with status 0")
            raise GuestFailure(f"calibrate: {why}")
        shutil.copyfile(work / "console.log", console)
        cal = run_calibration(samples_file=console, clock_mhz=CLK_MHZ, command=command,
                              baseline=baseline,
                              progress=(lambda m: None) if quiet else
                              (lambda m: sys.stderr.write(m + "\n")))
        guest_mhz = cal.measurements.get("core_mhz")
        if guest_mhz is not None:
            cal.notes.append(f"converted at the board's clock ({CLK_MHZ:,} MHz); the "
                             f"guest's dependent-add chain read {guest_mhz.value:,.0f} MHz")
        cal.notes.append(f"one gem5 run took {result.host_seconds:.0f} s of host time; the "
                         f"console log is {console.name}")
        cal.seconds = result.host_seconds  # the run's, not the fit's
        path = write_profile(cal, target)
    except GuestFailure as exc:
        failed_dir = keep_failed(work, target.parent / f"{target.name}.failed")
        sys.stderr.write(f"percpu: error: {exc}; the run's files are in {failed_dir}\n")
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not quiet:
        from percpu.calibrate.cli import _summary

        print(_summary(cal))
        for note in cal.notes:
            sys.stderr.write(f"note: {note}\n")
        sys.stderr.write(f"gem5 calibration took {result.host_seconds:.0f} s; profile: {path}\n")
    return 0
