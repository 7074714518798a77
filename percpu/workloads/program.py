"""Parser for the engine's op program (docs/op-program.md) into what percpu._core.run takes.

Parsing happens once per run in Python; the C++ interpreter gets flat integer ops.
Every error names the line and says what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from percpu.errors import UsageError
from percpu.params import core

FORMAT_VERSION = 1

# The op table is core/engine/program.h's PERCPU_OPS: codes numbered from 1, and each
# op's operands by name and the field of the op tuple they go in (encode below).
OPCODES: tuple[str, ...] = tuple(core().OP_CODES)
CODE = {name: i + 1 for i, name in enumerate(OPCODES)}
OPERANDS: dict[str, tuple[tuple[str, str, str], ...]] = dict(core().OP_OPERANDS)
_FIELDS: tuple[str, ...] = tuple(core().OP_FIELDS)  # the op tuple after its code
ACCESS_KINDS = {name: i for i, name in enumerate(core().ACCESS_KINDS)}
ACCESS_RANDOM = core().ACCESS_RANDOM
PROTS = {"r": 1, "rw": 3, "rx": 5, "rwx": 7}
VMA_AUTO = core().VMA_AUTO  # a template VMA placed below the mmap base
VMA_POPULATE = core().VMA_POPULATE  # in a template VMA's prot: mapped before the start
MM_KERNEL, MM_FORK = core().MM_KERNEL, core().MM_FORK
MAX_CPUS = core().MAX_CPUS

OpTuple = tuple[int, int, int, int, int, int]


def encode(op: str, **operands: int) -> OpTuple:
    """The op tuple percpu._core.run takes, its operands placed by the op table."""
    spec = OPERANDS[op]
    names = [name for _, name, _ in spec]
    if sorted(operands) != sorted(names):
        raise TypeError(f"op {op} takes operands {names}, got {sorted(operands)}")
    fields = dict.fromkeys(_FIELDS, 0)
    for field_name, name, _ in spec:
        fields[field_name] = operands[name]
    return (CODE[op], *(fields[f] for f in _FIELDS))

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_SIZE = re.compile(r"^(0x[0-9a-fA-F]+|\d+)(K|KiB|M|MiB|G|GiB)?$")
_UNITS = {None: 1, "K": 1 << 10, "KiB": 1 << 10, "M": 1 << 20, "MiB": 1 << 20,
          "G": 1 << 30, "GiB": 1 << 30}


class ProgramError(UsageError):
    """A malformed op program: names the source, the line and what was expected."""


@dataclass
class TaskDecl:
    name: str
    mm: int
    cpus: list[int]
    start: bool
    ops: list[OpTuple] = field(default_factory=list)
    # Raw cpus text, kept for summaries and for the rendering-agreement tests.
    cpus_text: str = "all"


@dataclass
class Program:
    """A parsed op program, in the shape percpu._core.run takes."""

    mms: list[tuple[str, list[tuple[int, int, int, int]]]] = field(default_factory=list)
    tasks: list[TaskDecl] = field(default_factory=list)
    vma_names: list[str] = field(default_factory=list)
    chan_names: list[str] = field(default_factory=list)

    def core_args(self) -> dict:
        return {
            "mms": self.mms,
            "tasks": [(t.name, t.mm, t.cpus, t.start, t.ops) for t in self.tasks],
            "vma_names": self.vma_names,
            "chan_names": self.chan_names,
        }

    def started_tasks(self) -> list[TaskDecl]:
        return [t for t in self.tasks if t.start]


def parse_size(text: str) -> int:
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"'{text}' is not a size (e.g. 4096, 0x1000, 64K, 2MiB)")
    return int(m.group(1), 0) * _UNITS[m.group(2)]


def parse_cpus(text: str, ncpus: int) -> list[int]:
    if text == "all":
        return list(range(ncpus))
    cpus: set[int] = set()
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            cpus.update(range(int(lo), int(hi) + 1))
        else:
            cpus.add(int(part))
    bad = [c for c in cpus if c < 0 or c >= MAX_CPUS]
    if bad:
        raise ValueError(f"CPU {bad[0]} is out of range 0..{MAX_CPUS - 1}")
    return sorted(cpus)


class _Parser:
    def __init__(self, text: str, source: str, ncpus: int):
        self.text = text
        self.source = source
        self.ncpus = ncpus
        self.prog = Program()
        self.mm_index: dict[str, int] = {}
        self.task_index: dict[str, int] = {}
        self.vma_index: dict[str, int] = {}
        self.chan_index: dict[str, int] = {}
        self.programs: dict[str, list[tuple[int, list[str]]]] = {}
        self.waiting_spawns: list[tuple[int, str]] = []  # (line, task): checked at the end
        self.lineno = 0

    def fail(self, what: str, lineno: int | None = None) -> ProgramError:
        return ProgramError(f"{self.source}:{lineno or self.lineno}: {what}")

    def intern(self, table: dict[str, int], names: list[str], name: str, kind: str) -> int:
        if not _NAME.match(name):
            raise self.fail(f"'{name}' is not a valid {kind} name")
        if name not in table:
            table[name] = len(names)
            names.append(name)
        return table[name]

    def parse(self) -> Program:
        lines = self.text.splitlines()
        seen_header = False
        current_mm: int | None = None
        current_program: list[tuple[int, list[str]]] | None = None
        for self.lineno, raw in enumerate(lines, 1):
            line = raw.split("#", 1)[0].rstrip()
            if not line.strip():
                continue
            indented = line[0] in " \t"
            words = line.split()
            if not seen_header:
                if words != ["percpu-ops", str(FORMAT_VERSION)]:
                    raise self.fail(f"expected 'percpu-ops {FORMAT_VERSION}' as the first statement")
                seen_header = True
                continue
            if indented:
                if current_program is not None:
                    current_program.append((self.lineno, words))
                elif current_mm is not None and words[0] == "vma":
                    self.vma(current_mm, words)
                else:
                    raise self.fail("an indented line must follow 'mm' (vma lines) or 'program'")
                continue
            current_mm, current_program = None, None
            kind = words[0]
            if kind == "mm":
                current_mm = self.mm(words)
            elif kind == "task":
                self.task(words)
            elif kind == "program":
                if len(words) != 2:
                    raise self.fail("expected 'program TASK'")
                if words[1] not in self.task_index:
                    raise self.fail(f"program for undeclared task '{words[1]}': declare it with 'task'")
                if words[1] in self.programs:
                    raise self.fail(f"task '{words[1]}' already has a program")
                current_program = self.programs.setdefault(words[1], [])
            else:
                raise self.fail(f"unknown statement '{kind}': expected mm, task or program")
        if not seen_header:
            raise ProgramError(f"{self.source}: empty program: expected 'percpu-ops {FORMAT_VERSION}'")
        for task in self.prog.tasks:
            task.ops = self.ops(self.programs.get(task.name, []))
        for line_no, name in self.waiting_spawns:
            ops = self.prog.tasks[self.task_index[name]].ops
            if not ops or ops[0][0] != CODE["wait"]:
                raise self.fail(f"spawn {name} waiting: {name}'s program must begin with "
                                "'wait CHAN'", line_no)
        if not self.prog.started_tasks():
            raise ProgramError(f"{self.source}: no task starts (all have start=no)")
        return self.prog

    def mm(self, words: list[str]) -> int:
        if len(words) != 2:
            raise self.fail("expected 'mm NAME'")
        if words[1] in self.mm_index or words[1] in ("kernel", "fork"):
            raise self.fail(f"mm '{words[1]}' declared twice or reserved")
        self.mm_index[words[1]] = len(self.prog.mms)
        self.prog.mms.append((words[1], []))
        return self.mm_index[words[1]]

    def vma(self, mm: int, words: list[str]) -> None:
        if len(words) not in (5, 6) or (len(words) == 6 and words[5] != "populate"):
            raise self.fail("expected 'vma NAME ADDR|auto SIZE PROT [populate]'")
        name = self.intern(self.vma_index, self.prog.vma_names, words[1], "VMA")
        size = self.number(words[3])
        prot = self.prot(words[4])
        if len(words) == 6:  # faulted in before the program starts (core/linux/mm.h)
            prot |= VMA_POPULATE
        if words[2] == "auto":
            # Placed top-down below the image's mmap base when the image is made,
            # as a buffer the program mmaps before it starts (core/linux/mm.h kVmaAuto).
            if not 1 <= size <= 1 << 46:
                raise self.fail("VMA size must be 1 byte to 64 TiB")
            start = VMA_AUTO
        else:
            start = self.number(words[2])
            if start % 4096 or start + size > 1 << 47:
                raise self.fail("VMA address must be page aligned and below 2^47 (user half)")
        self.prog.mms[mm][1].append((name, start, start + ((size + 4095) & ~4095), prot))

    def task(self, words: list[str]) -> None:
        if len(words) < 3:
            raise self.fail("expected 'task NAME mm=MM [cpus=LIST] [start=yes|no]'")
        name = words[1]
        if not _NAME.match(name) or name in self.task_index:
            raise self.fail(f"task name '{name}' is invalid or declared twice")
        opts = dict(self.option(w) for w in words[2:])
        unknown = set(opts) - {"mm", "cpus", "start"}
        if unknown:
            raise self.fail(f"unknown task option '{min(unknown)}': expected mm=, cpus=, start=")
        if "mm" not in opts:
            raise self.fail("task needs mm=NAME, mm=kernel or mm=fork")
        mm_text = opts["mm"]
        if mm_text == "kernel":
            mm = MM_KERNEL
        elif mm_text == "fork":
            mm = MM_FORK
        elif mm_text in self.mm_index:
            mm = self.mm_index[mm_text]
        else:
            raise self.fail(f"task '{name}' uses undeclared mm '{mm_text}': declare it with 'mm'")
        cpus_text = opts.get("cpus", "all")
        try:
            cpus = parse_cpus(cpus_text, self.ncpus)
        except ValueError as exc:
            raise self.fail(f"bad cpus= for task '{name}': {exc}") from None
        start_text = opts.get("start", "yes" if mm != MM_FORK else "no")
        if start_text not in ("yes", "no"):
            raise self.fail("start= takes yes or no")
        self.task_index[name] = len(self.prog.tasks)
        self.prog.tasks.append(TaskDecl(name, mm, cpus, start_text == "yes", cpus_text=cpus_text))

    def option(self, word: str) -> tuple[str, str]:
        if "=" not in word:
            raise self.fail(f"expected KEY=VALUE, got '{word}'")
        key, value = word.split("=", 1)
        return key, value

    def number(self, text: str) -> int:
        try:
            return parse_size(text)
        except ValueError as exc:
            raise self.fail(str(exc)) from None

    def prot(self, text: str) -> int:
        if text not in PROTS:
            raise self.fail(f"bad protection '{text}': expected one of {', '.join(PROTS)}")
        return PROTS[text]

    def ops(self, lines: list[tuple[int, list[str]]]) -> list[OpTuple]:
        ops: list[OpTuple] = []
        open_loops: list[tuple[int, int]] = []  # (op index, count) of each open repeat
        for self.lineno, words in lines:
            op, args = words[0], words[1:]
            if op == "repeat":
                if len(args) != 1:
                    raise self.fail("expected 'repeat N'")
                open_loops.append((len(ops), self.number(args[0])))
                ops.append(encode("repeat", count=0, end=0))  # the end is known at 'end'
            elif op == "end":
                if args:
                    raise self.fail("expected 'end'")
                if not open_loops:
                    raise self.fail("'end' without 'repeat'")
                start, count = open_loops.pop()
                ops[start] = encode("repeat", count=count, end=len(ops))
                ops.append(encode("end", repeat=start))
            else:
                ops.append(self.op(op, args))
        if open_loops:
            raise self.fail("'repeat' without 'end'")
        return ops

    def op(self, op: str, args: list[str]) -> OpTuple:
        def need(n_min: int, n_max: int, usage: str) -> None:
            if not n_min <= len(args) <= n_max:
                raise self.fail(f"expected '{op} {usage}'".rstrip())

        def count_arg(default: int = 1) -> int:
            if not args:
                return default
            need(1, 1, "[count=N]")
            key, value = self.option(args[0])
            if key != "count":
                raise self.fail(f"expected count=N, got '{args[0]}'")
            return self.number(value)

        vma = lambda name: self.intern(self.vma_index, self.prog.vma_names, name, "VMA")
        chan = lambda name: self.intern(self.chan_index, self.prog.chan_names, name, "channel")
        if op in ACCESS_KINDS:
            if not args:
                raise self.fail(f"expected '{op} VMA [OFF] [count=N] [stride=S] [random]'")
            name, offset, count, stride, flags = vma(args[0]), 0, 1, 64, ACCESS_KINDS[op]
            for word in args[1:]:
                if word == "random":
                    flags |= ACCESS_RANDOM
                elif word.startswith("count="):
                    count = self.number(word[6:])
                elif word.startswith("stride="):
                    stride = self.number(word[7:])
                elif "=" not in word:
                    offset = self.number(word)
                else:
                    raise self.fail(f"unknown access option '{word}': expected count=, stride=, random")
            if stride == 0 and count > 1 and not flags & ACCESS_RANDOM:
                stride = 64
            return encode("access", mode=flags, vma=name, offset=offset, count=count, stride=stride)
        if op == "mmap":
            need(4, 4, "VMA ADDR|auto SIZE PROT")
            addr = -1 if args[1] == "auto" else self.number(args[1])
            if addr != -1 and (addr % 4096 or addr >= 1 << 47):
                raise self.fail("mmap address must be page aligned and in the user half")
            if not 1 <= self.number(args[2]) <= 1 << 46:
                raise self.fail("mmap size must be 1 byte to 64 TiB")
            return encode("mmap", vma=vma(args[0]), addr=addr, size=self.number(args[2]),
                          prot=self.prot(args[3]))
        if op == "munmap":
            if len(args) not in (1, 3):
                raise self.fail("expected 'munmap VMA [OFF LEN]'")
            off, length = (self.number(args[1]), self.number(args[2])) if len(args) == 3 else (0, -1)
            if off % 4096 or (length != -1 and length % 4096):
                raise self.fail("munmap offset and length must be page aligned")
            return encode("munmap", vma=vma(args[0]), offset=off, length=length)
        if op == "mprotect":
            need(4, 4, "VMA OFF LEN PROT")
            off, length = self.number(args[1]), self.number(args[2])
            if off % 4096 or length % 4096:
                raise self.fail("mprotect offset and length must be page aligned")
            return encode("mprotect", vma=vma(args[0]), offset=off, length=length,
                          prot=self.prot(args[3]))
        if op == "brk":
            need(2, 2, "VMA SIZE")
            return encode("brk", vma=vma(args[0]), size=self.number(args[1]))
        if op in ("compute", "sleep"):
            need(1, 1, "N")
            return encode(op, cycles=self.number(args[0]))
        if op == "syscall":
            need(0, 1, "[CYCLES]")
            return encode(op, cycles=self.number(args[0]) if args else 0)
        if op in ("yield", "exit", "migrate_disable", "migrate_enable", "kernel_pgd_add"):
            need(0, 0, "")
            return encode(op)
        if op == "wait":
            need(1, 1, "CHAN")
            return encode(op, chan=chan(args[0]))
        if op == "signal":
            need(1, 2, "CHAN [N]")
            return encode(op, chan=chan(args[0]), n=self.number(args[1]) if len(args) > 1 else 1)
        if op in ("spawn", "fork"):
            need(1, 2 if op == "spawn" else 1, "TASK [waiting]" if op == "spawn" else "TASK")
            waiting = len(args) == 2
            if waiting and args[1] != "waiting":
                raise self.fail(f"spawn takes TASK [waiting], not '{args[1]}'")
            if args[0] not in self.task_index:
                raise self.fail(f"{op} of undeclared task '{args[0]}': declare it with 'task'")
            target = self.prog.tasks[self.task_index[args[0]]]
            if op == "fork" and target.mm != MM_FORK:
                raise self.fail(f"fork target '{args[0]}' must be declared with mm=fork")
            if op == "spawn" and target.mm == MM_FORK:
                raise self.fail(f"spawn target '{args[0]}' has mm=fork: use fork")
            if waiting:  # its program may come later in the file: checked at the end
                self.waiting_spawns.append((self.lineno, args[0]))
            if op == "fork":
                return encode(op, task=self.task_index[args[0]])
            return encode(op, task=self.task_index[args[0]], waiting=int(waiting))
        if op == "exec":
            need(1, 1, "MM")
            if args[0] not in self.mm_index:
                raise self.fail(f"exec of undeclared mm '{args[0]}'")
            return encode(op, mm=self.mm_index[args[0]])
        if op in ("kmap_local", "kunmap_local", "kmap", "kunmap", "percpu_access"):
            n = count_arg()
            if n < 1:
                raise self.fail("count must be at least 1")
            return encode(op, count=n)
        if op == "kcopy":
            need(1, 1, "BYTES")
            return encode(op, bytes=self.number(args[0]))
        if op in ("migrate", "cpu_offline", "cpu_online"):
            need(1, 1, "CPU")
            cpu = self.number(args[0])
            if cpu >= self.ncpus:
                raise self.fail(f"CPU {cpu} does not exist on this {self.ncpus}-CPU machine")
            return encode(op, cpu=cpu)
        if op == "affinity":
            need(1, 1, "LIST")
            try:
                cpus = parse_cpus(args[0], self.ncpus)
            except ValueError as exc:
                raise self.fail(str(exc)) from None
            words = [0, 0, 0, 0]
            for c in cpus:
                words[c // 64] |= 1 << (c % 64)
            # Signed 64-bit words for the C++ side.
            signed = [w - (1 << 64) if w >= 1 << 63 else w for w in words]
            return encode(op, w0=signed[0], w1=signed[1], w2=signed[2], w3=signed[3])
        raise self.fail(f"unknown op '{op}': see docs/op-program.md for the list")


def parse_program(text: str, ncpus: int, source: str = "<program>") -> Program:
    """Parse op-program text for a machine of ncpus CPUs; raises ProgramError."""
    return _Parser(text, source, ncpus).parse()
