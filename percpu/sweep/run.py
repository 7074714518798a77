"""Running one point under a claim: the engine in-process, gem5 through `percpu gem5 run`.

Both backends call run_point; what it leaves behind is described in claim.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from percpu.sweep.claim import (
    Heartbeat,
    PointPaths,
    acquire,
    commit,
    end_attempt,
    latest_attempt,
    read_result,
)
from percpu.sweep.point import Point

BUSY_POLL_S = 0.5


class Gem5RunError(Exception):
    """`percpu gem5 run` failed: the message is its error line."""


@dataclass
class Outcome:
    id: str
    state: str  # done, failed, busy (a live attempt elsewhere holds it)
    ran: bool = False  # this call ran the point (False: found it done, failed or busy)
    host_seconds: float = 0.0
    run_seconds: float = 0.0
    error: str = ""


def one_line(exc: BaseException | str) -> str:
    """The error line of an exception (its type and first line) or of a program's
    output (its last line, where percpu and gem5 put the error)."""
    if isinstance(exc, str):
        lines = [x.strip() for x in exc.splitlines() if x.strip()]
        return lines[-1][:500] if lines else ""
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    first = lines[0] if lines else ""
    from percpu.errors import UsageError

    text = first if isinstance(exc, UsageError) else f"{type(exc).__name__}: {first}"
    return text[:500]


def run_point(root: Path, point: Point, owner: dict[str, Any], *,
              wait_busy: float = 0.0) -> Outcome:
    """Run point unless it is done; with wait_busy, wait that long for a live attempt
    elsewhere to finish (a task Slurm started twice waits for its twin)."""
    paths = PointPaths(root, point.name)
    deadline = time.monotonic() + wait_busy
    while True:
        claim = acquire(paths, owner)
        if claim.status == "done":
            return Outcome(point.id, "done", host_seconds=float(claim.result.get(
                "host_seconds", 0.0)))
        if claim.status == "failed":
            return Outcome(point.id, "failed", error=str(claim.attempt.end.get("error", "")))
        if claim.status == "busy":
            if time.monotonic() >= deadline:
                return Outcome(point.id, "busy")
            time.sleep(BUSY_POLL_S)
            continue
        break
    attempt = claim.attempt
    start = time.perf_counter()
    try:
        with Heartbeat(attempt):
            out = attempt.dir / "out"
            if point.host == "engine":
                host_seconds, extra = _run_engine(point, out)
            else:
                host_seconds, extra = _run_gem5(point, out)
        run_seconds = time.perf_counter() - start
        marker = {"id": point.id, "name": point.name, "scheme": point.scheme,
                  "host_seconds": host_seconds, "run_seconds": run_seconds,
                  "run": owner["run"], "job": owner.get("job"), "host": owner["host"],
                  "time": time.time(), **extra}
        commit(paths, attempt, marker)
        return Outcome(point.id, "done", ran=True, host_seconds=host_seconds,
                       run_seconds=run_seconds)
    except Exception as exc:  # noqa: BLE001 - any error fails the point, not the sweep
        error = one_line(exc)
        shutil.rmtree(attempt.dir / "out", ignore_errors=True)
        end_attempt(attempt, "failed", owner["run"], error=error)
        return Outcome(point.id, "failed", ran=True, error=error,
                       run_seconds=time.perf_counter() - start)


def _run_engine(point: Point, out: Path) -> tuple[float, dict[str, Any]]:
    from percpu.runner import run_engine, write_point
    from percpu.workloads import find_workload

    wl = find_workload(point.workload)
    result, text, values = run_engine(wl, point.params, point.scheme, point.engine_overrides(),
                                      check=point.check)
    write_point(result, out / point.scheme, workload=wl, wl_params=point.params, values=values,
                program_text=text, check=point.check,
                command=["percpu", "run", *point.run_args(), "-o", str(out)])
    return result.host_seconds, {"violations": result.violation_count,
                                 "memory_references": result.memory_references}


def gem5_command(point: Point, out: Path) -> list[str]:
    """The `percpu gem5 run` invocation of a gem5 point."""
    g = point.gem5
    cmd = [sys.executable, "-m", "percpu", "gem5", "run", "--gem5", g["path"]]
    for key, flag in (("kernel", "--kernel"), ("cpu_type", "--cpu-type"),
                      ("caches", "--caches"), ("mem", "--mem"),
                      ("checkpoint_dir", "--checkpoint-dir"), ("timeout", "--timeout"),
                      ("max_sim_seconds", "--max-sim-seconds")):
        if key in g:
            cmd += [flag, str(g[key])]
    return [*cmd, *point.run_args(), "-o", str(out), "-q", "--no-report"]


def _run_gem5(point: Point, out: Path) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    proc = subprocess.run(gem5_command(point, out), capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if proc.returncode != 0:
        raise Gem5RunError(one_line(proc.stderr or proc.stdout or
                                    f"percpu gem5 run exited {proc.returncode}"))
    if not (out / point.scheme / "stats.txt").is_file():
        raise Gem5RunError(f"percpu gem5 run wrote no {point.scheme}/stats.txt")
    return time.perf_counter() - start, {}


def point_state_hint(root: Path, point: Point) -> str:
    """done, failed or pending, from the files alone (for --dry-run)."""
    paths = PointPaths(root, point.name)
    if read_result(paths) is not None:
        return "done"
    last = latest_attempt(paths)
    if last is not None and last.end and last.end.get("state") == "failed":
        return "failed"
    return "pending"
