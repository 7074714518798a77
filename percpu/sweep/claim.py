"""Claiming, committing and reading one point's state: exactly one result per point.

Layout under the sweep directory, for a point named N:

    claims/N/claim.0/owner.json    who started attempt 0 (host, pid, job id, run id)
    claims/N/claim.0/heartbeat     touched every HEARTBEAT_S while the attempt runs
    claims/N/claim.0/out/          the attempt's output, assembled here
    claims/N/claim.0/end.json      how the attempt ended, unless it was killed
    points/N/<scheme>/ ...         what a single run writes ...
    points/N/result.json           ... and the result marker, written last

Only locks that work on NFS and Lustre are used (flock does not): an attempt is
claimed by renaming a fresh directory holding owner.json onto claim.<n>, which fails
when claim.<n> exists; claims are never removed, a later attempt only supersedes a
dead or failed one with claim.<n+1>. A result is committed by renaming the attempt's
out/ (result.json already in it) onto points/N, which fails when another attempt
committed first: so a point started twice yields one result, the second start finds
the first's result, and a killed attempt never leaves anything under points/.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

HEARTBEAT_S = 10.0
STALE_S = 60.0  # an attempt on another host whose heartbeat is older than this is dead
HOST = socket.gethostname()
RESULT = "result.json"


def proc_start(pid: int) -> str | None:
    """The start time of a process (clock ticks since boot), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] == "Z":  # a zombie has finished
        return None
    return fields[19]


def this_process(run: str, *, job: str | None = None, log: str | None = None) -> dict[str, Any]:
    """The owner record of an attempt started by this process."""
    pid = os.getpid()
    return {"host": HOST, "pid": pid, "start": proc_start(pid), "job": job, "log": log,
            "run": run, "time": time.time()}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write a small JSON file by rename. No fsync: a reader checks that it parses, so a
    crash can cost an attempt, never fake a result."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(data, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class PointPaths:
    root: Path  # the sweep directory
    name: str

    @property
    def point_dir(self) -> Path:
        return self.root / "points" / self.name

    @property
    def claims(self) -> Path:
        return self.root / "claims" / self.name

    def attempt(self, n: int) -> Path:
        return self.claims / f"claim.{n}"

    def attempts(self) -> list[int]:
        try:
            names = os.listdir(self.claims)
        except FileNotFoundError:
            return []
        return sorted(int(x[6:]) for x in names if x.startswith("claim.") and x[6:].isdigit())


def read_result(paths: PointPaths) -> dict[str, Any] | None:
    """The committed result marker, or None while the point is not done."""
    data = read_json(paths.point_dir / RESULT)
    return data if data is not None and data.get("state") == "done" else None


def owner_alive(owner: dict[str, Any] | None, attempt_dir: Path) -> bool:
    """Whether the process that owns an attempt may still be running it."""
    if not owner:
        return False
    if owner.get("host") == HOST:
        return proc_start(int(owner.get("pid", -1))) == owner.get("start")
    try:
        beat = (attempt_dir / "heartbeat").stat().st_mtime
    except OSError:
        beat = float(owner.get("time", 0))
    return time.time() - beat < STALE_S


@dataclass
class Attempt:
    n: int
    dir: Path
    owner: dict[str, Any] | None
    end: dict[str, Any] | None
    alive: bool

    @property
    def over(self) -> bool:
        return self.end is not None or not self.alive


def read_attempt(paths: PointPaths, n: int) -> Attempt:
    d = paths.attempt(n)
    owner = read_json(d / "owner.json")
    end = read_json(d / "end.json")
    alive = end is None and owner_alive(owner, d)
    return Attempt(n, d, owner, end, alive)


def latest_attempt(paths: PointPaths) -> Attempt | None:
    gens = paths.attempts()
    return read_attempt(paths, gens[-1]) if gens else None


@dataclass
class Claim:
    """The outcome of trying to claim a point."""

    status: str  # "claimed", "done", "busy" (a live attempt holds it), "failed" (in this run)
    attempt: Attempt | None = None
    result: dict[str, Any] | None = None


def acquire(paths: PointPaths, owner: dict[str, Any]) -> Claim:
    """Claim the point for owner unless it is done, held by a live attempt, or has
    already failed in owner's run (a failure is retried by a later run: --resume)."""
    paths.claims.mkdir(parents=True, exist_ok=True)
    fresh = paths.claims / f".new.{uuid.uuid4().hex}"
    fresh.mkdir()
    try:
        write_json(fresh / "owner.json", owner)
        (fresh / "heartbeat").touch()
        for _ in range(1000):
            result = read_result(paths)
            if result is not None:
                return Claim("done", result=result)
            last = latest_attempt(paths)
            if last is not None and not last.over:
                return Claim("busy", attempt=last)
            if (last is not None and last.end and last.end.get("state") == "failed"
                    and last.end.get("run") == owner["run"]):
                return Claim("failed", attempt=last)
            n = last.n + 1 if last is not None else 0
            try:
                os.rename(fresh, paths.attempt(n))
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    continue  # another process took claim.n first: look again
                raise
            # A dead attempt may have committed just before we looked: then we are done.
            result = read_result(paths)
            attempt = Attempt(n, paths.attempt(n), owner, None, True)
            if result is not None:
                end_attempt(attempt, "skipped", owner["run"], error="already done")
                return Claim("done", result=result)
            return Claim("claimed", attempt=attempt)
        raise RuntimeError(f"could not claim {paths.name}: too many concurrent claims")
    finally:
        if fresh.exists():
            shutil.rmtree(fresh, ignore_errors=True)


def end_attempt(attempt: Attempt, state: str, run: str, **info: Any) -> None:
    write_json(attempt.dir / "end.json", {"state": state, "run": run, "time": time.time(),
                                          **info})


def commit(paths: PointPaths, attempt: Attempt, marker: dict[str, Any]) -> bool:
    """Publish attempt/out as points/<name> with the marker written last. False if
    another attempt committed first (its result stands; ours is discarded)."""
    out = attempt.dir / "out"
    write_json(out / RESULT, {**marker, "state": "done", "attempt": attempt.n})
    paths.point_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(out, paths.point_dir)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
        shutil.rmtree(out, ignore_errors=True)
        end_attempt(attempt, "duplicate", marker.get("run", ""),
                    error="another attempt committed first")
        return False
    end_attempt(attempt, "done", marker.get("run", ""))
    return True


class Heartbeat:
    """Touches attempt/heartbeat every HEARTBEAT_S while the attempt runs (the engine
    releases the GIL, so this thread runs during a long simulation)."""

    def __init__(self, attempt: Attempt):
        self.path = attempt.dir / "heartbeat"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except OSError:
                return

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
