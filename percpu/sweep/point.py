"""A sweep point: one run of one scheme at one configuration, and its stable identity.

A point's id is a hash of its full configuration (host, workload and every workload
parameter, machine, --set overrides, checker, gem5 options), the percpu version and a
digest of the model's parameter table (so a changed default is a new point). Its
directory name is human-readable and ends in the id, so the same point gets the same
directory in every sweep, on every machine.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from percpu import __version__

ID_CHARS = 16  # hex digits of sha256: 64 bits, no collision in any sweep anyone will run
NAME_CHARS = 90  # the readable part of a directory name, before the id


@cache
def model_digest() -> str:
    """Digest of the engine's parameter table (keys, defaults, ranges)."""
    from percpu.params import specs

    rows = sorted((s.key, s.default, s.min, s.max) for s in specs().values())
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", text).strip("_")


def workload_label(workload: str) -> str:
    """A workload as a point's name shows it: a path by its last component."""
    prefix = "trace:" if workload.startswith("trace:") else ""
    return prefix + workload[len(prefix):].rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Point:
    """One run of one scheme at one configuration (engine or gem5)."""

    host: str
    workload: str
    scheme: str
    params: dict[str, Any]  # every workload parameter, resolved and typed
    cpus: int
    seed: int
    no_pcid: bool = False
    pti: bool = False
    paging: int = 4
    sets: dict[str, float] = field(default_factory=dict)  # --set overrides
    check: bool = False
    gem5: dict[str, Any] = field(default_factory=dict)  # gem5 host options
    label: tuple[str, ...] = ()  # the axes that vary in its sweep, for the name
    # A user's workload by path (or a trace): a hash of its files, so that editing them
    # makes new points instead of leaving the old results standing. Empty for percpu's own.
    workload_digest: str = ""

    def config(self) -> dict[str, Any]:
        """What makes the point (its id is a hash of this, the version and the model)."""
        digest = {"workload_digest": self.workload_digest} if self.workload_digest else {}
        return {
            "host": self.host,
            "workload": self.workload,
            "scheme": self.scheme,
            "params": dict(sorted(self.params.items())),
            "cpus": self.cpus,
            "seed": self.seed,
            "no_pcid": self.no_pcid,
            "pti": self.pti,
            "paging": self.paging,
            "sets": dict(sorted(self.sets.items())),
            "check": self.check,
            "gem5": dict(sorted(self.gem5.items())),
            **digest,
        }

    @property
    def id(self) -> str:
        key = {"percpu": __version__, "model": model_digest() if self.host == "engine" else "",
               "point": self.config()}
        return hashlib.sha256(_canonical(key).encode()).hexdigest()[:ID_CHARS]

    def axis_value(self, axis: str) -> Any:
        if axis.startswith("param."):
            return self.params.get(axis[len("param."):])
        if axis.startswith("set."):
            return self.sets.get(axis[len("set."):])
        return getattr(self, axis)

    @property
    def name(self) -> str:
        """<workload>-<scheme>[-<axis><value>...]-<id>: readable, unique by the id."""
        parts = [workload_label(self.workload), self.scheme]
        for axis in self.label:
            if axis in ("workload", "scheme"):
                continue
            short = axis.split(".", 1)[1] if axis.startswith(("param.", "set.")) else axis
            value = self.axis_value(axis)
            if isinstance(value, bool):
                parts.append(short if value else f"no{short}" if short != "no_pcid" else "pcid")
            else:
                parts.append(f"{short}{value:g}" if isinstance(value, float) else f"{short}{value}")
        readable = _slug("-".join(parts))[:NAME_CHARS].rstrip("-_.")
        return f"{readable}-{self.id}"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "label": list(self.label), **self.config()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Point:
        return cls(host=data["host"], workload=data["workload"], scheme=data["scheme"],
                   params=dict(data["params"]), cpus=int(data["cpus"]), seed=int(data["seed"]),
                   no_pcid=bool(data["no_pcid"]), pti=bool(data["pti"]),
                   paging=int(data["paging"]), sets=dict(data["sets"]),
                   check=bool(data["check"]), gem5=dict(data["gem5"]),
                   label=tuple(data.get("label", ())),
                   workload_digest=str(data.get("workload_digest", "")))

    def engine_overrides(self) -> dict[str, float]:
        """The values `percpu run` would pass to the engine for this point."""
        values = dict(self.sets)
        values["machine.cpus"] = self.cpus
        values["machine.seed"] = self.seed
        values["machine.pcid"] = 0 if self.no_pcid else 1
        values["machine.pti"] = 1 if self.pti else 0
        values["machine.paging_levels"] = self.paging
        return values

    def run_args(self) -> list[str]:
        """The flags of the equivalent single run (`percpu run` or `percpu gem5 run`)."""
        args = ["-w", self.workload, "-s", self.scheme]
        for key, value in sorted(self.params.items()):
            text = str(value).lower() if isinstance(value, bool) else str(value)
            args += ["-p", f"{key}={text}"]
        args += ["--cpus", str(self.cpus), "--seed", str(self.seed)]
        if self.no_pcid:
            args.append("--no-pcid")
        if self.pti:
            args.append("--pti")
        if self.host == "engine" and self.paging != 4:
            args += ["--paging", str(self.paging)]
        # gem5: only the root model's costs get here (spec.py refuses the rest).
        for key, value in sorted(self.sets.items()):
            args += ["--set", f"{key}={value:g}"]
        if self.check:
            args.append("--check")
        return args
