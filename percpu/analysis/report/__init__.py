"""The percpu report: tables, plots and their sources, as Markdown and HTML.

write_report() loads every run under the given directories, compares each
scheme with the baseline at the same workload point, and writes report.md
(plots beside it in plots/) and/or report.html (one file, plots embedded).
Every table is followed by its source: the stat names it reads (with the CPU
index as '*'), the dump used and the run ids, which the Sources section maps
to run directories and config files.

One concept per module: model (what a report is made of), stat_names (the stats
it reads and the bounds), numbers (how numbers are written), context (runs
grouped by point and scheme), sections and plots (the content), build
(build_report), render (the jinja2 templates in templates/), write (write_report).
"""

from percpu.analysis.report.build import build_report
from percpu.analysis.report.model import Plot, Report, Section, Table
from percpu.analysis.report.render import render_html, render_markdown
from percpu.analysis.report.stat_names import FORMATS
from percpu.analysis.report.write import parse_formats, write_report

__all__ = ["FORMATS", "Plot", "Report", "Section", "Table", "build_report", "parse_formats",
           "render_html", "render_markdown", "write_report"]
