"""How wide the report's tables must be at the least, estimated from the HTML alone: the
test of the layout that needs no browser (tools/check_report_width.py measures it in a
real headless Chromium at 1400 and 1920 px).

A cell cannot be narrower than its longest unbreakable piece: a whole line of a numeric
cell (white-space: nowrap; a change goes on its own line), else the longest word (a long
cell also breaks after commas, and at worst anywhere down to its min-width).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# The template's table font is .86rem of 16 px; a glyph of system-ui digits and lower
# case is about 0.56 em wide; each cell has .55rem of padding a side and 1 px of border.
CHAR_PX = 0.86 * 16 * 0.56
CELL_PX = 2 * 0.55 * 16 + 1
LONG_MIN_PX = 10 * 16  # td.long's min-width
BODY_PAD_PX = 2 * 16   # body's padding
SCROLLBAR_PX = 16


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, str]]]] = []  # rows of (class, text)
        self._cell: list[str] | None = None
        self._cls = ""

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell, self._cls = [], dict(attrs).get("class") or tag
        elif tag in ("br", "wbr") and self._cell is not None:
            self._cell.append("\n" if tag == "br" else "\u200b")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.tables:
            self.tables[-1][-1].append((self._cls, "".join(self._cell)))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def cell_min_px(cls: str, text: str) -> float:
    if cls == "num":
        return CELL_PX + CHAR_PX * max(len(line.strip()) for line in text.split("\n"))
    words = re.split(r"[\s\u200b]+", text.strip()) or [""]
    longest = CELL_PX + CHAR_PX * max(len(w) for w in words)
    return min(longest, LONG_MIN_PX + CELL_PX) if cls == "long" else longest


def table_min_widths(html: str) -> list[float]:
    """The least width in px each table of the report's HTML needs."""
    parser = _Tables()
    parser.feed(html)
    widths = []
    for rows in parser.tables:
        cols: dict[int, float] = {}
        for row in rows:
            for i, (cls, text) in enumerate(row):
                cols[i] = max(cols.get(i, 0.0), cell_min_px(cls, text))
        widths.append(sum(cols.values()))
    return widths


def body_max_px(html: str) -> float:
    m = re.search(r"body\s*\{[^}]*max-width:\s*([\d.]+)rem", html)
    return float(m.group(1)) * 16 if m else float("inf")


def room_px(window_px: int, html: str) -> float:
    """The width a table may take in a window of window_px: the body's content box."""
    return min(window_px - BODY_PAD_PX - SCROLLBAR_PX, body_max_px(html))
