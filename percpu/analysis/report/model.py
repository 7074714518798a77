"""What a report is made of: sections of tables and plots, each with its source."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    source: str
    note: str = ""


@dataclass
class Plot:
    slug: str
    title: str
    png: bytes
    source: str


@dataclass
class Section:
    title: str
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")


@dataclass
class Report:
    title: str
    summary: list[str]
    warnings: list[str]
    sections: list[Section]
