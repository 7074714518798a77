"""`percpu calibrate`: measure this machine's costs and write a TOML cost profile."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from percpu.errors import UsageError


def _summary(cal) -> str:
    m = cal.machine
    lines = [f"{m.cpu_model}, {m.cpus} CPUs, {m.kernel}, PTI {m.pti}, PCID "
             f"{'on' if m.pcid else 'off'}, "
             + (f"virtualised ({m.hypervisor}): faults, IPIs and wake-ups are the VM's"
                if m.virtualised else "bare metal"),
             f"core clock {cal.clock.core_mhz:,.0f} MHz (TSC {cal.clock.tsc_mhz:,.0f} MHz)", "",
             f"{'entry':28} {'value':>9}  how      IQR   default"]
    from percpu.params import specs

    spec = specs()
    for e in cal.entries:
        spread = f"{e.spread * 100:4.0f}%" if e.spread is not None else "    -"
        lines.append(f"{e.key:28} {e.value:9,.0f}  {e.how:7} {spread}  {spec[e.key].default:g}")
    return "\n".join(lines)


@click.command("calibrate")
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("percpu-profile.toml"), show_default=True,
              help="the TOML cost profile to write (read it back with --config)")
@click.option("--quick", is_flag=True,
              help="a quarter of the iterations and at most two runs per benchmark")
@click.option("--only", default=None, metavar="A,B",
              help="run only these benchmarks (and the clock), e.g. syscall,yield_thread")
@click.option("--clock-mhz", type=float, default=None,
              help="convert at this core clock instead of the measured one")
@click.option("--from-samples", "samples_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None,
              help="fit sample lines captured elsewhere (e.g. a gem5 guest's console log: "
                   "'calib NAME VALUE UNIT' and 'calib-info KEY VALUE') instead of measuring")
@click.option("--realtime", is_flag=True,
              help="run the programs as SCHED_FIFO 1 (needs root): a loaded machine then "
                   "preempts no sample; scheduler figures become the real-time class's")
def calibrate_command(out: Path, quick: bool, only: str | None, clock_mhz: float | None,
                      samples_file: Path | None, realtime: bool) -> None:
    """Measure this machine's costs with small C microbenchmarks and write a cost profile.

    Builds the programs of workloads/guest/calib/ with gcc in a temporary directory,
    repeats each until its median is stable, converts to cycles at the measured core
    clock and fits the engine's cost entries by running the same microbenchmarks as
    engine op programs. Entries user space cannot measure are left at their defaults
    and named in the profile. See docs/calibration.md.
    """
    from percpu.calibrate.calibrate import run_calibration
    from percpu.calibrate.profile import write_profile

    target = out.resolve()
    if target.is_dir():
        raise UsageError(f"--out {out} is a directory: give a file name, e.g. {out}/profile.toml")
    if not target.parent.is_dir():
        raise UsageError(f"--out {out}: directory {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: directory {target.parent} is not writable")
    from percpu.paths import check_writable_dir

    check_writable_dir(target.parent, "--out")  # access() says yes to root on /proc, /sys
    if clock_mhz is not None:
        from percpu.calibrate.clock import fixed_clock

        fixed_clock(clock_mhz)  # checks the range before anything runs
    names = [s.strip() for s in only.split(",") if s.strip()] if only is not None else None
    if names is not None and not names:
        raise UsageError("--only needs at least one benchmark, e.g. --only syscall")
    command = "percpu " + " ".join(["calibrate", *sys.argv[2:]]) \
        if len(sys.argv) > 1 and sys.argv[1] == "calibrate" else "percpu calibrate"
    if samples_file is not None and (quick or names or realtime):
        raise UsageError("--from-samples measures nothing: drop --quick, --only and --realtime")
    if realtime:
        from percpu.calibrate.calibrate import realtime_wrapper

        realtime_wrapper()  # checks chrt and the permission before anything runs
    cal = run_calibration(quick=quick, only=names, clock_mhz=clock_mhz, command=command,
                          progress=lambda msg: click.echo(msg, err=True),
                          samples_file=samples_file, realtime=realtime)
    path = write_profile(cal, target)
    click.echo(_summary(cal))
    for name, (measured, engine, what) in cal.checks.items():
        click.echo(f"check {name}: measured {measured:,.0f} cycles, engine {engine:,.0f} ({what})")
    if cal.fit is not None:
        for row in cal.fit.rows:
            if not row.fitted:
                click.echo(f"check {row.name}: measured {row.measured:,.0f} cycles, engine "
                           f"{row.after:,.0f} ({row.what})")
    for note in cal.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"calibration took {cal.seconds:.0f} s; profile: {path}", err=True)
