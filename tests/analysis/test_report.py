"""The report: right numbers, plots only where a dimension varies, sources, self-contained HTML."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

from percpu.analysis.report import (
    Report,
    build_report,
    parse_formats,
    render_markdown,
    write_report,
)
from percpu.analysis.tidy import load_dataset
from percpu.errors import UsageError


@pytest.fixture(scope="module")
def sweep_report(engine_sweep: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    write_report([engine_sweep], out=out)
    return out


@pytest.fixture(scope="module")
def sweep_model(engine_sweep: Path) -> Report:
    return build_report(load_dataset([engine_sweep]))


OVERHEAD = "Overhead of simulated time (simTicks) per workload point"


def _table(md: str, title: str) -> list[list[str]]:
    """The rows of the Markdown table after **title**, as lists of cells."""
    block = md.split(f"**{title}**", 1)[1].split("*Source:", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines[2:]]


def test_writes_md_html_and_the_plots_that_apply(sweep_report: Path) -> None:
    files = sorted(str(p.relative_to(sweep_report)) for p in sweep_report.rglob("*") if p.is_file())
    assert files == [
        "plots/cycles_by_category.png",
        "plots/overhead_pcid.png",
        "plots/overhead_vs_cpus.png",
        "plots/overhead_vs_procs_per_cpu.png",
        "report.html",
        "report.md",
    ]
    for png in (sweep_report / "plots").iterdir():
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_overhead_table_has_mean_and_t_interval_per_point(
    sweep_report: Path, sweep_truth: tuple[list[tuple[int, int, bool]], Callable[..., float]]
) -> None:
    dims, overhead_for = sweep_truth
    rows = _table((sweep_report / "report.md").read_text(), OVERHEAD)
    assert len(rows) == len(dims)
    half = 4.302653 / 3**0.5  # t(0.975, 2) x sd 1 / sqrt(3)
    for cpus, ppc, pcid in dims:
        label = f"ctxmix (cpus={cpus}, pcid={'on' if pcid else 'off'}, procs_per_cpu={ppc})"
        row = next(r for r in rows if r[0] == label)
        mean = overhead_for(cpus, ppc, pcid, 2)
        assert row[1:4] == ["percpu", "3", f"{mean:+.2f} %"]
        # the synthetic ticks are rounded to whole ticks: allow the last digit to move
        lo, hi = (float(x) for x in row[4].strip("[]").split(","))
        assert lo == pytest.approx(mean - half, abs=0.011)
        assert hi == pytest.approx(mean + half, abs=0.011)
        assert re.fullmatch(r"R\d+–R\d+", row[6]) and re.fullmatch(r"R\d+–R\d+", row[7])


def test_pti_plot_is_skipped_with_its_reason(sweep_report: Path) -> None:
    md = (sweep_report / "report.md").read_text()
    assert "- PTI against no PTI skipped: every compared run has pti=off." in md
    assert "Overhead against CPUs skipped" not in md


def test_cycle_breakdown_root_allocations_and_bounds(sweep_report: Path) -> None:
    md = (sweep_report / "report.md").read_text()
    cycles = _table(md, "Cycles by category")
    header = md.split("**Cycles by category**", 1)[1].splitlines()[2]
    assert header.startswith("| workload point | scheme | TLB-miss walks | root copies | lazy faults "
                             "| flushes + IPIs | kmap | context switches")  # fmt: skip
    label = "ctxmix (cpus=4, pcid=on, procs_per_cpu=8)"
    shared = next(r for r in cycles if r[0] == label and r[1] == "shared")
    percpu = next(r for r in cycles if r[0] == label and r[1] == "percpu")
    assert shared[2:4] == ["20 k", "0"]  # walks 4 x 5000, no root copies
    # percpu: walks 4 x 5500; root copies 4 CPUs x 300 x (8 + 20 + 2) allocations
    assert percpu[2] == "22 k (+2 k)"
    assert percpu[3] == "36 k (+36 k)"
    assert percpu[4] == "36 k (+36 k)"  # lazy faults: 4 x 10 x 900
    roots = _table(md, "Root allocations")
    nopcid = next(r for r in roots if r[0] == "ctxmix (cpus=2, pcid=off, procs_per_cpu=4)"
                  and r[1] == "percpu")  # fmt: skip
    # per CPU: firstUse 4, evicted 0, flushedInactive 2, noPcid = ctxSwitches (100, 101)
    assert nopcid[2:7] == ["8", "0", "4", "201", "213"]
    lazy = _table(md, "Lazy faults against the bound")
    assert all(r[-1] == "within" for r in lazy)
    pool = _table(md, "Root pool bytes against 4 KiB × CPUs × 6 (× 2 with PTI)")
    row = next(r for r in pool if r[0] == label and r[1] == "percpu")
    assert row[2:] == ["32,768", "98,304", "98,304", "33.3 %", "within"]


def test_every_table_and_plot_names_its_stats_and_runs(sweep_model: Report) -> None:
    tables = [t for s in sweep_model.sections for t in s.tables]
    plots = [p for s in sweep_model.sections for p in s.plots]
    assert len(tables) >= 8 and len(plots) == 4
    for item in tables + plots:
        if item.title in ("Runs", "Stats read"):
            continue
        assert item.source.startswith("Stats: `"), item.title
        assert re.search(r"runs R\d+", item.source), item.title
    md = render_markdown(sweep_model)
    assert "Stats: `simTicks`" in md
    assert "`system.cpu*.percpu.rootAllocs::evicted`" in md
    runs = _table(md, "Runs")
    assert len(runs) == 48 and runs[0][0] == "R1"
    assert all(r[-1].startswith("0*: lines 2–") for r in runs)
    glossary = _table(md, "Stats read")
    assert ["`simTicks`", "Number of ticks simulated", "Tick"] in glossary


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.srcs: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for k, v in attrs:
            if k == "src" and v:
                self.srcs.append(v)
            if k == "href" and v:
                self.hrefs.append(v)


def test_html_is_one_self_contained_file(sweep_report: Path) -> None:
    text = (sweep_report / "report.html").read_text()
    parser = _Html()
    parser.feed(text)
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "script" not in parser.tags and "link" not in parser.tags
    assert len(parser.srcs) == 4
    for src in parser.srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG")
    assert all(h.startswith("#") for h in parser.hrefs)  # only in-page links
    assert parser.tags.count("table") >= 8
    assert "<code>simTicks</code>" in text  # Markdown code marks became tags, escaped


def test_one_point_plots_its_cycles_and_says_why_the_other_plots_are_skipped(
    tmp_path: Path, make_run: Callable[..., Path]
) -> None:
    make_run(tmp_path / "runs" / "s", scheme="shared", sim_ticks=1000)
    make_run(tmp_path / "runs" / "p", scheme="percpu", sim_ticks=1100)
    written = write_report([tmp_path / "runs"], out=tmp_path / "out", formats="md")
    # The main job's report (one point) has a figure: the cycle breakdown per scheme.
    assert [p.name for p in written] == ["report.md", "cycles_by_category.png"]
    md = written[0].read_text()
    assert "Overhead against CPUs skipped: every compared run has cpus=4." in md
    assert "processes per CPU skipped: every compared run has procs_per_cpu=4." in md
    assert "PCID against no PCID skipped: every compared run has pcid=on." in md
    row = _table(md, OVERHEAD)[0]
    assert row[1:5] == ["percpu", "1", "+10.00 %", "—"]  # one seed: no interval


def test_report_from_the_real_gem5_fixture(fixture_run: Path, tmp_path: Path) -> None:
    written = write_report([fixture_run], out=tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert {p.name for p in written} == {"report.md", "report.html"}
    assert "no run of the baseline scheme `shared` (schemes present: gem5)" in md
    rows = _table(md, "Headline stats")
    assert rows[0][:5] == ["R1", "0", "4,080,915", "4e-06", "12,256"]
    assert rows[1][:3] == ["R1", "1*", "1,000,000,000"]
    runs = _table(md, "Runs")
    assert runs[0][2:5] == ["gem5", "hello", "gem5"]
    assert runs[0][-1] == "0: lines 2–682; 1*: lines 684–1219"
    assert "`board.processor.cores.core.numCycles`" in md


def test_dump_option_picks_the_block(fixture_run: Path, tmp_path: Path) -> None:
    write_report([fixture_run], out=tmp_path / "out", formats=["md"], dump=0)
    md = (tmp_path / "out" / "report.md").read_text()
    assert _table(md, "Headline stats")[0][1] == "0*"
    assert "Tables use dump 0 of each run." in md


def test_gem5_runs_with_percpu_json_get_an_overhead(
    tmp_path: Path, make_gem5_run: Callable[..., Path]
) -> None:
    meta = {"workload": "ctxmix", "params": {"procs_per_cpu": 8}, "seed": 1}
    make_gem5_run(tmp_path / "g" / "shared", sim_ticks=2_000_000_000,
                  percpu_json={**meta, "scheme": "shared"})  # fmt: skip
    make_gem5_run(tmp_path / "g" / "percpu", sim_ticks=2_100_000_000,
                  percpu_json={**meta, "scheme": "percpu"})  # fmt: skip
    write_report([tmp_path / "g"], out=tmp_path / "out", formats="md")
    md = (tmp_path / "out" / "report.md").read_text()
    assert _table(md, OVERHEAD)[0][:4] == ["ctxmix", "percpu", "1", "+5.00 %"]
    cache = _table(md, "Cache misses")
    assert cache[0][2] == "141"  # l1d-cache-0 and -1 of a 2-core run: 70 + 71


def test_bad_formats_and_inputs_leave_no_output(tmp_path: Path) -> None:
    assert parse_formats("html, md") == ("html", "md")
    with pytest.raises(UsageError, match="--format: expected"):
        parse_formats("md,pdf")
    with pytest.raises(UsageError, match="nothing"):
        parse_formats("")
    with pytest.raises(UsageError, match="no such path"):
        write_report([tmp_path / "missing"], out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_input_keeps_the_previous_report(tmp_path: Path, make_run: Callable[..., Path]) -> None:
    run = make_run(tmp_path / "runs" / "s")
    out = tmp_path / "out"
    write_report([run], out=out)
    before = (out / "report.md").read_bytes()
    (run / "stats.txt").write_text("garbage\n")
    with pytest.raises(UsageError, match=r"stats.txt:1: expected the banner"):
        write_report([run], out=out)
    assert (out / "report.md").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["plots", "report.html", "report.md"]


def test_zero_spread_over_seeds_is_warned_and_busy_cycles_shown(
    tmp_path: Path, make_run: Callable[..., Path]
) -> None:
    for seed in (1, 2, 3):
        make_run(tmp_path / "runs" / f"s{seed}", scheme="shared", sim_ticks=1000, seed=seed)
        make_run(tmp_path / "runs" / f"p{seed}", scheme="percpu", sim_ticks=1100, seed=seed)
    md = write_report([tmp_path / "runs"], out=tmp_path / "out", formats="md")[0].read_text()
    row = _table(md, OVERHEAD)[0]
    assert row[1:5] == ["percpu", "3", "+10.00 %", "[+10.00, +10.00]"]
    assert row[5].endswith(" %")  # the busy-cycle overhead beside it
    assert "Warning: zero spread over seeds" in md
    assert "paired difference" in md  # what the intervals cover


def test_a_new_report_leaves_no_plot_of_an_older_one(tmp_path: Path,
                                                     make_run: Callable[..., Path]) -> None:
    out = tmp_path / "out"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "overhead_vs_cpus.png").write_bytes(b"an older report's plot")
    make_run(tmp_path / "runs" / "s", scheme="shared")
    make_run(tmp_path / "runs" / "p", scheme="percpu", sim_ticks=1_100_000_000)
    write_report([tmp_path / "runs"], out=out, formats="md")
    assert [p.name for p in (out / "plots").iterdir()] == ["cycles_by_category.png"]
