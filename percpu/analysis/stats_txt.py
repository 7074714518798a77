"""Read and write gem5's text statistics format (stats.txt).

The layout follows gem5 v24's src/base/stats/text.cc: every dump is a block
between a Begin and an End banner, each preceded by an empty line; a stat line
is the name left-aligned in 40 columns, a space, the value right-aligned in 12,
two 10-wide pdf/cdf columns (blank unless the stat prints them), then
" # description" and " (Unit)". The embedded engine writes its stats with
`write_stats_txt` so that one parser reads both hosts.

`parse_stats_txt` returns one `Dump` per block. A Dump is a dict of name ->
value (so it can be used as ``list[dict[str, float]]``) that also carries the
stats in file order with their descriptions and units, the block's line range
and whether the block was truncated.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from percpu.atomic import write_atomic
from percpu.errors import UsageError

__all__ = [
    "BEGIN_BANNER",
    "END_BANNER",
    "Dump",
    "Stat",
    "StatsFormatError",
    "format_stats_txt",
    "format_value",
    "parse_stats_text",
    "parse_stats_txt",
    "write_stats_txt",
]

BEGIN_BANNER = "---------- Begin Simulation Statistics ----------"
# gem5 pads "End" with three spaces so both banners have the same width.
END_BANNER = "---------- End Simulation Statistics   ----------"

_NAME_WIDTH = 40
_VALUE_WIDTH = 12
_PCT_WIDTH = 10

# gem5 prints values with std::fixed, so no exponent; nan and inf as words.
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)|[-+]?(?:nan|inf)"
_NUMBER_RE = re.compile(rf"(?:{_NUMBER})\Z")
_INT_RE = re.compile(r"[-+]?\d+\Z")
_LINE_RE = re.compile(
    r"(?P<name>\S+)\s+(?P<value>\S+)"
    r"(?:\s+(?P<pdf>\S+%))?(?:\s+(?P<cdf>\S+%))?"
    r"\s*(?P<rest>.*)\Z"
)


class StatsFormatError(UsageError):
    """A stats.txt that is not in gem5's text format; the message is FILE:LINE: ..."""


class Stat(NamedTuple):
    """One line of stats.txt.

    name may hold ``::bucket`` for a vector or distribution element.
    pdf_pct and cdf_pct are the percentage columns gem5 prints for some
    vectors and distributions (99.72 for "99.72%"), None when blank.
    precision is the number of decimals for a stat that fixes it (gem5's
    .precision(n)); None prints as gem5's default (integral values without
    decimals, others with 6). The parser records it from the text, so a
    parsed file writes back byte for byte.
    """

    name: str
    value: float | int
    desc: str = ""
    unit: str = ""
    pdf_pct: float | None = None
    cdf_pct: float | None = None
    precision: int | None = None
    # Ruby prints its histograms on one line ("name | count pdf cdf | ... # desc");
    # such a line is kept verbatim (value: the buckets' total count) and written back as is.
    raw: str | None = None


class Dump(dict[str, float]):
    """One dump block: name -> value, plus the block's provenance.

    Attributes: index (0-based block number), path, begin_line and end_line
    (1-based; end_line is None for a truncated block), partial (True when the
    End banner is missing: only possible with allow_partial=True), stats (the
    Stat lines in file order) and lines (name -> line number).
    """

    def __init__(
        self,
        stats: Sequence[Stat] = (),
        *,
        index: int = 0,
        path: str = "",
        begin_line: int = 0,
        end_line: int | None = None,
        partial: bool = False,
        lines: dict[str, int] | None = None,
    ) -> None:
        super().__init__((s.name, s.value) for s in stats)
        self.stats: list[Stat] = list(stats)
        self.index = index
        self.path = path
        self.begin_line = begin_line
        self.end_line = end_line
        self.partial = partial
        self.lines: dict[str, int] = dict(lines or {})

    def __repr__(self) -> str:
        state = "partial" if self.partial else "complete"
        return (
            f"Dump(index={self.index}, path={self.path!r}, lines={self.begin_line}-"
            f"{self.end_line}, {state}, {len(self)} stats)"
        )


def _shorten(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _parse_number(token: str) -> float | int | None:
    if not _NUMBER_RE.match(token):
        return None
    if _INT_RE.match(token):
        value = int(token)
        # "-0" is how gem5 prints -0.0; keep the sign so the file writes back the same.
        return -0.0 if value == 0 and token.startswith("-") else value
    return float(token)


def _split_unit(text: str) -> tuple[str, str]:
    """Split "desc (Unit)" at its last balanced parenthesised group.

    Units can nest ("((Cycle/Count))" is the unit "(Cycle/Count)") and
    descriptions can hold parentheses too ("demand (read+write) hits (Count)"),
    so match from the end rather than at the first "(".
    """
    if not text.endswith(")"):
        return text, ""
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        ch = text[i]
        if ch == ")":
            depth += 1
        elif ch == "(":
            depth -= 1
            if depth == 0:
                if i == 0:
                    return "", text[1:-1]
                if text[i - 1] == " ":
                    return text[: i - 1], text[i + 1 : -1]
                return text, ""
    return text, ""


def _parse_stat_line(path: str, lineno: int, line: str) -> Stat:
    m = _LINE_RE.match(line)
    if m is None:
        raise StatsFormatError(
            f"{path}:{lineno}: expected 'name value # description', got {_shorten(line)}"
        )
    name = m["name"]
    if name.startswith(("#", "-")):
        raise StatsFormatError(f"{path}:{lineno}: expected a stat name, got {_shorten(line)}")
    if m["value"] == "|":
        return _parse_ruby_histogram(path, lineno, line, name)
    value = _parse_number(m["value"])
    if value is None:
        raise StatsFormatError(
            f"{path}:{lineno}: expected a number (or nan/inf) in the value column of "
            f"{name!r}, got {_shorten(m['value'])}"
        )
    pcts: list[float | None] = []
    for col in ("pdf", "cdf"):
        tok = m[col]
        if tok is None:
            pcts.append(None)
            continue
        pct = _parse_number(tok[:-1])
        if pct is None:
            raise StatsFormatError(
                f"{path}:{lineno}: expected a percentage in the {col} column of {name!r}, "
                f"got {_shorten(tok)}"
            )
        pcts.append(float(pct))
    rest = m["rest"]
    desc, unit = "", ""
    if rest.startswith("#"):
        desc, unit = _split_unit(rest[2:] if rest.startswith("# ") else rest[1:])
    elif rest.startswith("("):
        # gem5 prints the unit even when the description is empty.
        desc, unit = _split_unit(rest)
        if desc:
            raise StatsFormatError(
                f"{path}:{lineno}: expected '# description' or '(Unit)' after the value of "
                f"{name!r}, got {_shorten(rest)}"
            )
    elif rest:
        raise StatsFormatError(
            f"{path}:{lineno}: expected '# description' after the value of {name!r}, "
            f"got {_shorten(rest)}"
        )
    token = m["value"]
    precision = len(token) - token.index(".") - 1 if "." in token else None
    return Stat(name, value, desc, unit, pcts[0], pcts[1], precision)


def _parse_ruby_histogram(path: str, lineno: int, line: str, name: str) -> Stat:
    """Ruby's one-line histogram (src/mem/ruby/common/Histogram.cc): buckets of
    "count pdf% cdf%" between bars, then the description."""
    body, _, rest = line[len(name):].partition("#")
    counts = []
    for group in body.split("|"):
        if not group.strip():
            continue
        count = _parse_number(group.split()[0])
        if count is None:
            raise StatsFormatError(f"{path}:{lineno}: expected a bucket count in Ruby's "
                                   f"histogram {name!r}, got {_shorten(group.strip())}")
        counts.append(count)
    desc, unit = _split_unit(rest.strip())
    return Stat(name, sum(counts), desc, unit, raw=line)


def parse_stats_text(
    text: str, path: str = "<string>", *, allow_partial: bool = False
) -> list[Dump]:
    """Parse stats.txt content; see parse_stats_txt."""
    dumps: list[Dump] = []
    lines = text.split("\n")
    # A file ending in "\n" splits into a last empty string, which is not a line.
    ends_with_newline = lines[-1] == ""
    if ends_with_newline:
        lines.pop()
    current: list[Stat] | None = None
    current_lines: dict[str, int] = {}
    begin_line = 0
    last = len(lines)
    for lineno, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\r")
        stripped = line.strip()
        if current is None:
            if not stripped:
                continue
            if stripped == BEGIN_BANNER:
                current, current_lines, begin_line = [], {}, lineno
                continue
            raise StatsFormatError(
                f"{path}:{lineno}: expected the banner {BEGIN_BANNER!r}, got {_shorten(line)}"
            )
        if not stripped:
            continue
        if stripped == END_BANNER:
            dumps.append(
                Dump(
                    current,
                    index=len(dumps),
                    path=path,
                    begin_line=begin_line,
                    end_line=lineno,
                    lines=current_lines,
                )
            )
            current = None
            continue
        if stripped.startswith("----------"):
            raise StatsFormatError(
                f"{path}:{lineno}: expected a stat line or the banner {END_BANNER!r} "
                f"(block begun at line {begin_line}), got {_shorten(line)}"
            )
        if lineno == last and not ends_with_newline:
            # The writer was cut mid-line: the value may be cut short too, so the
            # line is never used; the block is reported as truncated below.
            break
        stat = _parse_stat_line(path, lineno, line)
        if stat.name in current_lines:
            raise StatsFormatError(
                f"{path}:{lineno}: expected each stat once per block, got {stat.name!r} "
                f"again (first at line {current_lines[stat.name]})"
            )
        current_lines[stat.name] = lineno
        current.append(stat)
    if current is not None:
        if not allow_partial:
            raise StatsFormatError(
                f"{path}:{begin_line}: expected {END_BANNER!r} to close the block begun here, "
                f"got end of file after line {last} (truncated: the run was killed or is "
                f"still writing; allow partial blocks to use the complete ones)"
            )
        dumps.append(
            Dump(
                current,
                index=len(dumps),
                path=path,
                begin_line=begin_line,
                end_line=None,
                partial=True,
                lines=current_lines,
            )
        )
    return dumps


def parse_stats_txt(path: str | os.PathLike[str], *, allow_partial: bool = False) -> list[Dump]:
    """Parse a gem5 stats.txt into one Dump per block, in file order.

    Raises StatsFormatError ("FILE:LINE: expected ..., got ...") for anything
    that is not gem5's text format. A last block without its End banner is an
    error unless allow_partial is True; then it is returned with
    ``partial=True`` (minus a last line cut short without its newline).
    An empty file has no dumps.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise StatsFormatError(f"{p}: expected a stats.txt file, got no such file") from None
    except IsADirectoryError:
        raise StatsFormatError(f"{p}: expected a stats.txt file, got a directory") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        raise StatsFormatError(
            f"{p}:{lineno}: expected UTF-8 text, got the byte {data[exc.start]:#04x}"
        ) from None
    return parse_stats_text(text, str(p), allow_partial=allow_partial)


def format_value(value: float, precision: int | None = None) -> str:
    """Format a value as gem5's ValueToString does.

    With no precision: integral values without decimals, others with 6
    (std::fixed); nan and inf as words.
    """
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int) and precision is None:
        return str(value)
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if precision is not None:
        return f"{v:.{precision}f}"
    if v == math.floor(v):
        return f"{v:.0f}"
    return f"{v:.6f}"


def _check_stat(stat: Stat) -> None:
    if not stat.name or any(ch.isspace() for ch in stat.name) or "#" in stat.name:
        raise ValueError(f"stat name {stat.name!r} must be non-empty, without spaces or '#'")
    if stat.name.startswith("-"):
        raise ValueError(f"stat name {stat.name!r} must not start with '-' (banner prefix)")
    for field in ("desc", "unit"):
        text = getattr(stat, field)
        if "\n" in text or "\r" in text:
            raise ValueError(f"{field} of {stat.name!r} must be one line")
    if stat.precision is not None and not 0 <= stat.precision <= 20:
        raise ValueError(f"precision of {stat.name!r} must be 0..20, got {stat.precision}")
    if not isinstance(stat.value, numbers.Real):
        raise TypeError(f"value of {stat.name!r} must be a number, got {stat.value!r}")


def _format_line(stat: Stat) -> str:
    if stat.raw is not None:
        return stat.raw
    _check_stat(stat)
    # numpy scalars and the like: integers stay integral, the rest become floats.
    value = int(stat.value) if isinstance(stat.value, numbers.Integral) else float(stat.value)
    pdf = "" if stat.pdf_pct is None else f"{stat.pdf_pct:.2f}%"
    cdf = "" if stat.cdf_pct is None else f"{stat.cdf_pct:.2f}%"
    line = (
        f"{stat.name:<{_NAME_WIDTH}} {format_value(value, stat.precision):>{_VALUE_WIDTH}}"
        f" {pdf:>{_PCT_WIDTH}} {cdf:>{_PCT_WIDTH}}"
    )
    if stat.desc:
        line += f" # {stat.desc}"
    if stat.unit:
        line += f" ({stat.unit})"
    return line


def format_stats_txt(dumps: Iterable[Iterable[Stat]]) -> str:
    """The text of a stats.txt holding the given blocks, exactly as gem5 lays it out."""
    out: list[str] = []
    for block in dumps:
        out.append("")
        out.append(BEGIN_BANNER)
        out.extend(_format_line(Stat(*s)) for s in block)
        out.append("")
        out.append(END_BANNER)
    return "\n".join(out) + "\n" if out else ""


def write_stats_txt(path: str | os.PathLike[str], dumps: Iterable[Iterable[Stat]]) -> None:
    """Write dumps (a list of blocks, each a list of Stat) to path atomically.

    The text goes to a temporary file in the same directory, which then
    replaces path, so a reader never sees a half-written file. A bad stat
    (name with spaces, multi-line description) raises ValueError, a value that
    is not a number TypeError; either leaves path untouched.
    """
    p = Path(path)
    text = format_stats_txt(dumps)  # validate everything before touching the disk
    write_atomic(p, text)
