"""The local backend: N worker processes on this machine, each running points in-process.

Workers are forked from the sweep command (the engine is loaded once) and die with it
(PR_SET_PDEATHSIG), so Ctrl-C or a kill of the sweep stops every attempt; finished
points stay committed and a killed attempt is superseded by the next run (claim.py).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from pathlib import Path

from percpu.sweep.claim import PointPaths, read_result, this_process
from percpu.sweep.point import Point
from percpu.sweep.progress import Progress
from percpu.sweep.run import Outcome, run_point

PR_SET_PDEATHSIG = 1
BUSY_WAIT_S = 24 * 3600.0

_POINTS: list[Point] = []  # set before the fork: workers get point indices, not pickles
_STATE: dict[str, object] = {}


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's terminate() still applies
        pass


def _init_worker(root: str, run_id: str, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    _STATE["root"] = Path(root)
    _STATE["owner"] = this_process(run_id)


def _work(i: int) -> Outcome:
    return run_point(_STATE["root"], _POINTS[i], _STATE["owner"])


def run_local(root: Path, points: list[Point], *, jobs: int, run_id: str,
              quiet: bool = False) -> Progress:
    """Run every point of points that is not done; returns the final progress counts."""
    global _POINTS
    todo = [p for p in points if read_result(PointPaths(root, p.name)) is None]
    progress = Progress(len(points), already=len(points) - len(todo), quiet=quiet)
    if not todo:
        progress.close()
        return progress
    _POINTS = todo
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(max(1, min(jobs, len(todo))), initializer=_init_worker,
                    initargs=(str(root), run_id, os.getpid()))
    busy: list[Point] = []
    by_id = {p.id: p for p in todo}
    try:
        for outcome in pool.imap_unordered(_work, range(len(todo)), chunksize=1):
            if outcome.state == "busy":
                busy.append(by_id[outcome.id])
                continue
            progress.update(add_done=outcome.state == "done",
                            add_failed=outcome.state == "failed")
        pool.close()
        pool.join()
    except BaseException:
        pool.terminate()
        pool.join()
        raise
    # Points a live process elsewhere was running (a sweep killed and resumed while a
    # straggler finished): wait for it, run the point if it dies.
    owner = this_process(run_id)
    for point in busy:
        outcome = run_point(root, point, owner, wait_busy=BUSY_WAIT_S)
        progress.update(add_done=outcome.state == "done", add_failed=outcome.state == "failed")
    progress.close()
    return progress
