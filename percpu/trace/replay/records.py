"""What the builder derives from a trace: address spaces (Epoch), engine tasks (Actor),
runs of a thread on a CPU (Run), the op slots in a run (Slot) and points in them (Point)."""

from __future__ import annotations

from dataclasses import dataclass, field

# ------------------------------------------------------------------ structures


@dataclass(eq=False)
class Epoch:
    """One address space: a process from its start (or an exec) to its next exec or end."""

    eid: int
    pid: int
    k: int
    start: int
    parent: Epoch | None = None  # the forking epoch (k == 0, not the root)
    lineage: int = 0
    mode: str = "template"  # root | template | fork | exec
    name: str = ""
    actors: list[Actor] = field(default_factory=list)
    tids: set[int] = field(default_factory=set)
    template: list[tuple[str, int, int, str]] = field(default_factory=list)
    exec_run: Run | None = None  # the run (pre-exec part) whose exec starts this epoch


@dataclass(eq=False)
class Actor:
    name: str
    key: tuple
    ecpu: int
    epoch: Epoch | None  # first epoch (None for the foreign actors)
    tid: int
    runs: list[Run] = field(default_factory=list)
    how: str = ""  # start | fork | spawn | created-by-handoff
    mm_decl: str = ""


@dataclass
class Slot:
    t: int
    ops: list[tuple] = field(default_factory=list)
    pre: list[str] = field(default_factory=list)
    post: list[str] = field(default_factory=list)


@dataclass(eq=False)
class Run:
    idx: int
    tid: int  # -1 for a foreign run
    pid: int
    cpu: int
    ecpu: int
    start: int
    end: int
    epoch: Epoch | None = None
    actor: Actor | None = None
    items: list[tuple] = field(default_factory=list)  # (t, order, kind, payload)
    slots: list[Slot] = field(default_factory=list)
    head: list[str] = field(default_factory=list)
    tail: list[tuple] = field(default_factory=list)
    sleep_ns: int = 0
    exec_split: bool = False  # ends at an exec of its thread


@dataclass(frozen=True)
class Point:
    run: Run
    slot: int  # index in run.slots, or END
    t: int
