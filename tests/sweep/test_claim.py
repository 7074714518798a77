"""Claims and commits: one attempt holds a point, a dead one is superseded, and a point
run twice still yields exactly one result."""

from __future__ import annotations

import multiprocessing
import os
import time

from percpu.sweep.claim import (
    PointPaths,
    acquire,
    commit,
    end_attempt,
    latest_attempt,
    read_result,
    this_process,
)


def _race(root, barrier, queue):
    barrier.wait()
    claim = acquire(PointPaths(root, "p"), this_process("run1"))
    queue.put(claim.status)
    time.sleep(1.0)  # stay alive while the others look


def test_concurrent_claims_give_the_point_to_one_process(tmp_path):
    ctx = multiprocessing.get_context("fork")
    n = 6
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(tmp_path, barrier, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    statuses = sorted(queue.get(timeout=30) for _ in procs)
    for p in procs:
        p.join()
    assert statuses == ["busy"] * (n - 1) + ["claimed"]
    assert PointPaths(tmp_path, "p").attempts() == [0]


def _dead_owner(run: str) -> dict:
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=os._exit, args=(0,))
    child.start()
    child.join()
    owner = this_process(run)
    owner["pid"] = child.pid  # a process that has exited
    return owner


def test_a_dead_attempt_is_superseded_and_never_looks_done(tmp_path):
    paths = PointPaths(tmp_path, "p")
    first = acquire(paths, _dead_owner("run1"))
    assert first.status == "claimed"
    (first.attempt.dir / "out" / "shared").mkdir(parents=True)  # killed mid-run
    assert read_result(paths) is None
    assert not (tmp_path / "points").exists()
    assert latest_attempt(paths).over
    second = acquire(paths, this_process("run1"))
    assert second.status == "claimed" and second.attempt.n == 1


def test_two_starts_of_a_point_commit_one_result(tmp_path):
    paths = PointPaths(tmp_path, "p")
    a = acquire(paths, _dead_owner("run1")).attempt  # looks dead: b may start too
    b = acquire(paths, this_process("run1")).attempt
    assert (a.n, b.n) == (0, 1)
    for attempt, text in ((a, "first"), (b, "second")):
        (attempt.dir / "out" / "shared").mkdir(parents=True)
        (attempt.dir / "out" / "shared" / "stats.txt").write_text(text)
    assert commit(paths, b, {"run": "run1"}) is True
    assert commit(paths, a, {"run": "run1"}) is False
    assert (paths.point_dir / "shared" / "stats.txt").read_text() == "second"
    assert read_result(paths)["attempt"] == 1
    assert not (a.dir / "out").exists()
    # A third start finds the result and runs nothing.
    assert acquire(paths, this_process("run2")).status == "done"


def test_a_truncated_marker_is_not_a_result(tmp_path):
    paths = PointPaths(tmp_path, "p")
    paths.point_dir.mkdir(parents=True)
    (paths.point_dir / "result.json").write_text('{"state": "do')
    assert read_result(paths) is None


def test_a_failure_is_final_for_its_run_and_retried_by_the_next(tmp_path):
    paths = PointPaths(tmp_path, "p")
    claim = acquire(paths, this_process("run1"))
    end_attempt(claim.attempt, "failed", "run1", error="boom")
    again = acquire(paths, this_process("run1"))
    assert again.status == "failed" and again.attempt.end["error"] == "boom"
    assert acquire(paths, this_process("run2")).status == "claimed"
