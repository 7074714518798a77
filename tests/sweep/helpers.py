"""Writing small sweep specs and running `percpu sweep` as a user does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from percpu.cli import main

FIXED = "cpus = 2\nparam.rounds = 5\nparam.pages = 4"


def write_spec(path: Path, outdir: Path, body: str = "", *, report: bool = False,
               schemes: str = '["shared", "percpu"]', grid: str | None = None,
               fixed: str = FIXED) -> Path:
    grid = grid if grid is not None else "param.procs_per_cpu = [2, 7]\nseed = [1, 2]"
    text = (f'[sweep]\nworkload = "ctxmix"\nschemes = {schemes}\noutdir = "{outdir}"\n'
            f"report = {str(report).lower()}\n\n[fixed]\n{fixed}\n\n[grid]\n{grid}\n{body}")
    path.write_text(text)
    return path


def run_cli(*args: str, capsys) -> tuple[int, str, str]:
    """`percpu ARGS` in this process: (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def percpu(*args: str, cwd: Path | None = None, env: dict | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "percpu", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})


def results(outdir: Path) -> dict[str, dict]:
    """Every committed result marker, by point name."""
    found = {}
    for marker in sorted((outdir / "points").glob("*/result.json")):
        found[marker.parent.name] = json.loads(marker.read_text())
    return found


def point_names(outdir: Path) -> list[str]:
    return [p["name"] for p in json.loads((outdir / "sweep.json").read_text())["points"]]


def assert_exactly_once(outdir: Path) -> None:
    """Every point of the sweep has exactly one complete result and nothing else."""
    names = point_names(outdir)
    done = results(outdir)
    assert sorted(done) == sorted(names)
    for name in names:
        d = outdir / "points" / name
        entries = sorted(x.name for x in d.iterdir())
        scheme = done[name]["scheme"]
        assert entries == sorted([scheme, "result.json"]), (name, entries)
        assert (d / scheme / "stats.txt").is_file()

