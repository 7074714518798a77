"""`percpu sweep SPEC.toml`, `percpu sweep status DIR`, `percpu sweep cancel DIR`."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import click

from percpu.errors import UsageError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


class SweepGroup(click.Group):
    """`percpu sweep SPEC [options]` runs a sweep; `status` and `cancel` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("sweep", cls=SweepGroup, context_settings=CONTEXT)
def sweep_group() -> None:
    """Run a sweep of points (schemes x configurations) locally or on Slurm, resumably.

    \b
    percpu sweep SPEC.toml [--backend local|slurm] [--jobs N] [--resume] [--dry-run]
    percpu sweep status DIR
    percpu sweep cancel DIR

    The spec format is in the README (section Sweeps) and examples/.
    """


def _spec_content(text: str) -> dict | None:
    """A spec's settings, without sweep.outdir (--outdir may stand in for it) and without
    comments or layout; None if it is not TOML."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    if isinstance(data.get("sweep"), dict):
        data["sweep"].pop("outdir", None)
    return data


def _holds_this_spec(root: Path, spec_path: Path) -> bool:
    """Whether root is the directory of this spec's sweep (its spec.toml says the same)."""
    from percpu.sweep.index import SWEEP_FILE

    try:
        if not (root / SWEEP_FILE).is_file():
            return False
        held = _spec_content((root / "spec.toml").read_text(encoding="utf-8"))
        return held is not None and held == _spec_content(
            Path(spec_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return False


def _run_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{os.urandom(3).hex()}"


def _check_outdir(root: Path, spec_path: Path, resume: bool, dry_run: bool = False) -> None:
    """Fail before anything is written if DIR cannot be this sweep's directory: another
    spec's sweep there is refused, with or without --resume (it would replace that sweep's
    spec and index and orphan its points)."""
    from percpu.sweep.index import SWEEP_FILE

    if root.exists():
        if (root / SWEEP_FILE).is_file():
            if not _holds_this_spec(root, spec_path):
                raise UsageError(f"sweep.outdir {root} holds another spec's sweep "
                                 f"({root / 'spec.toml'}): choose another outdir for this one "
                                 f"(to continue that sweep: percpu sweep {root / 'spec.toml'} "
                                 f"-o {root} --resume)")
            return
        if any(root.iterdir()):
            raise UsageError(f"sweep.outdir {root} exists and is not a sweep directory: "
                             "choose a new or empty directory")
    elif resume and not dry_run:
        raise UsageError(f"nothing to resume: {root} does not exist (run without --resume)")
    probe = root.resolve()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write sweep.outdir {root}: {probe} is not a writable "
                         "directory; choose another outdir")


@sweep_group.command("run", context_settings=CONTEXT)
@click.argument("spec_path", metavar="SPEC.toml", type=click.Path(dir_okay=False))
@click.option("--backend", type=click.Choice(["local", "slurm"]), default="local",
              show_default=True, help="where points run")
@click.option("--jobs", "-j", type=int, default=None,
              help="local: worker processes  [default: the CPUs of this machine]")
@click.option("--resume", is_flag=True,
              help="continue a sweep: run only unfinished and failed points")
@click.option("--dry-run", is_flag=True, help="list the points and what would run; write nothing")
@click.option("--outdir", "-o", default=None, help="override sweep.outdir of the spec")
@click.option("--quiet", "-q", is_flag=True, help="print only errors and the summary")
@click.option("--partition", default=None, help="slurm: sbatch --partition")
@click.option("--time", "time_limit", default=None, help="slurm: sbatch --time per array task")
@click.option("--mem", default=None, help="slurm: sbatch --mem per array task")
@click.option("--account", default=None, help="slurm: sbatch --account")
@click.option("--qos", default=None, help="slurm: sbatch --qos")
@click.option("--sbatch-option", "sbatch_options", multiple=True, metavar="OPT",
              help="slurm: extra sbatch option, repeatable (e.g. --sbatch-option=--exclusive)")
@click.option("--throttle", type=int, default=None,
              help="slurm: at most N array tasks running at once (--array=...%N)")
@click.option("--points-per-task", type=int, default=None,
              help="slurm: points each array task runs  [default: 1 for gem5; engine: enough "
                   "for at most 256 tasks]")
@click.option("--no-wait", is_flag=True,
              help="slurm: return after submitting (the collect job writes the table and the "
                   "report)")
def sweep_run(spec_path, backend, jobs, resume, dry_run, outdir, quiet, partition, time_limit,
              mem, account, qos, sbatch_options, throttle, points_per_task, no_wait) -> None:
    """Run the sweep SPEC.toml (see the README's section Sweeps)."""
    from percpu.sweep.spec import load_spec

    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs {jobs}: give at least 1 worker")
    spec = load_spec(spec_path, outdir=outdir, backend=backend)
    slurm_opts = dict(spec.slurm)
    for key, value in (("partition", partition), ("time", time_limit), ("mem", mem),
                       ("account", account), ("qos", qos), ("throttle", throttle),
                       ("points_per_task", points_per_task)):
        if value is not None:
            slurm_opts[key] = value
    if sbatch_options:
        slurm_opts["sbatch_options"] = [*slurm_opts.get("sbatch_options", []), *sbatch_options]
    root = spec.outdir
    if not resume and _holds_this_spec(root, spec.path):
        # The same command again (the README's, run twice): continue the sweep, which runs
        # only what is not done yet; a different spec there is still refused.
        resume = True
        if not quiet and not dry_run:
            click.echo(f"sweep: {root} holds this spec's sweep: continuing it (only points "
                       "not done run)", err=True)
    _check_outdir(root, spec.path, resume or dry_run, dry_run)
    plan = None
    if backend == "slurm":
        from percpu.sweep.backends.slurm import SlurmOptions

        plan = SlurmOptions.from_dict(slurm_opts, host=spec.host)
    if dry_run:
        _dry_run(spec, root, backend, plan)
        return
    from percpu.atomic import write_atomic
    from percpu.sweep.index import write_sweep_file

    root.mkdir(parents=True, exist_ok=True)
    run_id = _run_id()
    lock = _driver_lock(root, run_id)
    try:
        write_sweep_file(root, spec, backend)
        write_atomic(root / "spec.toml", spec.path.read_bytes())
        if spec.duplicates and not quiet:
            click.echo(f"sweep: {spec.duplicates} repeated points dropped", err=True)
        if backend == "local":
            _run_local(spec, root, jobs or os.cpu_count() or 1, run_id, quiet)
        else:
            from percpu.sweep.backends.slurm import submit_and_track

            code = submit_and_track(root, spec, plan, run_id=run_id, resume=resume,
                                    wait=not no_wait, quiet=quiet)
            sys.exit(code)
    finally:
        _release(lock, run_id)


def _driver_lock(root: Path, run_id: str):
    """One sweep command drives a directory at a time (a claim on the pseudo-point
    .driver: it dies with its process)."""
    from percpu.sweep.claim import PointPaths, acquire, this_process

    claim = acquire(PointPaths(root, ".driver"), this_process(run_id))
    if claim.status == "busy":
        owner = claim.attempt.owner or {}
        raise UsageError(f"another percpu sweep (pid {owner.get('pid')} on "
                         f"{owner.get('host')}) is driving {root}: wait for it, or stop it")
    return claim


def _release(claim, run_id: str) -> None:
    from percpu.sweep.claim import end_attempt

    if claim is not None and claim.attempt is not None and claim.status == "claimed":
        end_attempt(claim.attempt, "done", run_id)


def _run_local(spec, root: Path, jobs: int, run_id: str, quiet: bool) -> None:
    from percpu.sweep.backends.local import run_local

    start = time.monotonic()
    try:
        progress = run_local(root, spec.points, jobs=jobs, run_id=run_id, quiet=quiet)
    except KeyboardInterrupt:
        from percpu.sweep.claim import PointPaths, read_result

        kept = sum(read_result(PointPaths(root, p.name)) is not None for p in spec.points)
        click.echo(f"\npercpu sweep: interrupted; {kept} of {len(spec.points)} points are done "
                   f"and kept in {root}; continue with: percpu sweep {spec.path} --resume",
                   err=True)
        sys.exit(130)
    wall = time.monotonic() - start
    from percpu.sweep.collect import finish
    from percpu.text import plural

    code = finish(root, quiet)
    if not quiet:
        ran = progress.done + progress.failed
        click.echo(f"sweep: ran {plural(ran, 'point')} in {wall:.1f} s on "
                   f"{plural(jobs, 'worker')}"
                   + (f" ({wall * jobs / ran * 1000:.1f} ms per point per worker)" if ran else ""),
                   err=True)
    if code:
        sys.exit(code)


def _dry_run(spec, root: Path, backend: str, plan) -> None:
    import pandas as pd

    from percpu.sweep.run import point_state_hint

    rows = []
    for p in spec.points:
        row = {"name": p.name, "scheme": p.scheme}
        for axis in spec.varying:
            row[axis] = p.axis_value(axis)
        row["state"] = point_state_hint(root, p) if root.exists() else "pending"
        rows.append(row)
    frame = pd.DataFrame(rows)
    with pd.option_context("display.max_rows", None, "display.width", 250):
        click.echo(frame.to_string(index=False))
    todo = int((frame["state"] != "done").sum()) if not frame.empty else 0
    where = backend
    if plan is not None:
        where += " (" + plan.describe(todo) + ")"
    click.echo(f"\n{len(spec.points)} points ({len(spec.schemes)} schemes), {todo} to run on "
               f"{where}, output {root}; nothing was written", err=True)


@sweep_group.command("status", context_settings=CONTEXT)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--all", "show_all", is_flag=True, help="list done points too")
def sweep_status(directory: Path, show_all: bool) -> None:
    """Print the sweep index of DIRECTORY: every point's state, time and error."""
    from percpu.sweep.collect import slurm_state_for
    from percpu.sweep.index import build_index, counts, read_sweep_file, status_table

    sweep = read_sweep_file(directory)
    frame = build_index(directory, sweep["points"], sweep["axes"],
                        slurm_state_for(directory, sweep))
    view = frame if show_all or frame.empty else frame[frame["state"] != "done"]
    if not view.empty:
        click.echo(status_table(view, sweep["axes"], sweep["varying"]))
    elif not frame.empty:
        click.echo("(every point is done; --all lists them)")
    summary = ", ".join(f"{n} {s}" for s, n in counts(frame).items())
    click.echo(f"{len(frame)} points: {summary}")


@sweep_group.command("cancel", context_settings=CONTEXT)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def sweep_cancel(directory: Path) -> None:
    """Cancel the Slurm jobs of the sweep in DIRECTORY that are still queued or running."""
    from percpu.sweep.index import read_sweep_file

    sweep = read_sweep_file(directory)
    if sweep.get("backend") != "slurm":
        raise UsageError(f"{directory} is a {sweep.get('backend')} sweep: stop its "
                         "'percpu sweep' command instead (Ctrl-C)")
    if shutil.which("scancel") is None:
        raise UsageError("scancel is not on PATH: run on the cluster's login node")
    from percpu.sweep.backends.slurm import cancel

    click.echo(cancel(directory))
