"""Run directories to one tidy DataFrame (a Dataset): every stat line of every dump one row."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from percpu.analysis.stats_txt import Dump, parse_stats_txt
from percpu.analysis.tidy.columns import _CATEGORICAL, COLUMNS
from percpu.analysis.tidy.names import normalise_name
from percpu.analysis.tidy.run_info import RunInfo, find_run_dirs, read_run_info

# ---------------------------------------------------------------------------
# The tidy frame


@dataclass(frozen=True)
class DumpSpan:
    """Where a dump block sits in its stats.txt (end_line None: truncated)."""

    index: int
    begin_line: int
    end_line: int | None
    partial: bool


@dataclass
class Dataset:
    """The tidy frame plus, per run, its RunInfo and dump blocks."""

    frame: pd.DataFrame
    runs: dict[str, RunInfo]
    dumps: dict[str, list[DumpSpan]]
    warnings: list[str] = field(default_factory=list)

    def runs_frame(self) -> pd.DataFrame:
        """One row per run: its metadata, indexed by run."""
        rows = []
        for info in self.runs.values():
            rows.append(
                {
                    "run": info.run,
                    "host": info.host,
                    "workload": info.workload,
                    "scheme": info.scheme,
                    "seed": info.seed,
                    "cpus": info.machine.get("cpus"),
                    "pcid": info.machine.get("pcid"),
                    "pti": info.machine.get("pti"),
                    "paging": info.machine.get("paging"),
                    "freq_ghz": info.machine.get("freq_ghz"),
                    "params": info.params_str,
                    "point": info.point,
                    **{f"param.{k}": v for k, v in info.params.items()},
                }
            )
        frame = pd.DataFrame(rows)
        if frame.empty:
            return frame
        for col in ("seed", "cpus", "paging"):
            frame[col] = pd.array(frame[col].tolist(), dtype="Int64")
        for col in ("pcid", "pti"):
            frame[col] = pd.array(frame[col].tolist(), dtype="boolean")
        return frame.set_index("run", drop=False)


def tidy_run(info: RunInfo, dumps: Sequence[Dump]) -> pd.DataFrame:
    """The tidy rows of one run (see the module docstring for the columns)."""
    cols: dict[str, list[Any]] = {c: [] for c in ("dump", "partial", "cpu", "cpu_set",
                                                  "component", "stat", "bucket", "value",
                                                  "unit", "desc", "name")}  # fmt: skip
    for dump in dumps:
        for s in dump.stats:
            parts = normalise_name(s.name)
            cols["dump"].append(dump.index)
            cols["partial"].append(dump.partial)
            cols["cpu"].append(parts.cpu)
            cols["cpu_set"].append(parts.cpu_set)
            cols["component"].append(parts.component)
            cols["stat"].append(parts.stat)
            cols["bucket"].append(parts.bucket)
            cols["value"].append(float(s.value))
            cols["unit"].append(s.unit)
            cols["desc"].append(s.desc)
            cols["name"].append(s.name)
    n = len(cols["dump"])
    frame = pd.DataFrame(
        {
            "run": [info.run] * n,
            "host": [info.host] * n,
            "workload": [info.workload] * n,
            "scheme": [info.scheme] * n,
            "seed": pd.array([info.seed] * n, dtype="Int64"),
            "cpus": pd.array([info.machine.get("cpus")] * n, dtype="Int64"),
            "pcid": pd.array([info.machine.get("pcid")] * n, dtype="boolean"),
            "pti": pd.array([info.machine.get("pti")] * n, dtype="boolean"),
            "paging": pd.array([info.machine.get("paging")] * n, dtype="Int64"),
            "params": [info.params_str] * n,
            "point": [info.point] * n,
            "dump": pd.array(cols["dump"], dtype="int64"),
            "partial": pd.array(cols["partial"], dtype="bool"),
            "cpu": pd.array(cols["cpu"], dtype="Int64"),
            "cpu_set": cols["cpu_set"],
            "component": cols["component"],
            "stat": cols["stat"],
            "bucket": cols["bucket"],
            "value": pd.array(cols["value"], dtype="float64"),
            "unit": cols["unit"],
            "desc": cols["desc"],
            "name": cols["name"],
        },
        columns=COLUMNS,
    )
    return frame


def load_dataset(dirs: Iterable[str | os.PathLike[str]], *, allow_partial: bool = False,
                 skip: Iterable[str | os.PathLike[str]] = ()) -> Dataset:
    """Parse every run under dirs into a Dataset.

    Raises UsageError (StatsFormatError for stats.txt) on the first bad file.
    With allow_partial, a truncated last block is kept, flagged partial=True
    in the frame, and named in Dataset.warnings.
    """
    frames: list[pd.DataFrame] = []
    runs: dict[str, RunInfo] = {}
    spans: dict[str, list[DumpSpan]] = {}
    warnings: list[str] = []
    skipped = {Path(s).resolve() for s in skip}
    inputs = []
    for d in dirs:
        here = Path(d).resolve()
        if here in skipped or skipped & set(here.parents):
            warnings.append(f"{d}: skipped, the report's own output directory")
        else:
            inputs.append(d)
    for d in find_run_dirs(inputs, warnings):
        info = read_run_info(d)
        dumps = parse_stats_txt(info.stats_path, allow_partial=allow_partial)
        if not dumps:
            warnings.append(f"{info.stats_path}: no dump blocks (the run never dumped stats)")
        for dump in dumps:
            if dump.partial:
                warnings.append(
                    f"{info.stats_path}:{dump.begin_line}: dump {dump.index} has no End banner "
                    f"(truncated); its {len(dump)} complete lines are flagged partial and "
                    f"not used in tables"
                )
        runs[info.run] = info
        spans[info.run] = [DumpSpan(x.index, x.begin_line, x.end_line, x.partial) for x in dumps]
        frames.append(tidy_run(info, dumps))
    frame = pd.concat(frames, ignore_index=True) if frames else tidy_run(_EMPTY_INFO, [])
    for col in _CATEGORICAL:
        frame[col] = frame[col].astype("category")
    return Dataset(frame, runs, spans, warnings)


_EMPTY_INFO = RunInfo("", Path("."), Path("stats.txt"), "", "", "", None, {}, {})


def load_runs(
    dirs: Iterable[str | os.PathLike[str]], *, allow_partial: bool = False
) -> pd.DataFrame:
    """The tidy frame of every run under dirs (load_dataset(...).frame)."""
    return load_dataset(dirs, allow_partial=allow_partial).frame
