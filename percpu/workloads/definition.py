"""One workload definition, two renderings: jinja2 templates for gem5 and for the engine.

A definition is a directory workloads/<name>/ with workload.toml (parameters with type,
default, range and help), engine.ops.j2 (the op program, docs/op-program.md) and
gem5.sh.j2 (the guest script a full-system run executes through readfile).

Templates see the workload's parameters and render_context's names: cpus, seed and
cycles_per_us (the engine's clock, machine.freq_mhz, whose default core/config/params.cc
declares), so that times a definition gives in microseconds stay microseconds whatever
the clock.

Besides the definitions shipped with percpu (workloads_dir()), --workload takes a user's
own by path: a workload directory (workload.toml and the templates) or a plain op-program
file (engine only; a name ending in .j2 is rendered first). Errors in a user's files
(TOML, templates, the rendered program) are bad input, naming the file and the line; a
malformed definition among the shipped ones breaks only itself.
"""

from __future__ import annotations

import hashlib
import tomllib
import traceback
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from percpu.errors import UsageError

TARGETS = {"engine": "engine.ops.j2", "gem5": "gem5.sh.j2"}
PARAM_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}
OPS_SUFFIXES = (".ops", ".ops.j2")
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
            low = "" if self.min is None else f"{self.min:g}"
            high = "" if self.max is None else f"{self.max:g}"
            raise UsageError(f"parameter {self.name}={value} of workload {workload} is out of "
                             f"range: use {low}..{high}")


@dataclass(frozen=True)
class Workload:
    name: str
    path: Path
    summary: str
    exercises: str
    main_param: str | None
    params: dict[str, Param]
    builtin: bool = True  # shipped with percpu (workloads_dir()), not a user's by path

    @property
    def ref(self) -> str:
        """What --workload (and a sweep spec) says to find this workload again."""
        return self.name if self.builtin else str(self.path)

    def program_source(self) -> str:
        """How errors in the rendered op program name where it came from."""
        where = f"{self.name}/" if self.builtin else f"{self.path}/"
        return f"{where}{TARGETS['engine']} (rendered)"

    def digest(self) -> str:
        """A hash of a user's definition (empty for percpu's own, which the version
        covers), so that a sweep point of an edited workload is a new point."""
        if self.builtin:
            return ""
        files = [self.path] if self.path.is_file() else sorted(
            f for f in self.path.iterdir() if f.name == "workload.toml" or f.suffix == ".j2")
        h = hashlib.sha256()
        for f in files:
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
        return h.hexdigest()[:16]

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

    def check_target(self, target: str) -> None:
        """UsageError unless this workload renders for target (engine or gem5), so that a
        sweep refuses a point its host cannot run before any point runs."""
        if target not in TARGETS:
            raise UsageError(f"unknown target '{target}': choose engine or gem5")
        if not (self.path / TARGETS[target]).is_file():
            raise UsageError(f"workload {self.name} has no {target} template "
                             f"({self.path / TARGETS[target]})")

    def render(self, target: str, params: dict[str, Any], cpus: int, seed: int = 1,
               freq_mhz: float | None = None) -> str:
        """The target's template rendered for a machine of cpus CPUs clocked at freq_mhz
        (None: the engine's default clock)."""
        self.check_target(target)
        return render_template(self.path / TARGETS[target],
                               render_context(params, cpus, seed, freq_mhz), user=not self.builtin)


def render_template(path: Path, context: dict[str, Any], *, user: bool) -> str:
    """The jinja2 template at path rendered with context (StrictUndefined). An error in a
    user's template is bad input naming its file and line; in percpu's own, a bug."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(path.parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    try:
        return env.get_template(path.name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        if not user:
            raise
        where = f"{exc.filename or path}:{exc.lineno}"
        raise UsageError(f"{where}: template syntax error: {exc.message}: fix the template "
                         "(jinja2 syntax, docs/op-program.md)") from None
    except UsageError:
        raise
    except Exception as exc:  # what a user's template does wrong: theirs to fix
        if not user:
            raise
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__)
                 if Path(f.filename).name == path.name and Path(f.filename).parent.resolve()
                 == path.parent.resolve()]
        where = f"{path}:{lines[-1]}" if lines else str(path)
        names = ", ".join(sorted(k for k in context if not k.startswith("_")))
        hint = (f"the template sees {names}" if isinstance(exc, jinja2.UndefinedError)
                else "fix the template")
        raise UsageError(f"{where}: {exc} ({type(exc).__name__}): {hint}") from None


def _definition_error(toml: Path, text: str, key: str, what: str) -> UsageError:
    from percpu.params import toml_key_lines

    line = toml_key_lines(text).get(key)
    return UsageError(f"{toml}{f':{line}' if line else ''}: {key} {what}")


def _load(path: Path, builtin: bool = True) -> Workload:
    """The definition in directory path; UsageError naming the file, the line and the key
    of anything malformed."""
    toml = path / "workload.toml"
    try:
        text = toml.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise UsageError(f"cannot read {toml}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{toml} is not UTF-8 text: expected TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{toml}: not valid TOML: {exc}: fix the file") from None

    def bad(key: str, what: str) -> UsageError:
        return _definition_error(toml, text, key, what)

    for key in ("name", "summary", "exercises", "main_param"):
        if key in data and not isinstance(data[key], str):
            raise bad(key, "must be a string")
    table = data.get("params", {})
    if not isinstance(table, dict):
        raise bad("params", "must be a table of parameters ([params.NAME] type = ...)")
    params = {}
    for name, spec in table.items():
        key = f"params.{name}"
        if not isinstance(spec, dict):
            raise bad(key, "must be a table (type, default, min, max, help)")
        kind = spec.get("type", type(spec.get("default")).__name__)
        if kind not in PARAM_TYPES:
            raise bad(f"{key}.type", f"'{kind}' is not a type: use int, float, bool or str")
        default = spec.get("default")
        if default is None:
            raise bad(key, "has no default: give default = ...")
        ok = isinstance(default, PARAM_TYPES[kind]) and not (
            kind in ("int", "float") and isinstance(default, bool))
        if not ok:
            raise bad(f"{key}.default", f"{default!r} is not of type {kind}")
        for bound in ("min", "max"):
            value = spec.get(bound)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or kind not in ("int", "float")):
                raise bad(f"{key}.{bound}", f"{value!r}: a bound must be a number, of an int or "
                          "float parameter")
        choices = spec.get("choices")
        if choices is not None and (not isinstance(choices, list) or
                                    not all(isinstance(c, str) for c in choices)):
            raise bad(f"{key}.choices", "must be a list of strings")
        param = Param(name=name, type=kind, default=default, help=str(spec.get("help", "")),
                      min=spec.get("min"), max=spec.get("max"),
                      choices=tuple(choices) if choices is not None else None)
        try:
            param.check_range(default, data.get("name", path.name))
            if choices is not None and default not in choices:
                raise UsageError(f"{default!r} is not among its choices")
        except UsageError as exc:
            raise bad(f"{key}.default", f"is invalid: {exc}") from None
        params[name] = param
    main_param = data.get("main_param")
    if main_param is not None and main_param not in params:
        raise bad("main_param", f"'{main_param}' is not one of its params")
    return Workload(
        name=data.get("name", path.name),
        path=path.resolve() if not builtin else path,
        summary=data.get("summary", ""),
        exercises=data.get("exercises", ""),
        main_param=main_param,
        params=params,
        builtin=builtin,
    )


@cache
def _scan() -> tuple[dict[str, Workload], dict[str, str]]:
    """percpu's own definitions, and the error of each malformed one (by directory name):
    one bad workload.toml must not take the others down with it."""
    found: dict[str, Workload] = {}
    broken: dict[str, str] = {}
    for toml in sorted(workloads_dir().glob("*/workload.toml")):
        try:
            wl = _load(toml.parent)
        except UsageError as exc:
            broken[toml.parent.name] = str(exc)
            continue
        found[wl.name] = wl
    return found, broken


def list_workloads() -> dict[str, Workload]:
    """percpu's own workloads, by name (the well-formed ones)."""
    return _scan()[0]


def broken_workloads() -> dict[str, str]:
    """percpu's own workload directories whose definition is malformed: name -> error."""
    return _scan()[1]


@dataclass(frozen=True)
class ProgramFileWorkload(Workload):
    """`--workload PATH.ops`: a user's plain op program (docs/op-program.md), run as it
    stands; a name ending in .j2 is first rendered as a template seeing cpus, seed and
    cycles_per_us. The engine only: it has no guest script."""

    def program_source(self) -> str:
        return f"{self.path} (rendered)" if self.path.suffix == ".j2" else str(self.path)

    def check_target(self, target: str) -> None:
        if target != "engine":
            raise UsageError(f"{self.path} is an op program, which runs on the engine only: "
                             "for gem5, make a workload directory with a gem5.sh.j2 guest "
                             "script (docs/op-program.md)")

    def render(self, target: str, params: dict[str, Any], cpus: int, seed: int = 1,
               freq_mhz: float | None = None) -> str:
        self.check_target(target)
        if self.path.suffix == ".j2":
            return render_template(self.path, render_context(params, cpus, seed, freq_mhz),
                                   user=True)
        try:
            return self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{self.path} is not UTF-8 text: expected an op program "
                             "(docs/op-program.md)") from None


def _looks_like_path(name: str) -> bool:
    return ("/" in name or name.startswith(("~", ".")) or name.endswith((*OPS_SUFFIXES, ".toml"))
            or Path(name).expanduser().exists())


def workload_from_path(text: str) -> Workload:
    """A user's workload by path: a directory holding workload.toml (or that file itself),
    or an op-program file."""
    path = Path(text).expanduser()
    prefix, _, rest = text.partition(":")
    if not path.exists() and rest and Path(rest).expanduser().exists():
        raise UsageError(f"workload {text}: give the path alone, without '{prefix}:' "
                         f"(--workload {rest})")
    if not path.exists():
        raise UsageError(f"workload {text} not found: give a workload directory (workload.toml "
                         "and engine.ops.j2) or an op-program file (docs/op-program.md)")
    if path.is_file() and path.name == "workload.toml":
        path = path.parent
    if path.is_dir():
        if not (path / "workload.toml").is_file():
            raise UsageError(f"workload directory {text} has no workload.toml: a workload "
                             "directory holds workload.toml and engine.ops.j2 "
                             "(docs/op-program.md)")
        return _load(path, builtin=False)
    return ProgramFileWorkload(name=path.name, path=path.resolve(),
                               summary=f"the op program {path.name}",
                               exercises="", main_param=None, params={}, builtin=False)


@dataclass(frozen=True)
class TraceWorkload(Workload):
    """`--workload trace:FILE`: a recorded trace (docs/traces.md) replayed on the engine."""

    @property
    def ref(self) -> str:
        return f"trace:{self.path}"

    def program_source(self) -> str:
        return f"{self.name} (replayed)"

    def check_target(self, target: str) -> None:
        if target != "engine":
            raise UsageError(f"{self.name} replays on the engine only: a trace has no gem5 "
                             "rendering (run the traced program in the guest instead)")

    def render(self, target: str, params: dict[str, Any], cpus: int, seed: int = 1,
               freq_mhz: float | None = None) -> str:
        self.check_target(target)
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
                         params=params, builtin=False)


def find_workload(name: str) -> Workload:
    """percpu's workload NAME, trace:FILE, or a user's workload directory or op-program
    file by path (a name that is not one of percpu's is tried as a path)."""
    if name.startswith("trace:"):
        return trace_workload(name[len("trace:"):])
    workloads = list_workloads()
    if name in workloads:
        return workloads[name]
    if name in broken_workloads():
        raise UsageError(broken_workloads()[name])
    if _looks_like_path(name):
        return workload_from_path(name)
    raise UsageError(f"unknown workload '{name}': choose from {', '.join(sorted(workloads))} "
                     "(percpu workloads list), or give a workload directory or an op-program "
                     "file by path (docs/op-program.md)")
