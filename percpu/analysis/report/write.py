"""write_report: load runs, build, render, and write every file atomically."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from percpu.analysis.report.build import build_report
from percpu.analysis.report.render import render_html, render_markdown
from percpu.analysis.report.stat_names import FORMATS
from percpu.analysis.tidy import (
    load_dataset,
)
from percpu.atomic import write_atomic
from percpu.errors import UsageError
from percpu.paths import check_writable_dir


def _atomic_write(path: Path, data: bytes) -> None:
    write_atomic(path, data)


def parse_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """ "md,html" or ["md", "html"] -> ("md", "html"); UsageError for anything else."""
    items = formats.split(",") if isinstance(formats, str) else [
        f for item in formats for f in str(item).split(",")
    ]  # fmt: skip
    out = tuple(dict.fromkeys(f.strip().lower() for f in items if f.strip()))
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise UsageError(
            f"--format: expected a comma-separated list of {', '.join(FORMATS)}, "
            f"got {','.join(bad) or 'nothing'}"
        )
    return out


def write_report(
    dirs: Sequence[str | os.PathLike[str]],
    baseline: str = "shared",
    out: str | os.PathLike[str] = Path("percpu-report"),
    formats: str | Sequence[str] = FORMATS,
    *,
    dump: int = -1,
    allow_partial: bool = False,
    progress: Callable[[str], None] | None = None,
    require_baseline: bool = False,
    note: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write the report for the runs under dirs into the directory out.

    Produces out/report.md with out/plots/*.png, and/or out/report.html with
    the plots embedded. Returns the paths written. Every input is read and
    every output rendered before the first file is written, and each file is
    replaced atomically, so bad input (UsageError, exit 2 on the CLI) leaves
    no half-written report behind.
    """
    fmts = parse_formats(formats)
    if not dirs:
        raise UsageError("expected at least one run directory, got none")
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: expected a directory for the report, got a file")
    check_writable_dir(out_dir, "--out")
    if (out_dir / "stats.txt").is_file():
        raise UsageError(f"--out {out_dir} is a run directory (it holds stats.txt): choose "
                         "another directory for the report")
    ds = load_dataset(dirs, allow_partial=allow_partial, skip=[out_dir])
    report = build_report(ds, baseline=baseline, dump=dump, require_baseline=require_baseline)
    outputs: list[tuple[Path, bytes]] = []
    if "md" in fmts:
        outputs.append((out_dir / "report.md", render_markdown(report).encode("utf-8")))
        for sec in report.sections:
            for p in sec.plots:
                outputs.append((out_dir / "plots" / f"{p.slug}.png", p.png))
    if "html" in fmts:
        outputs.append((out_dir / "report.html", render_html(report).encode("utf-8")))
    written: list[Path] = []
    for path, data in outputs:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(path, data)
        except OSError as exc:
            raise UsageError(f"--out {out_dir}: cannot write {path}: {exc.strerror}; "
                             "choose another directory with --out") from None
        written.append(path)
        if progress is not None:
            progress(str(path))
    if "md" in fmts:  # plots of an earlier report that this one does not have are stale
        for old in (out_dir / "plots").glob("*.png"):
            if old not in written:
                old.unlink(missing_ok=True)
    if note is not None:  # after the report is written: an error stays its one line
        for line in ds.warnings:
            note(line)
    return written
