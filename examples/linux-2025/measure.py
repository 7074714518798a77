#!/usr/bin/env python3
"""The proposal on Linux 6.1 and on Linux 6.15's rules, side by side (docs/linux-2025.md).

Runs each point under shared and percpu with machine.linux=6.1 and =6.15 (and under 6.15
each root.broadcast_fix variant), seeds 1..N, with the checker on, and prints the tables
docs/linux-2025.md quotes: overhead of percpu against shared of the same kernel (paired
by seed: mean and 95 % t interval of simTicks(percpu)/simTicks(shared) - 1), root
allocations, the root pool's peak against the proposal's bound (roots of global ASIDs
apart), flush IPIs and INVLPGBs, and the checker's violations.

    python examples/linux-2025/measure.py [--seeds 3] [--only NAME]

Every number comes from the run's stats (names in the code below); nothing is written.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

from percpu.runner import run_engine
from percpu.workloads.definition import find_workload

HERE = Path(__file__).resolve().parent
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}  # two-sided t, n - 1 dof

# (name, workload, its parameters, cpus)
POINTS = [
    ("ctxmix, 4 per CPU", "ctxmix", {}, 4),
    ("ctxmix, 7 per CPU (past the cliff)", "ctxmix", {"procs_per_cpu": 7}, 4),
    ("threads-munmap, 4 threads", "threads-munmap", {}, 4),
    ("threads-munmap, 8 threads on 8 CPUs", "threads-munmap", {"threads": 8}, 8),
    ("server-threads, 8 workers", str(HERE / "server-threads"), {}, 4),
    ("tlb-flush2, 4 threads", str(HERE / "tlb-flush2"), {}, 4),
    ("tlb-flush2, 4 threads, fresh slots", str(HERE / "tlb-flush2"), {"fresh_slot": True}, 4),
    ("cliff-mix, 6 per CPU + a 4-thread process", str(HERE / "cliff-mix"), {}, 4),
    ("cliff-mix, 5 per CPU + a 4-thread process", str(HERE / "cliff-mix"),
     {"procs_per_cpu": 5}, 4),
]
KERNELS = [("6.1", 6.1, None), ("6.15, fix 0", 6.15, 0), ("6.15, fix 1", 6.15, 1),
           ("6.15, fix 2", 6.15, 2)]


def cpu_sum(stats: dict[str, float], leaf: str) -> float:
    return sum(v for k, v in stats.items()
               if k.startswith("system.cpu") and k.split(".", 2)[2] == leaf)


def interval(xs: list[float]) -> str:
    mean = statistics.fmean(xs)
    if len(xs) < 2:
        return f"{100 * mean:+.2f} %"
    half = T95[len(xs) - 1] * statistics.stdev(xs) / math.sqrt(len(xs))
    return f"{100 * mean:+.2f} % [{100 * (mean - half):+.2f}, {100 * (mean + half):+.2f}]"


SHARED_61: dict[tuple[str, int], float] = {}  # (point, seed) -> shared's simTicks on 6.1


def measure(name: str, workload: str, params: dict, cpus: int, linux: float, fix: int | None,
            seeds: int) -> dict:
    wl = find_workload(workload)
    wl_params = wl.resolve({k: str(v) for k, v in params.items()})
    overheads, kernel, rows = [], [], []
    for seed in range(1, seeds + 1):
        overrides = {"machine.cpus": float(cpus), "machine.seed": float(seed),
                     "machine.linux": linux}
        if fix is not None:
            overrides["root.broadcast_fix"] = float(fix)
        got = {}
        for scheme in ("shared", "percpu"):
            result, _, _ = run_engine(wl, wl_params, scheme, overrides, check=True)
            got[scheme] = result
        base, per = got["shared"].stats, got["percpu"].stats
        overheads.append(per["simTicks"] / base["simTicks"] - 1)
        if linux == 6.1:
            SHARED_61[(name, seed)] = base["simTicks"]
        kernel.append(base["simTicks"] / SHARED_61[(name, seed)] - 1)
        rows.append({
            "allocs": cpu_sum(per, "percpu.rootAllocs::total"),
            "peak": per["system.percpu.rootPoolPeakBytes"] / 1024,
            "bound": per["system.percpu.rootPoolBoundBytes"] / 1024,
            "global_peak": per["system.percpu.globalRootPagesPeak"] * 4,
            "global_asids": per["system.globalAsid.assigned"],
            "ipis_shared": cpu_sum(base, "ipi.sent"),
            "ipis": cpu_sum(per, "ipi.sent"),
            "invlpgb": cpu_sum(per, "invlpgb"),
            "violations": got["percpu"].violation_count,
            "violations_shared": got["shared"].violation_count,
        })
    first = rows[0]
    return {"overhead": interval(overheads), "kernel": interval(kernel), **first,
            "violations": sum(r["violations"] for r in rows),
            "violations_shared": sum(r["violations_shared"] for r in rows)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", help="run the points whose name contains this")
    args = ap.parse_args()
    print("| point | kernel | shared vs shared on 6.1 | percpu vs shared (simTicks) | root allocs | "
          "pool peak / bound "
          "(KiB) | of it global-ASID roots (KiB) | global ASIDs | IPIs shared / percpu | "
          "INVLPGB | checker (percpu / shared) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, workload, params, cpus in POINTS:
        if args.only and args.only not in name:
            continue
        for kname, linux, fix in KERNELS:
            if fix is not None and fix != 2 and name.startswith(("ctxmix", "cliff")):
                # ctxmix: no global ASID, the fixes never act; cliff-mix: its buffers share
                # a slot with the heap and stack, so no top-level entry is freed
                continue
            r = measure(name, workload, params, cpus, linux, fix, args.seeds)
            kernel = "" if linux == 6.1 else r["kernel"]
            overhead = r["overhead"] if not r["violations"] else "(wrong: see checker)"
            print(f"| {name} | {kname} | {kernel} | {overhead} | {r['allocs']:,.0f} | "
                  f"{r['peak']:,.0f} / {r['bound']:,.0f} | {r['global_peak']:,.0f} | "
                  f"{r['global_asids']:.0f} | {r['ipis_shared']:,.0f} / {r['ipis']:,.0f} | "
                  f"{r['invlpgb']:,.0f} | {r['violations']:,} / {r['violations_shared']:,} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
