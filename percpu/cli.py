"""The percpu command line: `percpu run` (the main job, also `python configs/percpu.py`),
bench, params, schemes, workloads, report."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from percpu import __version__
from percpu.errors import UsageError

DEFAULT_SCHEMES = "shared,percpu"
DEFAULT_WORKLOAD = "ctxmix"


def _fail(message: str) -> None:
    raise UsageError(message)


def _parse_params(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            _fail(f"--param takes key=value, got '{item}' (e.g. --param procs_per_cpu=8)")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _schemes(text: str) -> list[str]:
    from percpu.params import core

    known = [name for name, _ in core().scheme_names()]
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        _fail("--scheme needs at least one scheme, e.g. --scheme shared,percpu")
    for name in names:
        if name not in known:
            _fail(f"unknown scheme '{name}': choose from {', '.join(known)}")
    if len(set(names)) != len(names):
        _fail(f"--scheme lists a scheme twice: {text}")
    return names


def machine_overrides(cpus, no_pcid, pti, paging, seed, sets, config_file) -> dict[str, float]:
    from percpu.params import load_toml, parse_set_options, specs

    values: dict[str, float] = {}
    if config_file:
        values.update(load_toml(Path(config_file)))
    values.update(parse_set_options(list(sets)))
    if cpus is not None:
        spec = specs()["machine.cpus"]  # the range lives once, in core/config/params.cc
        if not spec.min <= cpus <= spec.max:
            _fail(f"--cpus {cpus} is out of range: use {spec.min:g}..{spec.max:g}")
        values["machine.cpus"] = cpus
    if no_pcid:
        values["machine.pcid"] = 0
    if pti:
        values["machine.pti"] = 1
    if paging is not None:
        values["machine.paging_levels"] = paging
    if seed is not None:
        if seed < 0:
            _fail("--seed must be a non-negative integer")
        values["machine.seed"] = seed
    return values


def comparison_table(results: list, baseline: str | None) -> str:
    """Rows of figures, one column per scheme, overhead against the baseline scheme."""
    import pandas as pd

    from percpu.params import core
    from percpu.runner import busy_cycles, cpu_sum

    base = next((r for r in results if r.scheme == baseline), None)
    rows: dict[str, dict[str, str]] = {}
    cats = [c for c in core().CYCLE_CATEGORIES if c != "idle"]
    for r in results:
        s = r.stats
        col: dict[str, str] = {}
        busy = busy_cycles(s)
        col["busy cycles"] = f"{busy:,.0f}"
        if base is not None:
            b = busy_cycles(base.stats)
            col[f"overhead vs {baseline}"] = f"{(busy - b) / b * 100:+.2f}%" if b else "n/a"
        col["simulated time (ms)"] = f"{s['simSeconds'] * 1e3:.3f}"
        for cat in cats:
            value = cpu_sum(s, f"cycles::{cat}")
            if value or any(cpu_sum(o.stats, f"cycles::{cat}") for o in results):
                col[f"  cycles: {cat}"] = f"{value:,.0f} ({value / busy * 100:.1f}%)" if busy else "0"
        col["mm switches"] = f"{cpu_sum(s, 'mmSwitches'):,.0f}"
        for cause in (*core().ROOT_ALLOC_CAUSES, "total"):
            col[f"root allocs: {cause}"] = f"{cpu_sum(s, f'percpu.rootAllocs::{cause}'):,.0f}"
        col["lazy faults"] = f"{cpu_sum(s, 'percpu.lazyFaults'):,.0f}"
        bound = core().LAZY_FAULT_BOUND
        col[f"max lazy faults / root (bound {bound})"] = (
            f"{s['system.percpu.maxLazyFaultsPerRoot']:.0f}")
        col["root pool peak / bound (KiB)"] = (
            f"{s['system.percpu.rootPoolPeakBytes'] / 1024:,.0f} / "
            f"{s['system.percpu.rootPoolBoundBytes'] / 1024:,.0f}")
        col["root copy bytes"] = f"{cpu_sum(s, 'percpu.rootCopyBytes'):,.0f}"
        dtb_acc = cpu_sum(s, "mmu.dtb.rdAccesses") + cpu_sum(s, "mmu.dtb.wrAccesses")
        dtb_miss = cpu_sum(s, "mmu.dtb.rdMisses") + cpu_sum(s, "mmu.dtb.wrMisses")
        col["DTLB miss rate"] = f"{dtb_miss / dtb_acc * 100:.2f}%" if dtb_acc else "n/a"
        col["page walks"] = f"{cpu_sum(s, 'mmu.walker.walks'):,.0f}"
        col["walk cycles"] = f"{cpu_sum(s, 'mmu.walker.walkCycles'):,.0f}"
        col["walk reads missing L1D"] = f"{cpu_sum(s, 'mmu.walker.l1dMisses'):,.0f}"
        col["L1D misses"] = f"{cpu_sum(s, 'l1d.misses'):,.0f}"
        col["LLC misses"] = f"{s['system.llc.misses']:,.0f}"
        col["flush IPIs sent"] = f"{cpu_sum(s, 'ipi.sent'):,.0f}"
        col["checker violations"] = f"{r.violation_count}"
        rows[r.scheme] = col
    frame = pd.DataFrame(rows).fillna("")
    return frame.to_string()


@click.group(invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="percpu")
@click.pass_context
def main_group(ctx: click.Context) -> None:
    """percpu: what would per-(cpu, ASID) page-table roots cost on x86-64, and what would they buy?

    Without a command, runs the main job (`percpu run` with its defaults).
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(run_command)


RUN_OPTIONS = [
    click.option("--workload", "-w", default=DEFAULT_WORKLOAD, show_default=True,
                 help="workload to run (percpu workloads list), or trace:FILE to replay a trace"),
    click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
                 help="workload parameter (repeatable), e.g. procs_per_cpu=8"),
    click.option("--scheme", "-s", "scheme_text", default=DEFAULT_SCHEMES, show_default=True,
                 help="comma-separated root schemes (percpu schemes)"),
    click.option("--cpus", type=int, default=None, help="number of CPUs  [default: 4]"),
    click.option("--no-pcid", is_flag=True, help="a CPU without PCID: every mm switch flushes"),
    click.option("--pti", is_flag=True, help="page-table isolation (user/kernel pgd pair)"),
    click.option("--paging", type=click.Choice(["4", "5"]), default=None,
                 help="paging levels  [default: 4]"),
    click.option("--seed", type=int, default=None, help="random seed  [default: 1]"),
    click.option("--outdir", "-o", type=click.Path(file_okay=False), default="m5out",
                 show_default=True, help="output directory: one subdirectory per scheme"),
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                 help="override any cost or geometry parameter (percpu params), repeatable"),
    click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                 help="TOML file of parameter overrides ([cost] invlpg = 300)"),
    click.option("--check", is_flag=True,
                 help="check every translation against the canonical page table, and the bounds"),
    click.option("--quiet", "-q", is_flag=True, help="print only errors and violations"),
    click.option("--no-report", is_flag=True, help="skip writing report.md/report.html"),
]


def run_options(func):
    for option in reversed(RUN_OPTIONS):
        func = option(func)
    return func


@main_group.command("run", context_settings={"help_option_names": ["-h", "--help"],
                                             "max_content_width": 110})
@run_options
def run_command(workload="ctxmix", params=(), scheme_text=DEFAULT_SCHEMES, cpus=None,
                no_pcid=False, pti=False, paging=None, seed=None, outdir="m5out", sets=(),
                config_file=None, check=False, quiet=False, no_report=False) -> None:
    """Run a workload under each scheme on the embedded engine and compare them.

    This is the embedded engine (also `python configs/percpu.py`). The gem5 host,
    a real Linux guest in gem5, is `gem5.opt configs/percpu.py` or `percpu gem5 run`.

    Writes OUTDIR/<scheme>/{stats.txt,config.json,summary.txt,program.ops}, prints a
    comparison table and writes OUTDIR/report/report.md and report.html.
    """
    from percpu.runner import run_engine, write_point
    from percpu.workloads import find_workload

    wl = find_workload(workload)
    wl_params = wl.resolve(_parse_params(params))
    schemes = _schemes(scheme_text)
    overrides = machine_overrides(cpus, no_pcid, pti, int(paging) if paging else None, seed, sets,
                                  config_file)
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        _fail(f"--outdir {outdir} exists and is not a directory: choose another path")
    _check_writable(out)
    command = [Path(sys.argv[0]).name, *sys.argv[1:]]
    # Run every scheme before writing anything: a workload error in the last run (or
    # an interrupt) leaves no half-finished set of directories behind.
    runs = []
    for i, scheme in enumerate(schemes, 1):
        if not quiet:
            click.echo(f"[{i}/{len(schemes)}] {wl.name} under {scheme} ...", err=True, nl=False)
        result, text, values = run_engine(wl, wl_params, scheme, overrides, check=check)
        runs.append((result, text))
        if not quiet:
            click.echo(f" {result.host_seconds:.2f} s, {result.memory_references:,} refs",
                       err=True)
    results = []
    for result, text in runs:
        write_point(result, out / result.scheme, workload=wl, wl_params=wl_params,
                    values=values, program_text=text, check=check, command=command)
        results.append(result)
    if not quiet:
        click.echo(f"wrote {', '.join(str(out / r.scheme) for r in results)}", err=True)
    baseline = "shared" if "shared" in schemes else schemes[0]
    if not quiet:
        click.echo(f"\nworkload {wl.name} "
                   f"({', '.join(f'{k}={v}' for k, v in wl_params.items())}) on "
                   f"{int(values['machine.cpus'])} CPUs, PCID "
                   f"{'on' if values['machine.pcid'] else 'off'}, PTI "
                   f"{'on' if values['machine.pti'] else 'off'}\n")
        click.echo(comparison_table(results, baseline))
    if not no_report:
        _write_report([r.outdir for r in results], baseline, out, quiet)
    violations = [(r, v) for r in results for v in r.violations]
    if any(r.violation_count for r in results):
        for r, (what, cpu, task, op, va) in violations:
            click.echo(f"violation [{r.scheme}] cpu {cpu} task {task} op {op} va {va:#x}: {what}",
                       err=True)
        total = sum(r.violation_count for r in results)
        click.echo(f"percpu: the checker found {total} violation(s)", err=True)
        sys.exit(1)


def _check_writable(out: Path) -> None:
    """Fail before any simulation if the output directory could not be written
    (without creating anything: an interrupted or failed run leaves no trace)."""
    import os

    probe = out.resolve()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        _fail(f"cannot write to output directory {out}: {probe} is not a directory; "
              "choose another with --outdir")
    if not os.access(probe, os.W_OK | os.X_OK):
        _fail(f"cannot write to output directory {out}: {probe} is not writable; "
              "choose another with --outdir")


def _write_report(dirs: list[Path], baseline: str, out: Path, quiet: bool) -> None:
    try:
        from percpu.analysis.report import write_report
    except ImportError as exc:  # the analysis package is optional at this stage
        click.echo(f"percpu: report skipped ({exc})", err=True)
        return
    written = write_report(dirs, baseline=baseline, out=out / "report", formats=("md", "html"))
    if not quiet:
        for path in written:
            click.echo(f"report: {path}", err=True)


@main_group.command("params")
@click.option("--markdown", is_flag=True, help="print docs/parameters.md")
def params_command(markdown: bool) -> None:
    """List every model parameter, its default and where the default comes from."""
    from percpu.params import markdown_table, specs

    if markdown:
        click.echo(markdown_table(), nl=False)
        return
    for s in specs().values():
        click.echo(f"{s.key:32} {s.default:>10g} {s.unit:8} {s.help}  [{s.source}]")


@main_group.command("schemes")
def schemes_command() -> None:
    """List the root schemes compiled into the engine."""
    from percpu.params import core

    for name, summary in core().scheme_names():
        click.echo(f"{name:14} {summary}")


@main_group.group("workloads")
def workloads_group() -> None:
    """List, show and render workload definitions."""


@workloads_group.command("list")
def workloads_list() -> None:
    """One line per workload."""
    from percpu.workloads import list_workloads

    for wl in list_workloads().values():
        click.echo(f"{wl.name:16} {wl.summary}")


@workloads_group.command("show")
@click.argument("name")
def workloads_show(name: str) -> None:
    """A workload's description and parameters."""
    from percpu.workloads import find_workload

    wl = find_workload(name)
    click.echo(f"{wl.name}: {wl.summary}")
    if wl.exercises:
        click.echo(f"exercises: {wl.exercises}")
    if wl.main_param:
        click.echo(f"main parameter: {wl.main_param}")
    click.echo("parameters:")
    for p in wl.params.values():
        rng = f" [{p.min:g}..{p.max:g}]" if p.min is not None and p.max is not None else ""
        click.echo(f"  {p.name:16} {p.type:5} default {p.default!s:8}{rng}  {p.help}")


@workloads_group.command("render")
@click.argument("name")
@click.option("--target", type=click.Choice(["engine", "gem5"]), default="engine",
              show_default=True)
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE")
@click.option("--cpus", type=int, default=4, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
def workloads_render(name: str, target: str, params: tuple[str, ...], cpus: int, seed: int) -> None:
    """Render a workload for the engine (op program) or for gem5 (guest script)."""
    from percpu.workloads import find_workload
    from percpu.workloads.program import parse_program

    wl = find_workload(name)
    values = wl.resolve(_parse_params(params))
    text = wl.render(target, values, cpus=cpus, seed=seed)
    if target == "engine":
        parse_program(text, cpus, source=f"{name}/engine.ops.j2 (rendered)")  # validate
    click.echo(text, nl=False)


def _register_optional() -> None:
    try:
        from percpu.analysis.cli import report_command
    except ImportError:
        return
    main_group.add_command(report_command, "report")
    from percpu.trace.cli import trace_group

    main_group.add_command(trace_group, "trace")
    from percpu.guest.cli import guest_group

    main_group.add_command(guest_group, "guest")
    from percpu.gem5host.cli import gem5_group

    main_group.add_command(gem5_group, "gem5")
    from percpu.sweep.cli import sweep_group

    main_group.add_command(sweep_group, "sweep")
    from percpu.calibrate.cli import calibrate_command

    main_group.add_command(calibrate_command, "calibrate")
    from percpu.analysis.sensitivity_cli import sensitivity_command

    main_group.add_command(sensitivity_command, "sensitivity")
    try:
        from percpu.bench import bench_command
    except ImportError:
        return
    main_group.add_command(bench_command, "bench")


_register_optional()


def main(argv: list[str] | None = None, prog_name: str = "percpu",
         command: click.Command | None = None) -> None:
    """Entry point: one line and exit code 2 for bad input, whatever layer finds it."""
    command = command or main_group
    try:
        # Without standalone mode click returns a command's ctx.exit(code) instead of exiting.
        code = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click.UsageError as exc:
        hint = f" (see {exc.ctx.command_path} --help)" if exc.ctx else ""
        click.echo(f"{prog_name}: error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except UsageError as exc:
        click.echo(f"{prog_name}: error: {exc}", err=True)
        sys.exit(2)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo(f"{prog_name}: interrupted; nothing of the unfinished runs was written",
                   err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


def run_main(argv: list[str]) -> None:
    """configs/percpu.py under plain Python: `percpu run` with the same flags."""
    main(argv, prog_name="configs/percpu.py", command=run_command)
