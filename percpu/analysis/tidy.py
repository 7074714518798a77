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
"""

from __future__ import annotations

import configparser
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from percpu.analysis.stats_txt import Dump, parse_stats_txt
from percpu.errors import UsageError

__all__ = [
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

COLUMNS = [
    "run", "host", "workload", "scheme", "seed", "cpus", "pcid", "pti", "paging", "params",
    "point", "dump", "partial", "cpu", "cpu_set", "component", "stat", "bucket", "value",
    "unit", "desc", "name",
]  # fmt: skip
_CATEGORICAL = [
    "run", "host", "workload", "scheme", "params", "point", "cpu_set", "component", "stat",
    "bucket", "unit", "desc", "name",
]  # fmt: skip

# ---------------------------------------------------------------------------
# Names


@dataclass(frozen=True)
class NameParts:
    """A stat name split into the tidy columns; pattern has the CPU index as '*'."""

    cpu: int | None
    cpu_set: str
    component: str
    stat: str
    bucket: str
    pattern: str


# Each rule: a regex matched at the start of the name (before "::") whose
# groups "set" and "idx" locate the CPU. Order matters: first match wins.
_STDLIB_CORE = re.compile(r"board\.processor\.(?P<set>[A-Za-z_]+?)(?P<idx>\d*)\.core(?=\.)")
_LEGACY_CPU = re.compile(r"(?:system|board)\.(?P<set>(?:[A-Za-z]+_)*cpus?)(?P<idx>\d*)(?=\.)")
# gem5 v24 PrivateL1PrivateL2CacheHierarchy names its per-core caches
# l1d-cache-N / l1i-cache-N / l2-cache-N; older hierarchies use lists
# (l1dcaches0, iptw_caches0, l2buses0). Unindexed names are shared or ambiguous.
_STDLIB_CACHE = re.compile(
    r"board\.cache_hierarchy\.(?P<set>l1d-cache-|l1i-cache-|l2-cache-|l1dcaches|l1icaches|"
    r"l2caches|iptw_caches|dptw_caches|l2buses|mmucaches)(?P<idx>\d+)(?=\.)"
)
_RUBY_L1 = re.compile(
    r"(?:board\.cache_hierarchy\.ruby_system\.(?P<set>l1_controllers)"
    r"|system\.ruby\.(?P<set2>l1_cntrl))(?P<idx>\d+)(?=\.)"
)
_CACHE_COMPONENT = {
    "l1d-cache-": "l1d", "l1i-cache-": "l1i", "l2-cache-": "l2", "l1dcaches": "l1d",
    "l1icaches": "l1i", "l2caches": "l2", "iptw_caches": "iptw", "dptw_caches": "dptw",
    "l2buses": "l2bus", "mmucaches": "mmu_cache",
}  # fmt: skip
_ROOTS = ("system", "board")


# Crossbar stats name a port path inside the stat ("pktCount_board.cache_hierarchy.
# l1d-cache-0.mem_side_port"): the stat starts at the segment that embeds a root.
_EMBEDDED_PATH = re.compile(r"\.(?=pkt(?:Count|Size)_(?:board|system)\.)")


@lru_cache(maxsize=1 << 16)
def normalise_name(name: str) -> NameParts:
    """Split a stat name into cpu, cpu_set, component, stat and bucket.

    Understands the engine's and legacy configs' system.cpuN / system.cpu
    (one CPU, no index) / system.switch_cpusN, the stdlib's
    board.processor.coresN.core / cores.core / startN.core / switchN.core,
    stdlib per-core caches (board.cache_hierarchy.l1d-cache-N, l1dcachesN, ...)
    and Ruby L1 controllers. Anything else is system-wide: cpu None and the
    component is the path below the root object. Never raises.
    """
    base, _, bucket = name.partition("::")
    embedded = _EMBEDDED_PATH.search(base)
    if embedded is not None:
        prefix, stat = base[: embedded.start()], base[embedded.end() :]
    else:
        prefix, _, stat = base.rpartition(".")
    dotted = prefix + "."
    for rx in (_STDLIB_CORE, _LEGACY_CPU, _STDLIB_CACHE, _RUBY_L1):
        m = rx.match(dotted)
        if m is None:
            continue
        idx = m["idx"]
        cpu = int(idx) if idx else 0
        pattern = name[: m.start("idx")] + "*" + name[m.end("idx") :] if idx else name
        component = prefix[m.end() + 1 :]
        if rx is _STDLIB_CACHE:
            component = _join(_CACHE_COMPONENT[m["set"]], component)
            return NameParts(cpu, "", component, stat, bucket, pattern)
        if rx is _RUBY_L1:
            component = _join(m["set"] or m["set2"], component)
            return NameParts(cpu, "", component, stat, bucket, pattern)
        return NameParts(cpu, m["set"], component, stat, bucket, pattern)
    parts = prefix.split(".") if prefix else []
    if parts and parts[0] in _ROOTS:
        parts = parts[1:]
    return NameParts(None, "", ".".join(parts), stat, bucket, name)


def _join(head: str, tail: str) -> str:
    return f"{head}.{tail}" if tail else head


# ---------------------------------------------------------------------------
# Run directories


@dataclass
class RunInfo:
    """What a run was: where its files are and the parameters it ran with."""

    run: str
    path: Path
    stats_path: Path
    host: str
    workload: str
    scheme: str
    seed: int | None
    params: dict[str, Any]
    machine: dict[str, Any]
    costs: dict[str, Any] = field(default_factory=dict)
    geometry: dict[str, Any] = field(default_factory=dict)
    config_files: tuple[str, ...] = ()

    @property
    def params_str(self) -> str:
        return ",".join(f"{k}={_fmt_param(v)}" for k, v in sorted(self.params.items()))

    @property
    def point(self) -> str:
        """Identity of the workload point: everything but scheme and seed."""
        key = {
            "workload": self.workload,
            "params": self.params,
            "machine": self.machine,
            "costs": self.costs,
            "geometry": self.geometry,
        }
        return json.dumps(key, sort_keys=True, default=str, separators=(",", ":"))


def _fmt_param(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def find_run_dirs(dirs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Run directories under dirs: each dir that holds stats.txt, or every one below it."""
    found: list[Path] = []
    for d in dirs:
        p = Path(d)
        if not p.exists():
            raise UsageError(
                f"{p}: expected a run directory or a directory of runs, got no such path"
            )
        if p.is_file():
            if p.name == "stats.txt":
                found.append(p.parent)
                continue
            raise UsageError(f"{p}: expected a directory holding stats.txt, got a file")
        if (p / "stats.txt").is_file():
            found.append(p)
            continue
        below = sorted({s.parent for s in p.rglob("stats.txt") if s.is_file()})
        if not below:
            raise UsageError(f"{p}: expected stats.txt in it or in a directory below it, got none")
        found.extend(below)
    unique: dict[Path, None] = {}
    for p in found:
        unique.setdefault(p.resolve(), None)
    return [Path(os.path.relpath(p)) if _is_below_cwd(p) else p for p in unique]


def _is_below_cwd(p: Path) -> bool:
    try:
        p.relative_to(Path.cwd())
    except ValueError:
        return False
    return True


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: expected JSON, got {exc.msg}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: expected UTF-8 JSON, got undecodable bytes") from None


def _expect(cfg: dict[str, Any], key: str, kind: type | tuple[type, ...], path: Path) -> Any:
    value = cfg.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        want = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise UsageError(f"{path}: expected key {key!r} ({want}), got {value!r}")
    return value


def _is_percpu_config(cfg: Any) -> bool:
    return isinstance(cfg, dict) and "percpu_version" in cfg


def read_run_info(run_dir: str | os.PathLike[str]) -> RunInfo:
    """Read a run directory's configuration (engine config.json or gem5's configs)."""
    d = Path(run_dir)
    stats = d / "stats.txt"
    cfg_json = d / "config.json"
    cfg_ini = d / "config.ini"
    percpu_json = d / "percpu.json"
    cfg = _load_json(cfg_json) if cfg_json.is_file() else None
    if isinstance(cfg, dict) and _is_percpu_config(cfg):
        return _engine_info(d, stats, cfg_json, cfg)
    if cfg is None and not cfg_ini.is_file():
        raise UsageError(
            f"{d}: expected config.json (engine or gem5) or config.ini beside stats.txt, got neither"
        )
    return _gem5_info(d, stats, cfg_json if cfg is not None else None, cfg, cfg_ini, percpu_json)


def _engine_info(d: Path, stats: Path, path: Path, cfg: dict[str, Any]) -> RunInfo:
    machine = dict(_expect(cfg, "machine", dict, path))
    _expect(machine, "cpus", int, path)
    seed = cfg.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise UsageError(f"{path}: expected key 'seed' (int), got {seed!r}")
    return RunInfo(
        run=str(d),
        path=d,
        stats_path=stats,
        host=str(cfg.get("host", "engine")),
        workload=_expect(cfg, "workload", str, path),
        scheme=_expect(cfg, "scheme", str, path),
        seed=seed,
        params=dict(cfg.get("params") or {}),
        machine=machine,
        costs=dict(cfg.get("costs") or {}),
        geometry=dict(cfg.get("geometry") or {}),
        config_files=(path.name,),
    )


def _walk_objects(node: Any) -> Iterable[dict[str, Any]]:
    """Every SimObject (a dict with "type") in gem5's config.json, depth first."""
    if isinstance(node, dict):
        if "type" in node:
            yield node
        for v in node.values():
            yield from _walk_objects(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk_objects(v)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _gem5_objects_from_ini(path: Path) -> list[dict[str, Any]]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise UsageError(
            f"{path}: expected gem5's config.ini, got {exc}".replace("\n", " ")
        ) from None
    objs: list[dict[str, Any]] = []
    for section in parser.sections():
        items = dict(parser.items(section))
        obj: dict[str, Any] = {"path": section, **items}
        if "switched_out" in obj:
            obj["switched_out"] = obj["switched_out"] == "true"
        if "full_system" in obj:
            obj["full_system"] = obj["full_system"] == "true"
        for key in ("cmd", "clock"):
            if key in obj:
                obj[key] = obj[key].split()
        objs.append(obj)
    return objs


def _gem5_info(
    d: Path,
    stats: Path,
    cfg_json: Path | None,
    cfg: Any,
    cfg_ini: Path,
    percpu_json: Path,
) -> RunInfo:
    files: list[str] = []
    if cfg is not None:
        objs = list(_walk_objects(cfg))
        files.append("config.json")
    else:
        objs = _gem5_objects_from_ini(cfg_ini)
        files.append("config.ini")
    by_path = {str(o.get("path")): o for o in objs}
    cpus = [o for o in objs if "cpu_id" in o and "CPU" in str(o.get("type", ""))]
    active = [o for o in cpus if not o.get("switched_out")] or cpus
    root = by_path.get("root", cfg if isinstance(cfg, dict) else {})
    full_system = bool(root.get("full_system", False)) if isinstance(root, dict) else False
    freq = None
    if active:
        clk = by_path.get(str(active[0].get("clk_domain")))
        period = _first(clk.get("clock")) if clk else None
        try:
            freq = round(1000.0 / float(period), 2) if period else None
        except (TypeError, ValueError):
            freq = None
    workload = "unknown"
    params: dict[str, Any] = {"mode": "fs" if full_system else "se"}
    procs = [o for o in objs if o.get("type") == "Process"]
    kernels = [o for o in objs if o.get("object_file")]
    if procs:
        names = [
            os.path.basename(str(_first(p.get("cmd")) or p.get("executable", ""))) for p in procs
        ]
        workload = "+".join(dict.fromkeys(n for n in names if n)) or "unknown"
    elif kernels:
        workload = "fs:" + os.path.basename(str(kernels[0]["object_file"]))
    if active:
        params["cpu_type"] = "+".join(sorted({str(o.get("type")) for o in active}))
    machine: dict[str, Any] = {
        "cpus": len(active),
        "pcid": None,  # gem5 v24 hides PCID from the guest; percpu.json can say otherwise
        "pti": None,
        "paging": None,
        "freq_ghz": freq,
    }
    scheme, seed = "gem5", None
    costs: dict[str, Any] = {}
    geometry: dict[str, Any] = {}
    if percpu_json.is_file():
        extra = _load_json(percpu_json)
        if not isinstance(extra, dict):
            raise UsageError(f"{percpu_json}: expected a JSON object, got {type(extra).__name__}")
        files.append("percpu.json")
        workload = str(extra.get("workload", workload))
        scheme = str(extra.get("scheme", scheme))
        seed = extra.get("seed", seed)
        if isinstance(extra.get("params"), dict):
            params = {**params, **extra["params"]}
        if isinstance(extra.get("machine"), dict):
            machine = {**machine, **extra["machine"]}
        costs = dict(extra.get("costs") or {})
        geometry = dict(extra.get("geometry") or {})
    return RunInfo(
        run=str(d),
        path=d,
        stats_path=stats,
        host="gem5",
        workload=workload,
        scheme=scheme,
        seed=seed if isinstance(seed, int) else None,
        params=params,
        machine=machine,
        costs=costs,
        geometry=geometry,
        config_files=tuple(files),
    )


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


def load_dataset(dirs: Iterable[str | os.PathLike[str]], *, allow_partial: bool = False) -> Dataset:
    """Parse every run under dirs into a Dataset.

    Raises UsageError (StatsFormatError for stats.txt) on the first bad file.
    With allow_partial, a truncated last block is kept, flagged partial=True
    in the frame, and named in Dataset.warnings.
    """
    frames: list[pd.DataFrame] = []
    runs: dict[str, RunInfo] = {}
    spans: dict[str, list[DumpSpan]] = {}
    warnings: list[str] = []
    for d in find_run_dirs(dirs):
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


# ---------------------------------------------------------------------------
# Queries


def pick_dump(df: pd.DataFrame, dump: int) -> pd.DataFrame:
    """Rows of one dump per run; negative dump counts back over complete dumps only."""
    if dump >= 0:
        return df[df["dump"] == dump]
    complete = df[~df["partial"]]
    if complete.empty:
        return complete
    order = complete.groupby("run", observed=True)["dump"].unique()
    wanted: dict[Any, int] = {}
    for run, dumps in order.items():
        ds = sorted(int(x) for x in dumps)
        if len(ds) >= -dump:
            wanted[run] = ds[dump]
    if not wanted:
        return complete.iloc[0:0]
    key = complete["run"].astype(object).map(wanted)
    return complete[complete["dump"] == key]


def select(
    df: pd.DataFrame,
    stat: str,
    component: str = "",
    *,
    dump: int | None = -1,
    cpu: str = "any",
) -> pd.DataFrame:
    """Rows of one stat ("walks", "rootAllocs::evicted") of one component.

    dump: a dump index, negative to count back over complete dumps (-1: the
    last complete one), None for all. cpu: "any", "per-cpu" (cpu not NA) or
    "global" (cpu NA).
    """
    name, _, bucket = stat.partition("::")
    rows = df[(df["stat"] == name) & (df["component"] == component) & (df["bucket"] == bucket)]
    if cpu == "per-cpu":
        rows = rows[rows["cpu"].notna()]
    elif cpu == "global":
        rows = rows[rows["cpu"].isna()]
    elif cpu != "any":
        raise ValueError(f"cpu must be 'any', 'per-cpu' or 'global', got {cpu!r}")
    if dump is not None:
        rows = pick_dump(rows, dump)
    return rows


def per_cpu_sum(df: pd.DataFrame, stat: str, component: str = "", *, dump: int = -1) -> pd.Series:
    """Sum of a per-CPU stat over every CPU (and core set), one value per run."""
    rows = select(df, stat, component, dump=dump, cpu="per-cpu")
    return rows.groupby("run", observed=True)["value"].sum(min_count=1)


def per_cpu_table(
    df: pd.DataFrame, stat: str, component: str = "", *, dump: int = -1
) -> pd.DataFrame:
    """A per-CPU stat as a run x cpu table (core sets summed)."""
    rows = select(df, stat, component, dump=dump, cpu="per-cpu")
    return rows.pivot_table(
        index="run", columns="cpu", values="value", aggfunc="sum", observed=True
    )


def global_value(df: pd.DataFrame, stat: str, component: str = "", *, dump: int = -1) -> pd.Series:
    """A system-wide stat (cpu NA), one value per run."""
    rows = select(df, stat, component, dump=dump, cpu="global")
    return rows.groupby("run", observed=True)["value"].sum(min_count=1)


def run_value(df: pd.DataFrame, stat: str, component: str = "", *, dump: int = -1) -> pd.Series:
    """A stat per run: the system-wide value, else the sum over CPUs."""
    out = global_value(df, stat, component, dump=dump)
    per_cpu = per_cpu_sum(df, stat, component, dump=dump)
    return out.combine_first(per_cpu) if not per_cpu.empty else out


def dump_delta(df: pd.DataFrame, first: int = 0, second: int = 1) -> pd.DataFrame:
    """value(second dump) - value(first dump) for every stat present in both.

    Useful when stats were dumped without a reset (cumulative counters). One
    row per (run, cpu, cpu_set, component, stat, bucket) with columns first,
    second and delta.
    """
    keys = ["run", "name"]
    a = df[df["dump"] == first].set_index(keys)["value"]
    b = df[df["dump"] == second].set_index(keys)["value"]
    meta = df[df["dump"] == second].set_index(keys)[
        ["cpu", "cpu_set", "component", "stat", "bucket"]
    ]
    out = pd.concat({"first": a, "second": b}, axis=1, join="inner")
    out["delta"] = out["second"] - out["first"]
    return meta.join(out, how="inner").reset_index()


# Two-sided 95 % t quantiles (from scipy.stats.t.ppf(0.975, df)). A table rather
# than scipy: importing scipy.stats costs seconds, and the report must not depend
# on what happens to be installed. Between entries, t is nearly linear in 1/df
# (interpolation error below 2e-5).
_T975 = {
    1: 12.706205, 2: 4.302653, 3: 3.182446, 4: 2.776445, 5: 2.570582, 6: 2.446912,
    7: 2.364624, 8: 2.306004, 9: 2.262157, 10: 2.228139, 11: 2.200985, 12: 2.178813,
    13: 2.160369, 14: 2.144787, 15: 2.131450, 16: 2.119905, 17: 2.109816, 18: 2.100922,
    19: 2.093024, 20: 2.085963, 21: 2.079614, 22: 2.073873, 23: 2.068658, 24: 2.063899,
    25: 2.059539, 26: 2.055529, 27: 2.051831, 28: 2.048407, 29: 2.045230, 30: 2.042272,
    35: 2.030108, 40: 2.021075, 45: 2.014103, 50: 2.008559, 60: 2.000298, 70: 1.994437,
    80: 1.990063, 90: 1.986675, 100: 1.983972, 120: 1.979930, 150: 1.975905, 200: 1.971896,
    300: 1.967903, 500: 1.964720, 1000: 1.962339,
}  # fmt: skip
_Z975 = 1.959964


def t_quantile_975(df: int) -> float:
    """The 97.5 % quantile of Student's t with df degrees of freedom (95 % two-sided)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df in _T975:
        return _T975[df]
    lo = max(k for k in _T975 if k < df)
    above = [k for k in _T975 if k > df]
    if not above:
        # t -> z as 1/df -> 0
        return _Z975 + (_T975[lo] - _Z975) * lo / df
    hi = min(above)
    w = (1 / df - 1 / hi) / (1 / lo - 1 / hi)
    return _T975[hi] + w * (_T975[lo] - _T975[hi])


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95 % t confidence interval (nan with fewer than 2 values)."""
    xs = [float(v) for v in values if not math.isnan(float(v))]
    if not xs:
        return math.nan, math.nan
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, math.nan
    var = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
    return mean, t_quantile_975(len(xs) - 1) * math.sqrt(var / len(xs))


def versus_baseline(
    dataset: Dataset,
    stat: str = "simTicks",
    component: str = "",
    *,
    baseline: str = "shared",
    dump: int = -1,
    values: pd.Series | None = None,
) -> pd.DataFrame:
    """Every non-baseline run against the baseline at the same workload point.

    The run's value of stat (system-wide, else summed over CPUs; or the given
    per-run values) is compared with the baseline run of the same seed at the
    same point, or with the mean of the point's baseline runs when no seed
    matches. Columns: run, point, scheme, seed, value, baseline_value,
    baseline_runs, ratio, overhead_pct (100 x (value / baseline - 1)).
    Runs whose point has no baseline run are left out.
    """
    vals = values if values is not None else run_value(dataset.frame, stat, component, dump=dump)
    meta = dataset.runs_frame()
    meta = meta[meta["run"].isin(vals.index)].copy()
    meta["value"] = meta["run"].map(vals)
    rows = []
    for _point, group in meta.groupby("point", sort=False):
        base = group[group["scheme"] == baseline]
        if base.empty:
            continue
        base_mean = float(base["value"].mean())
        by_seed = {int(s): r for s, r in zip(base["seed"], base["run"]) if not pd.isna(s)}
        for _, r in group[group["scheme"] != baseline].iterrows():
            seed = r["seed"]
            if not pd.isna(seed) and int(seed) in by_seed:
                b_runs = [by_seed[int(seed)]]
                b_value = float(vals[by_seed[int(seed)]])
            else:
                b_runs = list(base["run"])
                b_value = base_mean
            ratio = r["value"] / b_value if b_value else math.nan
            rows.append(
                {
                    "run": r["run"],
                    "point": r["point"],
                    "scheme": r["scheme"],
                    "seed": r["seed"],
                    "value": r["value"],
                    "baseline_value": b_value,
                    "baseline_runs": tuple(b_runs),
                    "ratio": ratio,
                    "overhead_pct": 100.0 * (ratio - 1.0),
                }
            )
    cols = ["run", "point", "scheme", "seed", "value", "baseline_value", "baseline_runs",
            "ratio", "overhead_pct"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def summarise_vs_baseline(vs: pd.DataFrame) -> pd.DataFrame:
    """Mean overhead and its 95 % t interval per (point, scheme) over seeds.

    Columns: point, scheme, n, mean_pct, ci_half_pct (nan when n < 2),
    ci_low_pct, ci_high_pct, runs, baseline_runs.
    """
    rows = []
    for (point, scheme), g in vs.groupby(["point", "scheme"], sort=False):
        mean, half = mean_ci(list(g["overhead_pct"]))
        base_runs = sorted({b for t in g["baseline_runs"] for b in t})
        rows.append(
            {
                "point": point,
                "scheme": scheme,
                "n": len(g),
                "mean_pct": mean,
                "ci_half_pct": half,
                "ci_low_pct": mean - half,
                "ci_high_pct": mean + half,
                "runs": tuple(g["run"]),
                "baseline_runs": tuple(base_runs),
            }
        )
    cols = ["point", "scheme", "n", "mean_pct", "ci_half_pct", "ci_low_pct", "ci_high_pct",
            "runs", "baseline_runs"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)
