"""`percpu trace`: record real runs, snapshot live processes, replay traces as op programs.

The lead registers `trace_group` in percpu/cli.py as `percpu trace`; bad input raises
percpu.errors.UsageError, which percpu.cli.main turns into one line and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from percpu.errors import UsageError


@click.group("trace", context_settings={"help_option_names": ["-h", "--help"]})
def trace_group() -> None:
    """Record real runs (perf, valgrind lackey), snapshot live processes, replay traces.

    A trace is one `percpu-trace 1` file (docs/traces.md); `replay` turns it into the op
    program that `percpu run --workload trace:FILE` runs on the engine.
    """


@trace_group.command("record", context_settings={"ignore_unknown_options": True})
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False), default=None,
              help="trace file to write (.gz: gzip'd)  [default: CMD.trace.gz]")
@click.option("--memory", is_flag=True,
              help="also record the user-space memory accesses with valgrind lackey "
                   "(a second run of the command)")
@click.option("--events", type=click.Choice(["auto", "tracepoints", "software"]),
              default="auto", show_default=True,
              help="perf event source: tracepoints (sched_switch, faults, mmap...) or software "
                   "events (context-switch and task records, page-faults)")
@click.option("--memory-limit", type=int, default=5_000_000, show_default=True,
              help="most lackey accesses read (shared out among the processes)")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def record_command(out: str | None, memory: bool, events: str, memory_limit: int,
                   command: tuple[str, ...]) -> None:
    """Run COMMAND under perf (as root) and write its trace: percpu trace record -- CMD ARGS."""
    from percpu.text import plural
    from percpu.trace.record import default_out, record

    cmd = list(command)
    if memory_limit < 1:
        raise UsageError("--memory-limit must be at least 1")
    path = Path(out) if out else default_out(cmd)
    result = record(cmd, path, memory=memory, events=events, memory_limit=memory_limit)
    t = result.trace
    traced = sum(1 for x in t.tasks.values() if x.cls == "c")
    procs = len({x.pid for x in t.tasks.values() if x.cls == "c"})
    click.echo(f"percpu: wrote {result.path}: {plural(len(t.events), 'event')}, "
               f"{plural(procs, 'process')}, {plural(traced, 'thread')}, "
               f"{int(t.meta.get('duration_ns', 0)) / 1e6:.3f} ms"
               + (f", {plural(len(t.accesses), 'access run')}" if memory else "")
               + f" (sources: {t.meta.get('sources')})", err=True)
    for w in result.warnings:
        click.echo(f"percpu: warning: {w}", err=True)
    status = int(t.meta.get("exit_status", "0") or 0)
    if status:
        click.echo(f"percpu: warning: the command exited with status {status}", err=True)


@trace_group.command("snapshot")
@click.argument("pid", type=int)
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False), default=None,
              help="snapshot file to write  [default: snapshot-PID.trace]")
def snapshot_command(pid: int, out: str | None) -> None:
    """Record the address-space shape of live process PID (VMAs, populated pgd/pud/pmd)."""
    from percpu.trace.snapshot import write_snapshot

    path, t = write_snapshot(pid, Path(out) if out else Path(f"snapshot-{pid}.trace"))
    m = t.meta
    click.echo(f"percpu: wrote {path}: {m['vmas']} VMAs, {m['pgd_slots']} pgd / "
               f"{m['pud_slots']} pud / {m['pmd_slots']} pmd slots populated "
               f"(from {m['slot_source']})", err=True)


@trace_group.command("replay")
@click.argument("trace_file", type=click.Path(dir_okay=False))
@click.option("--cpus", type=click.IntRange(1, 256), default=4, show_default=True,
              help="CPUs of the machine the program is for, 1..256")
@click.option("--snapshot", "snapshot_file", type=click.Path(dir_okay=False), default=None,
              help="a `trace snapshot` file that shapes the command's first address space")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="replay parameter, as in percpu run -w trace:FILE --param: max_ops=N "
                   "(ops the replay may use, sampled beyond; default 100000)")
@click.option("--max-ops", type=int, default=None, hidden=True,
              help="the same as --param max_ops=N (kept for old scripts)")
@click.option("--no-timing", is_flag=True, help="leave out compute ops for measured run time")
@click.option("--no-others", is_flag=True,
              help="leave out the runs of processes other than the traced command's")
@click.option("--freq-mhz", type=click.FloatRange(1, 100_000), default=None,
              help="clock of the machine the program is for, in MHz: measured ns become "
                   "cycles at it (default: the engine's machine.freq_mhz default)")
def replay_command(trace_file: str, cpus: int, snapshot_file: str | None,
                   params: tuple[str, ...], max_ops: int | None, no_timing: bool,
                   no_others: bool, freq_mhz: float | None) -> None:
    """Print the op program (docs/op-program.md) that replays TRACE_FILE."""
    from percpu.run_request import parse_params
    from percpu.trace.replay import trace_to_program
    from percpu.workloads.definition import trace_workload
    from percpu.workloads.program import parse_program

    given = parse_params(params)
    if max_ops is not None:
        given.setdefault("max_ops", str(max_ops))
    unknown = set(given) - {"max_ops"}
    if unknown:
        raise UsageError(f"trace replay --param takes max_ops=N, got '{min(unknown)}' "
                         "(--snapshot, --no-timing and --no-others are options)")
    values = trace_workload(trace_file).resolve(given)  # the same checks as percpu run's
    text = trace_to_program(trace_file, cpus, snapshot=snapshot_file,
                            max_ops=values["max_ops"], timing=not no_timing,
                            others=not no_others, freq_mhz=freq_mhz)
    parse_program(text, cpus, source=f"replay of {trace_file}")  # validate
    sys.stdout.write(text)


from percpu.trace.import_cli import import_command

trace_group.add_command(import_command)
