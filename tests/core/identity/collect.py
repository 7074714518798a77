"""Collects every statistic of the behaviour-identity matrix from the percpu on sys.path.

Run as a script by regenerate.py against the engine of the base revision (built
from it into a temporary directory) and imported by test_identity.py against the live
engine, so both sides produce their numbers the same way. It uses only APIs that the
base revision already had (percpu.workloads.find_workload, percpu.runner.run_engine).

The matrix: every workload definition in workloads/ at its defaults, plus every
recorded trace in workloads/traces/ replayed with a small op budget, under every
scheme, with and without PCID and with PTI off and on, with run-to-run noise off
(noise.enabled=0) where the engine has it and a root's copy charged serially
(cache.l1d.mshrs=1, cache.copy_issue_cycles=0) where the engine overlaps it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TRACE_MAX_OPS = 20000
VARIANTS = {"pcid": {"machine.pcid": 1.0, "machine.pti": 0.0},
            "pcid+pti": {"machine.pcid": 1.0, "machine.pti": 1.0},
            "nopcid": {"machine.pcid": 0.0, "machine.pti": 0.0},
            "nopcid+pti": {"machine.pcid": 0.0, "machine.pti": 1.0}}


def points(workloads_dir: Path) -> list[tuple[str, dict]]:
    """(workload name, --param overrides) for every point of the matrix."""
    from percpu.workloads import list_workloads

    out: list[tuple[str, dict]] = [(name, {}) for name in sorted(list_workloads())]
    for path in sorted((workloads_dir / "traces").glob("*.trace*")):
        out.append((f"trace:{path}", {"max_ops": str(TRACE_MAX_OPS)}))
    return out


def collect(schemes: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Every statistic of every point: {"<workload>|<scheme>|<variant>": {stat: value}}."""
    from percpu.params import core, specs
    from percpu.runner import run_engine
    from percpu.workloads import find_workload, workloads_dir

    if schemes is None:
        schemes = sorted(name for name, _ in core().scheme_names())
    # Noise (docs/noise.md) came after the base revision: the matrix runs with it off, so
    # the seed moves exactly what it moved then.
    quiet = {"noise.enabled": 0.0} if "noise.enabled" in specs() else {}
    # So did the copy's overlapped misses (cache.l1d.mshrs, issue 25): the matrix charges a
    # root's copy one access after another, as then (one register and no issue gap are
    # exactly that: tests/core/test_copy_overlap.py), so the reference pins all the rest.
    if "cache.l1d.mshrs" in specs():
        quiet.update({"cache.l1d.mshrs": 1.0, "cache.copy_issue_cycles": 0.0})
    result: dict[str, dict[str, float]] = {}
    for name, overrides in points(workloads_dir()):
        workload = find_workload(name)
        wl_params = workload.resolve(overrides)
        label = name if not name.startswith("trace:") else "trace:" + Path(name[6:]).name
        for scheme in schemes:
            for variant, machine in VARIANTS.items():
                res, _, _ = run_engine(workload, wl_params, scheme, {**machine, **quiet})
                result[f"{label}|{scheme}|{variant}"] = dict(sorted(res.stats.items()))
    return result


if __name__ == "__main__":
    json.dump(collect(), sys.stdout, indent=0, sort_keys=True)
    sys.stdout.write("\n")
