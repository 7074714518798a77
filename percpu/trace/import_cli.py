"""`percpu trace import`: a perf recording from another machine to a trace (docs/traces.md)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("import")
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False), default=None,
              help="trace file to write  [default: SOURCE's name + .trace.gz]")
@click.option("--pid", type=int, default=None,
              help="the command's pid: its process tree is the traced command")
@click.option("--comm", default=None, help="the command's name (the first task so named)")
def import_command(source: str, out: str | None, pid: int | None, comm: str | None) -> None:
    """Import `perf script` text (or a perf.data file, with perf installed) recorded with
    sched_switch and sched_process_fork/exec/exit, from any machine."""
    from percpu.text import plural
    from percpu.trace.record.importer import import_perf

    src = Path(source)
    path = Path(out) if out else Path(src.name.split(".")[0] + ".trace.gz")
    written, t = import_perf(src, path, pid=pid, comm=comm)
    traced = [x for x in t.tasks.values() if x.cls == "c"]
    click.echo(f"percpu: wrote {written}: {plural(len(t.events), 'event')}, "
               f"{plural(len({x.pid for x in traced}), 'process')}, "
               f"{plural(len(traced), 'thread')}, "
               f"{int(t.meta.get('duration_ns', 0)) / 1e6:.3f} ms", err=True)
