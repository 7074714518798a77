"""The Slurm backend: job arrays through sbatch, tracked with squeue and the points' own
result markers (many clusters run without accounting, where sacct fails with "Slurm
accounting storage is disabled"), and a collect job that depends on the arrays.

Under the sweep directory:

    slurm/task.sh, collect.sh      the batch scripts
    slurm/submissions/<k>.json     one per sbatch: its points per array task, job id
    slurm/logs/<job>_<task>.out    each array task's output (append: a requeued or
                                   twice-started task adds to it)
    slurm/cancelled.json           written by `percpu sweep cancel`

An array has at most MaxArraySize - 1 tasks (scontrol show config) and runs
points_per_task points per task, at most `throttle` at once (--array=0-N%throttle).
--resume (also after the submitting process died) releases tasks Slurm left held,
resubmits the points no queued or running task will run, and submits a new collect job.

One concept, one file, a little over 500 lines: submitting, tracking, resuming and
cancelling are one protocol over the same files and Slurm's answers, read together.
"""

from __future__ import annotations

import math
import re
import shlex
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from percpu.errors import UsageError
from percpu.sweep.backends.slurm_state import read_submissions, submissions_dir
from percpu.sweep.claim import PointPaths, read_result, write_json
from percpu.sweep.collect import finish
from percpu.sweep.point import Point
from percpu.sweep.progress import Progress

POLL_S = 1.0
ENGINE_TASKS = 64  # engine points are short: aim for about this many array tasks
MAX_POINTS_PER_TASK = 200
DEFAULT_MAX_ARRAY = 1001  # Slurm's default MaxArraySize
SQUEUE_TIMEOUT_S = 30
COLLECT_WAIT_S = 3600.0
STALL_WARN_S = 60.0
NEEDLESS_CHECK_S = 5.0


@dataclass
class SlurmOptions:
    partition: str | None = None
    time: str | None = None
    mem: str | None = None
    account: str | None = None
    qos: str | None = None
    throttle: int | None = None
    points_per_task: int | None = None
    sbatch_options: list[str] = field(default_factory=list)
    host: str = "engine"

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, host: str) -> SlurmOptions:
        opts = cls(host=host)
        for key in ("partition", "time", "mem", "account", "qos"):
            if data.get(key) is not None:
                if not isinstance(data[key], str | int) or isinstance(data[key], bool):
                    raise UsageError(f"slurm.{key}: expected a string, got {data[key]!r}")
                setattr(opts, key, str(data[key]))
        for key in ("throttle", "points_per_task"):
            value = data.get(key)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise UsageError(f"slurm.{key} (--{key.replace('_', '-')}): expected a "
                                     f"positive integer, got {value!r}")
                setattr(opts, key, value)
        extra = data.get("sbatch_options", [])
        if not isinstance(extra, list) or not all(isinstance(x, str) for x in extra):
            raise UsageError("slurm.sbatch_options: expected a list of strings "
                             '(["--exclusive", "--constraint=skylake"])')
        opts.sbatch_options = list(extra)
        return opts

    def per_task(self, n: int) -> int:
        if self.points_per_task:
            return self.points_per_task
        if self.host != "engine":
            return 1  # a gem5 point runs for minutes to hours
        return max(1, min(MAX_POINTS_PER_TASK, math.ceil(n / ENGINE_TASKS)))

    def no_begin(self) -> bool:
        """No --begin among the user's options: a begin time on a task is Slurm's."""
        return not any(o.startswith("--begin") for o in self.sbatch_options)

    def sbatch_args(self) -> list[str]:
        args = []
        for key in ("partition", "time", "mem", "account", "qos"):
            value = getattr(self, key)
            if value is not None:
                args.append(f"--{key}={value}")
        return [*args, *self.sbatch_options]

    def describe(self, n: int, max_array: int | None = None) -> str:
        per = self.per_task(n)
        tasks = math.ceil(n / per) if n else 0
        max_array = max_array or DEFAULT_MAX_ARRAY
        arrays = math.ceil(tasks / (max_array - 1)) if tasks else 0
        throttle = f", at most {self.throttle} at once" if self.throttle else ""
        return (f"{tasks} array tasks of {per} points in {arrays} job arrays{throttle}; "
                f"sbatch {' '.join(self.sbatch_args()) or '(no extra options)'}")


def _run(cmd: list[str], timeout: float = SQUEUE_TIMEOUT_S) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(cmd, 255, "", str(exc))


def max_array_size() -> int:
    out = _run(["scontrol", "show", "config"])
    m = re.search(r"^MaxArraySize\s*=\s*(\d+)", out.stdout, re.MULTILINE)
    return int(m.group(1)) if m else DEFAULT_MAX_ARRAY


@dataclass
class QueuedTask:
    job: str  # "<array job>_<task>" or "<job>" for the collect job
    state: str
    reason: str
    name: str = ""  # the job name: a submission's unique token


def squeue(job_ids: list[str]) -> dict[str, QueuedTask] | None:
    """Every queued or running task of these jobs, None when squeue fails (slurmctld
    down). A job that left the queue is absent."""
    if not job_ids:
        return {}
    out = _run(["squeue", "-h", "-r", "-j", ",".join(job_ids), "-o", "%i|%T|%r|%j"])
    if out.returncode != 0:
        # squeue rejects a job id it has already forgotten: ask for each one alone.
        if "Invalid job id" in out.stderr and len(job_ids) > 1:
            found: dict[str, QueuedTask] = {}
            for j in job_ids:
                one = squeue([j])
                if one is None:
                    return None
                found.update(one)
            return found
        if "Invalid job id" in out.stderr:
            return {}
        return None
    tasks = {}
    for line in out.stdout.splitlines():
        parts = line.strip().split("|", 3)
        if len(parts) == 4:
            tasks[parts[0]] = QueuedTask(*parts)
    return tasks


def _held(task: QueuedTask) -> bool:
    return task.state == "PENDING" and ("Held" in task.reason or "held" in task.reason
                                        or task.reason == "JobHeldAdmin")


class Submissions:
    """slurm/submissions/*.json: what was submitted, written only by the sweep command."""

    def __init__(self, root: Path):
        self.root = root
        self.dir = submissions_dir(root)

    def all(self) -> list[dict[str, Any]]:
        return read_submissions(self.root)

    def new(self, kind: str, run: str, **data: Any) -> dict[str, Any]:
        self.dir.mkdir(parents=True, exist_ok=True)
        seq = max((s["seq"] for s in self.all()), default=-1) + 1
        sub = {"seq": seq, "kind": kind, "run": run, "root": str(self.root.resolve()),
               "token": f"percpu-sweep-{uuid.uuid4().hex[:12]}", "job": None,
               "time": time.time(), **data}
        path = self.dir / f"{seq:05d}.json"
        write_json(path, sub)
        sub["file"] = str(path)
        return sub

    def save(self, sub: dict[str, Any]) -> None:
        write_json(Path(sub["file"]), {k: v for k, v in sub.items() if k != "file"})

    def recover_job_ids(self) -> None:
        """A submission whose sbatch answer was lost (the sweep was killed right after
        submitting) is found again by its unique job name."""
        for sub in self.all():
            if sub["job"] is None:
                out = _run(["squeue", "-h", "-n", sub["token"], "-o", "%F"])
                ids = sorted({x.strip() for x in out.stdout.split() if x.strip()})
                if out.returncode == 0 and ids:
                    sub["job"] = ids[0]
                    self.save(sub)


def _scripts(root: Path) -> tuple[Path, Path]:
    d = root / "slurm"
    (d / "logs").mkdir(parents=True, exist_ok=True)
    py = shlex.quote(sys.executable)
    task = d / "task.sh"
    task.write_text("#!/bin/sh\n# One array task of a percpu sweep (percpu/sweep/task.py).\n"
                    f"exec {py} -m percpu.sweep.task \"$1\"\n")
    collect = d / "collect.sh"
    collect.write_text("#!/bin/sh\n# The collect step of a percpu sweep: index, tidy table, "
                       "report.\n"
                       f"exec {py} -m percpu.sweep.collect \"$1\"\n")
    for script in (task, collect):
        script.chmod(0o755)
    return task, collect


def _sbatch(args: list[str]) -> str:
    out = _run(["sbatch", "--parsable", *args], timeout=120)
    if out.returncode != 0:
        line = (out.stderr.strip().splitlines() or ["sbatch failed"])[-1]
        raise UsageError(f"sbatch refused the sweep: {line}")
    return out.stdout.strip().split(";")[0]


def submit_points(root: Path, points: list[Point], opts: SlurmOptions, run: str,
                  depend_on: list[str]) -> list[str]:
    """Submit points as job arrays, then the collect job after those arrays and
    depend_on. Returns the new job ids (arrays first, collect last)."""
    subs = Submissions(root)
    task_sh, collect_sh = _scripts(root)
    logs = root.resolve() / "slurm" / "logs"
    jobs: list[str] = []
    if points:
        per = opts.per_task(len(points))
        tasks = [points[i:i + per] for i in range(0, len(points), per)]
        limit = max(1, max_array_size() - 1)
        for start in range(0, len(tasks), limit):
            chunk = tasks[start:start + limit]
            sub = subs.new("array", run, tasks=[[p.to_json() for p in t] for t in chunk])
            array = f"0-{len(chunk) - 1}" + (f"%{opts.throttle}" if opts.throttle else "")
            job = _sbatch([f"--array={array}", f"--job-name={sub['token']}",
                           f"--output={logs}/%A_%a.out", "--open-mode=append",
                           *opts.sbatch_args(), str(task_sh), sub["file"]])
            sub["job"] = job
            subs.save(sub)
            jobs.append(job)
    after = [*depend_on, *jobs]
    sub = subs.new("collect", run, after=after)
    collect_args = [f"--job-name={sub['token']}", f"--output={logs}/collect-%j.out",
                    "--open-mode=append"]
    if after:
        collect_args.append("--dependency=afterany:" + ":".join(after))
    for key in ("partition", "account", "qos"):
        if getattr(opts, key):
            collect_args.append(f"--{key}={getattr(opts, key)}")
    job = _sbatch([*collect_args, str(collect_sh), str(root.resolve())])
    sub["job"] = job
    subs.save(sub)
    return [*jobs, job]


def _all_jobs(subs: list[dict[str, Any]]) -> list[str]:
    return [s["job"] for s in subs if s["job"]]


def cancel_needless(root: Path, queued: dict[str, QueuedTask]) -> list[str]:
    """Cancel pending tasks whose points are all done (a task Slurm requeued after running
    it, which would wait out a begin time only to find its results)."""
    needless = []
    for sub in Submissions(root).all():
        if sub["kind"] != "array" or not sub["job"]:
            continue
        for i, task in enumerate(sub["tasks"]):
            q = queued.get(f"{sub['job']}_{i}")
            if (q is not None and q.state == "PENDING" and q.name == sub["token"]
                    and all(read_result(PointPaths(root, p["name"])) for p in task)):
                needless.append(q.job)
    if needless:
        _run(["scancel", *needless])
    return needless


def release_held(queued: dict[str, QueuedTask], *, delayed_ok: bool = True) -> list[str]:
    """Release tasks Slurm requeued held (a slurmctld restart that found them running
    twice), and start now those it requeued with a begin time (about CredExpire, 2
    minutes, after a requeue): the sweep never asks for a begin time itself."""
    held = [t.job for t in queued.values() if _held(t)]
    if held:
        _run(["scontrol", "release", ",".join(held)])
    delayed = [t.job for t in queued.values() if t.state == "PENDING" and t.reason == "BeginTime"]
    if delayed and delayed_ok:
        for job in delayed:
            _run(["scontrol", "update", f"jobid={job}", "starttime=now"])
    return held + (delayed if delayed_ok else [])


def submit_and_track(root: Path, spec: Any, opts: SlurmOptions, *, run_id: str, resume: bool,
                     wait: bool, quiet: bool) -> int:
    subs = Submissions(root)
    echo = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    live: dict[str, QueuedTask] = {}
    if resume:
        subs.recover_job_ids()
        queued = squeue(_all_jobs(subs.all()))
        if queued is None:
            raise UsageError("squeue failed (is slurmctld up?): --resume needs it to know "
                             "which tasks are still queued; retry when it answers")
        held = release_held(queued, delayed_ok=opts.no_begin())
        if held:
            echo(f"sweep: released {len(held)} held or delayed tasks: {', '.join(held)}")
        for job in cancel_needless(root, queued):
            queued.pop(job, None)
        live = queued
        # Old collect jobs would wait for arrays that may never end: the new one replaces them.
        old_collect = [s["job"] for s in subs.all() if s["kind"] == "collect" and s["job"]
                       and any(j.split("_")[0] == s["job"] for j in queued)]
        if old_collect:
            _run(["scancel", *old_collect])
        for j in old_collect:
            live.pop(j, None)
    covered: set[str] = set()
    live_arrays: set[str] = set()
    for sub in subs.all():
        if sub["kind"] != "array" or not sub["job"]:
            continue
        # A slurmctld that lost its state hands out old job ids again: a queued task
        # belongs to a submission only if it carries the submission's name.
        mine = {k: t for k, t in live.items() if t.name == sub["token"]}
        for i, task in enumerate(sub["tasks"]):
            if f"{sub['job']}_{i}" in mine:
                covered.update(p["id"] for p in task)
                live_arrays.add(sub["job"])
        # squeue -r lists a throttled or not yet split pending array as JOB_[a-b]%N.
        for name in mine:
            m = re.fullmatch(rf"{re.escape(str(sub['job']))}_\[(.+?)\](%\d+)?", name)
            if m:
                for i in _expand_range(m.group(1)):
                    if i < len(sub["tasks"]):
                        covered.update(p["id"] for p in sub["tasks"][i])
                live_arrays.add(sub["job"])
    todo = [p for p in spec.points
            if p.id not in covered and read_result(PointPaths(root, p.name)) is None]
    if not todo and not live_arrays:
        echo("sweep: no point left to run on Slurm; collecting")
        return finish(root, quiet)
    jobs = submit_points(root, todo, opts, run_id, depend_on=sorted(live_arrays))
    if todo:
        echo(f"sweep: submitted {len(todo)} points as job arrays {', '.join(jobs[:-1])} "
             f"({opts.describe(len(todo))}); collect job {jobs[-1]}")
    else:
        echo(f"sweep: {len(covered)} points still queued or running in "
             f"{', '.join(sorted(live_arrays))}; collect job {jobs[-1]}")
    echo(f"sweep: logs in {root / 'slurm' / 'logs'}; percpu sweep status {root}; "
         f"percpu sweep cancel {root}")
    if not wait:
        return 0
    return track(root, spec.points, [*sorted(live_arrays), *jobs], quiet=quiet,
                 delayed_ok=opts.no_begin())


def _expand_range(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part.isdigit():
            out.append(int(part))
    return out


def track(root: Path, points: list[Point], jobs: list[str], *, quiet: bool,
          delayed_ok: bool = True) -> int:
    """Wait until no task of jobs is queued or running, showing progress; release tasks
    Slurm holds; then wait for the collect job and summarise."""
    collect_job = jobs[-1]
    arrays = jobs[:-1]
    done_before = sum(read_result(PointPaths(root, p.name)) is not None for p in points)
    progress = Progress(len(points), already=done_before, quiet=quiet)
    warned = False
    stalled_since = time.monotonic()
    last_done = -1
    last_sweep_check = 0.0
    while True:
        queued = squeue(jobs)
        done = sum(read_result(PointPaths(root, p.name)) is not None for p in points)
        progress.update(done=done - done_before)
        if queued is None:
            if not warned and not quiet:
                click.echo("\nsweep: squeue failed (slurmctld down?); still waiting",
                           err=True)
            warned = True
            time.sleep(POLL_S)
            continue
        warned = False
        release_held(queued, delayed_ok=delayed_ok)
        if time.monotonic() - last_sweep_check > NEEDLESS_CHECK_S:
            last_sweep_check = time.monotonic()
            for job in cancel_needless(root, queued):
                queued.pop(job, None)
        if not any(j.split("_")[0] in arrays for j in queued):
            break
        if done != last_done:
            last_done, stalled_since = done, time.monotonic()
        elif time.monotonic() - stalled_since > STALL_WARN_S and not quiet:
            drained = _drained_nodes()
            if drained:
                click.echo(f"\nsweep: no progress for {STALL_WARN_S:.0f} s; drained nodes: "
                           f"{drained} (an admin returns them: scontrol update nodename=NODE "
                           "state=resume)", err=True)
            stalled_since = time.monotonic()
        time.sleep(POLL_S)
    progress.close()
    deadline = time.monotonic() + COLLECT_WAIT_S
    while time.monotonic() < deadline:
        queued = squeue([collect_job])
        if queued is not None and not queued:
            break
        if queued:
            release_held(queued, delayed_ok=delayed_ok)
            if any("DependencyNeverSatisfied" in t.reason for t in queued.values()):
                _run(["scancel", collect_job])  # an array it waited for was lost
                break
        time.sleep(POLL_S)
    log = root / "slurm" / "logs" / f"collect-{collect_job}.out"
    text = log.read_text(errors="replace") if log.exists() else ""
    collected = "percpu sweep collect:" in text
    if not collected and not quiet:
        click.echo(f"sweep: the collect job {collect_job} wrote no summary (see {log}); "
                   "collecting here", err=True)
    return finish(root, quiet, tables=not collected)


def _drained_nodes() -> str:
    out = _run(["sinfo", "-h", "-N", "-o", "%N %T %E"])
    rows = [x for x in out.stdout.splitlines() if "drain" in x]
    return "; ".join(sorted(set(rows)))


def cancel(root: Path) -> str:
    subs = Submissions(root)
    subs.recover_job_ids()
    jobs = _all_jobs(subs.all())
    queued = squeue(jobs)
    write_json(root / "slurm" / "cancelled.json", {"time": time.time(), "jobs": jobs})
    live = sorted({j.split("_")[0] for j in (queued or {})} if queued is not None else jobs)
    if not live:
        return f"nothing queued or running for {root}"
    out = _run(["scancel", *live])
    if out.returncode != 0:
        raise UsageError(f"scancel failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
    return (f"cancelled Slurm jobs {', '.join(live)}; finished points are kept: "
            f"percpu sweep SPEC --resume reruns the rest")
