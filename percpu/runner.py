"""Runs a workload point on the embedded engine and writes its m5out-like directory.

<outdir>/<scheme>/ holds stats.txt (gem5's text format), config.json (every parameter,
the seed, the versions), summary.txt and program.ops (the rendered op program). A
directory appears only complete: it is written beside its final name and renamed.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from percpu import __version__
from percpu.analysis.stats_txt import Stat, write_stats_txt
from percpu.atomic import make_temp_dir, replace_dir
from percpu.errors import UsageError
from percpu.params import core, specs
from percpu.workloads import Workload
from percpu.workloads.program import parse_program


@dataclass
class PointResult:
    scheme: str
    outdir: Path
    stats: dict[str, float]
    violations: list[tuple[str, int, str, int, int]]
    violation_count: int
    memory_references: int
    host_seconds: float
    log: list[tuple] = field(default_factory=list)
    raw_stats: list[tuple[str, float, str, str]] = field(default_factory=list)


def machine_section(values: dict[str, float]) -> dict[str, Any]:
    return {
        "cpus": int(values["machine.cpus"]),
        "pcid": bool(values["machine.pcid"]),
        "pti": bool(values["machine.pti"]),
        "paging": int(values["machine.paging_levels"]),
        "freq_ghz": values["machine.freq_mhz"] / 1000.0,
    }


def _section(values: dict[str, float], prefixes: tuple[str, ...]) -> dict[str, float]:
    return {k: v for k, v in values.items() if k.startswith(prefixes)}


def prepare_program(workload: Workload, wl_params: dict[str, Any],
                    overrides: dict[str, float]) -> tuple[dict[str, float], str, Any]:
    """Every parameter's value, the rendered op program and its parse, for one point: a
    bad trace or template fails here, before any scheme runs. Returns (values, text,
    program)."""
    values = {s.key: s.default for s in specs().values()}
    values.update(overrides)
    cpus = int(values["machine.cpus"])
    seed = int(values["machine.seed"])
    text = workload.render("engine", wl_params, cpus=cpus, seed=seed,
                           freq_mhz=values["machine.freq_mhz"])
    program = parse_program(text, cpus, source=workload.program_source())
    return values, text, program


def run_engine(
    workload: Workload,
    wl_params: dict[str, Any],
    scheme: str,
    overrides: dict[str, float],
    *,
    check: bool = False,
    record_log: bool = False,
    prepared: tuple[dict[str, float], str, Any] | None = None,
    progress: Callable[[float, int], None] | None = None,
) -> tuple[PointResult, str, dict[str, float]]:
    """Run one scheme (rendering and parsing first unless prepared, from prepare_program);
    nothing is written. progress(simulated seconds, memory references) is called now and
    then during the run. Returns (result, program text, values)."""
    values, text, program = prepared or prepare_program(workload, wl_params, overrides)
    start = time.perf_counter()
    try:
        out = core().run(values, scheme, check=check, record_log=record_log, progress=progress,
                         **program.core_args())
    except core().ProgramError as exc:  # a malformed program (core/engine/program_check.h)
        raise UsageError(f"workload {workload.name}: {exc}") from None
    except ValueError as exc:  # a parameter or a scheme
        raise UsageError(str(exc)) from None
    except core().WorkloadError as exc:  # the program did something the kernel refuses
        raise UsageError(f"workload {workload.name}: {exc}") from None
    # Anything else the engine raises (RuntimeError, IndexError, ...) is a bug in the model:
    # the command line reports it as an internal error, not as bad input.
    host = time.perf_counter() - start
    stats = {name: value for name, value, _, _ in out["stats"]}
    result = PointResult(
        scheme=scheme,
        outdir=Path(),
        stats=stats,
        violations=list(out["violations"]),
        violation_count=int(out["violation_count"]),
        memory_references=int(out["memory_references"]),
        host_seconds=host,
        log=list(out["log"]),
        raw_stats=list(out["stats"]),
    )
    return result, text, values


def write_point(
    result: PointResult,
    directory: Path,
    *,
    workload: Workload,
    wl_params: dict[str, Any],
    values: dict[str, float],
    program_text: str,
    check: bool,
    command: list[str],
    note: str | None = None,
) -> Path:
    """Write stats.txt, config.json, summary.txt and program.ops into directory, atomically.
    note (config.json's "note" and summary.txt's last line) says how the run came to be
    kept, e.g. the one finished run of an interrupted command."""
    directory = directory.resolve()
    parent = directory.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = make_temp_dir(parent, f".{directory.name}.")
    except OSError as exc:
        raise UsageError(f"cannot write to output directory {parent}: {exc.strerror}; "
                         "choose another with --outdir") from None
    try:
        raw = [Stat(name, value, desc, unit) for name, value, desc, unit in result.raw_stats]
        raw.append(Stat("hostSeconds", round(result.host_seconds, 6),
                        "Real time elapsed on the host", "Second"))
        rate = result.memory_references / result.host_seconds if result.host_seconds > 0 else 0.0
        raw.append(Stat("hostRefRate", round(rate), "simulated memory references per host second",
                        "(Count/Second)"))
        result.stats["hostSeconds"] = result.host_seconds
        write_stats_txt(tmp / "stats.txt", [raw])
        config = {
            "percpu_version": __version__,
            "host": "engine",
            "workload": workload.name,
            "params": wl_params,
            "scheme": result.scheme,
            "seed": int(values["machine.seed"]),
            "check": check,
            "machine": machine_section(values),
            "costs": _section(values, ("cost.",)),
            "geometry": _section(values, ("tlb.", "psc.", "cache.", "walk.")),
            "options": _section(values, ("kmap.", "sched.", "check.", "fault.")),
            "parameters": values,
            "versions": {
                "percpu": __version__,
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "command": command,
        }
        if note:
            config["note"] = note
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=False) + "\n")
        (tmp / "program.ops").write_text(program_text)
        (tmp / "summary.txt").write_text(summary_text(result, workload, wl_params, values)
                                         + (f"note: {note}\n" if note else ""))
        replace_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.outdir = directory
    return directory


# What write_point puts in a run directory: a directory holding anything else is not a
# previous run of percpu's engine, and `percpu run` will not replace it without --force.
RUN_FILES = frozenset({"stats.txt", "config.json", "summary.txt", "program.ops"})


def foreign_entries(directory: Path) -> list[str]:
    """The entries of an existing directory that write_point did not write (all of them if
    its config.json is not an engine run's): empty means replacing it loses nothing."""
    try:
        entries = sorted(p.name for p in directory.iterdir())
    except OSError:
        return []
    try:
        config = json.loads((directory / "config.json").read_text())
        ours = isinstance(config, dict) and "percpu_version" in config
    except (OSError, ValueError):
        ours = False
    return [e for e in entries if not ours or e not in RUN_FILES]


# What write_report puts in a report directory (OUTDIR/report/ of `percpu run`).
REPORT_FILES = frozenset({"report.md", "report.html", "plots"})


def _is_report_dir(directory: Path) -> bool:
    try:
        entries = {p.name for p in directory.iterdir()}
        plots = directory / "plots"
        return bool(entries) and entries <= REPORT_FILES and (
            not plots.is_dir() or all(p.suffix == ".png" for p in plots.iterdir()))
    except OSError:
        return False


def other_entries(out: Path, keep: set[str]) -> tuple[list[Path], list[str]]:
    """What the output directory out holds besides the entries keep (this run's): the
    previous runs and reports of percpu's engine, which describe another run and may go,
    and the names of anything else, which is not percpu's to remove. Hidden entries (a
    killed run's temporary directories) are neither."""
    ours: list[Path] = []
    others: list[str] = []
    try:
        entries = sorted(out.iterdir())
    except OSError:
        return ours, others
    for entry in entries:
        if entry.name in keep or entry.name.startswith("."):
            continue
        run = (entry.is_dir() and not entry.is_symlink() and (entry / "config.json").is_file()
               and not foreign_entries(entry))
        if run or (entry.name == "report" and entry.is_dir() and _is_report_dir(entry)):
            ours.append(entry)
        else:
            others.append(entry.name)
    return ours, others


def cpu_sum(stats: dict[str, float], suffix: str) -> float:
    """Sum of system.cpuN.<suffix> over CPUs."""
    total = 0.0
    for name, value in stats.items():
        if name.startswith("system.cpu") and name.endswith("." + suffix):
            head = name[len("system.cpu"):-len(suffix) - 1]
            if head.isdigit():
                total += value
    return total


def busy_cycles(stats: dict[str, float]) -> float:
    return cpu_sum(stats, "numCycles") - cpu_sum(stats, "cycles::idle")


def summary_text(result: PointResult, workload: Workload, wl_params: dict[str, Any],
                 values: dict[str, float]) -> str:
    s = result.stats
    m = machine_section(values)
    params = " ".join(f"{k}={v}" for k, v in wl_params.items())
    lines = [
        f"percpu {__version__}: workload {workload.name}" + (f" ({params})" if params else ""),
        (f"scheme {result.scheme} on {m['cpus']} CPUs, PCID {'on' if m['pcid'] else 'off'}, "
        f"PTI {'on' if m['pti'] else 'off'}, {m['paging']}-level paging, seed {int(values['machine.seed'])}"),
        "",
        f"simulated time      {s['simSeconds'] * 1e3:.3f} ms ({int(s['simTicks'])} ticks)",
        f"busy cycles         {busy_cycles(s):,.0f} (all CPUs, idle excluded)",
        f"memory references   {result.memory_references:,}",
        f"context switches    {cpu_sum(s, 'ctxSwitches'):,.0f} ({cpu_sum(s, 'mmSwitches'):,.0f} mm switches)",
        (f"root allocations    {cpu_sum(s, 'percpu.rootAllocs::total'):,.0f} "
        f"(first use {cpu_sum(s, 'percpu.rootAllocs::firstUse'):,.0f}, "
        f"evicted {cpu_sum(s, 'percpu.rootAllocs::evicted'):,.0f}, "
        f"flushed inactive {cpu_sum(s, 'percpu.rootAllocs::flushedInactive'):,.0f}, "
        f"no PCID {cpu_sum(s, 'percpu.rootAllocs::noPcid'):,.0f})"),
        (f"lazy faults         {cpu_sum(s, 'percpu.lazyFaults'):,.0f} "
        f"(max {s['system.percpu.maxLazyFaultsPerRoot']:.0f} per root generation, bound 256)"),
        (f"root pool peak      {s['system.percpu.rootPoolPeakBytes'] / 1024:,.0f} KiB "
        f"(bound {s['system.percpu.rootPoolBoundBytes'] / 1024:,.0f} KiB)"),
        f"checker violations  {result.violation_count}",
        (f"host time           {result.host_seconds:.3f} s "
        f"({result.memory_references / max(result.host_seconds, 1e-9) / 1e6:.1f} M refs/s)"),
    ]
    return "\n".join(lines) + "\n"
