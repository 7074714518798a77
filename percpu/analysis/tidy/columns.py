"""The tidy frame's columns, and which of them are categorical."""

from __future__ import annotations

COLUMNS = [
    "run", "host", "workload", "scheme", "seed", "cpus", "pcid", "pti", "paging", "params",
    "point", "dump", "partial", "cpu", "cpu_set", "component", "stat", "bucket", "value",
    "unit", "desc", "name",
]  # fmt: skip
_CATEGORICAL = [
    "run", "host", "workload", "scheme", "params", "point", "cpu_set", "component", "stat",
    "bucket", "unit", "desc", "name",
]  # fmt: skip
