"""Test helpers for workloads/: what the renderings say (the gem5 script's command line;
the op program's tasks, repeats, pinning and weighted op totals), so the tests can compare
them with the parameters.

Definitions are loaded and op programs parsed by percpu itself (percpu.workloads and
percpu.workloads.program, op codes from percpu._core.OP_CODES): no second loader or parser
here. Only the untrimmed rendering (jinja2's defaults, which percpu does not use) is
rendered here, to check that templates do not depend on trim_blocks.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from percpu.workloads import Workload, list_workloads
from percpu.workloads.definition import TARGETS, render_context
from percpu.workloads.program import (
    ACCESS_KINDS,
    MM_FORK,
    OPCODES,
    Program,
    TaskDecl,
    parse_program,
)

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = ROOT / "workloads"
GUEST = WORKLOADS / "guest"
GUEST_BUILD = GUEST / "build"


def workloads() -> list[Workload]:
    """Every workload definition, as percpu loads it (sorted by name)."""
    return [wl for _, wl in sorted(list_workloads().items())]


def defaults(wl: Workload) -> dict[str, Any]:
    return wl.defaults()


# Templates must render the same program whether or not the environment trims blocks:
# "trim" is what percpu's loader uses (Workload.render), "plain" jinja2's default.
STYLES = ("plain", "trim")


def render(wl: Workload, target: str, params: dict[str, Any], cpus: int, seed: int = 1,
           style: str = "trim") -> str:
    """A rendering of target ("engine" or "gem5"); style "plain" without trim_blocks."""
    if style == "trim":
        return wl.render(target, params, cpus=cpus, seed=seed)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(wl.path)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template(TARGETS[target]).render(render_context(params, cpus, seed))


def parse(text: str, cpus: int) -> Program:
    return parse_program(text, cpus, source="rendered op program")


# ---------------------------------------------------------------- gem5 guest script


@dataclass
class GuestCommand:
    binary: str  # basename of the /sbin/ program
    argv: list[str]  # full argv, argv[0] the /sbin path
    flags: dict[str, str | bool] = field(default_factory=dict)  # "--x" -> value or True


def guest_command(script: str) -> GuestCommand:
    """The one /sbin/<program> command line of a rendered gem5.sh (continuations joined)."""
    lines = script.replace("\\\n", " ").splitlines()
    cmds = [ln.strip() for ln in lines if ln.strip().startswith("/sbin/")]
    if len(cmds) != 1:
        raise AssertionError(f"expected one /sbin/ command line, found {len(cmds)}")
    argv = shlex.split(cmds[0])
    flags: dict[str, str | bool] = {}
    i = 1
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise AssertionError(f"unexpected argument {arg!r} in {cmds[0]!r}")
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            flags[arg] = argv[i + 1]
            i += 2
        else:
            flags[arg] = True
            i += 1
    return GuestCommand(binary=Path(argv[0]).name, argv=argv, flags=flags)


def flag_name(param: str) -> str:
    return "--" + param.replace("_", "-")


def params_from_flags(wl: Workload, flags: dict[str, str | bool]) -> dict[str, Any]:
    """Read every workload parameter back from the guest command line."""
    out: dict[str, Any] = {}
    for name, spec in wl.params.items():
        flag = flag_name(name)
        if spec.type == "bool":
            on, off = flag in flags, "--no-" + flag[2:] in flags
            if on == off:
                raise AssertionError(f"bool {name}: need exactly one of {flag} / --no-{flag[2:]}")
            out[name] = on
        else:
            if flag not in flags or flags[flag] is True:
                raise AssertionError(f"parameter {name} missing from the command line ({flag})")
            out[name] = int(str(flags[flag]), 0)
    return out


# ---------------------------------------------------------------- op program facts

Op = tuple[int, int, int, int, int, int]  # (code, flags, a, b, c, d): program.h's Op
KIND_NAMES = {v: k for k, v in ACCESS_KINDS.items()}
MEM_OPS = set(ACCESS_KINDS)
COUNTED = {"kmap_local", "kunmap_local", "kmap", "kunmap", "percpu_access"}


def op_name(op: Op) -> str:
    """The op's name; an access is load, store or fetch."""
    name = OPCODES[op[0] - 1]
    return KIND_NAMES[op[1] & 3] if name == "access" else name


def walk(ops: list[Op]) -> Iterator[tuple[Op, int]]:
    """(op, multiplier) for every op but repeat/end, the multiplier being the product of
    the enclosing repeat counts."""
    mult = [1]
    for op in ops:
        name = OPCODES[op[0] - 1]
        if name == "repeat":
            mult.append(mult[-1] * max(op[2], 0))
        elif name == "end":
            mult.pop()
        else:
            yield op, mult[-1]


def op_count(op: Op) -> int:
    """How many times one execution of op does its thing (count= for counted ops)."""
    name = op_name(op)
    if name in MEM_OPS:
        return op[4]
    return max(op[2], 1) if name in COUNTED else 1


def outer_repeats(ops: list[Op]) -> list[int]:
    """The counts of the top-level repeats."""
    out, depth = [], 0
    for op in ops:
        name = OPCODES[op[0] - 1]
        if name == "repeat":
            if depth == 0:
                out.append(op[2])
            depth += 1
        elif name == "end":
            depth -= 1
    return out


def task_weights(prog: Program) -> dict[str, int]:
    """How many instances of each task template run: 1 for start tasks, and for start=no
    templates the (weighted) number of fork/spawn ops naming them."""
    weights = {t.name: (1 if t.start else 0) for t in prog.tasks}
    for _ in range(8):  # fork chains are short; iterate to a fixed point
        new = {t.name: (1 if t.start else 0) for t in prog.tasks}
        for t in prog.tasks:
            for op, mult in walk(t.ops):
                if op_name(op) in ("fork", "spawn"):
                    new[prog.tasks[op[2]].name] += weights.get(t.name, 0) * mult
        if new == weights:
            break
        weights = new
    return weights


def totals(prog: Program) -> dict[str, int]:
    """Weighted op totals over all task instances. Keys: op name (count= applied), and
    'load:VMA' etc. for memory ops, 'compute_cycles', 'sleep_cycles', 'kcopy_bytes'."""
    out: dict[str, int] = {}
    weights = task_weights(prog)

    def add(key: str, n: int) -> None:
        out[key] = out.get(key, 0) + n

    for t in prog.tasks:
        w = weights.get(t.name, 0)
        for op, mult in walk(t.ops):
            n, name = w * mult, op_name(op)
            add(name, n * op_count(op))
            if name in MEM_OPS:
                add(f"{name}:{prog.vma_names[op[2]]}", n * op_count(op))
            elif name in ("compute", "sleep"):
                add(f"{name}_cycles", n * op[2])
            elif name == "kcopy":
                add("kcopy_bytes", n * op[2])
    return out


def memory_refs(prog: Program) -> int:
    """Estimated memory references: user loads/stores/fetches plus one per 64-byte line
    that kcopy reads and one it writes."""
    t = totals(prog)
    return sum(t.get(k, 0) for k in MEM_OPS) + 2 * t.get("kcopy_bytes", 0) // 64


def task(prog: Program, name: str) -> TaskDecl:
    return next(t for t in prog.tasks if t.name == name)


def check_program(prog: Program, cpus: int) -> None:
    """Semantic checks beyond what the parser checks: CPUs, fork targets, and channel and
    kmap_local balance over every task instance."""
    for t in prog.tasks:
        if t.mm == MM_FORK and t.start:
            raise AssertionError(f"task {t.name}: mm=fork tasks must be start=no")
        if any(c >= cpus for c in t.cpus):
            raise AssertionError(f"task {t.name}: cpus={t.cpus_text} with only {cpus} CPUs")
    weights = task_weights(prog)
    chan: dict[int, list[int]] = {}
    for t in prog.tasks:
        kmap_bal = 0
        for op, mult in walk(t.ops):
            n, name = weights[t.name] * mult, op_name(op)
            if name == "fork" and prog.tasks[op[2]].mm != MM_FORK:
                raise AssertionError(f"{t.name}: fork {prog.tasks[op[2]].name}: not mm=fork")
            if name in MEM_OPS and op_count(op) < 1:
                raise AssertionError(f"{t.name}: count must be >= 1")
            if name == "cpu_offline" and op[2] == 0:
                raise AssertionError(f"{t.name}: offlining CPU 0")
            if name == "signal":
                chan.setdefault(op[2], [0, 0])[0] += n * op[3]
            elif name == "wait":
                chan.setdefault(op[2], [0, 0])[1] += n
            elif name == "kmap_local":
                kmap_bal += mult * op_count(op)
            elif name == "kunmap_local":
                kmap_bal -= mult * op_count(op)
        if kmap_bal:
            raise AssertionError(f"{t.name}: kmap_local and kunmap_local do not balance")
    for c, (signals, waits) in chan.items():
        if signals != waits:
            raise AssertionError(f"channel {prog.chan_names[c]}: {signals} signals but {waits} "
                                 "waits")
