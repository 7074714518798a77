"""Names normalise to cpu/component/stat for every host; helpers answer questions in one call."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from percpu.analysis.stats_txt import Stat, write_stats_txt
from percpu.analysis.tidy import (
    COLUMNS,
    dump_delta,
    find_run_dirs,
    global_value,
    load_dataset,
    mean_ci,
    normalise_name,
    per_cpu_sum,
    per_cpu_table,
    read_run_info,
    run_value,
    select,
    summarise_vs_baseline,
    t_quantile_975,
    versus_baseline,
)
from percpu.errors import UsageError


@pytest.mark.parametrize(
    ("name", "cpu", "cpu_set", "component", "stat", "bucket"),
    [
        # engine
        ("system.cpu3.mmu.dtb.rdMisses", 3, "cpu", "mmu.dtb", "rdMisses", ""),
        ("system.cpu12.cycles::walk", 12, "cpu", "", "cycles", "walk"),
        ("system.cpu0.percpu.rootAllocs::evicted", 0, "cpu", "percpu", "rootAllocs", "evicted"),
        ("system.cpu7.mmu.walker.walkCycles", 7, "cpu", "mmu.walker", "walkCycles", ""),
        ("system.percpu.rootPoolPeakBytes", None, "", "percpu", "rootPoolPeakBytes", ""),
        ("system.llc.misses", None, "", "llc", "misses", ""),
        ("simTicks", None, "", "", "simTicks", ""),
        # legacy configs (se.py / fs.py)
        ("system.cpu.numCycles", 0, "cpu", "", "numCycles", ""),
        ("system.cpu1.dcache.overallMisses::total", 1, "cpu", "dcache", "overallMisses", "total"),
        ("system.switch_cpus2.numCycles", 2, "switch_cpus", "", "numCycles", ""),
        ("system.cpu_voltage_domain.voltage", None, "", "cpu_voltage_domain", "voltage", ""),
        ("system.ruby.l1_cntrl3.L1Dcache.m_demand_misses", 3, "", "l1_cntrl.L1Dcache",
         "m_demand_misses", ""),
        # stdlib (gem5 v24): one core, several cores, switchable processors
        ("board.processor.cores.core.numCycles", 0, "cores", "", "numCycles", ""),
        ("board.processor.cores5.core.mmu.itb.wrMisses", 5, "cores", "mmu.itb", "wrMisses", ""),
        ("board.processor.start1.core.numCycles", 1, "start", "", "numCycles", ""),
        ("board.processor.switch1.core.numCycles", 1, "switch", "", "numCycles", ""),
        ("board.processor.cores0.core.commitStats0.committedInstType::IntAlu", 0, "cores",
         "commitStats0", "committedInstType", "IntAlu"),
        ("board.cache_hierarchy.l1d-cache-3.overallMisses::total", 3, "", "l1d", "overallMisses",
         "total"),
        ("board.cache_hierarchy.l2-cache-0.tags.avgOccs::total", 0, "", "l2.tags", "avgOccs",
         "total"),
        ("board.cache_hierarchy.l1icaches2.overallMisses::total", 2, "", "l1i", "overallMisses",
         "total"),
        ("board.cache_hierarchy.dptw_caches1.overallMisses::total", 1, "", "dptw",
         "overallMisses", "total"),
        ("board.cache_hierarchy.ruby_system.l1_controllers1.L1Dcache.m_demand_misses", 1, "",
         "l1_controllers.L1Dcache", "m_demand_misses", ""),
        ("board.cache_hierarchy.l2buses.snoopFanout::0", None, "", "cache_hierarchy.l2buses",
         "snoopFanout", "0"),
        ("board.memory.mem_ctrl.dram.rank0.totalEnergy", None, "", "memory.mem_ctrl.dram.rank0",
         "totalEnergy", ""),
        # a crossbar stat whose name embeds a port path
        (("board.cache_hierarchy.l2buses.pktCount_board.cache_hierarchy.l1d-cache-0.mem_side_port"
          "::board.cache_hierarchy.l2-cache-0.cpu_side_port"), None, "", "cache_hierarchy.l2buses",
         "pktCount_board.cache_hierarchy.l1d-cache-0.mem_side_port",
         "board.cache_hierarchy.l2-cache-0.cpu_side_port"),
        # unknown shapes are kept, not dropped
        ("board.processor.cores", None, "", "processor", "cores", ""),
        ("weird", None, "", "", "weird", ""),
    ],
)  # fmt: skip
def test_normalise_name(
    name: str, cpu: int | None, cpu_set: str, component: str, stat: str, bucket: str
) -> None:
    parts = normalise_name(name)
    assert (parts.cpu, parts.cpu_set, parts.component, parts.stat, parts.bucket) == (
        cpu, cpu_set, component, stat, bucket,
    )  # fmt: skip


def test_pattern_stars_the_cpu_index_only() -> None:
    assert normalise_name("system.cpu12.cycles::walk").pattern == "system.cpu*.cycles::walk"
    assert (
        normalise_name("board.cache_hierarchy.l1d-cache-3.overallMisses::total").pattern
        == "board.cache_hierarchy.l1d-cache-*.overallMisses::total"
    )
    assert normalise_name("simTicks").pattern == "simTicks"


# --- gem5 runs ----------------------------------------------------------------------


def test_real_gem5_fixture_tidies(fixture_run: Path) -> None:
    ds = load_dataset([fixture_run])
    info = ds.runs[str(fixture_run)]
    assert (info.host, info.workload, info.scheme, info.seed) == ("gem5", "hello", "gem5", None)
    assert info.machine["cpus"] == 1 and info.machine["freq_ghz"] == 3.0
    assert info.params == {"mode": "se", "cpu_type": "BaseAtomicSimpleCPU"}
    df = ds.frame
    assert list(df.columns) == COLUMNS
    assert len(df) == 678 + 533
    cyc = df[df["name"] == "board.processor.cores.core.numCycles"]
    assert list(cyc["dump"]) == [0, 1] and list(cyc["value"]) == [12256, 0]
    assert set(cyc["cpu"]) == {0} and set(cyc["cpu_set"]) == {"cores"}
    assert per_cpu_sum(df, "numCycles", dump=0).iloc[0] == 12256
    assert per_cpu_sum(df, "overallMisses::total", "l1d", dump=0).iloc[0] == 133
    assert global_value(df, "simTicks").iloc[0] == 1_000_000_000  # last dump by default
    assert global_value(df, "simTicks", dump=0).iloc[0] == 4080915
    rows = select(df, "snoopFanout::0", "cache_hierarchy.l2buses", dump=0)
    assert list(rows["value"]) == [361] and rows["cpu"].isna().all()


def test_config_ini_alone_gives_the_same_run_info(fixture_run: Path) -> None:
    from_json = read_run_info(fixture_run)
    (fixture_run / "config.json").unlink()
    from_ini = read_run_info(fixture_run)
    assert from_ini.config_files == ("config.ini",)
    for field in ("workload", "scheme", "params", "machine"):
        assert getattr(from_ini, field) == getattr(from_json, field), field


def test_dump_delta_between_the_fixture_dumps(fixture_run: Path) -> None:
    delta = dump_delta(load_dataset([fixture_run]).frame, 0, 1).set_index("name")
    assert delta.loc["simTicks", "delta"] == 1_000_000_000 - 4080915
    assert delta.loc["board.processor.cores.core.numCycles", "delta"] == -12256
    assert delta.loc["board.processor.cores.core.numCycles", "cpu"] == 0
    # stats present in only one dump have no delta
    assert "board.cache_hierarchy.l1d-cache-0.demandHits::total" not in delta.index


def test_multicore_full_system_gem5_run(tmp_path: Path, make_gem5_run: Callable[..., Path]) -> None:
    run = make_gem5_run(tmp_path / "fs", cpus=4)
    ds = load_dataset([run])
    info = ds.runs[str(run)]
    assert info.workload == "fs:vmlinux-6.1"
    assert info.params["mode"] == "fs" and info.machine["cpus"] == 4
    assert info.machine["freq_ghz"] == 2.0
    table = per_cpu_table(ds.frame, "numCycles")
    assert list(table.columns) == [0, 1, 2, 3]
    assert list(table.iloc[0]) == [600_000, 600_001, 600_002, 600_003]
    l1d = per_cpu_table(ds.frame, "overallMisses::total", "l1d")
    assert list(l1d.iloc[0]) == [70, 71, 72, 73]


def test_switchable_processor_counts_active_cores_and_sums_both_sets(
    tmp_path: Path, make_gem5_run: Callable[..., Path]
) -> None:
    run = make_gem5_run(tmp_path / "sw", cpus=2, switchable=True)
    ds = load_dataset([run])
    assert ds.runs[str(run)].machine["cpus"] == 2  # switched-out cores are not extra CPUs
    assert ds.runs[str(run)].params["cpu_type"] == "X86TimingSimpleCPU"
    rows = select(ds.frame, "numCycles", cpu="per-cpu")
    assert sorted(zip(rows["cpu_set"], rows["cpu"])) == [
        ("start", 0), ("start", 1), ("switch", 0), ("switch", 1),
    ]  # fmt: skip
    assert per_cpu_sum(ds.frame, "numCycles").iloc[0] == 600_000 + 600_001 + 0 + 1
    assert per_cpu_sum(ds.frame, "rdMisses", "mmu.dtb").iloc[0] == (40 + 41) * 2


LEGACY_FS_INI = """\
[root]
type=Root
children=system
full_system=true

[system]
type=System
children=cpu0 cpu1 cpu_clk_domain l2 switch_cpus0 switch_cpus1 workload

[system.cpu_clk_domain]
type=SrcClockDomain
clock=250

[system.cpu0]
type=X86AtomicSimpleCPU
clk_domain=system.cpu_clk_domain
cpu_id=0
switched_out=false

[system.cpu1]
type=X86AtomicSimpleCPU
clk_domain=system.cpu_clk_domain
cpu_id=1
switched_out=false

[system.switch_cpus0]
type=X86O3CPU
clk_domain=system.cpu_clk_domain
cpu_id=0
switched_out=true

[system.switch_cpus1]
type=X86O3CPU
clk_domain=system.cpu_clk_domain
cpu_id=1
switched_out=true

[system.workload]
type=X86FsLinux
object_file=/dist/m5/system/binaries/x86_64-vmlinux-2.6.22.9
"""


def test_legacy_full_system_run_from_config_ini(tmp_path: Path) -> None:
    """configs/example/fs.py style: system.cpuN, system.switch_cpusN, a shared system.l2."""
    (tmp_path / "config.ini").write_text(LEGACY_FS_INI)
    stats = [Stat("simTicks", 5_000_000, "Number of ticks simulated", "Tick")]
    for n in range(2):
        stats += [
            Stat(f"system.cpu{n}.numCycles", 1000 + n, "Number of cpu cycles simulated", "Cycle"),
            Stat(f"system.cpu{n}.dcache.overallMisses::total", 10 * (n + 1), "misses", "Count"),
            Stat(f"system.switch_cpus{n}.numCycles", 0, "Number of cpu cycles simulated", "Cycle"),
        ]
    stats.append(Stat("system.l2.overallMisses::total", 7, "number of overall misses", "Count"))
    write_stats_txt(tmp_path / "stats.txt", [stats])
    ds = load_dataset([tmp_path])
    info = ds.runs[str(tmp_path)]
    assert info.workload == "fs:x86_64-vmlinux-2.6.22.9"
    assert info.params == {"mode": "fs", "cpu_type": "X86AtomicSimpleCPU"}
    assert info.machine["cpus"] == 2 and info.machine["freq_ghz"] == 4.0
    assert per_cpu_sum(ds.frame, "overallMisses::total", "dcache").iloc[0] == 30
    assert per_cpu_sum(ds.frame, "numCycles").iloc[0] == 2001
    assert run_value(ds.frame, "overallMisses::total", "l2").iloc[0] == 7  # shared: no cpu
    switch = select(ds.frame, "numCycles", cpu="per-cpu")
    assert set(switch["cpu_set"].astype(str)) == {"cpu", "switch_cpus"}


def test_percpu_json_overrides_what_gem5_config_implies(
    tmp_path: Path, make_gem5_run: Callable[..., Path]
) -> None:
    extra = {"workload": "ctxmix", "scheme": "percpu", "seed": 7,
             "params": {"procs_per_cpu": 8}, "machine": {"pcid": True, "pti": False}}  # fmt: skip
    info = read_run_info(make_gem5_run(tmp_path / "g", percpu_json=extra))
    assert (info.workload, info.scheme, info.seed) == ("ctxmix", "percpu", 7)
    assert info.params["procs_per_cpu"] == 8 and info.params["mode"] == "fs"
    assert info.machine["pcid"] is True and info.machine["cpus"] == 2
    assert info.config_files == ("config.json", "percpu.json")


# --- engine runs ---------------------------------------------------------------------


def test_engine_run_metadata_and_per_cpu_sums(
    tmp_path: Path, make_run: Callable[..., Path]
) -> None:
    run = make_run(tmp_path / "r", scheme="percpu", seed=3, cpus=4, procs_per_cpu=8, pcid=True)
    ds = load_dataset([run])
    info = ds.runs[str(run)]
    assert (info.host, info.workload, info.scheme, info.seed) == ("engine", "ctxmix", "percpu", 3)
    df = ds.frame
    # per CPU: firstUse 8 + evicted 10*(8-6) + flushedInactive 2 + noPcid 0
    assert per_cpu_sum(df, "rootAllocs::total", "percpu").iloc[0] == 4 * (8 + 20 + 2)
    assert per_cpu_sum(df, "rootAllocs::evicted", "percpu").iloc[0] == 4 * 20
    assert global_value(df, "rootPoolBoundBytes", "percpu").iloc[0] == 4096 * 4 * 6
    assert run_value(df, "simTicks").iloc[0] == 1_000_000_000
    assert run_value(df, "misses", "l1d").iloc[0] == 4 * 1000  # no global: sums CPUs
    assert set(df["params"].astype(str)) == {"pinned=True,procs_per_cpu=8"}
    assert df["pcid"].all() and not df["pti"].any()


def test_last_complete_dump_is_the_default(tmp_path: Path, make_run: Callable[..., Path]) -> None:
    run = make_run(tmp_path / "r", dumps=3, sim_ticks=1000)
    df = load_dataset([run]).frame
    assert global_value(df, "simTicks").iloc[0] == 3000
    assert global_value(df, "simTicks", dump=-2).iloc[0] == 2000
    assert global_value(df, "simTicks", dump=0).iloc[0] == 1000
    assert global_value(df, "simTicks", dump=-4).empty


def test_partial_dump_is_flagged_and_never_the_default(
    tmp_path: Path, make_run: Callable[..., Path]
) -> None:
    run = make_run(tmp_path / "r", dumps=2, sim_ticks=1000, cpus=2)
    text = (run / "stats.txt").read_text()
    (run / "stats.txt").write_text(text[: text.rindex("system.cpu1")])
    with pytest.raises(UsageError, match="truncated"):
        load_dataset([run])
    ds = load_dataset([run], allow_partial=True)
    assert any("no End banner" in w for w in ds.warnings)
    df = ds.frame
    assert set(df[df["dump"] == 1]["partial"]) == {True}
    assert global_value(df, "simTicks").iloc[0] == 1000  # dump 0: the last complete one
    assert global_value(df, "simTicks", dump=1).iloc[0] == 2000  # asked for explicitly


def test_versus_baseline_pairs_seeds_and_summarises(
    tmp_path: Path, make_run: Callable[..., Path]
) -> None:
    for seed, pct in ((1, 9), (2, 10), (3, 11)):
        base = 1_000_000 * (10 + seed)
        make_run(tmp_path / f"s{seed}", scheme="shared", seed=seed, sim_ticks=base)
        make_run(tmp_path / f"p{seed}", scheme="percpu", seed=seed,
                 sim_ticks=base * (100 + pct) // 100)  # fmt: skip
    ds = load_dataset([tmp_path])
    vs = versus_baseline(ds).sort_values("seed")
    assert list(vs["overhead_pct"].round(9)) == [9.0, 10.0, 11.0]
    assert [len(b) for b in vs["baseline_runs"]] == [1, 1, 1]
    summary = summarise_vs_baseline(vs)
    row = summary.iloc[0]
    assert row["n"] == 3 and row["mean_pct"] == pytest.approx(10.0)
    assert row["ci_half_pct"] == pytest.approx(4.302653 / math.sqrt(3))


def test_versus_baseline_uses_the_baseline_mean_without_matching_seeds(
    tmp_path: Path, make_run: Callable[..., Path]
) -> None:
    make_run(tmp_path / "s1", scheme="shared", seed=10, sim_ticks=1_000_000)
    make_run(tmp_path / "s2", scheme="shared", seed=11, sim_ticks=3_000_000)
    make_run(tmp_path / "p", scheme="percpu", seed=1, sim_ticks=2_200_000)
    # another point (more CPUs) with no baseline: left out
    make_run(tmp_path / "other", scheme="percpu", seed=1, cpus=8, sim_ticks=5)
    vs = versus_baseline(load_dataset([tmp_path]))
    assert len(vs) == 1
    assert vs.iloc[0]["baseline_value"] == 2_000_000
    assert vs.iloc[0]["overhead_pct"] == pytest.approx(10.0)
    assert len(vs.iloc[0]["baseline_runs"]) == 2
    assert math.isnan(summarise_vs_baseline(vs).iloc[0]["ci_half_pct"])


def test_t_quantiles_and_mean_ci() -> None:
    assert t_quantile_975(1) == pytest.approx(12.706205)
    assert t_quantile_975(33) == pytest.approx(2.034515, abs=1e-4)  # interpolated
    assert t_quantile_975(10_000) == pytest.approx(1.960201, abs=1e-4)
    mean, half = mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert half == pytest.approx(3.182446 * math.sqrt(5 / 3 / 4))
    assert mean_ci([5.0])[0] == 5.0 and math.isnan(mean_ci([5.0])[1])
    with pytest.raises(ValueError):
        t_quantile_975(0)


# --- bad run directories --------------------------------------------------------------


def test_missing_paths_and_empty_dirs_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such path"):
        find_run_dirs([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="expected stats.txt"):
        find_run_dirs([tmp_path / "empty"])


def test_directory_of_runs_is_searched(tmp_path: Path, make_run: Callable[..., Path]) -> None:
    make_run(tmp_path / "a" / "r1")
    make_run(tmp_path / "b" / "deep" / "r2")
    found = find_run_dirs([tmp_path, tmp_path / "a" / "r1"])  # duplicates collapse
    assert sorted(p.name for p in found) == ["r1", "r2"]


def test_bad_config_json_names_the_file_and_line(
    tmp_path: Path, make_run: Callable[..., Path]
) -> None:
    run = make_run(tmp_path / "r")
    (run / "config.json").write_text('{\n  "percpu_version": "0.1.0",\n  oops\n}')
    with pytest.raises(UsageError, match=rf"^{run / 'config.json'}:3: expected JSON"):
        read_run_info(run)
    cfg = {"percpu_version": "0.1.0", "workload": "w", "scheme": "s", "machine": {}}
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UsageError, match="expected key 'cpus'"):
        read_run_info(run)


def test_run_without_any_config_is_a_usage_error(tmp_path: Path) -> None:
    write_stats_txt(tmp_path / "stats.txt", [[Stat("simTicks", 1)]])
    with pytest.raises(UsageError, match="expected config.json .* or config.ini"):
        read_run_info(tmp_path)
