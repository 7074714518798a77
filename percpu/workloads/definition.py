"""One workload definition, two renderings: jinja2 templates for gem5 and for the engine.

A definition is a directory workloads/<name>/ with workload.toml (parameters with type,
default, range and help), engine.ops.j2 (the op program, docs/op-program.md) and
gem5.sh.j2 (the guest script a full-system run executes through readfile).

Templates see the workload's parameters and render_context's names: cpus, seed and
cycles_per_us (the engine's clock, machine.freq_mhz, whose default core/config/params.cc
declares), so that times a definition gives in microseconds stay microseconds whatever
the clock.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from percpu.errors import UsageError

TARGETS = {"engine": "engine.ops.j2", "gem5": "gem5.sh.j2"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def cycles_per_us(freq_mhz: float | None = None) -> float:
    """Engine cycles per microsecond at freq_mhz (a run's machine.freq_mhz; None: the core's
    default): a MHz is a cycle per microsecond."""
    if freq_mhz is None:
        from percpu.params import specs

        freq_mhz = specs()["machine.freq_mhz"].default
    return float(freq_mhz)


def render_context(params: dict[str, Any], cpus: int, seed: int = 1,
                   freq_mhz: float | None = None) -> dict[str, Any]:
    """Every name a template sees: the parameters, cpus, seed and cycles_per_us."""
    return {**params, "cpus": cpus, "seed": seed, "cycles_per_us": cycles_per_us(freq_mhz)}


def workloads_dir() -> Path:
    """The checkout's workloads/ when running from source, else the installed copy."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "workloads", here.parents[1] / "_workloads"):
        if (candidate / "ctxmix" / "workload.toml").is_file():
            return candidate
    raise UsageError("workload definitions not found: reinstall percpu with 'pip install .'")


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None

    def parse(self, text: str, workload: str) -> Any:
        """Convert a --param value, with one clear error on bad input."""
        where = f"parameter {self.name} of workload {workload}"
        if self.type == "bool":
            low = text.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise UsageError(f"{where} takes true or false, not '{text}'")
        if self.type == "str":
            if self.choices and text not in self.choices:
                raise UsageError(f"{where} must be one of {', '.join(self.choices)}, not '{text}'")
            return text
        try:
            value: Any = int(text, 0) if self.type == "int" else float(text)
        except ValueError:
            raise UsageError(f"{where} takes a{'n integer' if self.type == 'int' else ' number'}, "
                             f"not '{text}'") from None
        self.check_range(value, workload)
        return value

    def check_range(self, value: Any, workload: str) -> None:
        if self.type not in ("int", "float"):
            return
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise UsageError(f"parameter {self.name}={value} of workload {workload} is out of "
                             f"range: use {self.min:g}..{self.max:g}")


@dataclass(frozen=True)
class Workload:
    name: str
    path: Path
    summary: str
    exercises: str
    main_param: str | None
    params: dict[str, Param]

    def defaults(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.params.items()}

    def resolve(self, overrides: dict[str, str]) -> dict[str, Any]:
        """Defaults updated by --param key=value strings, validated."""
        values = self.defaults()
        for key, text in overrides.items():
            if key not in self.params:
                known = ", ".join(self.params) or "none"
                raise UsageError(f"workload {self.name} has no parameter '{key}': it takes {known}")
            values[key] = self.params[key].parse(str(text), self.name)
        return values

    def render(self, target: str, params: dict[str, Any], cpus: int, seed: int = 1,
               freq_mhz: float | None = None) -> str:
        """The target's template rendered for a machine of cpus CPUs clocked at freq_mhz
        (None: the engine's default clock)."""
        if target not in TARGETS:
            raise UsageError(f"unknown target '{target}': choose engine or gem5")
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.path),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        try:
            template = env.get_template(TARGETS[target])
        except jinja2.TemplateNotFound:
            raise UsageError(f"workload {self.name} has no {target} template "
                             f"({TARGETS[target]})") from None
        return template.render(render_context(params, cpus, seed, freq_mhz))


def _load(path: Path) -> Workload:
    try:
        data = tomllib.loads((path / "workload.toml").read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path / 'workload.toml'}: {exc}") from None
    params = {}
    for name, spec in data.get("params", {}).items():
        kind = spec.get("type", type(spec.get("default")).__name__)
        params[name] = Param(
            name=name,
            type=kind,
            default=spec.get("default"),
            help=spec.get("help", ""),
            min=spec.get("min"),
            max=spec.get("max"),
            choices=tuple(spec["choices"]) if "choices" in spec else None,
        )
    return Workload(
        name=data.get("name", path.name),
        path=path,
        summary=data.get("summary", ""),
        exercises=data.get("exercises", ""),
        main_param=data.get("main_param"),
        params=params,
    )


@cache
def list_workloads() -> dict[str, Workload]:
    root = workloads_dir()
    found = {}
    for toml in sorted(root.glob("*/workload.toml")):
        wl = _load(toml.parent)
        found[wl.name] = wl
    return found


@dataclass(frozen=True)
class TraceWorkload(Workload):
    """`--workload trace:FILE`: a recorded trace (docs/traces.md) replayed on the engine."""

    def render(self, target: str, params: dict[str, Any], cpus: int, seed: int = 1,
               freq_mhz: float | None = None) -> str:
        if target != "engine":
            raise UsageError(f"{self.name} replays on the engine only: a trace has no gem5 "
                             "rendering (run the traced program in the guest instead)")
        from percpu.trace.replay import trace_to_program

        return trace_to_program(self.path, cpus, snapshot=params["snapshot"] or None,
                                max_ops=params["max_ops"], timing=params["timing"],
                                others=params["others"], freq_mhz=freq_mhz)


def trace_workload(path_text: str) -> TraceWorkload:
    if not path_text.strip():
        raise UsageError("--workload trace: names no file: use --workload trace:FILE with a "
                         "'percpu trace record' output or one in workloads/traces/")
    path = Path(path_text).expanduser()
    if path.is_dir():
        raise UsageError(f"trace file {path_text} is a directory: name a trace file in it "
                         "(--workload trace:DIR/NAME.trace.gz)")
    if not path.is_file():
        raise UsageError(f"trace file {path_text} not found: record one with "
                         "'percpu trace record -- CMD' or pick one in workloads/traces/")
    params = {
        "max_ops": Param("max_ops", "int", 100000, "ops the replay may use (sampled beyond)",
                         100, 10_000_000),
        "timing": Param("timing", "bool", True, "replay measured run times as compute"),
        "others": Param("others", "bool", True, "replay other processes' runs between the "
                        "command's"),
        "snapshot": Param("snapshot", "str", "", "a 'percpu trace snapshot' file shaping the "
                          "first address space"),
    }
    return TraceWorkload(name=f"trace:{path.name}", path=path.resolve(),
                         summary=f"replay of the recorded trace {path.name}",
                         exercises="what the recorded program did", main_param=None,
                         params=params)


def find_workload(name: str) -> Workload:
    if name.startswith("trace:"):
        return trace_workload(name[len("trace:"):])
    workloads = list_workloads()
    if name not in workloads:
        raise UsageError(f"unknown workload '{name}': choose from {', '.join(sorted(workloads))} "
                         "(percpu workloads list)")
    return workloads[name]
