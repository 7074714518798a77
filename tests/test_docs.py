"""The docs' examples are what the commands do: the README's main-job output, and
docs/op-program.md's worked example of a user's own workload, run as a user would."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _blocks(text: str) -> list[str]:
    """The fenced code blocks of markdown text, in order."""
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def _in_order(shown: list[str], output: str) -> None:
    """Every line shown (but '...' and blank ones) is a line of output, in the same order."""
    lines = output.splitlines()
    at = 0
    for line in shown:
        if not line.strip() or line.strip() == "...":
            continue
        assert line in lines[at:], f"{line!r} is not in the output (after line {at}):\n{output}"
        at = lines.index(line, at) + 1


def _run(command: str, cwd: Path) -> str:
    argv = shlex.split(command.split("#", 1)[0])
    if argv[0] == "percpu":
        argv = [sys.executable, "-m", "percpu", *argv[1:]]
    elif argv[0] == "python":
        argv[0] = sys.executable
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, (command, proc.stderr)
    return proc.stdout


def test_the_readme_shows_what_the_main_job_prints(tmp_path):
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## What the main job prints"):]
    shown = _blocks(section)[0].splitlines()
    assert len([ln for ln in shown if ln.strip() and ln != "..."]) >= 8
    _in_order(shown, _run(f"python {ROOT / 'configs' / 'percpu.py'}", tmp_path))


def test_the_op_program_docs_worked_example_runs_as_shown(tmp_path):
    text = (ROOT / "docs" / "op-program.md").read_text()
    section = text[text.index("## Running your own workload"):]
    toml, template, session, two_ops, two_run, sweep = _blocks(section)[:6]
    (tmp_path / "pagewalk").mkdir()
    (tmp_path / "pagewalk" / "workload.toml").write_text(toml)
    (tmp_path / "pagewalk" / "engine.ops.j2").write_text(template)
    (tmp_path / "two.ops").write_text(two_ops)
    (tmp_path / "cliff.toml").write_text(sweep)
    # The session: each "$ command" runs; the lines under it are its output, in order.
    steps: list[tuple[str, list[str]]] = []
    for line in session.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    assert len(steps) == 3
    for command, shown in steps:
        if "|" in command:  # a pipe into head: the command before it must run
            command = command.split("|", 1)[0]
        _in_order(shown, _run(command, tmp_path))
    assert two_run.startswith("$ ")
    _run(two_run[2:].strip(), tmp_path)
    assert (tmp_path / "runs" / "two" / "percpu" / "stats.txt").is_file()
    _run("percpu sweep cliff.toml -j 2 -q", tmp_path)
    assert len(list((tmp_path / "sweeps" / "pagewalk" / "points").iterdir())) == 12


def test_docs_parameters_md_is_what_percpu_params_generates():
    from percpu.params import markdown_table

    assert (ROOT / "docs" / "parameters.md").read_text() == markdown_table(), (
        "docs/parameters.md is stale: regenerate it with percpu params --markdown")
