"""The report's figures as a reader sees them: every label inside the figure, labels from
the dimensions a point has (no ctxmix parameter on a pingpong bar, no `nan`), error bars
only where seeds give an interval, a log axis where values span decades, a cycle
breakdown in every report, and run ids in natural order."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from matplotlib.container import ErrorbarContainer

from percpu.analysis.report import build_report, plots, render_markdown
from percpu.analysis.tidy import load_dataset


@pytest.fixture
def figures(monkeypatch) -> list[Any]:
    """Every figure the report draws, kept as it is saved."""
    kept: list[Any] = []
    real = plots._png

    def keep(fig: Any) -> bytes:
        kept.append(fig)
        return real(fig)

    monkeypatch.setattr(plots, "_png", keep)
    return kept


def _texts(fig: Any) -> list[Any]:
    ax = fig.axes[0]
    out = [ax.xaxis.label, ax.yaxis.label]
    for axis in (ax.xaxis, ax.yaxis):  # the tick labels drawn: those within the axis's view
        low, high = sorted(axis.get_view_interval())
        out += [t.label1 for t in axis.get_major_ticks() if low <= t.get_loc() <= high]
    for legend in [ax.get_legend(), *fig.legends]:
        if legend is not None:
            out += legend.get_texts()
    return [t for t in out if t.get_text()]


def _outside(fig: Any) -> list[str]:
    """The texts of fig that do not lie wholly inside it (clipped in the PNG)."""
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    box = fig.bbox
    bad = []
    for t in _texts(fig):
        e = t.get_window_extent(renderer)
        if e.x0 < box.x0 - 1 or e.x1 > box.x1 + 1 or e.y0 < box.y0 - 1 or e.y1 > box.y1 + 1:
            bad.append(t.get_text())
    return bad


def _mixed_workloads(root: Path, make_run: Callable[..., Path], seeds: tuple[int, ...]) -> Path:
    """ctxmix (procs_per_cpu, rounds) and pingpong (pairs only), PCID on and off."""
    for workload in ("ctxmix", "pingpong"):
        for pcid in (True, False):
            for seed in seeds:
                for scheme, ticks in (("shared", 1000), ("percpu", 1100 + 50 * seed)):
                    run = make_run(root / f"{workload}-{pcid}-{seed}-{scheme}", scheme=scheme,
                                   seed=seed, pcid=pcid, workload=workload,
                                   sim_ticks=ticks * (1 if pcid else 2))
                    if workload == "pingpong":
                        config = json.loads((run / "config.json").read_text())
                        config["params"] = {"pairs": 2, "a_long_parameter_name": "x" * 30}
                        (run / "config.json").write_text(json.dumps(config))
                    else:
                        config = json.loads((run / "config.json").read_text())
                        config["params"] = {"procs_per_cpu": 4, "rounds": 200}
                        (run / "config.json").write_text(json.dumps(config))
    return root


def test_bar_labels_come_from_each_points_own_dimensions_and_fit(tmp_path, make_run, figures):
    build_report(load_dataset([_mixed_workloads(tmp_path, make_run, (1,))]))
    bars = [f for f in figures if "PCID" in [t.get_text() for t in _texts(f)]]
    assert len(bars) == 1
    labels = [t.get_text() for t in bars[0].axes[0].get_yticklabels()]
    assert [lb.split()[0] for lb in labels] == ["ctxmix", "pingpong"]
    assert not any("nan" in lb or "rounds" in lb or "procs_per_cpu" in lb for lb in labels)
    for fig in figures:
        assert _outside(fig) == []


def test_error_bars_only_with_seeds(tmp_path, make_run, figures):
    build_report(load_dataset([_mixed_workloads(tmp_path / "one", make_run, (1,))]))
    one = [c for f in figures for c in f.axes[0].containers if isinstance(c, ErrorbarContainer)]
    assert one == []  # one seed: no interval, no zero-height error bar
    figures.clear()
    build_report(load_dataset([_mixed_workloads(tmp_path / "three", make_run, (1, 2, 3))]))
    three = [c for f in figures for c in f.axes[0].containers if isinstance(c, ErrorbarContainer)]
    assert three


def _ppc_sweep(root: Path, make_run: Callable[..., Path], values: list[int]) -> Path:
    for ppc in values:
        for seed in (1, 2):
            make_run(root / f"s-{ppc}-{seed}", scheme="shared", seed=seed, procs_per_cpu=ppc)
            make_run(root / f"p-{ppc}-{seed}", scheme="percpu", seed=seed, procs_per_cpu=ppc,
                     sim_ticks=1_000_000_000 + 1000 * ppc + seed)
    return root


@pytest.mark.parametrize(("values", "scale"), [
    ([1, 2, 3, 4, 6, 7, 8, 10, 16, 32, 64], "log"),  # spans decades
    ([2, 4, 6, 7, 8], "linear"),
])
def test_procs_per_cpu_gets_a_log_axis_when_it_spans_decades(tmp_path, make_run, figures,
                                                             values, scale):
    build_report(load_dataset([_ppc_sweep(tmp_path, make_run, values)]))
    ppc = [f for f in figures if f.axes[0].get_xlabel() == "processes per CPU"]
    assert len(ppc) == 1 and ppc[0].axes[0].get_xscale() == scale
    assert [t.get_text() for t in ppc[0].axes[0].get_xticklabels()] == [str(v) for v in values]
    assert _outside(ppc[0]) == []


def test_every_report_has_the_cycle_breakdown_per_scheme(tmp_path, make_run, figures):
    make_run(tmp_path / "s", scheme="shared")
    make_run(tmp_path / "p", scheme="percpu", sim_ticks=1_100_000_000)
    report = build_report(load_dataset([tmp_path]))
    cycles = next(s for s in report.sections if s.title == "Cycle breakdown")
    assert [p.slug for p in cycles.plots] == ["cycles_by_category"]
    ax = figures[0].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["shared", "percpu"]
    assert "user" in [t.get_text() for t in figures[0].legends[0].get_texts()]
    assert "![Busy cycles by category](plots/cycles_by_category.png)" in render_markdown(report)


def test_many_points_give_one_cycle_bar_per_scheme(tmp_path, make_run, figures):
    build_report(load_dataset([_ppc_sweep(tmp_path, make_run, list(range(1, 17)))]))
    cycles = next(f for f in figures if f.axes[0].get_xlabel().startswith("cycles"))
    assert [t.get_text() for t in cycles.axes[0].get_yticklabels()] == ["shared", "percpu"]
    assert "the 16 workload points" in cycles.axes[0].get_xlabel()


def test_run_ids_follow_numbers_by_value(tmp_path, make_run):
    report = build_report(load_dataset([_ppc_sweep(tmp_path, make_run, [2, 10, 3])]))
    runs = next(t for s in report.sections for t in s.tables if t.title == "Runs")
    order = [(row[0], row[6]) for row in runs.rows if row[4] == "shared" and row[5] == "1"]
    assert [params for _, params in order] == [
        "pinned=True,procs_per_cpu=2", "pinned=True,procs_per_cpu=3",
        "pinned=True,procs_per_cpu=10"]
    assert [int(rid[1:]) for rid, _ in order] == sorted(int(rid[1:]) for rid, _ in order)


def test_bars_follow_numbers_by_value(tmp_path, make_run, figures):
    for ppc in (2, 10, 3):
        for pcid in (True, False):
            make_run(tmp_path / f"s-{ppc}-{pcid}", scheme="shared", procs_per_cpu=ppc, pcid=pcid)
            make_run(tmp_path / f"p-{ppc}-{pcid}", scheme="percpu", procs_per_cpu=ppc, pcid=pcid,
                     sim_ticks=1_100_000_000)
    build_report(load_dataset([tmp_path]))
    bars = next(f for f in figures if f.axes[0].get_xlabel().startswith("overhead")
                and "PCID" in [t.get_text() for t in _texts(f)])
    labels = [t.get_text() for t in bars.axes[0].get_yticklabels()]
    assert labels == [f"percpu (procs_per_cpu={n})" for n in (2, 3, 10)]
