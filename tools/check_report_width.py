#!/usr/bin/env python3
"""Measure a percpu report in a real headless Chromium at 1400 and 1920 px: every table
must fit the window without scrolling, the page must not scroll sideways. At a phone's
width (below PHONE_PX; headless Chromium lays out no narrower than 500 px) tables may
scroll in their boxes, but the page must not scroll sideways and every figure keeps a
readable size (at least MIN_FIGURE_PX wide, scrolling in its box).

    python tools/check_report_width.py m5out/report/report.html [--width W ...]  (1400, 1920, 500)

Prints one line per window width and table that does not fit; exit 0 when all fit, 1
when one does not, 2 when no Chromium is found (apt-get install chromium).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MEASURE = """<script>
window.addEventListener('load', () => {
  const tables = [...document.querySelectorAll('table')].map((t, i) => {
    const box = t.parentElement.getBoundingClientRect();
    const title = t.parentElement.previousElementSibling;
    return {index: i, title: title ? title.textContent : '', width: t.scrollWidth,
            room: Math.floor(box.width), right: Math.ceil(t.getBoundingClientRect().right)};
  });
  const figures = [...document.querySelectorAll('figure img')].map((img, i) => {
    const box = img.parentElement.getBoundingClientRect();
    return {index: i, title: img.alt, width: Math.round(img.getBoundingClientRect().width),
            natural: img.naturalWidth, right: Math.ceil(box.right)};
  });
  const out = document.createElement('pre');
  out.id = 'percpu-measure';
  out.textContent = JSON.stringify({window: window.innerWidth,
    page: document.documentElement.scrollWidth, tables, figures});
  document.body.appendChild(out);
});
</script>"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def measure(chromium: str, html: Path, width: int) -> dict:
    text = html.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(text.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
        out = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp}/profile", f"--window-size={width},1000",
             "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120, check=False)
    m = re.search(r'<pre id="percpu-measure">(.*?)</pre>', out.stdout, re.DOTALL)
    if not m:
        raise RuntimeError(f"chromium gave no measurement (exit {out.returncode}): "
                           f"{out.stderr.strip().splitlines()[-1:] or ''}")
    import html as html_mod

    return json.loads(html_mod.unescape(m.group(1)))


PHONE_PX = 700
MIN_FIGURE_PX = 500


def overflows(result: dict) -> list[str]:
    bad = []
    if result["page"] > result["window"]:
        bad.append(f"the page is {result['page']} px wide in a {result['window']} px window")
    for f in result.get("figures", []):
        if f["right"] > result["window"]:
            bad.append(f"figure {f['index']} ({f['title']}) sticks out of the window")
        if f["width"] < min(MIN_FIGURE_PX, f["natural"]):
            bad.append(f"figure {f['index']} ({f['title']}) is shrunk to {f['width']} px")
    if result["window"] < PHONE_PX:  # a phone: tables scroll in their boxes
        return bad
    for t in result["tables"]:
        if t["width"] > t["room"] or t["right"] > result["window"]:
            bad.append(f"table {t['index']} ({t['title']}) is {t['width']} px wide, "
                       f"room {t['room']} px")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", nargs="+", type=Path)
    ap.add_argument("--width", type=int, action="append", default=None)
    args = ap.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("check_report_width: no chromium on PATH: apt-get install chromium",
              file=sys.stderr)
        return 2
    ok = True
    for html in args.html:
        for width in args.width or [1400, 1920, 500]:
            result = measure(chromium, html, width)
            bad = overflows(result)
            widest = max((t["width"] for t in result["tables"]), default=0)
            print(f"{html} at {width} px: {len(result['tables'])} tables, widest {widest} px"
                  + ("" if not bad else "; " + "; ".join(bad)))
            ok = ok and not bad
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
