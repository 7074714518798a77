"""The VMA model: the VMAs of one address space as the program's ops leave them."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from percpu.trace.replay.constants import USER_TOP
from percpu.trace.replay.records import Point


@dataclass(eq=False)
class Piece:
    name: str
    start: int
    end: int
    prot: int
    creator: Point | None = None
    touched: set[tuple[int, str]] = field(default_factory=set)
    last_use: dict[int, Point] = field(default_factory=dict)  # id(actor) -> point


class Model:
    """The VMAs of one address space as the program's ops leave them."""

    def __init__(self) -> None:
        self.pieces: list[Piece] = []
        self.starts: list[int] = []
        self.freed: list[tuple[int, int, Point]] = []
        self.brk: int | None = None

    def copy(self) -> Model:
        m = Model()
        m.pieces = [Piece(p.name, p.start, p.end, p.prot) for p in self.pieces]
        m.starts = list(self.starts)
        m.brk = self.brk
        return m

    def find(self, addr: int) -> Piece | None:
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and self.pieces[i].start <= addr < self.pieces[i].end:
            return self.pieces[i]
        return None

    def overlapping(self, s: int, e: int) -> list[Piece]:
        i = max(0, bisect.bisect_right(self.starts, s) - 1)
        out = []
        while i < len(self.pieces) and self.pieces[i].start < e:
            if self.pieces[i].end > s:
                out.append(self.pieces[i])
            i += 1
        return out

    def gap_around(self, addr: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, addr)
        lo = self.pieces[i - 1].end if i > 0 else 0
        hi = self.pieces[i].start if i < len(self.pieces) else USER_TOP
        return lo, hi

    def insert(self, p: Piece) -> None:
        i = bisect.bisect_left(self.starts, p.start)
        self.pieces.insert(i, p)
        self.starts.insert(i, p.start)

    def remove(self, p: Piece) -> None:
        i = self.pieces.index(p)
        del self.pieces[i]
        del self.starts[i]
