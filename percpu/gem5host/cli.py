"""`percpu gem5 run`: the gem5 host's command (also `gem5.opt configs/percpu.py`).

It takes the engine's flags with the engine's defaults (percpu/run_request.py, the one
run request of both hosts); those with no meaning in a real guest (5-level paging, cost
and geometry parameters other than the root model's) are refused in one line saying why.
The gem5-only flags choose the binary, the kernel, the CPU model of the region of
interest, the caches and where checkpoints live.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from percpu import __version__
from percpu.calibrate.guest_script import DEFAULT_SCALE as GUEST_SCALE
from percpu.run_request import GEM5_ENV, RunRequest, gem5_binary, gem5_flags, run_flags


@click.group("gem5")
def gem5_group() -> None:
    """The gem5 host: a real Linux guest in gem5 full-system mode (docs/gem5.md)."""


@gem5_group.command("run", context_settings={"help_option_names": ["-h", "--help"],
                                             "max_content_width": 110})
@run_flags
@click.version_option(__version__, prog_name="percpu")
@click.pass_context
def gem5_run_command(ctx: click.Context, **flags) -> None:
    """Run a workload in a gem5 full-system guest under each scheme (gem5 host).

    This is what `gem5.opt configs/percpu.py [flags]` runs; `python configs/percpu.py`
    and `percpu run` are the embedded engine, with the same flags and defaults. Boots the
    guest once on atomic CPUs and keeps a checkpoint keyed by kernel, CPUs, memory, PCID
    and PTI; each scheme then restores it in its own gem5 process. Writes OUTDIR/<scheme>/
    (gem5's stats.txt, config.ini, config.json, console.log, percpu.json, summary.txt) and
    OUTDIR/report/.
    """
    from percpu.gem5host.orchestrate import run_gem5

    run = RunRequest.from_click(ctx, flags).validate("gem5")
    sys.exit(run_gem5(run, argv=sys.argv))


@gem5_group.command("check")
@click.option("--gem5", "gem5_path", type=click.Path(dir_okay=False), default=None,
              help=f"the gem5 binary to check [default: ${GEM5_ENV}]")
def gem5_check_command(gem5_path: str | None) -> None:
    """Say in one line whether a gem5 binary has percpu's patches and plugin."""
    from percpu.gem5host.probe_run import lacks_plugin, probe

    gem5 = gem5_binary(gem5_path)
    result = probe(gem5)
    missing = [name for name, ok in result["objects"].items() if not ok]
    where = f"{gem5} (gem5 {result['gem5_version']})"
    if not result["x86"]:
        click.echo(f"{where}: not an X86 build: build build/X86/gem5.opt (docs/gem5.md)")
        sys.exit(1)
    if missing:
        click.echo(lacks_plugin(where, missing))
        sys.exit(1)
    click.echo(f"{where}: has percpu's patches and plugin ({', '.join(result['objects'])})")


@gem5_group.command("calibrate", context_settings={"help_option_names": ["-h", "--help"],
                                                   "max_content_width": 110})
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("gem5-profile.toml"), show_default=True,
              help="the TOML cost profile of the simulated machine (read it with --config); "
                   "the guest's console log is kept beside it as <name>.console.log")
@click.option("--cpus", type=int, default=2, show_default=True, help="simulated CPUs")
@click.option("--no-pcid", is_flag=True, help="CPUID without PCID and INVPCID")
@click.option("--pti", is_flag=True, help="boot the guest with pti=on (default nopti)")
@click.option("--scale", type=int, default=GUEST_SCALE, show_default=True,
              help="divide every benchmark's iterations (beyond --quick's four) by this: at 2 "
                   "the run takes about 70 s of host time; at 20, about as long, but a "
                   "process switch then still pays its first COW faults")
@click.option("--samples", type=int, default=3, show_default=True,
              help="samples per benchmark (a simulation repeats exactly: few are needed)")
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="PROFILE.toml",
              help="with --kernel percpu: a profile of the same machine on the stock kernel "
                   "(its console log beside it). The profile written is the stock machine's "
                   "costs with cost.lazy_fault (lazy_touch less the stock kernel's) and "
                   "cost.root_alloc measured on this kernel: what the engine adds roots to")
@click.option("--quiet", "-q", is_flag=True, help="print only errors")
@gem5_flags
def gem5_calibrate_command(out, cpus, no_pcid, pti, scale, samples, baseline, quiet, gem5_path,
                           kernel, kernel_time, kernel_kmap, kernel_roots, cpu_type, caches,
                           mem_mib, checkpoint_dir, timeout_s, max_sim_s) -> None:
    """Run `percpu calibrate`'s microbenchmarks in the gem5 guest and write a cost profile
    of the simulated machine, so engine and gem5 runs of one point can use the same
    costs (docs/gem5.md, "Costs of the simulated machine").

    Restores the post-boot checkpoint (booting once if there is none) on --cpu-type with
    --caches, runs the guest's calibration script and fits its samples at the board's
    clock, as `percpu calibrate --from-samples` does.
    """
    from percpu.gem5host.calibrate import calibrate_gem5
    from percpu.gem5host.plan import Machine

    opts = RunRequest(gem5_path=gem5_path, kernel=kernel, kernel_time=kernel_time,
                      kernel_kmap=kernel_kmap, kernel_roots=kernel_roots,
                      cpu_type=cpu_type, caches=caches, mem_mib=mem_mib,
                      checkpoint_dir=checkpoint_dir, timeout_s=timeout_s,
                      max_sim_s=max_sim_s).gem5_options()
    command = "percpu gem5 " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else \
        "percpu gem5 calibrate"
    sys.exit(calibrate_gem5(opts=opts, machine=Machine(cpus=cpus, pcid=not no_pcid, pti=pti),
                            out=out, scale=scale, samples=samples, quiet=quiet,
                            command=command, baseline=baseline))
