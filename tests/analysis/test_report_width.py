"""The report's HTML fits a 1400 px window: no table wider than the room the page gives it
(the cycle breakdown of three schemes was 1,427 px against 1,152 px of room), a long
parameter string wraps instead of squeezing the other columns, and on a phone the page does
not scroll sideways while figures keep a readable size. Estimated from the HTML
(percpu.analysis.report.width); measured in headless Chromium when one is installed
(.ci/run installs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from percpu.analysis.report.width import body_max_px, room_px, table_min_widths

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import check_report_width


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("width")
    res = subprocess.run([sys.executable, "-m", "percpu", "run", "--param", "rounds=20", "-q",
                          "--scheme", "shared,percpu,percpu-eager", "--param", "pages=64"],
                         cwd=tmp, capture_output=True, text=True, check=False, timeout=300)
    assert res.returncode == 0, res.stderr
    return tmp / "m5out" / "report" / "report.html"


def test_every_table_fits_a_1400_px_window(report_html):
    html = report_html.read_text()
    widths = table_min_widths(html)
    assert len(widths) >= 8
    room = room_px(1400, html)
    assert room >= 1300  # the body is not held to a prose measure narrower than the window
    assert max(widths) <= room, [round(w) for w in widths]


def test_numbers_with_their_change_take_two_lines_and_params_wrap(report_html):
    html = report_html.read_text()
    assert '<br><span class="delta">(' in html
    assert '<td class="long">pages=64,<wbr>pinned=True,<wbr>' in html
    assert body_max_px(html) >= 1920 - 2 * 16 - 16 - 200  # wide screens get wide tables


def test_in_a_headless_browser_at_1400_and_1920_px(report_html):
    chromium = check_report_width.find_chromium()
    if chromium is None:
        pytest.skip("no chromium on PATH (.ci/run installs it: apt-get install chromium)")
    for width in (1400, 1920):
        result = check_report_width.measure(chromium, report_html, width)
        assert len(result["tables"]) >= 8
        assert check_report_width.overflows(result) == [], result


def test_on_a_phone_the_page_stays_put_and_figures_stay_readable(report_html):
    # Headless Chromium lays out no narrower than 500 px: the phone rules (the page does
    # not scroll sideways; a figure keeps at least 500 px and scrolls in its box) apply.
    chromium = check_report_width.find_chromium()
    if chromium is None:
        pytest.skip("no chromium on PATH (.ci/run installs it: apt-get install chromium)")
    result = check_report_width.measure(chromium, report_html, 500)
    assert result["window"] < check_report_width.PHONE_PX
    assert len(result["figures"]) >= 1  # the cycle breakdown, in every report
    assert check_report_width.overflows(result) == [], result
    assert all(f["width"] >= check_report_width.MIN_FIGURE_PX for f in result["figures"])
