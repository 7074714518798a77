"""`percpu report`: the click command behind the analysis package."""

from __future__ import annotations

from pathlib import Path

import click

from percpu.errors import UsageError

__all__ = ["report_command"]


@click.command("report")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--baseline",
    default="shared",
    show_default=True,
    help="Scheme every other scheme is compared with.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("percpu-report"),
    show_default=True,
    help="Directory for report.md, plots/ and report.html.",
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
    out: Path,
    formats: str,
    dump: int,
    allow_partial: bool,
) -> None:
    """Write the overhead report for the run directories DIRS (or directories of runs)."""
    # Imported here so that `percpu --help` does not pay for pandas and matplotlib.
    from percpu.analysis.report import write_report

    try:
        written = write_report(
            list(dirs),
            baseline=baseline,
            out=out,
            formats=formats,
            dump=dump,
            allow_partial=allow_partial,
        )
    except UsageError as exc:
        # One line on stderr and exit 2, whether or not the caller's group handles it.
        message = " ".join(str(exc).split("\n"))
        click.echo(f"percpu report: error: {message}", err=True)
        click.get_current_context().exit(2)
    for path in written:
        click.echo(str(path))
