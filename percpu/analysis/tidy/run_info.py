"""What a run directory says about its run: the engine's config.json, or gem5's config.json /
config.ini with an optional percpu.json."""

from __future__ import annotations

import configparser
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from percpu.errors import UsageError

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
        """Identity of the workload point: everything but scheme and seed. The host is part
        of it: an engine run and a gem5 run of one workload are two points, side by side."""
        key = {
            "host": self.host,
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


def find_run_dirs(dirs: Iterable[str | os.PathLike[str]],
                  notes: list[str] | None = None) -> list[Path]:
    """Run directories under dirs: each dir that holds stats.txt, or every one below it.
    A report directory among dirs (report.md or report.html, no stats.txt), as
    `percpu report runs/*` meets its own --out, is skipped with a line in notes."""
    found: list[Path] = []
    for d in dirs:
        p = Path(d)
        if any(_is_report_dir(q) for q in (p, p.parent, p.parent.parent)):
            if notes is not None:
                notes.append(f"{p}: skipped, a report directory (report.md/html) or in one, "
                             "not runs")
            continue
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


def _is_report_dir(p: Path) -> bool:
    return (p.is_dir() and ((p / "report.md").is_file() or (p / "report.html").is_file())
            and not any(s.is_file() for s in p.rglob("stats.txt")))


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
