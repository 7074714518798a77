"""Turn run directories into one tidy DataFrame, and answer common questions.

A run directory holds stats.txt plus the configuration that produced it:
- engine runs: config.json written by percpu (host "engine");
- gem5 runs: gem5's own config.json and/or config.ini, and optionally a
  percpu.json beside them with percpu's keys (workload, scheme, params,
  seed, machine) that take precedence over what is derived from gem5's config.

Every stat line becomes one row of the frame:

    run, host, workload, scheme, seed, cpus, pcid, pti, paging, params, point,
    dump, partial, cpu, cpu_set, component, stat, bucket, value, unit, desc, name

cpu is the CPU index (<NA> for system-wide stats); cpu_set says which set of
cores the row came from ("cpu" for system.cpuN, "cores"/"start"/"switch" for
the stdlib's board.processor.<set>N.core, "switch_cpus" for legacy switch
CPUs, "" for per-core caches); component is the path between the CPU (or the
root object) and the stat; bucket is the part after "::" ("" for scalars);
name is the stat's full name as written, so every number traces back to a
line of stats.txt. point identifies a workload point: the same workload,
params, machine, costs and geometry, whatever the scheme and seed.

One concept per module: columns, names (stat names of either host), run_info (what a
run directory says), dataset (the tidy frame), queries, baseline (versus the baseline).
"""

from percpu.analysis.tidy.baseline import (
    mean_ci,
    summarise_vs_baseline,
    t_quantile_975,
    versus_baseline,
)
from percpu.analysis.tidy.columns import COLUMNS
from percpu.analysis.tidy.dataset import (
    Dataset,
    DumpSpan,
    load_dataset,
    load_runs,
    tidy_run,
)
from percpu.analysis.tidy.names import NameParts, normalise_name
from percpu.analysis.tidy.queries import (
    dump_delta,
    global_value,
    per_cpu_sum,
    per_cpu_table,
    pick_dump,
    run_value,
    select,
)
from percpu.analysis.tidy.run_info import RunInfo, find_run_dirs, read_run_info

__all__ = [
    "COLUMNS",
    "Dataset",
    "DumpSpan",
    "NameParts",
    "RunInfo",
    "dump_delta",
    "find_run_dirs",
    "global_value",
    "load_dataset",
    "load_runs",
    "mean_ci",
    "normalise_name",
    "per_cpu_sum",
    "per_cpu_table",
    "pick_dump",
    "read_run_info",
    "run_value",
    "select",
    "summarise_vs_baseline",
    "t_quantile_975",
    "tidy_run",
    "versus_baseline",
]
