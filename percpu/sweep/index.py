"""The sweep index: every point, its parameters and its state, derived from the files.

Workers never write it: it is rebuilt from the points' result markers and claims
(claim.py) by whoever asks (the sweep command, the collect step, `percpu sweep
status`), and written as index.parquet by the sweep command and the collect step.

States: pending (not started, or its attempt was killed), running, done, failed (with
the error line), and where Slurm ended an attempt or a queued task: TIMEOUT,
OUT_OF_MEMORY, CANCELLED.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from percpu.errors import UsageError
from percpu.sweep.claim import PointPaths, read_attempt, read_result, write_json
from percpu.sweep.point import Point

STATES = ("pending", "running", "done", "failed", "TIMEOUT", "OUT_OF_MEMORY", "CANCELLED")
SWEEP_FILE = "sweep.json"
INDEX_FILE = "index.parquet"

# Given a dead attempt's owner record (or None for a point never started), the state
# Slurm left it in (TIMEOUT, OUT_OF_MEMORY, CANCELLED) or None.
SlurmState = Callable[[dict[str, Any] | None, str], str | None]


def write_sweep_file(root: Path, spec: Any, backend: str) -> None:
    data = {
        "name": spec.name, "spec": str(Path(spec.path).resolve()), "host": spec.host,
        "backend": backend, "schemes": spec.schemes, "baseline": spec.baseline,
        "report": spec.report, "axes": spec.axes, "varying": spec.varying,
        "points": [p.to_json() for p in spec.points],
    }
    write_json(root / SWEEP_FILE, data)


def read_sweep_file(root: Path) -> dict[str, Any]:
    path = root / SWEEP_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{root}: no {SWEEP_FILE} in it: give the directory a sweep wrote "
                         "(sweep.outdir of its spec)") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable ({exc}): rerun the sweep with --resume") from None
    data["points"] = [Point.from_json(p) for p in data["points"]]
    return data


def point_row(root: Path, point: Point, axes: list[str],
              slurm_state: SlurmState | None = None) -> dict[str, Any]:
    paths = PointPaths(root, point.name)
    row: dict[str, Any] = {"id": point.id, "name": point.name, "scheme": point.scheme}
    for axis in axes:
        row[axis] = point.axis_value(axis)
    state, error, job = "pending", "", None
    host_s = run_s = None
    attempts = paths.attempts()
    result = read_result(paths)
    if result is not None:
        state = "done"
        host_s = result.get("host_seconds")
        run_s = result.get("run_seconds")
        job = result.get("job")
    elif attempts:
        last = read_attempt(paths, attempts[-1])
        job = (last.owner or {}).get("job")
        if last.end and last.end.get("state") == "failed":
            state, error = "failed", str(last.end.get("error", ""))
        elif last.alive:
            state = "running"
        else:
            slurm = slurm_state(last.owner, point.id) if slurm_state else None
            if slurm:
                state, error = slurm, f"Slurm ended attempt {last.n} ({job}): {slurm}"
            else:
                where = f" ({job})" if job else ""
                error = f"attempt {last.n}{where} was interrupted"
    elif slurm_state is not None:
        state = slurm_state(None, point.id) or "pending"
    row.update(state=state, error=error, attempts=len(attempts), host_seconds=host_s,
               run_seconds=run_s, job=job,
               path=str(paths.point_dir) if state == "done" else "")
    return row


def build_index(root: Path, points: list[Point], axes: list[str],
                slurm_state: SlurmState | None = None):
    import pandas as pd

    rows = [point_row(root, p, axes, slurm_state) for p in points]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["state"] = pd.Categorical(frame["state"], categories=list(STATES))
    for col in ("host_seconds", "run_seconds"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame


def write_parquet(frame, path: Path) -> None:
    """frame as Parquet at path, atomically (a reader sees the old file or the new)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def counts(frame) -> dict[str, int]:
    if frame.empty:
        return {}
    return {k: int(v) for k, v in frame["state"].value_counts().items() if v}


def status_table(frame, axes: list[str], varying: list[str]) -> str:
    """The index as a table for a terminal: varying axes, state, seconds, error."""
    import pandas as pd

    if frame.empty:
        return "(no points)"
    cols = ["name", "scheme", *[a for a in varying if a in frame.columns], "state",
            "host_seconds", "attempts", "error"]
    view = frame[cols].copy()
    view["host_seconds"] = view["host_seconds"].map(
        lambda x: "" if pd.isna(x) else f"{x:.3f}")
    view["error"] = view["error"].str.slice(0, 80)
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 100,
                           "display.width", 250):
        return view.to_string(index=False)
