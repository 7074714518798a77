"""A sweep spec (TOML) and its expansion into points, validated before anything runs.

    [sweep]
    host = "engine"                  # or "gem5" (then a [gem5] table with path = ...)
    workload = "ctxmix"              # or a list, or a grid/zip axis
    schemes = ["shared", "percpu"]   # every configuration runs under each scheme
    baseline = "shared"              # the scheme the report compares with
    outdir = "sweeps/cliff"

    [fixed]                          # values every point shares
    cpus = 4
    param.rounds = 100

    [grid]                           # the cartesian product of these lists ...
    param.procs_per_cpu = [2, 4, 6, 7, 8]
    seed = [1, 2, 3]

    [[zip]]                          # ... times each zip group (lists of one length, paired)
    cpus = [2, 4, 8]
    param.rounds = [400, 200, 100]

Axes (in [fixed], [grid] and [[zip]]): workload, cpus, seed, no_pcid, pti, paging,
param.<workload parameter>, set.<model parameter> (percpu params). Every error is one
line naming the key and the fix (UsageError, exit code 2), raised before any point runs.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from percpu import run_request as rr
from percpu.errors import UsageError
from percpu.sweep.point import Point

# Machine parameters a point sets through its own axes (cpus, seed, no_pcid, pti, paging);
# the others (machine.linux, machine.invlpgb, machine.freq_mhz) are set.<key> axes.
AXIS_MACHINE_KEYS = frozenset({"machine.cpus", "machine.seed", "machine.pcid", "machine.pti",
                               "machine.paging_levels"})

SWEEP_KEYS = {"host", "workload", "schemes", "baseline", "outdir", "check", "report", "name"}
GEM5_KEYS = {"path", "kernel", "cpu_type", "caches", "mem", "checkpoint_dir", "timeout",
             "max_sim_seconds"}
SLURM_KEYS = {"partition", "time", "mem", "account", "qos", "throttle", "points_per_task",
              "sbatch_options"}
TABLES = {"sweep", "fixed", "grid", "zip", "gem5", "slurm"}
PLAIN_AXES = ("workload", "cpus", "seed", "no_pcid", "pti", "paging")
MAX_POINTS = 1_000_000


@dataclass
class Spec:
    path: Path
    name: str
    host: str
    schemes: list[str]
    baseline: str
    outdir: Path
    report: bool
    points: list[Point]
    axes: list[str]  # every axis a point has a value for, varying or not
    varying: list[str]  # the axes that take more than one value
    slurm: dict[str, Any] = field(default_factory=dict)
    duplicates: int = 0


def _fail(where: str, message: str) -> None:
    raise UsageError(f"{where}: {message}")


def _flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{param = {rounds = 1}, set = {cost = {invlpg = 2}}} -> {param.rounds, set.cost.invlpg}."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(_flatten(value, full))
        else:
            out[full] = value
    return out


def _check_axis(where: str, key: str) -> None:
    if key in PLAIN_AXES:
        return
    if key.startswith(("param.", "set.")) and len(key.split(".", 1)[1]) > 0:
        return
    _fail(f"{where}.{key}", f"unknown key: axes are {', '.join(PLAIN_AXES)}, "
          "param.<workload parameter> and set.<model parameter>")


def _check_keys(where: str, table: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        _fail(where, "expected a table")
    for key in table:
        if key not in allowed:
            _fail(f"{where}.{key}", f"unknown key: use {', '.join(sorted(allowed))}")
    return table


def _as_list(where: str, value: Any) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    if not values:
        _fail(where, "is empty: give at least one value")
    return values


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read sweep spec {path}: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None


def load_spec(path: str | os.PathLike[str], *, outdir: str | None = None,
              backend: str = "local") -> Spec:
    """Read, validate and expand a spec. Raises UsageError naming the key and the fix."""
    p = Path(path)
    data = _load_toml(p)
    where = str(p)
    for key in data:
        if key not in TABLES:
            _fail(f"{where}: {key}", f"unknown table or key: use {', '.join(sorted(TABLES))}")
    sweep = _check_keys(f"{where}: sweep", data.get("sweep", {}), SWEEP_KEYS)
    host = sweep.get("host", "engine")
    if host not in ("engine", "gem5"):
        _fail(f"{where}: sweep.host", f"'{host}' is not a host: use \"engine\" or \"gem5\"")
    out_text = outdir or sweep.get("outdir")
    if not out_text or not isinstance(out_text, str):
        _fail(f"{where}: sweep.outdir", "missing: name the sweep's output directory "
              "(outdir = \"sweeps/NAME\") or pass --outdir")
    out = Path(out_text)
    if out.exists() and not out.is_dir():
        _fail(f"{where}: sweep.outdir", f"{out} exists and is not a directory: choose another")
    schemes = _schemes(where, sweep.get("schemes", rr.DEFAULT_SCHEMES.split(",")))
    baseline = rr.baseline(schemes, sweep.get("baseline"))
    if baseline not in schemes:
        _fail(f"{where}: sweep.baseline", f"'{baseline}' is not among the schemes "
              f"{', '.join(schemes)}: add it to sweep.schemes (the report pairs every point "
              "with it)")
    check = sweep.get("check", False)
    if not isinstance(check, bool):
        _fail(f"{where}: sweep.check", "expected true or false")
    gem5 = _gem5_options(where, host, data.get("gem5"))
    slurm = _check_keys(f"{where}: slurm", data.get("slurm", {}), SLURM_KEYS)
    if backend == "slurm" and shutil.which("sbatch") is None:
        raise UsageError("--backend slurm: sbatch is not on PATH: run on a Slurm login node "
                         "(or load the slurm module), or use --backend local")

    fixed = _flatten(_check_keys(f"{where}: fixed", data.get("fixed", {}),
                                 set(PLAIN_AXES) | {"param", "set"}))
    if "workload" in sweep:
        fixed.setdefault("workload", sweep["workload"])
    grid = _flatten(_check_keys(f"{where}: grid", data.get("grid", {}),
                                set(PLAIN_AXES) | {"param", "set"}))
    zips_raw = data.get("zip", [])
    zips_raw = [zips_raw] if isinstance(zips_raw, dict) else zips_raw
    if not isinstance(zips_raw, list):
        _fail(f"{where}: zip", "expected a table or an array of tables ([[zip]])")
    zips = [_flatten(_check_keys(f"{where}: zip", z, set(PLAIN_AXES) | {"param", "set"}))
            for z in zips_raw]
    for name, table in (("fixed", fixed), ("grid", grid), *(("zip", z) for z in zips)):
        for key in table:
            _check_axis(f"{where}: {name}", key)
            if host == "gem5" and key.startswith("set."):
                why = rr.gem5_refuses_set(key[len("set."):])
                if why:
                    _fail(f"{where}: {name}.{key}", why)

    # Expand: the grid's product times each zip group's rows, over the fixed values.
    axes_order: list[str] = []
    for table in (fixed, grid, *zips):
        for key in table:
            if key not in axes_order:
                axes_order.append(key)
    seen: dict[str, str] = {}
    for name, table in (("grid", grid), *(("zip", z) for z in zips)):
        for key in table:
            if key in seen:
                _fail(f"{where}: {name}.{key}", f"is already an axis of {seen[key]}: "
                      "give each axis in one place")
            seen[key] = name
            if key in fixed:
                _fail(f"{where}: {name}.{key}", "is also a fixed value ([fixed] or "
                      "sweep.workload): give each axis in one place")
    grid_keys = list(grid)
    grid_lists = [_as_list(f"{where}: grid.{k}", grid[k]) for k in grid_keys]
    zip_rows: list[list[dict[str, Any]]] = []
    for z in zips:
        lists = {k: _as_list(f"{where}: zip.{k}", v) for k, v in z.items()}
        lengths = {len(v) for v in lists.values()}
        if len(lengths) > 1:
            _fail(f"{where}: zip", "lists of different lengths "
                  f"({', '.join(f'{k}: {len(v)}' for k, v in lists.items())}): "
                  "zipped lists pair values one to one, so give them one length")
        n = lengths.pop() if lengths else 0
        zip_rows.append([{k: v[i] for k, v in lists.items()} for i in range(n)])
    count = 1
    for values in grid_lists:
        count *= len(values)
    for rows in zip_rows:
        count *= max(len(rows), 1)
    count *= len(schemes)
    if count > MAX_POINTS:
        _fail(f"{where}: grid", f"expands to {count:,} points, more than {MAX_POINTS:,}: "
              "split the sweep")
    for name, table in (("fixed", fixed),):
        for key, value in table.items():
            if isinstance(value, list):
                _fail(f"{where}: {name}.{key}", "takes one value: put lists in [grid] or [zip]")

    varying = [k for k in axes_order if k in grid and len(_as_list(k, grid[k])) > 1]
    for rows in zip_rows:
        if len(rows) > 1:
            varying += [k for k in rows[0] if len({repr(r[k]) for r in rows}) > 1
                        and k not in varying]
    label_axes = tuple(varying)
    # Where each axis is given, so that an error names its full key (grid.param.rounds).
    origin = {key: name for name, table in (("fixed", fixed), ("grid", grid),
                                            *(("zip", z) for z in zips)) for key in table}
    if "workload" in sweep and "workload" not in data.get("fixed", {}):
        origin["workload"] = "sweep"
    resolver = _Resolver(where, host, check, gem5, origin)
    points: list[Point] = []
    ids: set[str] = set()
    duplicates = 0
    for combo in itertools.product(*grid_lists, *(rows or [{}] for rows in zip_rows)):
        values = dict(fixed)
        values.update(zip(grid_keys, combo[:len(grid_keys)], strict=True))
        for row in combo[len(grid_keys):]:
            values.update(row)
        for scheme in schemes:
            point = resolver.point(values, scheme, label_axes)
            if point.id in ids:
                duplicates += 1
                continue
            ids.add(point.id)
            points.append(point)
    name = sweep.get("name", p.stem)
    axes = [a for a in ("workload", "cpus", "seed", "no_pcid", "pti", "paging")
            if host == "engine" or a != "paging"]
    axes += [a for a in axes_order if a not in axes]
    return Spec(path=p, name=str(name), host=host, schemes=schemes, baseline=baseline,
                outdir=out, report=bool(sweep.get("report", True)), points=points,
                axes=axes, varying=varying, slurm=dict(slurm), duplicates=duplicates)


def _schemes(where: str, value: Any) -> list[str]:
    """sweep.schemes: the registry's schemes, each once (either host runs every one)."""
    return rr.check_scheme_list(_as_list(f"{where}: sweep.schemes", value),
                                where=f"{where}: sweep.schemes")


def _gem5_options(where: str, host: str, table: Any) -> dict[str, Any]:
    if host != "gem5":
        if table is not None:
            _fail(f"{where}: gem5", "only applies with sweep.host = \"gem5\"")
        return {}
    if table is None:
        table = {}
    _check_keys(f"{where}: gem5", table, GEM5_KEYS)
    path = table.get("path") or os.environ.get(rr.GEM5_ENV)
    if not path:
        _fail(f"{where}: gem5.path", "missing: the gem5 host needs the gem5.opt built with "
              "src_patches/ (path = \"/.../build/X86/gem5.opt\", or set " + rr.GEM5_ENV + ")")
    gem5 = Path(str(path)).expanduser()
    try:
        rr.check_gem5_binary(gem5)
    except UsageError:
        _fail(f"{where}: gem5.path", f"{gem5} is not an executable file: build gem5 "
              "(docs/gem5.md) and give the path of build/X86/gem5.opt")
    out: dict[str, Any] = {"path": str(gem5.resolve())}
    if "kernel" in table:
        kernel = Path(str(table["kernel"])).expanduser()
        if not kernel.is_file():
            _fail(f"{where}: gem5.kernel", f"{kernel} is not a file: give a guest vmlinux "
                  "('percpu guest build') or leave the key out for the newest build")
        out["kernel"] = str(kernel.resolve())
    choices = {"cpu_type": rr.GEM5_CPU_TYPES, "caches": rr.GEM5_CACHES}
    for key, allowed in choices.items():
        if key in table:
            if table[key] not in allowed:
                _fail(f"{where}: gem5.{key}", f"'{table[key]}': use one of {', '.join(allowed)}")
            out[key] = table[key]
    ranges = {"mem": rr.GEM5_MEM_MIB, "timeout": (1, 1e7), "max_sim_seconds": (0.001, 1e4)}
    for key, (low, high) in ranges.items():
        if key in table:
            v = table[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or not low <= v <= high:
                _fail(f"{where}: gem5.{key}", f"{v!r} is out of range: use {low:g}..{high:g}")
            out[key] = v
    if "checkpoint_dir" in table:
        out["checkpoint_dir"] = str(Path(str(table["checkpoint_dir"])).expanduser())
    return out


class _Resolver:
    """Turns one combination of axis values into a validated Point; errors name the spec
    and the axis's full key (fixed.cpus, grid.param.procs_per_cpu, zip.set.cost.invlpg)."""

    def __init__(self, where: str, host: str, check: bool, gem5: dict[str, Any],
                 origin: dict[str, str]):
        from percpu.params import specs

        self.where = where
        self.host = host
        self.check = check
        self.gem5 = gem5
        self.origin = origin
        self.specs = specs() if host == "engine" else {}
        self.cache: dict[str, Any] = {}
        self.digests: dict[str, str] = {}

    def key(self, axis: str) -> str:
        """The spec and the full key of axis, for an error."""
        return f"{self.where}: {self.origin.get(axis, 'fixed')}.{axis}"

    def _workload(self, name: Any):
        from percpu.workloads import find_workload

        if not isinstance(name, str):
            _fail(self.key("workload"), f"expected a workload name or path, got {name!r}")
        if name not in self.cache:
            try:
                wl = find_workload(name)
                wl.check_target(self.host)  # a point its host cannot run fails here
            except UsageError as exc:
                _fail(self.key("workload"), str(exc))
            self.cache[name] = wl
            self.digests[wl.ref] = wl.digest()
        return self.cache[name]

    def _int(self, key: str, value: Any, low: float, high: float) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(self.key(key), f"expected an integer, got {value!r}")
        if not low <= value <= high:
            _fail(self.key(key), f"{value} is out of range: use {low:g}..{high:g}")
        return int(value)

    def _bool(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            _fail(self.key(key), f"expected true or false, got {value!r}")
        return value

    def point(self, values: dict[str, Any], scheme: str, label: tuple[str, ...]) -> Point:
        from percpu.params import check_geometry, parse_value

        wl = self._workload(values.get("workload", rr.DEFAULT_WORKLOAD))
        params = wl.defaults()
        for key, value in values.items():
            if not key.startswith("param."):
                continue
            name = key[len("param."):]
            if name not in wl.params:
                _fail(self.key(key), f"workload {wl.name} has no parameter '{name}': it takes "
                      f"{', '.join(wl.params) or 'none'}")
            text = str(value).lower() if isinstance(value, bool) else str(value)
            try:
                params[name] = wl.params[name].parse(text, wl.name)
            except UsageError as exc:
                _fail(self.key(key), str(exc))
        # The defaults and ranges of a single run's flags (percpu/run_request.py).
        cpus = self._int("cpus", values.get("cpus", int(rr.model_default("machine.cpus"))),
                         *rr.cpus_range(self.host))
        seed = self._int("seed", values.get("seed", int(rr.model_default("machine.seed"))), 0,
                         10**18)
        no_pcid = self._bool("no_pcid", values.get("no_pcid", False))
        pti = self._bool("pti", values.get("pti", False))
        paging = self._int("paging", values.get("paging",
                                                int(rr.model_default("machine.paging_levels"))),
                           4, 5)
        if self.host == "gem5" and rr.gem5_refuses_paging(paging):
            _fail(self.key("paging"), f"{paging} {rr.gem5_refuses_paging(paging)}; remove it or "
                  "use host = \"engine\"")
        sets: dict[str, float] = {}
        for key, value in values.items():
            if key.startswith("set."):
                name = key[len("set."):]
                if name in AXIS_MACHINE_KEYS:
                    _fail(self.key(key), "use the axes cpus, seed, no_pcid, pti "
                          "and paging for machine parameters")
                text = str(value).lower() if isinstance(value, bool) else str(value)
                # Errors name the spec's place and key, not --set.
                sets[name] = parse_value(name, text, where=self.key(key))
        if self.host == "engine":
            check_geometry(sets, lambda k: self.key(f"set.{k}"))
        return Point(host=self.host, workload=wl.ref, scheme=scheme, params=params, cpus=cpus,
                     seed=seed, no_pcid=no_pcid, pti=pti, paging=paging, sets=sets,
                     check=self.check, gem5=self.gem5, label=label,
                     workload_digest=self.digests[wl.ref])
