"""The percpu command line: `percpu run` (the main job, also `python configs/percpu.py`),
bench, params, schemes, workloads, report.

Over 500 lines on purpose: it is the command line's one front door (the lazy command
table, `run` and its output checks, the small commands, and main's exit-code policy),
read top to bottom as the surface a user sees. Command groups with their own concept
live in their packages (trace/cli.py, sweep/cli.py, gem5host/cli.py, guest/cli.py ...)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

import click

from percpu import __version__
from percpu.errors import UsageError
from percpu.run_request import RunRequest, parse_params, run_flags, write_run_report


def comparison_table(results: list, baseline: str | None) -> str:
    """Rows of figures, one column per scheme, overhead against the baseline scheme.

    The overhead is of simulated time (simTicks, the run's makespan), the metric `percpu
    report` and gem5 runs give (docs/analysis.md); the busy-cycle overhead (CPU time summed
    over CPUs, idle excluded) follows it, since it tells apart work from waiting."""
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
        col["simulated time (ms)"] = f"{s['simSeconds'] * 1e3:.3f}"
        if base is not None:
            t = base.stats["simTicks"]
            col[f"overhead vs {baseline} (simulated time)"] = (
                f"{(s['simTicks'] - t) / t * 100:+.2f}%" if t else "n/a")
        col["busy cycles (all CPUs)"] = f"{busy:,.0f}"
        if base is not None:
            b = busy_cycles(base.stats)
            col[f"  busy-cycle overhead vs {baseline}"] = (
                f"{(busy - b) / b * 100:+.2f}%" if b else "n/a")
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


class _LazyGroup(click.Group):
    """The top-level group: the subcommands that live in their own packages are imported
    when used, so a missing dependency fails that subcommand with one line naming it,
    and every other command (and `percpu --help`) still works."""

    LAZY: ClassVar[dict[str, tuple[str, str]]] = {
        "report": ("percpu.analysis.cli", "report_command"),
        "trace": ("percpu.trace.cli", "trace_group"),
        "guest": ("percpu.guest.cli", "guest_group"),
        "gem5": ("percpu.gem5host.cli", "gem5_group"),
        "sweep": ("percpu.sweep.cli", "sweep_group"),
        "calibrate": ("percpu.calibrate.cli", "calibrate_command"),
        "sensitivity": ("percpu.analysis.sensitivity_cli", "sensitivity_command"),
        "bench": ("percpu.bench", "bench_command"),
        "compare": ("percpu.compare", "compare_command"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.LAZY})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands or name not in self.LAZY:
            return self.commands.get(name)
        import importlib

        module, attr = self.LAZY[name]
        try:
            command = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            return _unavailable(name, exc)
        self.add_command(command, name)
        return command


def _unavailable(name: str, exc: ImportError) -> click.Command:
    missing = exc.name or str(exc)

    def fail(**_kwargs) -> None:
        raise UsageError(f"percpu {name} needs the Python module '{missing}', which is not "
                         f"installed: pip install '{missing}' (or reinstall percpu: pip install .)")

    return click.Command(name, callback=fail, help=f"(unavailable: no module '{missing}')",
                         context_settings={"ignore_unknown_options": True,
                                           "allow_extra_args": True})


@click.group(cls=_LazyGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="percpu")
@click.pass_context
def main_group(ctx: click.Context) -> None:
    """percpu: what would per-(cpu, ASID) page-table roots cost on x86-64, and what would they buy?

    Without a command, runs the main job (`percpu run` with its defaults).
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(run_command)


@main_group.command("run", context_settings={"help_option_names": ["-h", "--help"],
                                             "max_content_width": 110})
@run_flags
@click.version_option(__version__, prog_name="percpu")
@click.pass_context
def run_command(ctx: click.Context, **flags) -> None:
    """Run a workload under each scheme on the embedded engine and compare them.

    This is the embedded engine, the C++ model run in this process: `percpu run` and
    `python configs/percpu.py` are the same command. The gem5 host, a real Linux guest
    in gem5, takes the same flags: `gem5.opt configs/percpu.py [flags]` hands over to
    `percpu gem5 run --gem5 <that gem5.opt>`, which starts one gem5 process per phase
    (docs/gem5.md).

    Writes OUTDIR/<scheme>/{stats.txt,config.json,summary.txt,program.ops}, prints a
    comparison table and writes OUTDIR/report/report.md and report.html. Exit codes:
    0 done, 1 checker violation, 2 bad input, 3 internal error, 130 interrupted.
    """
    from percpu.runner import prepare_program, run_engine, write_point

    run = RunRequest.from_click(ctx, flags).validate("engine")
    wl, wl_params, schemes, overrides, out = (run.workload, run.params, run.schemes,
                                              run.overrides, run.outdir)
    check, quiet = run.request.check, run.request.quiet
    # Render and parse once, before any scheme runs: a bad trace or template fails here.
    prepared = prepare_program(wl, wl_params, overrides)
    values = prepared[0]
    command = [Path(sys.argv[0]).name, *sys.argv[1:]]

    def write(result, text, note=None) -> None:
        write_point(result, out / result.scheme, workload=wl, wl_params=wl_params,
                    values=values, program_text=text, check=check, command=command, note=note)

    # Every scheme runs before anything is written: a workload error in the last run
    # leaves no half-finished set of directories behind. On Ctrl-C the finished runs are
    # kept (each complete, its note saying the set was interrupted).
    runs = []
    show = not quiet and sys.stderr.isatty()
    for i, scheme in enumerate(schemes, 1):
        label = f"[{i}/{len(schemes)}] {wl.name} under {scheme}"
        expected = runs[-1][0].memory_references if runs else None
        try:
            result, text, _ = run_engine(wl, wl_params, scheme, overrides, check=check,
                                         prepared=prepared,
                                         progress=_RunProgress(label, expected) if show else None)
        except KeyboardInterrupt:
            raise Interrupted(_keep_finished(runs, scheme, schemes, write, out)) from None
        runs.append((result, text))
        if not quiet:
            final = f"{label}: {result.host_seconds:.2f} s, {result.memory_references:,} refs"
            if show:
                progress_line(final, done=True)
            else:
                click.echo(final, err=True)
    results = []
    for result, text in runs:
        write(result, text)
        results.append(result)
    if not quiet:
        click.echo(f"wrote {', '.join(str(out / r.scheme) for r in results)}", err=True)
    baseline = run.baseline
    if not quiet:
        shown = ", ".join(f"{k}={v}" for k, v in wl_params.items())
        click.echo(f"\nworkload {wl.name}{f' ({shown})' if shown else ''} on "
                   f"{int(values['machine.cpus'])} CPUs, PCID "
                   f"{'on' if values['machine.pcid'] else 'off'}, PTI "
                   f"{'on' if values['machine.pti'] else 'off'}, seed "
                   f"{int(values['machine.seed'])}, noise "
                   f"{'on' if values.get('noise.enabled') else 'off'}\n")
        click.echo(comparison_table(results, baseline))
    no_report = run.request.no_report
    if not no_report:
        write_run_report([r.outdir for r in results], baseline, out, quiet)
    tidied = _leave_one_run(out, {r.scheme for r in results} | ({"report"} if not no_report
                                                                 else set()))
    if tidied and not quiet:
        click.echo(f"percpu: {tidied}", err=True)
    violations = [(r, v) for r in results for v in r.violations]
    if any(r.violation_count for r in results):
        for r, (what, cpu, task, op, va) in violations:
            click.echo(f"violation [{r.scheme}] cpu {cpu} task {task} op {op} va {va:#x}: {what}",
                       err=True)
        total = sum(r.violation_count for r in results)
        click.echo(f"percpu: the checker found {total} violation(s)", err=True)
        sys.exit(1)


class _RunProgress:
    """The progress line of one scheme's run on a terminal: simulated time, references, the
    rate and, when an earlier scheme of the same point ran (about as many references),
    the time left. Rewritten at most twice a second."""

    def __init__(self, label: str, expected_refs: int | None):
        import time

        self.label = label
        self.expected = expected_refs
        self.start = time.monotonic()
        self.last = 0.0

    def __call__(self, sim_seconds: float, refs: int) -> None:
        import time

        now = time.monotonic()
        if now - self.last < 0.5:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = refs / elapsed
        left = ""
        if self.expected and rate > 0 and refs < self.expected:
            left = f", about {(self.expected - refs) / rate:.0f} s left"
        progress_line(f"{self.label}: {sim_seconds * 1e3:,.1f} ms simulated, {refs / 1e6:,.1f} M "
                      f"refs, {rate / 1e6:.1f} M refs/s, {elapsed:.0f} s{left}")


def _keep_finished(runs: list, scheme: str, schemes: list[str], write, out: Path) -> str:
    """Ctrl-C during `scheme`: write the runs that finished; say what was kept."""
    pending = schemes[schemes.index(scheme):]
    note = (f"kept after Ctrl-C: this run is complete; the command's other schemes "
            f"({', '.join(pending)}) did not finish")
    kept = []
    for result, text in runs:
        write(result, text, note)
        kept.append(str(out / result.scheme))
    if not kept:
        return "no scheme had finished; nothing was written"
    tidied = _leave_one_run(out, {result.scheme for result, _ in runs})
    return (f"kept the finished run{'s' if len(kept) > 1 else ''} {', '.join(kept)} (complete); "
            f"not finished, nothing written: {', '.join(pending)}"
            + (f"; {tidied}" if tidied else ""))


def _leave_one_run(out: Path, written: set[str]) -> str:
    """After a run wrote the entries written of out: remove percpu's previous runs and
    report there, which describe another run (`percpu report OUT` would mix them in), and
    name what else is there. Returns what it did, for the message ("" if nothing)."""
    import os
    import shutil

    from percpu.runner import other_entries

    ours, others = other_entries(out, written)
    for path in ours:  # renamed aside first: a kill midway leaves only a hidden directory
        trash = path.with_name(f".{path.name}.stale.{os.getpid()}")
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
    said = []
    if ours:
        said.append(f"removed the previous run's {', '.join(str(p) for p in ours)}, which this "
                    "run replaces")
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        said.append(f"{out} also holds {shown}, not written by percpu run: left as they are "
                    "(move them away to keep the directory one run's)")
    return "; ".join(said)


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
    """One line per workload (a malformed definition: its error, and the others still run)."""
    from percpu.workloads.definition import broken_workloads, list_workloads

    for wl in list_workloads().values():
        click.echo(f"{wl.name:16} {wl.summary}")
    for name, error in broken_workloads().items():
        click.echo(f"{name:16} (unusable: {error})")


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
              show_default=True,
              help="engine: the op program (docs/op-program.md); gem5: the guest script")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="workload parameter (repeatable; percpu workloads show NAME)")
@click.option("--cpus", type=click.IntRange(1, 256), default=4, show_default=True,
              help="CPUs of the machine rendered for, 1..256")
@click.option("--seed", type=click.IntRange(0), default=1, show_default=True,
              help="random seed the rendering may use")
def workloads_render(name: str, target: str, params: tuple[str, ...], cpus: int, seed: int) -> None:
    """Render a workload for the engine (op program) or for gem5 (guest script)."""
    from percpu.workloads import find_workload
    from percpu.workloads.program import parse_program

    wl = find_workload(name)
    values = wl.resolve(parse_params(params))
    text = wl.render(target, values, cpus=cpus, seed=seed)
    if target == "engine":
        parse_program(text, cpus, source=wl.program_source())  # validate
    click.echo(text, nl=False)


def _sigterm_interrupts() -> None:
    """SIGTERM (kill, a batch system's time limit) ends a command as Ctrl-C does: its
    cleanup runs (a gem5 run's temporary directory goes, finished sweep points stay) and it
    exits 130, instead of dying with its temporary files left behind."""
    import signal
    import threading

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None, prog_name: str = "percpu",
         command: click.Command | None = None) -> None:
    """Entry point for every command, with the exit codes of percpu.errors (README, Exit
    codes): one line and 2 for bad input, whatever layer finds it; one line and 3 for an
    internal error (a bug); 130 when interrupted."""
    import os

    from percpu.errors import (
        EXIT_INTERNAL,
        EXIT_INTERRUPTED,
        EXIT_USAGE,
        TRACEBACK_ENV,
        internal_error_line,
    )

    command = command or main_group
    _sigterm_interrupts()
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
        sys.exit(EXIT_USAGE)
    except UsageError as exc:
        _end_progress_line()
        click.echo(f"{prog_name}: error: {' '.join(str(exc).splitlines())}", err=True)
        sys.exit(EXIT_USAGE)
    except Interrupted as exc:
        _end_progress_line()
        click.echo(f"{prog_name}: interrupted; {exc}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _end_progress_line()
        click.echo(f"{prog_name}: interrupted; nothing of the unfinished runs was written",
                   err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # `percpu params | head`: the reader left; not an error of ours
        sys.stderr.close()
        sys.exit(0)
    except OSError as exc:  # the machine refused (disk full, a path gone): not a bug of ours
        _end_progress_line()
        where = f" {exc.filename}" if exc.filename else ""
        click.echo(f"{prog_name}: error: cannot access{where}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # noqa: BLE001 - a bug: say so, in one line, with its own code
        _end_progress_line()
        if os.environ.get(TRACEBACK_ENV) == "1":
            import traceback

            traceback.print_exc()
        click.echo(internal_error_line(prog_name, exc), err=True)
        sys.exit(EXIT_INTERNAL)


class Interrupted(Exception):
    """Ctrl-C, after what could be kept was kept: the message says what (exit 130)."""


_progress_open = False  # a progress line without its newline is on stderr


def progress_line(text: str, *, done: bool = False) -> None:
    """Rewrite the progress line on stderr (a terminal only: callers check)."""
    global _progress_open
    click.echo("\r\x1b[2K" + text, err=True, nl=done)
    _progress_open = not done


def _end_progress_line() -> None:
    """An error or an interrupt starts on a line of its own, not glued to the progress."""
    global _progress_open
    if _progress_open:
        click.echo("", err=True)
        _progress_open = False


def run_main(argv: list[str]) -> None:
    """configs/percpu.py under plain Python: `percpu run` with the same flags."""
    main(argv, prog_name="configs/percpu.py", command=run_command)
