"""Test helpers for workloads/: load definitions, render both templates with jinja2, and
extract what the renderings say (the gem5 script's command line, the op program's tasks,
repeats, pinning and weighted op totals), so the tests can compare them with the parameters.

Deliberately independent of the percpu package (the lead's loader): plain jinja2 + tomllib.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = ROOT / "workloads"
GUEST = WORKLOADS / "guest"
GUEST_BUILD = GUEST / "build"


def workload_dirs() -> list[Path]:
    return sorted(d for d in WORKLOADS.iterdir() if (d / "workload.toml").is_file())


def load_def(wdir: Path) -> dict[str, Any]:
    with open(wdir / "workload.toml", "rb") as f:
        return tomllib.load(f)


def defaults(defn: dict[str, Any]) -> dict[str, Any]:
    return {name: spec["default"] for name, spec in defn["params"].items()}


# Templates must render the same program whether or not the environment trims blocks:
# "plain" is jinja2's default, "trim" what percpu's loader uses (trim_blocks, lstrip_blocks).
STYLES = ("plain", "trim")


def render(
    wdir: Path,
    template: str,
    params: dict[str, Any],
    cpus: int,
    seed: int = 1,
    style: str = "plain",
) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(wdir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=style == "trim",
        lstrip_blocks=style == "trim",
    )
    return env.get_template(template).render(**params, cpus=cpus, seed=seed)


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


def params_from_flags(defn: dict[str, Any], flags: dict[str, str | bool]) -> dict[str, Any]:
    """Read every workload parameter back from the guest command line."""
    out: dict[str, Any] = {}
    for name, spec in defn["params"].items():
        flag = flag_name(name)
        if spec["type"] == "bool":
            on, off = flag in flags, "--no-" + flag[2:] in flags
            if on == off:
                raise AssertionError(f"bool {name}: need exactly one of {flag} / --no-{flag[2:]}")
            out[name] = on
        else:
            if flag not in flags or flags[flag] is True:
                raise AssertionError(f"parameter {name} missing from the command line ({flag})")
            out[name] = int(str(flags[flag]), 0)
    return out


# ---------------------------------------------------------------- op program

NAME = r"[A-Za-z_][A-Za-z0-9_.-]*"
SIZE_RE = re.compile(r"^(0x[0-9a-fA-F]+|\d+)(K|KiB|M|MiB|G|GiB)?$")
NUM_RE = re.compile(r"^(0x[0-9a-fA-F]+|\d+)$")
CPULIST_RE = re.compile(r"^(all|\d+(-\d+)?(,\d+(-\d+)?)*)$")
PROTS = {"r", "rw", "rx", "rwx"}
MEM_OPS = {"load", "store", "fetch"}
OPS = MEM_OPS | {
    "mmap",
    "munmap",
    "mprotect",
    "brk",
    "compute",
    "syscall",
    "repeat",
    "end",
    "yield",
    "sleep",
    "wait",
    "signal",
    "spawn",
    "fork",
    "exec",
    "exit",
    "kmap_local",
    "kunmap_local",
    "kmap",
    "kunmap",
    "kcopy",
    "percpu_access",
    "migrate",
    "affinity",
    "migrate_disable",
    "migrate_enable",
    "cpu_offline",
    "cpu_online",
}


def parse_num(text: str) -> int:
    if not NUM_RE.match(text):
        raise ValueError(f"not a number: {text!r}")
    return int(text, 0)


def parse_size(text: str) -> int:
    m = SIZE_RE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    mult = {
        None: 1,
        "K": 1 << 10,
        "KiB": 1 << 10,
        "M": 1 << 20,
        "MiB": 1 << 20,
        "G": 1 << 30,
        "GiB": 1 << 30,
    }[m.group(2)]
    return int(m.group(1), 0) * mult


def cpu_list(text: str) -> list[int] | None:
    """None for `all`, else the CPUs of a LIST like 3, 0-3, 0,2,5."""
    if text == "all":
        return None
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


@dataclass
class Op:
    name: str
    args: list[str]  # positional
    kw: dict[str, str]  # key=value
    line: int = field(compare=False)
    body: list[Op] = field(default_factory=list)  # for repeat


@dataclass
class Task:
    name: str
    mm: str
    cpus: str
    start: bool
    line: int = field(compare=False)


@dataclass
class OpProgram:
    mms: dict[str, dict[str, tuple[int, int, str]]]  # mm -> vma -> (addr, size, prot)
    tasks: dict[str, Task]
    programs: dict[str, list[Op]]


def _split(tokens: list[str]) -> tuple[list[str], dict[str, str]]:
    args, kw = [], {}
    for t in tokens:
        if "=" in t:
            k, _, v = t.partition("=")
            kw[k] = v
        else:
            args.append(t)
    return args, kw


def parse_ops(text: str) -> OpProgram:
    """Parse an op program (docs/op-program.md, version 1); raise ValueError on bad syntax."""
    mms: dict[str, dict[str, tuple[int, int, str]]] = {}
    tasks: dict[str, Task] = {}
    programs: dict[str, list[Op]] = {}
    first = True
    cur_mm: str | None = None
    cur_prog: str | None = None
    stack: list[list[Op]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indented = line[0].isspace()
        tokens = line.split()
        where = f"line {lineno}: {raw.strip()!r}"
        if first:
            if tokens != ["percpu-ops", "1"] or indented:
                raise ValueError(f"{where}: the first statement must be 'percpu-ops 1'")
            first = False
            continue
        if not indented:
            if stack and len(stack) > 1:
                raise ValueError(f"{where}: 'repeat' without 'end' in program {cur_prog}")
            cur_mm = cur_prog = None
            stack = []
            kind = tokens[0]
            if kind == "mm" and len(tokens) == 2 and re.fullmatch(NAME, tokens[1]):
                if tokens[1] in mms:
                    raise ValueError(f"{where}: mm {tokens[1]} declared twice")
                cur_mm = tokens[1]
                mms[cur_mm] = {}
            elif kind == "task" and len(tokens) >= 3 and re.fullmatch(NAME, tokens[1]):
                args, kw = _split(tokens[2:])
                if args or "mm" not in kw or set(kw) - {"mm", "cpus", "start"}:
                    raise ValueError(f"{where}: task NAME mm=MM [cpus=LIST] [start=yes|no]")
                if not CPULIST_RE.match(kw.get("cpus", "all")):
                    raise ValueError(f"{where}: bad cpus list")
                if kw.get("start", "yes") not in ("yes", "no"):
                    raise ValueError(f"{where}: start must be yes or no")
                if tokens[1] in tasks:
                    raise ValueError(f"{where}: task {tokens[1]} declared twice")
                tasks[tokens[1]] = Task(
                    tokens[1],
                    kw["mm"],
                    kw.get("cpus", "all"),
                    kw.get("start", "yes") == "yes",
                    lineno,
                )
            elif kind == "program" and len(tokens) == 2:
                if tokens[1] in programs:
                    raise ValueError(f"{where}: program {tokens[1]} declared twice")
                cur_prog = tokens[1]
                programs[cur_prog] = []
                stack = [programs[cur_prog]]
            else:
                raise ValueError(f"{where}: unknown top-level statement")
            continue
        if cur_mm is not None:
            if tokens[0] != "vma" or len(tokens) != 5:
                raise ValueError(f"{where}: expected 'vma NAME ADDR SIZE PROT'")
            _, vname, addr, size, prot = tokens
            if prot not in PROTS or not re.fullmatch(NAME, vname):
                raise ValueError(f"{where}: bad vma")
            mms[cur_mm][vname] = (parse_num(addr), parse_size(size), prot)
            continue
        if cur_prog is None:
            raise ValueError(f"{where}: indented line outside mm/program")
        name = tokens[0]
        if name not in OPS:
            raise ValueError(f"{where}: unknown op {name}")
        args, kw = _split(tokens[1:])
        op = Op(name, args, kw, lineno)
        if name == "end":
            if len(stack) < 2:
                raise ValueError(f"{where}: 'end' without 'repeat'")
            stack.pop()
            continue
        stack[-1].append(op)
        if name == "repeat":
            if len(args) != 1 or parse_num(args[0]) < 1:
                raise ValueError(f"{where}: repeat N with N >= 1")
            stack.append(op.body)
    if first:
        raise ValueError("empty op program")
    if len(stack) > 1:
        raise ValueError(f"'repeat' without 'end' at the end of program {cur_prog}")
    return OpProgram(mms, tasks, programs)


def walk(ops: list[Op], mult: int = 1):
    """Yield (op, multiplier) for every non-repeat op, the multiplier being the product of
    the enclosing repeat counts."""
    for op in ops:
        if op.name == "repeat":
            yield from walk(op.body, mult * int(op.args[0], 0))
        else:
            yield op, mult


def op_count(op: Op) -> int:
    """How many times one execution of op does its thing (count= for counted ops)."""
    return int(op.kw.get("count", "1"), 0)


def task_weights(prog: OpProgram) -> dict[str, int]:
    """How many instances of each task template run: 1 for start tasks, and for start=no
    templates the (weighted) number of fork/spawn ops naming them."""
    weights = {name: (1 if t.start else 0) for name, t in prog.tasks.items()}
    for _ in range(8):  # fork chains are short; iterate to a fixed point
        new = {name: (1 if t.start else 0) for name, t in prog.tasks.items()}
        for name, ops in prog.programs.items():
            for op, mult in walk(ops):
                if op.name in ("fork", "spawn") and op.args and op.args[0] in new:
                    new[op.args[0]] += weights.get(name, 0) * mult
        if new == weights:
            break
        weights = new
    return weights


def totals(prog: OpProgram) -> dict[str, int]:
    """Weighted op totals over all task instances. Keys: op name (count= applied), and
    'load:VMA' etc. for memory ops, 'compute_cycles', 'sleep_cycles', 'kcopy_bytes'."""
    out: dict[str, int] = {}
    weights = task_weights(prog)

    def add(key: str, n: int) -> None:
        out[key] = out.get(key, 0) + n

    for name, ops in prog.programs.items():
        w = weights.get(name, 0)
        for op, mult in walk(ops):
            n = w * mult
            add(op.name, n * op_count(op))
            if op.name in MEM_OPS:
                add(f"{op.name}:{op.args[0]}", n * op_count(op))
            elif op.name in ("compute", "sleep"):
                add(f"{op.name}_cycles", n * int(op.args[0], 0))
            elif op.name == "kcopy":
                add("kcopy_bytes", n * parse_size(op.args[0]))
    return out


def outer_repeats(ops: list[Op]) -> list[int]:
    return [int(op.args[0], 0) for op in ops if op.name == "repeat"]


def memory_refs(prog: OpProgram) -> int:
    """Estimated memory references: user loads/stores/fetches plus one per 64-byte line
    that kcopy reads and one it writes."""
    t = totals(prog)
    return sum(t.get(k, 0) for k in MEM_OPS) + 2 * t.get("kcopy_bytes", 0) // 64


def check_program(prog: OpProgram, cpus: int) -> None:
    """Semantic checks beyond syntax: references, CPUs, channel and kmap balance."""
    for name, t in prog.tasks.items():
        if t.mm not in prog.mms and t.mm not in ("kernel", "fork"):
            raise AssertionError(f"task {name}: unknown mm {t.mm}")
        if t.mm == "fork" and t.start:
            raise AssertionError(f"task {name}: mm=fork tasks must be start=no")
        allowed = cpu_list(t.cpus)
        if allowed is not None and any(c >= cpus for c in allowed):
            raise AssertionError(f"task {name}: cpus={t.cpus} with only {cpus} CPUs")
        if name not in prog.programs:
            raise AssertionError(f"task {name} has no program")
    for name in prog.programs:
        if name not in prog.tasks:
            raise AssertionError(f"program {name} has no task")
    parent_mm: dict[str, set[str]] = {}
    for name, ops in prog.programs.items():
        for op, _ in walk(ops):
            if op.name == "fork":
                target = prog.tasks.get(op.args[0])
                if target is None or target.mm != "fork":
                    raise AssertionError(f"{name}: fork {op.args[0]}: not an mm=fork task")
                parent_mm.setdefault(op.args[0], set()).add(prog.tasks[name].mm)
    weights = task_weights(prog)
    chan: dict[str, list[int]] = {}
    for name, ops in prog.programs.items():
        mm = prog.tasks[name].mm
        mms = parent_mm.get(name, set()) if mm == "fork" else {mm}
        vmas = {v for m in mms for v in prog.mms.get(m, {})}
        kmap_bal = 0
        for op, mult in walk(ops):
            n = weights[name] * mult
            if op.name == "exec":
                if op.args[0] not in prog.mms:
                    raise AssertionError(f"{name}: exec of unknown mm {op.args[0]}")
                vmas = set(prog.mms[op.args[0]])
            elif op.name == "mmap":
                if len(op.args) != 4 or op.args[3] not in PROTS:
                    raise AssertionError(f"{name} line {op.line}: mmap VMA ADDR SIZE PROT")
                if op.args[1] != "auto":
                    parse_num(op.args[1])
                parse_size(op.args[2])
                vmas.add(op.args[0])
            elif op.name in MEM_OPS or op.name in ("munmap", "mprotect", "brk"):
                if op.args[0] not in vmas:
                    raise AssertionError(f"{name} line {op.line}: unknown VMA {op.args[0]}")
                if op_count(op) < 1:
                    raise AssertionError(f"{name} line {op.line}: count must be >= 1")
            elif op.name in ("migrate", "cpu_offline", "cpu_online"):
                cpu = parse_num(op.args[0])
                if cpu >= cpus:
                    raise AssertionError(f"{name} line {op.line}: CPU {cpu} >= {cpus}")
                if op.name == "cpu_offline" and cpu == 0:
                    raise AssertionError(f"{name} line {op.line}: offlining CPU 0")
            elif op.name in ("compute", "sleep", "syscall") and op.args:
                parse_num(op.args[0])
            elif op.name == "signal":
                chan.setdefault(op.args[0], [0, 0])[0] += n * int(
                    op.args[1] if len(op.args) > 1 else "1", 0
                )
            elif op.name == "wait":
                chan.setdefault(op.args[0], [0, 0])[1] += n
            elif op.name == "kmap_local":
                kmap_bal += mult * op_count(op)
            elif op.name == "kunmap_local":
                kmap_bal -= mult * op_count(op)
        if kmap_bal:
            raise AssertionError(f"{name}: kmap_local and kunmap_local do not balance")
    for c, (signals, waits) in chan.items():
        if signals != waits:
            raise AssertionError(f"channel {c}: {signals} signals but {waits} waits")
