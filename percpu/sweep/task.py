"""One Slurm array task: `python -m percpu.sweep.task SUBMISSION.json` runs its points.

The submission file (written before sbatch, never changed after) lists each task's
points in full, so a task needs nothing else. Points are run exactly as the local
backend runs them (run.py); a point that another start of this task already holds is
waited for, which is how a task Slurm started twice (a slurmctld crash) ends with one
result per point. A SIGTERM (scancel, the time limit) kills the task: its attempt is
superseded later, and the task's log says why (slurm.py reads it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from percpu.sweep.claim import read_json, this_process
from percpu.sweep.point import Point
from percpu.sweep.run import run_point

TWIN_WAIT_S = 7 * 24 * 3600.0  # the task's time limit ends the wait


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or "SLURM_ARRAY_TASK_ID" not in os.environ:
        print("usage: python -m percpu.sweep.task SUBMISSION.json (inside a Slurm array task)",
              file=sys.stderr)
        return 2
    submission = read_json(Path(args[0]))
    if submission is None:
        print(f"percpu sweep task: cannot read {args[0]}", file=sys.stderr)
        return 2
    index = int(os.environ["SLURM_ARRAY_TASK_ID"])
    job = f"{os.environ.get('SLURM_ARRAY_JOB_ID', '?')}_{index}"
    root = Path(submission["root"])
    log = root / "slurm" / "logs" / f"{job}.out"
    owner = this_process(submission["run"], job=job, log=str(log))
    failed = 0
    for data in submission["tasks"][index]:
        point = Point.from_json(data)
        outcome = run_point(root, point, owner, wait_busy=TWIN_WAIT_S)
        how = "ran" if outcome.ran else "found"
        extra = f": {outcome.error}" if outcome.error else ""
        print(f"{point.name}: {how} {outcome.state} ({outcome.host_seconds:.3f} s){extra}",
              flush=True)
        failed += outcome.state != "done"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
