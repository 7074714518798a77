"""What a Slurm sweep left in its directory, read without Slurm: the submission records
(slurm/submissions/*.json, written by the sweep command) and what slurmstepd wrote into
the task logs. The collect step reads it (percpu.sweep.collect) and the Slurm backend
writes it (percpu.sweep.backends.slurm); it imports neither."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from percpu.sweep.claim import read_json


def submissions_dir(root: Path) -> Path:
    return root / "slurm" / "submissions"


def read_submissions(root: Path) -> list[dict[str, Any]]:
    """Every submission record of the sweep at root, in submission order."""
    subs = []
    for path in sorted(submissions_dir(root).glob("*.json")):
        data = read_json(path)
        if data is not None:
            data["file"] = str(path)
            subs.append(data)
    return sorted(subs, key=lambda s: s["seq"])


class SlurmTracker:
    """What Slurm did to a sweep's tasks, from the task logs and the cancel record (no
    sacct): the index asks it for the state of points that are not done."""

    def __init__(self, root: Path):
        self.root = root
        self.cancelled = read_json(root / "slurm" / "cancelled.json")
        self.logs: dict[str, str | None] = {}
        self.task_of: dict[str, tuple[str, float]] = {}  # point id -> (job_task, submitted)
        for sub in read_submissions(root):
            if sub["kind"] != "array" or sub["job"] is None:
                continue
            for i, task in enumerate(sub["tasks"]):
                for p in task:
                    self.task_of[p["id"]] = (f"{sub['job']}_{i}", sub["time"])

    def _log_state(self, job_task: str) -> str | None:
        if job_task not in self.logs:
            path = self.root / "slurm" / "logs" / f"{job_task}.out"
            try:
                text = path.read_text(errors="replace")
            except OSError:
                text = ""
            self.logs[job_task] = log_state(text)
        return self.logs[job_task]

    def state_of(self, owner: dict[str, Any] | None, point_id: str) -> str | None:
        if owner is not None and owner.get("job"):
            job_task, since = owner["job"], float(owner.get("time", 0))
        elif point_id in self.task_of:
            job_task, since = self.task_of[point_id]
        else:
            return None
        state = self._log_state(job_task)
        if state:
            return state
        if self.cancelled and float(self.cancelled.get("time", 0)) >= since:
            return "CANCELLED"
        return None


def log_state(text: str) -> str | None:
    """TIMEOUT, OUT_OF_MEMORY or CANCELLED from what slurmstepd wrote into a task's log
    (the last such line counts: a requeued task appends)."""
    state = None
    for line in text.splitlines():
        if "slurmstepd" not in line:
            continue
        if "DUE TO TIME LIMIT" in line:
            state = "TIMEOUT"
        elif "oom" in line.lower() or "out of memory" in line.lower():
            state = "OUT_OF_MEMORY"
        elif "CANCELLED AT" in line:
            state = "CANCELLED"
    return state
