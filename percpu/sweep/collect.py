"""The collect step: the index, the combined tidy table and the report of a whole sweep.

It reads only the sweep directory, so it runs wherever and whenever: at the end of a
local sweep, as the Slurm job that depends on a sweep's arrays (`python -m
percpu.sweep.collect DIR`), or from `--resume`. Every file is replaced atomically, so
two collects at once are harmless.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from percpu.sweep.index import INDEX_FILE, build_index, counts, read_sweep_file, write_parquet

TIDY_FILE = "tidy.parquet"
REPORT_DIR = "report"


@dataclass
class Collected:
    index: Path
    counts: dict[str, int]
    tidy: Path | None = None
    report: list[Path] = field(default_factory=list)
    frame: object = None


def slurm_state_for(root: Path, sweep: dict):
    if sweep.get("backend") != "slurm":
        return None
    from percpu.sweep.backends.slurm_state import SlurmTracker

    return SlurmTracker(root).state_of


def collect(root: Path, *, report: bool | None = None, tables: bool = True) -> Collected:
    """Write the index; with tables, the tidy table and the report too."""
    import pandas as pd

    sweep = read_sweep_file(root)
    points = sweep["points"]
    frame = build_index(root, points, sweep["axes"], slurm_state_for(root, sweep))
    write_parquet(frame, root / INDEX_FILE)
    out = Collected(index=root / INDEX_FILE, counts=counts(frame), frame=frame)
    done = frame[frame["state"] == "done"] if not frame.empty else frame
    if not tables:
        out.tidy = root / TIDY_FILE if (root / TIDY_FILE).exists() else None
        report_dir = root / REPORT_DIR
        out.report = [p for p in (report_dir / "report.md", report_dir / "report.html")
                      if p.exists()]
        return out
    if done.empty:
        return out
    run_dirs = [Path(p) / s for p, s in zip(done["path"], done["scheme"], strict=True)]
    from percpu.analysis.tidy import load_dataset

    ds = load_dataset(run_dirs)
    tidy = ds.frame
    ids = {str(d): i for d, i in zip(run_dirs, done["id"], strict=True)}
    tidy.insert(0, "sweep_point", pd.Categorical([ids.get(str(r), "") for r in tidy["run"]]))
    write_parquet(tidy, root / TIDY_FILE)
    out.tidy = root / TIDY_FILE
    if report if report is not None else sweep.get("report", True):
        from percpu.analysis.report import write_report

        schemes = set(done["scheme"])
        from percpu.run_request import baseline as choose_baseline

        # The spec's baseline, unless none of its points finished.
        baseline = choose_baseline(sorted(schemes), sweep["baseline"] if sweep["baseline"]
                                   in schemes else None)
        out.report = write_report(run_dirs, baseline=baseline, out=root / REPORT_DIR,
                                  formats=("md", "html"))
    return out


def finish(root: Path, quiet: bool, *, tables: bool = True) -> int:
    """Collect (tables: also the tidy table and the report, else only the index) and
    summarise; exit code 1 if any point did not finish."""
    import click

    result = collect(root, tables=tables)
    summary = ", ".join(f"{n} {s}" for s, n in result.counts.items())
    click.echo(f"sweep {root}: {summary}", err=True)
    if not quiet:
        click.echo(f"index: {result.index}", err=True)
        if result.tidy:
            click.echo(f"tidy table: {result.tidy}", err=True)
        for path in result.report:
            if path.suffix in (".md", ".html"):
                click.echo(f"report: {path}", err=True)
    unfinished = sum(n for s, n in result.counts.items() if s != "done")
    if unfinished:
        click.echo(f"sweep: {unfinished} points did not finish: percpu sweep status {root}; "
                   "rerun them with --resume", err=True)
        return 1
    return 0


def main(argv: list[str] | None = None) -> None:
    """`python -m percpu.sweep.collect DIR`: the Slurm collect job."""
    from percpu.errors import UsageError

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m percpu.sweep.collect SWEEP_DIR", file=sys.stderr)
        sys.exit(2)
    from percpu.errors import EXIT_INTERNAL, EXIT_USAGE, internal_error_line

    try:
        result = collect(Path(args[0]))
    except UsageError as exc:
        print(f"percpu sweep collect: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # noqa: BLE001 - a bug: one line and the exit code of one
        print(internal_error_line("percpu sweep collect", exc), file=sys.stderr)
        sys.exit(EXIT_INTERNAL)
    summary = ", ".join(f"{n} {s}" for s, n in result.counts.items())
    print(f"percpu sweep collect: {summary}; index {result.index}"
          + (f", tidy {result.tidy}" if result.tidy else "")
          + (f", report {result.report[0].parent}" if result.report else ""))


if __name__ == "__main__":
    main()
