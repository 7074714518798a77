"""`percpu report`: the click command behind the analysis package."""

from __future__ import annotations

from pathlib import Path

import click

from percpu.errors import UsageError
from percpu.run_request import PREFERRED_BASELINE

__all__ = ["report_command"]


@click.command("report")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--baseline",
    default=PREFERRED_BASELINE,
    show_default=True,
    help="Scheme every other scheme is compared with (one of the runs' schemes).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory for report.md, plots/ and report.html  [default: report/ beside the runs, "
    "as `percpu run` writes OUTDIR/report/].",
)
@click.option(
    "--format",
    "formats",
    default="md,html",
    show_default=True,
    help="Comma-separated output formats: md, html.",
)
@click.option(
    "--dump",
    type=int,
    default=-1,
    show_default=True,
    help="Dump block the tables use: an index, or negative to count back over complete dumps.",
)
@click.option(
    "--allow-partial",
    is_flag=True,
    help="Accept a truncated last dump block: report it and use only the complete ones.",
)
def report_command(
    dirs: tuple[Path, ...],
    baseline: str,
    out: Path | None,
    formats: str,
    dump: int,
    allow_partial: bool,
) -> None:
    """Write the overhead report for the run directories DIRS (or directories of runs).

    The report goes to --out, by default to report/ in the directory that holds the runs
    (m5out/report for `percpu report m5out` or `percpu report m5out/*`). A report
    directory among DIRS is skipped with a note.
    """
    # Imported here so that `percpu --help` does not pay for pandas and matplotlib.
    from percpu.analysis.report import write_report

    ctx = click.get_current_context()
    given = ctx.get_parameter_source("baseline") is not click.core.ParameterSource.DEFAULT
    try:
        written = write_report(
            list(dirs),
            baseline=baseline,
            out=out if out is not None else default_report_dir(dirs),
            formats=formats,
            dump=dump,
            allow_partial=allow_partial,
            require_baseline=given,
            note=lambda line: click.echo(f"percpu report: note: {line}", err=True),
        )
    except UsageError as exc:
        # One line on stderr and exit 2, whether or not the caller's group handles it.
        message = " ".join(str(exc).split("\n"))
        click.echo(f"percpu report: error: {message}", err=True)
        ctx.exit(2)
    for path in written:
        click.echo(str(path))


def default_report_dir(dirs: tuple[Path, ...]) -> Path:
    """report/ in the deepest directory holding every input: a run directory counts as
    its parent, so `m5out`, `m5out/*` and `m5out/shared m5out/percpu` all give m5out/report,
    the directory `percpu run -o m5out` writes its report into."""
    import os

    homes = []
    for d in dirs:
        p = Path(os.path.abspath(d))
        if p.name == "stats.txt" or (p / "stats.txt").is_file() or (p / "report.md").is_file() \
                or (p / "report.html").is_file():
            p = p.parent
        homes.append(str(p))
    common = Path(os.path.commonpath(homes)) if homes else Path.cwd()
    if common == Path(common.anchor):  # runs with nothing in common but the root
        return Path("report")
    report = common / "report"
    try:
        return report.relative_to(Path.cwd())
    except ValueError:
        return report
