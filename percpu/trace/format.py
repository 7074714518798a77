"""The percpu trace file (docs/traces.md): read, write and validate `percpu-trace 1` files.

A trace is line-oriented UTF-8 text, optionally gzip-compressed (recognised by its magic
bytes, whatever the file is called). The first statement is `percpu-trace 1`, the last
`end N` where N counts the records in between, so that a truncated file is recognised.
Fields are separated by single spaces; free text (commands, comms, paths) is
percent-encoded so that it is always one field.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, unquote

from percpu.atomic import write_atomic
from percpu.errors import UsageError

FORMAT_VERSION = 1
HEADER = f"percpu-trace {FORMAT_VERSION}"

# Task classes: the traced command's tree, another user process, a kernel thread, the idle
# task (tid 0), the recorder itself (perf and its threads).
TASK_CLASSES = ("c", "u", "k", "i", "r")
FAULT_KINDS = ("r", "w", "x")
ACCESS_KINDS = ("I", "L", "S")
MAP_OPS = ("mmap", "munmap", "mprotect", "brk")
SLOT_LEVELS = ("pgd", "pud", "pmd")


class TraceError(UsageError):
    """A file that is not a well-formed percpu trace: names the file, the line and the fix."""


class Task(NamedTuple):
    tid: int
    pid: int
    cls: str
    comm: str


class Switch(NamedTuple):
    t: int
    cpu: int
    prev: int
    next: int
    state: str


class Fork(NamedTuple):
    t: int
    cpu: int
    tid: int
    child: int


class Exec(NamedTuple):
    t: int
    cpu: int
    tid: int
    path: str


class Exit(NamedTuple):
    t: int
    cpu: int
    tid: int


class Fault(NamedTuple):
    t: int
    cpu: int
    tid: int
    addr: int
    kind: str
    err: int  # x86 page-fault error code, -1 when the source does not give it


class MemMap(NamedTuple):
    t: int
    cpu: int
    tid: int
    op: str
    addr: int
    length: int
    prot: int  # PROT_* bits (1 read, 2 write, 4 exec)


class Vma(NamedTuple):
    pid: int
    start: int
    end: int
    perms: str
    offset: int
    name: str


class Access(NamedTuple):
    pid: int
    kind: str
    addr: int
    count: int
    stride: int


class Slots(NamedTuple):
    pid: int
    level: str
    prefix: tuple[int, ...]
    indices: tuple[int, ...]


Event = Switch | Fork | Exec | Exit | Fault | MemMap

_EVENT_TAGS = {Switch: "S", Fork: "F", Exec: "X", Exit: "E", Fault: "P", MemMap: "M"}


@dataclass
class Trace:
    """Everything one trace file holds, in file order."""

    meta: dict[str, str] = field(default_factory=dict)
    tasks: dict[int, Task] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    vmas: list[Vma] = field(default_factory=list)
    accesses: list[Access] = field(default_factory=list)
    slots: list[Slots] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.meta.get("kind", "run")

    def sources(self) -> list[str]:
        return [s for s in self.meta.get("sources", "").split(",") if s]


def enc(text: str) -> str:
    """Percent-encode free text into one non-empty field."""
    if not text:
        return "-"
    q = quote(text, safe="/:._-+=,@")
    return "%2D" if q == "-" else q


def dec(field_text: str) -> str:
    return "" if field_text == "-" else unquote(field_text)


def _hex(v: int) -> str:
    return f"{v:#x}"


def _int(text: str) -> int:
    return int(text, 0)


def format_lines(trace: Trace) -> list[str]:
    """The file's lines (without newlines), header and end line included."""
    out = [HEADER]
    for key, value in trace.meta.items():
        out.append(f"meta {key} {enc(value)}")
    for t in trace.tasks.values():
        out.append(f"task {t.tid} {t.pid} {t.cls} {enc(t.comm)}")
    for e in trace.events:
        tag = _EVENT_TAGS[type(e)]
        if tag == "S":
            out.append(f"S {e.t} {e.cpu} {e.prev} {e.next} {e.state}")
        elif tag == "F":
            out.append(f"F {e.t} {e.cpu} {e.tid} {e.child}")
        elif tag == "X":
            out.append(f"X {e.t} {e.cpu} {e.tid} {enc(e.path)}")
        elif tag == "E":
            out.append(f"E {e.t} {e.cpu} {e.tid}")
        elif tag == "P":
            err = "-" if e.err < 0 else _hex(e.err)
            out.append(f"P {e.t} {e.cpu} {e.tid} {_hex(e.addr)} {e.kind} {err}")
        else:
            out.append(f"M {e.t} {e.cpu} {e.tid} {e.op} {_hex(e.addr)} {_hex(e.length)} {e.prot}")
    for v in trace.vmas:
        out.append(f"V {v.pid} {_hex(v.start)} {_hex(v.end)} {v.perms} {_hex(v.offset)} "
                   f"{enc(v.name)}")
    for s in trace.slots:
        prefix = ".".join(str(i) for i in s.prefix) or "-"
        indices = ",".join(str(i) for i in s.indices) or "-"
        out.append(f"G {s.pid} {s.level} {prefix} {indices}")
    for a in trace.accesses:
        out.append(f"A {a.pid} {a.kind} {_hex(a.addr)} {a.count} {a.stride}")
    out.append(f"end {len(out) - 1}")
    return out


def format_trace(trace: Trace) -> str:
    return "\n".join(format_lines(trace)) + "\n"


def write_trace(trace: Trace, path: Path, *, compress: bool | None = None) -> Path:
    """Write atomically (a temporary file beside PATH, renamed); gzip when PATH ends in .gz."""
    path = Path(path)
    if compress is None:
        compress = path.name.endswith(".gz")
    data = format_trace(trace).encode()
    if compress:
        data = gzip.compress(data, mtime=0)
    try:
        path.resolve().parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}; choose another --out") from None
    return path


class _Reader:
    def __init__(self, source: str):
        self.source = source
        self.lineno = 0

    def fail(self, what: str) -> TraceError:
        return TraceError(f"{self.source}:{self.lineno}: {what}")

    def parse(self, text: str) -> Trace:
        trace = Trace()
        seen_header = False
        records = 0
        ended = False
        for self.lineno, raw in enumerate(text.split("\n"), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if ended:
                raise self.fail("text after the 'end' line")
            words = line.split(" ")
            if not seen_header:
                if line != HEADER:
                    if line.startswith("percpu-trace "):
                        raise self.fail(f"unsupported trace version '{line}': this percpu reads "
                                        f"'{HEADER}'; record it again with this version")
                    raise TraceError(f"{self.source}: not a percpu trace (first line is not "
                                     f"'{HEADER}'); record one with `percpu trace record`")
                seen_header = True
                continue
            tag = words[0]
            if tag == "end":
                if len(words) != 2 or not words[1].isdigit():
                    raise self.fail("expected 'end N'")
                if int(words[1]) != records:
                    raise self.fail(f"'end {words[1]}' but the file holds {records} records: "
                                    "the file is damaged; record it again")
                ended = True
                continue
            records += 1
            try:
                self.record(trace, tag, words)
            except TraceError:
                raise
            except (ValueError, IndexError):
                raise self.fail(f"malformed '{tag}' record: {line[:80]!r}") from None
        if not seen_header:
            raise TraceError(f"{self.source}: empty file, not a percpu trace; record one with "
                             "`percpu trace record`")
        if not ended:
            raise TraceError(f"{self.source}: truncated trace (no 'end' line after {records} "
                             "records): the recording was interrupted; record it again")
        return trace

    def expect(self, words: list[str], n: int, usage: str) -> None:
        if len(words) != n:
            raise self.fail(f"expected '{usage}'")

    def record(self, trace: Trace, tag: str, w: list[str]) -> None:
        if tag == "meta":
            self.expect(w, 3, "meta KEY VALUE")
            trace.meta[w[1]] = dec(w[2])
        elif tag == "task":
            self.expect(w, 5, "task TID PID CLASS COMM")
            if w[3] not in TASK_CLASSES:
                raise self.fail(f"task class '{w[3]}': expected one of {', '.join(TASK_CLASSES)}")
            trace.tasks[int(w[1])] = Task(int(w[1]), int(w[2]), w[3], dec(w[4]))
        elif tag == "S":
            self.expect(w, 6, "S T CPU PREV NEXT STATE")
            trace.events.append(Switch(int(w[1]), int(w[2]), int(w[3]), int(w[4]), w[5]))
        elif tag == "F":
            self.expect(w, 5, "F T CPU TID CHILD")
            trace.events.append(Fork(int(w[1]), int(w[2]), int(w[3]), int(w[4])))
        elif tag == "X":
            self.expect(w, 5, "X T CPU TID PATH")
            trace.events.append(Exec(int(w[1]), int(w[2]), int(w[3]), dec(w[4])))
        elif tag == "E":
            self.expect(w, 4, "E T CPU TID")
            trace.events.append(Exit(int(w[1]), int(w[2]), int(w[3])))
        elif tag == "P":
            self.expect(w, 7, "P T CPU TID ADDR KIND ERR")
            if w[5] not in FAULT_KINDS:
                raise self.fail(f"fault kind '{w[5]}': expected r, w or x")
            err = -1 if w[6] == "-" else _int(w[6])
            trace.events.append(Fault(int(w[1]), int(w[2]), int(w[3]), _int(w[4]), w[5], err))
        elif tag == "M":
            self.expect(w, 8, "M T CPU TID OP ADDR LEN PROT")
            if w[4] not in MAP_OPS:
                raise self.fail(f"map op '{w[4]}': expected one of {', '.join(MAP_OPS)}")
            trace.events.append(MemMap(int(w[1]), int(w[2]), int(w[3]), w[4], _int(w[5]),
                                       _int(w[6]), int(w[7])))
        elif tag == "V":
            self.expect(w, 7, "V PID START END PERMS OFFSET NAME")
            trace.vmas.append(Vma(int(w[1]), _int(w[2]), _int(w[3]), w[4], _int(w[5]),
                                  dec(w[6])))
        elif tag == "G":
            self.expect(w, 5, "G PID LEVEL PREFIX INDICES")
            if w[2] not in SLOT_LEVELS:
                raise self.fail(f"slot level '{w[2]}': expected pgd, pud or pmd")
            prefix = () if w[3] == "-" else tuple(int(i) for i in w[3].split("."))
            indices = () if w[4] == "-" else tuple(int(i) for i in w[4].split(","))
            trace.slots.append(Slots(int(w[1]), w[2], prefix, indices))
        elif tag == "A":
            self.expect(w, 6, "A PID KIND ADDR COUNT STRIDE")
            if w[2] not in ACCESS_KINDS:
                raise self.fail(f"access kind '{w[2]}': expected I, L or S")
            trace.accesses.append(Access(int(w[1]), w[2], _int(w[3]), int(w[4]), int(w[5])))
        else:
            raise self.fail(f"unknown record '{tag}': see docs/traces.md")


def parse_trace(text: str, source: str = "<trace>") -> Trace:
    """Parse trace text; raises TraceError (a UsageError) naming the line."""
    return _Reader(source).parse(text)


def read_trace(path: str | os.PathLike) -> Trace:
    """Read a trace file, gzip'd or not; every problem is one TraceError line."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise TraceError(f"{p}: no such trace file; record one with `percpu trace record`"
                         ) from None
    except IsADirectoryError:
        raise TraceError(f"{p} is a directory, not a trace file") from None
    except OSError as exc:
        raise TraceError(f"{p}: cannot read: {exc.strerror}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.GzipFile(fileobj=io.BytesIO(data)).read()
        except (EOFError, OSError, zlib.error):
            raise TraceError(f"{p}: truncated or damaged gzip data: record the trace again"
                             ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TraceError(f"{p}: not a percpu trace (binary data); record one with "
                         "`percpu trace record`") from None
    return parse_trace(text, source=str(p))
