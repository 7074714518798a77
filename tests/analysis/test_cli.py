"""`percpu report` on the command line: one error line and exit 2 for bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from percpu.analysis.cli import report_command
from percpu.analysis.stats_txt import BEGIN_BANNER, END_BANNER


@click.group()
def cli() -> None:
    """Stands in for the percpu group the lead adds report_command to."""


cli.add_command(report_command)


def _runner() -> CliRunner:
    # click < 8.2 mixes stderr into stdout unless told not to; 8.2 dropped the flag.
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


def _run(*args: str | Path) -> click.testing.Result:
    return _runner().invoke(cli, ["report", *map(str, args)])


GOOD = "simTicks                                         1000                       # t (Tick)"


@pytest.mark.parametrize(
    ("stats", "where"),
    [
        (f"\n{BEGIN_BANNER}\n{GOOD}\nsimSeconds   0.0x1   # s (Second)\n\n{END_BANNER}\n",
         ("stats.txt:4: expected a number (or nan/inf) in the value column of 'simSeconds', "
          "got '0.0x1'")),
        (f"\n{BEGIN_BANNER}\n{GOOD}\n",
         "stats.txt:2: expected '---------- End Simulation Statistics   ----------' to close"),
        (f"\n{BEGIN_BANNER}\n{GOOD}\n\n{END_BANNER}\n%%garbage%%\n",
         ("stats.txt:6: expected the banner '---------- Begin Simulation Statistics ----------', "
          "got '%%garbage%%'")),
    ],
)  # fmt: skip
def test_malformed_stats_give_one_line_and_exit_2(
    tmp_path: Path, make_run: Callable[..., Path], stats: str, where: str
) -> None:
    run = make_run(tmp_path / "run")
    (run / "stats.txt").write_text(stats)
    result = _run(run, "--out", tmp_path / "out")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"percpu report: error: {run / where.split(':')[0]}:")
    assert where in lines[0]
    assert not (tmp_path / "out").exists()


def test_truncated_run_is_reported_with_allow_partial(
    tmp_path: Path, make_run: Callable[..., Path]
) -> None:
    run = make_run(tmp_path / "run", dumps=2, cpus=2)
    text = (run / "stats.txt").read_text()
    (run / "stats.txt").write_text(text[: text.rindex("system.cpu1.numCycles") + 30])
    assert _run(run, "--out", tmp_path / "out").exit_code == 2
    result = _run(run, "--out", tmp_path / "out", "--allow-partial", "--format", "md")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [str(tmp_path / "out" / "report.md"),
                                          str(tmp_path / "out" / "plots" / "cycles_by_category.png")]
    md = (tmp_path / "out" / "report.md").read_text()
    warning = next(ln for ln in md.splitlines() if "no End banner" in ln)
    # named by file and line, and never used: the table rows come from dump 0
    assert f"{run / 'stats.txt'}:" in warning and "not used in tables" in warning
    assert "| R1 | 0* |" in md


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "pdf"], "--format: expected a comma-separated list of md, html, got pdf"),
        (["--dump", "5"], "--dump 5: expected runs with complete dump 5, got none among 1 run"),
    ],
)
def test_bad_options_exit_2(
    tmp_path: Path, make_run: Callable[..., Path], args: list[str], message: str
) -> None:
    run = make_run(tmp_path / "run")
    result = _run(run, "--out", tmp_path / "out", *args)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"percpu report: error: {message}"
    assert not (tmp_path / "out").exists()


def test_runs_without_the_dump_are_left_out_and_named(
    tmp_path: Path, make_run: Callable[..., Path]
) -> None:
    make_run(tmp_path / "runs" / "one", dumps=1)
    make_run(tmp_path / "runs" / "two", dumps=2)
    result = _run(tmp_path / "runs", "--out", tmp_path / "out", "--dump", "1", "--format", "md")
    assert result.exit_code == 0, result.output
    md = (tmp_path / "out" / "report.md").read_text()
    assert f"{tmp_path / 'runs' / 'one' / 'stats.txt'}: no complete dump 1" in md


def test_missing_directory_exits_2(tmp_path: Path) -> None:
    result = _run(tmp_path / "nope")
    assert result.exit_code == 2
    assert "no such path" in result.stderr and len(result.stderr.splitlines()) == 1


def test_success_prints_the_files_written(tmp_path: Path, make_run: Callable[..., Path]) -> None:
    make_run(tmp_path / "runs" / "a", scheme="shared")
    make_run(tmp_path / "runs" / "b", scheme="percpu", sim_ticks=1_050_000_000)
    result = _run(tmp_path / "runs", "--out", tmp_path / "out", "--baseline", "shared")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        str(tmp_path / "out" / "report.md"),
        str(tmp_path / "out" / "plots" / "cycles_by_category.png"),
        str(tmp_path / "out" / "report.html"),
    ]
    assert "+5.00 %" in (tmp_path / "out" / "report.md").read_text()


def test_other_baseline_is_honoured(tmp_path: Path, make_run: Callable[..., Path]) -> None:
    make_run(tmp_path / "runs" / "a", scheme="shared", sim_ticks=1_000_000_000)
    make_run(tmp_path / "runs" / "b", scheme="percpu", sim_ticks=1_250_000_000)
    result = _run(tmp_path / "runs", "--out", tmp_path / "out", "--baseline", "percpu",
                  "--format", "md")  # fmt: skip
    assert result.exit_code == 0, result.output
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| ctxmix | shared | 1 | -20.00 % |" in md
