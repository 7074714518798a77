"""Workload definitions (workloads/<name>/workload.toml) and their renderings."""

from percpu.workloads.definition import Workload, find_workload, list_workloads, workloads_dir

__all__ = ["Workload", "find_workload", "list_workloads", "workloads_dir"]
