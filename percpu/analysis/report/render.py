"""Markdown and HTML renderings of a report, from the jinja2 templates in templates/."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from percpu.analysis.report.model import Report

_TEMPLATES = jinja2.FileSystemLoader(Path(__file__).with_name("templates"))
_MD = jinja2.Environment(loader=_TEMPLATES, autoescape=False, keep_trailing_newline=True,
                         trim_blocks=True, lstrip_blocks=True)  # fmt: skip
_HTML = jinja2.Environment(loader=_TEMPLATES, autoescape=True, trim_blocks=True,
                           lstrip_blocks=True)
_MD.filters["cell"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")

def _inline_md(text: str) -> Any:
    """Escape, then turn `code` and **bold** into tags (the only markup the report uses)."""
    out = html.escape(str(text))
    parts = out.split("`")
    out = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    parts = out.split("**")
    out = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    return markupsafe.Markup(out)


def _is_num(text: str) -> bool:
    t = str(text).replace(",", "").replace(" %", "").replace("+", "").strip()
    t = t.split(" (")[0].rstrip("kMGT ").strip()
    try:
        float(t)
    except ValueError:
        return t == "—"
    return True


def _num_cell(text: str) -> Any:
    """A number with its change, "6.72 M (-5.85 k)", on two lines: wide tables of them
    (the cycle breakdown) then fit a 1400 px window."""
    value, sep, delta = html.escape(str(text)).partition(" (")
    if not sep:
        return markupsafe.Markup(value)
    return markupsafe.Markup(f'{value}<br><span class="delta">({delta}</span>')


def _long_cell(text: str) -> Any:
    """A long text cell (a parameter string) that may wrap after its commas."""
    return markupsafe.Markup(str(_inline_md(text)).replace(",", ",<wbr>"))


# Text cells longer than this wrap (class "long") instead of squeezing the other columns.
LONG_CELL = 32

_HTML.filters["md"] = _inline_md
_HTML.filters["numcell"] = _num_cell
_HTML.filters["longcell"] = _long_cell
_HTML.globals["LONG_CELL"] = LONG_CELL
_HTML.filters["b64"] = lambda b: base64.b64encode(b).decode("ascii")
_HTML.filters["isnum"] = _is_num


def render_markdown(report: Report) -> str:
    return _MD.get_template("report.md.j2").render(r=report)


def render_html(report: Report) -> str:
    return _HTML.get_template("report.html.j2").render(r=report)
