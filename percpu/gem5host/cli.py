"""`percpu gem5 run`: the gem5 host's command (also `gem5.opt configs/percpu.py`).

The engine's flags that mean something in a real guest are accepted; those that do
not (5-level paging, cost and geometry parameters other than the three the root model
charges) are refused with the reason. The gem5-only flags choose the binary, the kernel, the CPU
model of the region of interest, the caches and where checkpoints live.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from percpu.calibrate.guest_script import DEFAULT_SCALE as GUEST_SCALE
from percpu.errors import UsageError

GEM5_ENV = "PERCPU_GEM5"
# The engine's run flags with no meaning under gem5, and why (said when they are used).
REFUSED = {
    "paging": "the guest kernel is built with 4-level paging (X86_5LEVEL off)",
}
# The root schemes gem5 runs: core/root/'s, compiled into the plugin (src_patches/
# percpu_gem5/SConscript compiles every core/root/impl/*.cc).
GEM5_SCHEMES = ("shared", "percpu", "percpu-eager")


def root_costs(sets: tuple[str, ...], config_file: str | None) -> dict[str, float]:
    """The cost-table entries the gem5 root model charges, with --config and --set applied.
    Every other parameter is the engine's: gem5 models that hardware itself."""
    from percpu.gem5host.plan import ROOT_MODEL_COSTS, default_root_costs
    from percpu.params import load_toml, parse_set_options

    overrides = {}
    if config_file:
        overrides.update(load_toml(Path(config_file)))
    overrides.update(parse_set_options(list(sets)))
    for key in overrides:
        if key not in ROOT_MODEL_COSTS:
            raise UsageError(f"--set {key} has no meaning on the gem5 host: gem5 models that "
                             "hardware itself; only " + ", ".join(ROOT_MODEL_COSTS) +
                             " (what the root model charges) can be set")
    return {**default_root_costs(), **overrides}


def gem5_options(func):
    opts = [
        click.option("--gem5", "gem5_path", type=click.Path(dir_okay=False), default=None,
                     help=f"gem5.opt built with src_patches/ [default: ${GEM5_ENV}]"),
        click.option("--kernel", type=click.Path(dir_okay=False), default=None,
                     help="guest vmlinux, or 'stock' / 'percpu' for the build of "
                     "'percpu guest build [--kernel percpu]' (the percpu kernel makes its own "
                     "per-(cpu, asid) roots: docs/kernel.md) [default: stock]"),
        click.option("--cpu-type", type=click.Choice(["timing", "o3", "minor"]),
                     default="timing", show_default=True,
                     help="CPU model of the region of interest (the boot runs on atomic CPUs; "
                          "minor is refused: gem5 v24's MinorCPU does not run x86)"),
        click.option("--caches", type=click.Choice(["classic", "ruby", "none"]),
                     default="classic", show_default=True,
                     help="classic: private 32 KiB L1s + 1 MiB L2 with walk caches; ruby: "
                          "MESI_Two_Level"),
        click.option("--mem", "mem_mib", type=int, default=512, show_default=True,
                     help="guest memory in MiB (128..3072)"),
        click.option("--checkpoint-dir", type=click.Path(file_okay=False), default=None,
                     help="where post-boot checkpoints are kept and reused "
                          "[default: ~/.cache/percpu/checkpoints]"),
        click.option("--timeout", "timeout_s", type=float, default=4 * 3600.0,
                     show_default=True, help="host seconds a gem5 process may run"),
        click.option("--max-sim-seconds", "max_sim_s", type=float, default=20.0,
                     show_default=True,
                     help="simulated seconds a phase may take before it counts as hung"),
    ]
    for option in reversed(opts):
        func = option(func)
    return func


def _refuse(ctx: click.Context, param: click.Parameter, value):
    if value:
        raise UsageError(f"{param.opts[0]} has no meaning on the gem5 host: {REFUSED[param.name]}"
                         " (it is an engine flag: percpu run)")
    return value


def common_options(func):
    """The engine's flags, with the gem5 host's defaults and help."""
    opts = [
        click.option("--workload", "-w", default="ctxmix", show_default=True,
                     help="workload to run (percpu workloads list)"),
        click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
                     help="workload parameter (repeatable), e.g. procs_per_cpu=8"),
        click.option("--scheme", "-s", "scheme_text", default="shared", show_default=True,
                     help=f"comma-separated schemes, one gem5 process each ({', '.join(GEM5_SCHEMES)})"),
        click.option("--cpus", type=int, default=2, show_default=True,
                     help="simulated CPUs (1..16; a boot takes minutes per CPU)"),
        click.option("--no-pcid", is_flag=True,
                     help="CPUID without PCID and INVPCID: every mm switch flushes"),
        click.option("--pti", is_flag=True, help="boot the guest with pti=on (default nopti)"),
        click.option("--seed", type=int, default=None, help="seed passed to the workload  [default: 1]"),
        click.option("--outdir", "-o", type=click.Path(file_okay=False), default="m5out",
                     show_default=True, help="output directory: one subdirectory per scheme"),
        click.option("--quiet", "-q", is_flag=True, help="print only errors"),
        click.option("--no-report", is_flag=True, help="skip writing report.md/report.html"),
        click.option("--paging", type=str, default=None, expose_value=False, callback=_refuse,
                     help="refused: " + REFUSED["paging"]),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="a cost the root model charges: cost.root_alloc, cost.lazy_fault "
                          "(percpu params; gem5 simulates the copy's memory traffic)"),
        click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                     help="TOML file of those costs"),
        click.option("--check", is_flag=True,
                     help="compare every root walk and every flush with the guest's pgd; "
                          "exit 1 on a violation"),
    ]
    for option in reversed(opts):
        func = option(func)
    return func


@click.group("gem5")
def gem5_group() -> None:
    """The gem5 host: a real Linux guest in gem5 full-system mode (docs/gem5.md)."""


@gem5_group.command("run", context_settings={"help_option_names": ["-h", "--help"],
                                             "max_content_width": 110})
@common_options
@gem5_options
def gem5_run_command(workload, params, scheme_text, cpus, no_pcid, pti, seed, outdir, quiet,
                     no_report, sets, config_file, check, gem5_path, kernel, cpu_type, caches,
                     mem_mib, checkpoint_dir, timeout_s, max_sim_s) -> None:
    """Run a workload in a gem5 full-system guest under each scheme (gem5 host).

    This is what `gem5.opt configs/percpu.py [flags]` runs; `python configs/percpu.py`
    and `percpu run` are the embedded engine. Boots the guest once on atomic CPUs and
    keeps a checkpoint keyed by kernel, CPUs, memory, PCID and PTI; each scheme then
    restores it in its own gem5 process. Writes OUTDIR/<scheme>/ (gem5's stats.txt,
    config.ini, config.json, console.log, percpu.json, summary.txt) and
    OUTDIR/report/.
    """
    from percpu.gem5host.orchestrate import run_gem5

    costs = root_costs(sets, config_file)
    gem5 = gem5_path or os.environ.get(GEM5_ENV)
    if not gem5:
        raise UsageError(f"no gem5 binary: pass --gem5 PATH/build/X86/gem5.opt or set {GEM5_ENV} "
                         "(docs/gem5.md)")
    code = run_gem5(workload=workload, params=params, scheme_text=scheme_text, cpus=cpus,
                    no_pcid=no_pcid, pti=pti, seed=seed, outdir=Path(outdir), quiet=quiet,
                    costs=costs, check=check,
                    no_report=no_report, gem5=Path(gem5), kernel=kernel, cpu_type=cpu_type,
                    caches=caches, mem_mib=mem_mib, checkpoint_dir=checkpoint_dir,
                    timeout_s=timeout_s, max_sim_s=max_sim_s, argv=sys.argv)
    sys.exit(code)


@gem5_group.command("check")
@click.option("--gem5", "gem5_path", type=click.Path(dir_okay=False), default=None,
              help=f"the gem5 binary to check [default: ${GEM5_ENV}]")
def gem5_check_command(gem5_path: str | None) -> None:
    """Say in one line whether a gem5 binary has percpu's patches and plugin."""
    from percpu.gem5host.probe_run import probe

    gem5 = gem5_path or os.environ.get(GEM5_ENV)
    if not gem5:
        raise UsageError(f"no gem5 binary: pass --gem5 PATH/build/X86/gem5.opt or set {GEM5_ENV}")
    result = probe(Path(gem5))
    missing = [name for name, ok in result["objects"].items() if not ok]
    where = f"{gem5} (gem5 {result['gem5_version']})"
    if not result["x86"]:
        click.echo(f"{where}: not an X86 build: build build/X86/gem5.opt (docs/gem5.md)")
        sys.exit(1)
    if missing:
        click.echo(f"{where}: lacks percpu's plugin ({', '.join(missing)}): apply src_patches/ "
                   "and build with EXTRAS=.../src_patches/percpu_gem5 (docs/gem5.md)")
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
@click.option("--quiet", "-q", is_flag=True, help="print only errors")
@gem5_options
def gem5_calibrate_command(out, cpus, no_pcid, pti, scale, samples, quiet, gem5_path, kernel,
                           cpu_type, caches, mem_mib, checkpoint_dir, timeout_s,
                           max_sim_s) -> None:
    """Run `percpu calibrate`'s microbenchmarks in the gem5 guest and write a cost profile
    of the simulated machine, so engine and gem5 runs of one point can use the same
    costs (docs/gem5.md, "Costs of the simulated machine").

    Restores the post-boot checkpoint (booting once if there is none) on --cpu-type with
    --caches, runs the guest's calibration script and fits its samples at the board's
    clock, as `percpu calibrate --from-samples` does.
    """
    from percpu.gem5host.calibrate import calibrate_gem5
    from percpu.gem5host.orchestrate import _kernel
    from percpu.gem5host.plan import Gem5Options, Machine

    gem5 = gem5_path or os.environ.get(GEM5_ENV)
    if not gem5:
        raise UsageError(f"no gem5 binary: pass --gem5 PATH/build/X86/gem5.opt or set {GEM5_ENV} "
                         "(docs/gem5.md)")
    opts = Gem5Options(gem5=Path(gem5), kernel=_kernel(kernel), cpu_type=cpu_type,
                       caches=caches, mem_mib=mem_mib, timeout_s=timeout_s,
                       max_sim_s=max_sim_s)
    if checkpoint_dir:
        opts.checkpoint_dir = Path(checkpoint_dir)
    command = "percpu gem5 " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else \
        "percpu gem5 calibrate"
    sys.exit(calibrate_gem5(opts=opts, machine=Machine(cpus=cpus, pcid=not no_pcid, pti=pti),
                            out=out, scale=scale, samples=samples, quiet=quiet,
                            command=command))
