"""`percpu compare`: the engine, the gem5 plugin and the percpu kernel, point by point
(docs/compare.md; issues 24 and 25).

Each point (workload and parameters, CPUs, machine) runs at seeds 1..N on each host:

- engine: `percpu run` on gem5's geometry and the simulated machine's cost profile
  (`--config docs/profiles/gem5-v24-classic-timing.toml --config PROFILE --set
  root.fill_at_fault=0 --check`), schemes shared,percpu;
- gem5 (the plugin): `percpu gem5 run` on the stock guest kernel, schemes shared,percpu,
  with the profile's values of the costs the root model charges;
- kernel: `percpu gem5 run --kernel percpu -s shared`, against the stock kernel's shared
  run of the same point and seed (the plugin's baseline run, reused).

Run directories go to OUT/<host>/<point>-s<seed>/<scheme>/; a rerun with the same --out
skips every scheme directory that is already there (each is written complete or not at
all by the run commands), so an interrupted comparison resumes. OUT/compare.{json,csv,md}
and OUT/compare.png are written atomically from whatever finished.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from percpu.atomic import write_atomic
from percpu.errors import UsageError
from percpu.run_request import KERNEL_KMAP_DEFAULT

REPO = Path(__file__).resolve().parents[1]
GEOMETRY = REPO / "docs" / "profiles" / "gem5-v24-classic-timing.toml"
DEFAULT_PROFILE = REPO / "docs" / "profiles" / "gem5-v24-classic-timing-calibrated.toml"
HOSTS = ("engine", "gem5", "kernel")
# The kernel's baseline runs: the percpu kernel booted with percpu_roots=off.
KERNEL_BASELINE = "kernel-off"
MACHINES = {"pcid": [], "nopcid": ["--no-pcid"], "pti": ["--pti"]}
CAUSES = ("firstUse", "evicted", "flushedInactive", "noPcid")
# The marked section --write-docs replaces.
DOC_BEGIN = "<!-- percpu compare: begin -->"
DOC_END = "<!-- percpu compare: end -->"
# Agreement rules (docs/compare.md): relative tolerance, and the reference overhead (in
# percent) above which the overhead is compared relatively, else absolutely (in points).
REL_TOL = 0.10
ABS_TOL_POINTS = 0.5
THRESHOLD_VS_GEM5 = 5.0    # issue 25: the engine against gem5
THRESHOLD_VS_KERNEL = 2.0  # issue 24: each model against the kernel
COUNTS = ("rootAllocs::total", "lazyFaults", "mmSwitches")
# The percpu kernel's kmap_local counts (docs/kernel.md), in their own table.
KMAP_COUNTS = ("kmap.localMaps::private", "kmap.localMaps::fixmap", "kmap.restores::private",
               "kmap.restores::fixmap", "kmap.inPlace", "kmap.invalidateOther")


@dataclass(frozen=True)
class PointDef:
    """A workload point at today's region of interest; `scaled` names the parameters
    --roi-scale multiplies."""

    workload: str
    params: tuple[str, ...]
    scaled: tuple[str, ...]
    kernel_only: bool = False
    # The percpu kernel's kmap_local (--kernel-kmap): direct, as the stock kernel, where the
    # point measures the roots; the kmap-io points measure where kmap_local maps.
    kernel_kmap: str = KERNEL_KMAP_DEFAULT


def point_defs() -> dict[str, PointDef]:
    ctx = ("rounds=50", "pages=4", "work_cycles=2000")
    out = {"pingpong": PointDef("pingpong", ("iterations=200",), ("iterations",))}
    for n in (4, 6, 7, 8):
        out[f"ctxmix-{n}"] = PointDef("ctxmix", (f"procs_per_cpu={n}", *ctx), ("rounds",))
    out["forkexec"] = PointDef("forkexec", ("forks=20",), ("forks",))
    # threads={cpus}: one thread per CPU (filled in per point).
    out["threads-munmap"] = PointDef("threads-munmap", ("threads={cpus}", "iterations=50"),
                                     ("iterations",))
    out["server"] = PointDef("server", ("requests=20", "pages=4", "work_cycles=2000"),
                             ("requests",))
    # kmap-io: kmap_local in each root's own slot (patch 11); kmap-io-fixmap: in the
    # fixmap, roots on (patch 10 alone); both against the stock kernel, which maps nothing.
    kmap = ("iterations=4", "io_kib=16")
    out["kmap-io"] = PointDef("kmap-io", kmap, ("iterations",), kernel_only=True,
                              kernel_kmap="private")
    out["kmap-io-fixmap"] = PointDef("kmap-io", kmap, ("iterations",), kernel_only=True,
                                     kernel_kmap="fixmap")
    return out


@dataclass
class Options:
    out: Path
    points: list[str]
    cpus: list[int]
    machines: list[str]
    hosts: list[str]
    seeds: int = 1
    roi_scale: float = 1.0
    gem5: Path | None = None
    profile: Path | None = DEFAULT_PROFILE
    jobs: int = 1
    engine_jobs: int = 0
    checkpoint_dir: str | None = None
    kernel_stock: str | None = None
    kernel_percpu: str | None = None
    write_docs: Path | None = None
    dry_run: bool = False
    quiet: bool = False


@dataclass
class Unit:
    """One command: a host's run of one point at one seed (some of its schemes)."""

    host: str          # engine, gem5 or kernel
    point: str         # e.g. pingpong-c2-pcid (with -x10 after the name at --roi-scale 10)
    seed: int
    machine_key: tuple  # what one gem5 checkpoint serves
    schemes: list[str]
    outdir: Path
    cmd: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.host} {self.point} seed {self.seed}"


# --- the plan -----------------------------------------------------------------------------


def point_tag(name: str, cpus: int, machine: str, roi_scale: float) -> str:
    scale = "" if roi_scale == 1 else f"-x{roi_scale:g}"
    return f"{name}{scale}-c{cpus}-{machine}"


def point_params(pdef: PointDef, cpus: int, roi_scale: float) -> list[str]:
    out = []
    for item in pdef.params:
        key, value = item.split("=", 1)
        value = value.format(cpus=cpus)
        if key in pdef.scaled:
            value = str(max(1, round(int(value) * roi_scale)))
        out.append(f"{key}={value}")
    return out


def run_dir(out: Path, host: str, point: str, seed: int) -> Path:
    return out / host / f"{point}-s{seed}"


def scheme_done(d: Path) -> bool:
    return (d / "stats.txt").is_file() and ((d / "config.json").is_file()
                                            or (d / "percpu.json").is_file())


def profile_root_costs(profile: Path | None) -> list[str]:
    """--set flags giving gem5's root model the profile's values of the costs it charges."""
    if profile is None:
        return []
    from percpu.params import load_toml
    from percpu.run_request import ROOT_MODEL_COSTS

    values = load_toml(profile)
    return [a for k in ROOT_MODEL_COSTS if k in values for a in ("--set", f"{k}={values[k]:g}")]


def plan(opts: Options) -> list[Unit]:
    """Every command the comparison makes, finished ones included, in run order."""
    defs = point_defs()
    percpu = [sys.executable, "-m", "percpu"]
    units: list[Unit] = []
    gem5_common = ["--gem5", str(opts.gem5)] if opts.gem5 else []
    if opts.checkpoint_dir:
        gem5_common += ["--checkpoint-dir", opts.checkpoint_dir]
    root_costs = profile_root_costs(opts.profile)
    for name in opts.points:
        pdef = defs[name]
        for cpus in opts.cpus:
            for machine in opts.machines:
                tag = point_tag(name, cpus, machine, opts.roi_scale)
                params = point_params(pdef, cpus, opts.roi_scale)
                common = ["-w", pdef.workload, *[a for p in params for a in ("-p", p)],
                          "--cpus", str(cpus), *MACHINES[machine]]
                for seed in range(1, opts.seeds + 1):
                    seedf = ["--seed", str(seed)]
                    key = (cpus, machine)
                    if "engine" in opts.hosts and not pdef.kernel_only:
                        d = run_dir(opts.out, "engine", tag, seed)
                        configs = [str(GEOMETRY)] + ([str(opts.profile)] if opts.profile else [])
                        cmd = [*percpu, "run", *common, *seedf, "-s", "shared,percpu",
                               *[a for c in configs for a in ("--config", c)],
                               "--set", "root.fill_at_fault=0", "--check", "--no-report", "-q",
                               "-o", str(d)]
                        units.append(Unit("engine", tag, seed, key, ["shared", "percpu"], d,
                                          cmd))
                    # The plugin's run; the kernel's baseline is its shared run.
                    want = []
                    if "gem5" in opts.hosts and not pdef.kernel_only:
                        want = ["shared", "percpu"]
                    elif "kernel" in opts.hosts:
                        want = ["shared"]
                    if want:
                        d = run_dir(opts.out, "gem5", tag, seed)
                        kernel = ["--kernel", opts.kernel_stock or "stock"]
                        costs = root_costs if "percpu" in want else []
                        cmd = [*percpu, "gem5", "run", *common, *seedf, "-s", ",".join(want),
                               *gem5_common, *kernel, *costs, "--check", "--no-report", "-q",
                               "-o", str(d)]
                        units.append(Unit("gem5", tag, seed, (*key, "stock"), want, d, cmd))
                    if "kernel" in opts.hosts:
                        # The percpu kernel, and its baseline: the same binary booted with
                        # percpu_roots=off, so the two differ by the roots alone (not by
                        # two kernels' code layouts).
                        for host, roots in (("kernel", "on"), (KERNEL_BASELINE, "off")):
                            d = run_dir(opts.out, host, tag, seed)
                            cmd = [*percpu, "gem5", "run", *common, *seedf, "-s", "shared",
                                   *gem5_common, "--kernel", opts.kernel_percpu or "percpu",
                                   "--kernel-kmap", pdef.kernel_kmap,
                                   *(["--kernel-roots", "off"] if roots == "off" else []),
                                   "--no-report", "-q", "-o", str(d)]
                            units.append(Unit(host, tag, seed, (*key, f"percpu-roots-{roots}"),
                                              ["shared"], d, cmd))
    return units


def pending(unit: Unit) -> list[str]:
    """The schemes of a unit not yet on disk."""
    return [s for s in unit.schemes if not scheme_done(unit.outdir / s)]


def with_schemes(unit: Unit, schemes: list[str]) -> list[str]:
    """The unit's command running only `schemes` (the engine always runs both: its run
    replaces the older engine runs in its directory, and both take under a second)."""
    if unit.host == "engine" or schemes == unit.schemes:
        return unit.cmd
    cmd = list(unit.cmd)
    cmd[cmd.index("-s") + 1] = ",".join(schemes)
    if "percpu" not in schemes:  # the root model's costs mean nothing to shared alone
        while "--set" in cmd:
            i = cmd.index("--set")
            del cmd[i:i + 2]
    return cmd


# --- running ------------------------------------------------------------------------------


class Runner:
    """Runs units' commands as child processes, logs in OUT/logs/, and stops them all on
    an interrupt (each run command keeps what it finished and removes the rest)."""

    def __init__(self, out: Path, total: int, quiet: bool):
        self.out, self.total, self.quiet = out, total, quiet
        self.done = 0
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.procs: set[subprocess.Popen] = set()
        self.failed: dict[str, str] = {}
        self.stopping = False

    def run(self, unit: Unit) -> None:
        if self.stopping:
            return
        schemes = pending(unit)
        cmd = with_schemes(unit, schemes)
        log = self.out / "logs" / f"{unit.host}-{unit.point}-s{unit.seed}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        with open(log, "w") as fh:
            fh.write(" ".join(cmd) + "\n")
            fh.flush()
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            with self.lock:
                self.procs.add(proc)
            try:
                code = proc.wait()
            finally:
                with self.lock:
                    self.procs.discard(proc)
        seconds = time.monotonic() - start
        with self.lock:
            self.done += 1
            if code != 0 and not self.stopping:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
                self.failed[unit.name] = f"exit {code}: {tail[0][:200]} (log: {log})"
            elapsed = time.monotonic() - self.started
            eta = elapsed / self.done * (self.total - self.done)
            if not self.quiet:
                state = "done" if code == 0 else f"FAILED (exit {code}, {log})"
                sys.stderr.write(f"[{self.done}/{self.total}] {unit.name}: {state} in "
                                 f"{seconds:.1f} s; {self.total - self.done} left, ETA "
                                 f"{_duration(eta)}\n")
                sys.stderr.flush()

    def stop(self) -> None:
        self.stopping = True
        with self.lock:
            procs = list(self.procs)
        for proc in procs:  # SIGTERM: the run commands clean up and keep what finished
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def execute(opts: Options, units: list[Unit]) -> dict[str, str]:
    """Run every unit with pending schemes: engine units in parallel (--engine-jobs), gem5
    units --jobs at a time, each machine's first unit alone first (it boots the machine's
    checkpoint, which the others then restore). Returns the failures."""
    todo = [u for u in units if pending(u)]
    runner = Runner(opts.out, len(todo), opts.quiet)
    if not opts.quiet:
        skipped = len(units) - len(todo)
        sys.stderr.write(f"percpu compare: {len(todo)} runs to make, {skipped} already "
                         f"finished in {opts.out}\n")
    engine = [u for u in todo if u.host == "engine"]
    gem5 = [u for u in todo if u.host != "engine"]
    first: dict[tuple, Unit] = {}
    for u in gem5:
        first.setdefault(u.machine_key, u)
    # A kernel run's baseline is the plugin's shared run: plugin units before kernel units.
    rest = [u for u in gem5 if u not in first.values()]
    rest.sort(key=lambda u: u.host in ("kernel", KERNEL_BASELINE))
    engine_jobs = opts.engine_jobs or os.cpu_count() or 1
    for jobs, batch in ((engine_jobs, engine), (opts.jobs, list(first.values())),
                        (opts.jobs, rest)):
        with ThreadPoolExecutor(jobs) as pool:
            try:
                list(pool.map(runner.run, batch))
            except BaseException:
                # Before the pool's exit waits for its threads: queued runs start nothing,
                # running ones are stopped (each keeps the schemes it finished).
                runner.stop()
                raise
    return runner.failed


# --- figures ------------------------------------------------------------------------------


def _rel(path: Path, out: Path) -> str:
    try:
        return str(path.relative_to(out))
    except ValueError:
        return str(path)


def _fig(value: float | None, stat: str, run: str) -> dict[str, Any]:
    return {"value": value, "stat": stat, "run": run}


def run_figures(scheme_dir: Path, out: Path) -> dict[str, dict[str, Any]]:
    """One scheme directory's figures, each with the stat it came from and the file."""
    from percpu.gem5host.run import headline

    stats = scheme_dir / "stats.txt"
    run = _rel(stats, out)
    h = headline(stats)
    info = _read_json(scheme_dir / "percpu.json") or {}
    gem5 = info.get("host") == "gem5"
    f: dict[str, dict[str, Any]] = {}
    f["simTicks"] = _fig(h.get("simTicks"), "simTicks", run)
    text = stats.read_text(errors="replace")
    kernel_roots = (info.get("guest") or {}).get("kernel_roots") or {}
    # A kernel run's counts are system-wide lines (the plugin's per-CPU ones are its zeros).
    in_stats = (not kernel_roots or "board.percpu.rootAllocs::" in text
                or "system.percpu.rootAllocs::" in text)
    for c in (*CAUSES, "total"):
        key = f"rootAllocs::{c}"
        if not in_stats and kernel_roots:
            f[key] = _fig(float(kernel_roots.get(key, 0)), f"guest.kernel_roots.{key}",
                          _rel(scheme_dir / "percpu.json", out))
        else:
            f[key] = _fig(h.get(f"percpu.{key}", 0.0),
                          f"percpu.{key} (summed: system.cpuN.* and system.percpu.*)", run)
    if not in_stats and kernel_roots:
        total = sum(f[f"rootAllocs::{c}"]["value"] for c in CAUSES)
        f["rootAllocs::total"]["value"] = float(kernel_roots.get("rootAllocs::total", total))
    elif "percpu.rootAllocs::total" not in h:
        f["rootAllocs::total"]["value"] = sum(f[f"rootAllocs::{c}"]["value"] for c in CAUSES)
    for key in ("lazyFaults", "rootPoolPeakBytes", "checkerViolations"):
        if not in_stats and kernel_roots:
            f[key] = _fig(float(kernel_roots.get(key, 0)), f"guest.kernel_roots.{key}",
                          _rel(scheme_dir / "percpu.json", out))
        else:
            f[key] = _fig(h.get(f"percpu.{key}", 0.0), f"percpu.{key}", run)
    for key in KMAP_COUNTS:
        if key in kernel_roots:
            f[key] = _fig(float(kernel_roots[key]), f"guest.kernel_roots.{key}",
                          _rel(scheme_dir / "percpu.json", out))
    if gem5 and kernel_roots and not (info.get("machine") or {}).get("pcid", True):
        # Without PCID the percpu kernel reloads each CPU's one root page at every switch:
        # gem5's CR3 monitor sees the same CR3 and counts no switch (docs/compare.md).
        f["mmSwitches"] = _fig(None, "not counted: the percpu kernel without PCID loads one "
                                     "root page per CPU, the same CR3 at every switch", run)
    elif gem5:
        f["mmSwitches"] = _fig(h.get("percpu.mmSwitches", 0.0),
                               "system.cpuN.percpu.mmSwitches (PercpuCr3Monitor)", run)
    if gem5:
        work, work_stat = h.get("simInsts"), "simInsts"
        if work is None:
            work, work_stat = h.get("commitStats0.numInsts"), "system.cpuN.commitStats0.numInsts"
    else:
        f["mmSwitches"] = _fig(h.get("mmSwitches", 0.0), "system.cpuN.mmSwitches", run)
        work, work_stat = h.get("memRefs"), "system.memRefs"
    f["work"] = _fig(work, work_stat, run)
    if "hostSeconds" in h:
        f["hostSeconds"] = _fig(h["hostSeconds"], "hostSeconds", run)
    else:
        f["hostSeconds"] = _fig(info.get("host_seconds"), "host_seconds",
                                _rel(scheme_dir / "percpu.json", out))
    return f


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _spread(values: list[float]) -> dict[str, Any] | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return None
    return {"mean": sum(vals) / len(vals), "min": min(vals), "max": max(vals),
            "seeds": len(vals), "values": vals}


def collect(opts: Options, units: list[Unit]) -> dict[str, Any]:
    """Every point's figures per host (mean and range over the finished seeds), with the
    stat and run each came from, the agreement checks and the speed ratio."""
    out = opts.out
    points: dict[str, dict[str, Any]] = {}
    seen = list(dict.fromkeys((u.point, u.seed) for u in units))
    for tag, seed in seen:
        pt = points.setdefault(tag, {"hosts": {}})
        for host in ("engine", "gem5", "kernel"):
            if host not in opts.hosts:
                continue
            if host == "kernel":
                pdir = run_dir(out, "kernel", tag, seed) / "shared"
                # The same kernel with its roots off; a comparison made before that run
                # existed falls back to the stock kernel's shared run.
                bdir = run_dir(out, KERNEL_BASELINE, tag, seed) / "shared"
                if not scheme_done(bdir):
                    bdir = run_dir(out, "gem5", tag, seed) / "shared"
            else:
                pdir = run_dir(out, host, tag, seed) / "percpu"
                bdir = run_dir(out, host, tag, seed) / "shared"
            if not (scheme_done(pdir) and scheme_done(bdir)):
                continue
            p, b = run_figures(pdir, out), run_figures(bdir, out)
            seeds = pt["hosts"].setdefault(host, {"seeds": {}})["seeds"]
            pt_ticks, b_ticks = p["simTicks"]["value"], b["simTicks"]["value"]
            overhead = (pt_ticks / b_ticks - 1) * 100 if b_ticks and pt_ticks else None
            # Host seconds of the point's two runs on this host.
            own = [p] if host == "kernel" and KERNEL_BASELINE not in bdir.parts else [p, b]
            hs = [x["hostSeconds"]["value"] for x in own]
            wk = [x["work"]["value"] for x in own]
            host_s = sum(hs) if all(v is not None for v in hs) else None
            work = sum(wk) if all(v is not None for v in wk) else None
            seeds[str(seed)] = {"percpu": p, "baseline": b, "overhead_pct": overhead,
                                "host_seconds": host_s, "work": work,
                                "host_s_per_unit": host_s / work if host_s and work else None}
    for tag, pt in points.items():
        for host, hd in pt["hosts"].items():
            runs = list(hd["seeds"].values())
            summary = {"overhead_pct": _spread([r["overhead_pct"] for r in runs])}
            for key in (*[f"rootAllocs::{c}" for c in (*CAUSES, "total")], "lazyFaults",
                        "mmSwitches", "rootPoolPeakBytes", "checkerViolations"):
                summary[key] = _spread([r["percpu"][key]["value"] for r in runs])
            for key in KMAP_COUNTS:
                if any(key in r["percpu"] for r in runs):
                    summary[key] = _spread([r["percpu"][key]["value"] for r in runs
                                            if key in r["percpu"]])
            summary["host_seconds"] = _spread([r["host_seconds"] for r in runs])
            summary["host_s_per_unit"] = _spread([r["host_s_per_unit"] for r in runs])
            summary["unit"] = "reference" if host == "engine" else "instruction"
            hd["summary"] = summary
        pt["agreement"] = agreement_for(pt["hosts"])
        eng = pt["hosts"].get("engine", {}).get("summary", {}).get("host_seconds")
        g5 = pt["hosts"].get("gem5", {}).get("summary", {}).get("host_seconds")
        pt["speed_ratio"] = (g5["mean"] / eng["mean"]) if eng and g5 and eng["mean"] else None
    return {"points": points}


# --- agreement ----------------------------------------------------------------------------


def check_overhead(model: float, ref: float, threshold: float) -> dict[str, Any]:
    """The overhead rule: relative within 10 % where |ref| > threshold (percent), else
    within 0.5 points."""
    if abs(ref) > threshold:
        rel = (model - ref) / abs(ref)
        return {"model": model, "ref": ref, "rule": f"relative (ref > {threshold:g} %)",
                "diff": rel, "pass": abs(rel) <= REL_TOL}
    diff = model - ref
    return {"model": model, "ref": ref, "rule": f"absolute (ref <= {threshold:g} %)",
            "diff": diff, "pass": abs(diff) <= ABS_TOL_POINTS}


def check_count(model: float, ref: float) -> dict[str, Any]:
    """A count within 10 % of the reference's (0 against 0 agrees; anything against 0
    does not)."""
    if ref == 0:
        rel = 0.0 if model == 0 else math.inf
    else:
        rel = (model - ref) / abs(ref)
    return {"model": model, "ref": ref, "rule": "relative", "diff": rel,
            "pass": abs(rel) <= REL_TOL}


def agreement_for(hosts: dict[str, Any]) -> dict[str, Any]:
    """engine vs gem5 (reference gem5, threshold 5 %) and each model vs the kernel
    (threshold 2 %), on the means over seeds."""
    pairs = [("engine", "gem5", THRESHOLD_VS_GEM5), ("engine", "kernel", THRESHOLD_VS_KERNEL),
             ("gem5", "kernel", THRESHOLD_VS_KERNEL)]
    out = {}
    for model, ref, threshold in pairs:
        if model not in hosts or ref not in hosts:
            continue
        ms, rs = hosts[model]["summary"], hosts[ref]["summary"]
        cells = {}
        if ms["overhead_pct"] and rs["overhead_pct"]:
            cells["overhead_pct"] = check_overhead(ms["overhead_pct"]["mean"],
                                                   rs["overhead_pct"]["mean"], threshold)
        for key in COUNTS:
            if ms.get(key) and rs.get(key):
                cells[key] = check_count(ms[key]["mean"], rs[key]["mean"])
        out[f"{model} vs {ref}"] = cells
    return out


# --- outputs ------------------------------------------------------------------------------


def _num(v: float | None, fmt: str = "{:,.0f}") -> str:
    return "—" if v is None else fmt.format(v)


def _range(s: dict | None, fmt: str = "{:,.0f}") -> str:
    if not s:
        return "—"
    if s["seeds"] == 1 or s["min"] == s["max"]:
        return fmt.format(s["mean"])
    return f"{fmt.format(s['mean'])} ({fmt.format(s['min'])} to {fmt.format(s['max'])})"


def _overhead(s: dict | None) -> str:
    if not s:
        return "—"
    if s["seeds"] == 1:
        return f"{s['mean']:+.2f} %"
    return f"{s['mean']:+.2f} % [{s['min']:+.2f}, {s['max']:+.2f}]"


def _cell(c: dict | None) -> str:
    if not c:
        return "—"
    diff = c["diff"]
    if c["rule"].startswith("absolute"):
        shown = f"{diff:+.2f} pt"
    elif math.isinf(diff):
        shown = "vs 0"
    else:
        shown = f"{diff * 100:+.1f} %"
    return f"{shown} {'pass' if c['pass'] else 'FAIL'}"


def markdown(opts: Options, result: dict[str, Any], commands: list[str],
             versions: dict[str, Any]) -> str:
    lines = [
        f"`{versions['command']}` ({versions['date']}; percpu {versions['percpu']}"
        + (f", gem5 {versions['gem5']}" if versions.get("gem5") else "")
        + (f", guest kernels {', '.join(versions['kernels'])}" if versions.get("kernels") else "")
        + f"; seeds 1-{opts.seeds}, regions of interest {opts.roi_scale:g}x).",
        "",
        ("Overhead is percpu's simTicks over its baseline's (the kernel: the same kernel "
        "booted with percpu_roots=off, else the stock kernel's shared run), mean [min, max] "
        "over seeds; counts are percpu's (the kernel's), mean "
        "(range); host s per unit is host seconds per simulated reference (engine) or guest "
        "instruction (gem5, kernel) (docs/compare.md)."),
        "",
        ("| point | host | overhead (simTicks) | root allocs | firstUse / evicted / "
        "flushedInactive / noPcid | lazy faults | mm switches | pool peak (KiB) | host s "
        "(its runs) | host µs per unit |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for tag, pt in result["points"].items():
        for host in HOSTS:
            hd = pt["hosts"].get(host)
            if not hd:
                continue
            s = hd["summary"]
            causes = " / ".join(_num(s[f"rootAllocs::{c}"]["mean"] if s[f"rootAllocs::{c}"]
                                     else None) for c in CAUSES)
            peak = s["rootPoolPeakBytes"]
            peak_kib = None if not peak else {k: (v / 1024 if k in ("mean", "min", "max")
                                                  else v) for k, v in peak.items()}
            per = s["host_s_per_unit"]
            per_us = None if not per else {k: (v * 1e6 if k in ("mean", "min", "max") else v)
                                           for k, v in per.items()}
            lines.append(
                f"| {tag} | {'plugin' if host == 'gem5' else host} "
                f"| {_overhead(s['overhead_pct'])} | {_range(s['rootAllocs::total'])} "
                f"| {causes} | {_range(s['lazyFaults'])} | {_range(s['mmSwitches'])} "
                f"| {_range(peak_kib)} | {_range(s['host_seconds'], '{:.3g}')} "
                f"| {_range(per_us, '{:.3g}')} |")
    lines += ["", ("Agreement (docs/compare.md: overhead within 10 % relative where the "
              "reference's is over 5 % against gem5 or 2 % against the kernel, else within "
              "0.5 points; counts within 10 %):"), "",
              ("| point | model vs reference | overhead | root allocs | lazy faults | "
              "mm switches |"), "| --- | --- | --- | --- | --- | --- |"]
    for tag, pt in result["points"].items():
        for pair, cells in pt["agreement"].items():
            lines.append(f"| {tag} | {pair.replace('gem5', 'plugin')} "
                         f"| {_cell(cells.get('overhead_pct'))} | "
                         + " | ".join(_cell(cells.get(k)) for k in COUNTS) + " |")
    kmap_rows = [(tag, pt["hosts"]["kernel"]["summary"]) for tag, pt in result["points"].items()
                 if "kernel" in pt["hosts"]
                 and any((pt["hosts"]["kernel"]["summary"].get(k) or {}).get("mean")
                         for k in KMAP_COUNTS)]
    if kmap_rows:
        lines += ["", ("The percpu kernel's kmap_local over the region of interest "
                  "(/proc/percpu_roots, docs/kernel.md; mean over seeds):"), "",
                  "| point | " + " | ".join(f"`{k}`" for k in KMAP_COUNTS) + " |",
                  "| --- |" + " --- |" * len(KMAP_COUNTS)]
        for tag, s in kmap_rows:
            lines.append(f"| {tag} | " + " | ".join(_range(s.get(k)) for k in KMAP_COUNTS)
                         + " |")
    lines += ["", ("Speed: host seconds of gem5's two runs of a point over the engine's "
              "(mean over seeds):"), "", "| point | engine s | gem5 s | gem5 / engine |",
              "| --- | --- | --- | --- |"]
    for tag, pt in result["points"].items():
        eng = pt["hosts"].get("engine", {}).get("summary", {}).get("host_seconds")
        g5 = pt["hosts"].get("gem5", {}).get("summary", {}).get("host_seconds")
        if eng or g5:
            lines.append(f"| {tag} | {_num(eng and eng['mean'], '{:.3f}')} "
                         f"| {_num(g5 and g5['mean'], '{:.1f}')} "
                         f"| {_num(pt['speed_ratio'], '{:,.0f}x')} |")
    lines += ["", "Commands (one per host and point; `--seed` 1 shown):", "", "```",
              *commands, "```"]
    return "\n".join(lines) + "\n"


def csv_text(result: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["point", "host", "figure", "mean", "min", "max", "seeds"])
    for tag, pt in result["points"].items():
        for host, hd in pt["hosts"].items():
            for key, s in hd["summary"].items():
                if isinstance(s, dict):
                    w.writerow([tag, host, key, s["mean"], s["min"], s["max"], s["seeds"]])
        for pair, cells in pt["agreement"].items():
            for key, c in cells.items():
                w.writerow([tag, pair, f"agreement:{key}", c["diff"], c["model"], c["ref"],
                            "pass" if c["pass"] else "fail"])
    return buf.getvalue()


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tags = list(result["points"])
    hosts = [h for h in HOSTS if any(h in pt["hosts"] for pt in result["points"].values())]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(tags) * max(1, len(hosts))), 4.5))
    width = 0.8 / max(1, len(hosts))
    for i, host in enumerate(hosts):
        xs, ys, lo, hi = [], [], [], []
        for j, tag in enumerate(tags):
            s = result["points"][tag]["hosts"].get(host, {}).get("summary", {}).get(
                "overhead_pct")
            if s:
                xs.append(j + (i - (len(hosts) - 1) / 2) * width)
                ys.append(s["mean"])
                lo.append(s["mean"] - s["min"])
                hi.append(s["max"] - s["mean"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3,
               label="plugin" if host == "gem5" else host)
    ax.set_xticks(range(len(tags)))
    ax.set_xticklabels(tags, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("overhead of percpu (simTicks, %)")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_atomic(path, buf.getvalue())


def write_docs(doc: Path, table: str) -> None:
    text = doc.read_text()
    begin, end = text.index(DOC_BEGIN), text.index(DOC_END)
    new = text[:begin + len(DOC_BEGIN)] + "\n" + table + text[end:]
    write_atomic(doc, new)


def check_doc_markers(doc: Path) -> None:
    try:
        text = doc.read_text()
    except OSError as exc:
        raise UsageError(f"--write-docs {doc}: cannot read it ({exc.strerror}): name an "
                         "existing markdown file") from None
    b, e = text.find(DOC_BEGIN), text.find(DOC_END)
    if b < 0 or e < 0 or e < b:
        raise UsageError(f"--write-docs {doc} has no marked section: add the lines "
                         f"'{DOC_BEGIN}' and '{DOC_END}' where the table goes")


# --- the command --------------------------------------------------------------------------


def parse_list(text: str, known: list[str] | tuple[str, ...], flag: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise UsageError(f"{flag} is empty: choose from {', '.join(known)}")
    for x in items:
        if x not in known:
            raise UsageError(f"{flag}: unknown '{x}': choose from {', '.join(known)}")
    return list(dict.fromkeys(items))


def validate(opts: Options) -> None:
    """Everything checked before anything runs or is written (UsageError, exit 2)."""
    from percpu.paths import check_writable_dir
    from percpu.run_request import (
        check_gem5_binary,
        check_machine_flags,
        gem5_binary,
        kernel_kind,
    )

    if opts.seeds < 1:
        raise UsageError(f"--seeds {opts.seeds}: give 1 or more seeds per point")
    if not opts.roi_scale > 0:
        raise UsageError(f"--roi-scale {opts.roi_scale:g}: give a positive factor (10 makes "
                         "regions of interest 10x today's)")
    if opts.jobs < 1 or opts.engine_jobs < 0:
        raise UsageError("--jobs must be 1 or more (and --engine-jobs 0 or more: 0 is one "
                         "per core)")
    gem5_hosts = [h for h in opts.hosts if h != "engine"]
    for cpus in opts.cpus:
        check_machine_flags(cpus, None, "gem5" if gem5_hosts else "engine")
    if opts.out.exists() and not opts.out.is_dir():
        raise UsageError(f"--out {opts.out} exists and is not a directory: choose another path")
    check_writable_dir(opts.out, "--out")
    if opts.profile is not None and not opts.profile.is_file():
        raise UsageError(f"--profile {opts.profile} not found: name a cost profile TOML "
                         "(docs/profiles/) or 'none' for the default costs")
    if opts.write_docs is not None:
        check_doc_markers(opts.write_docs)
    defs = point_defs()
    if not any(not defs[p].kernel_only or "kernel" in opts.hosts for p in opts.points):
        raise UsageError(f"--points {','.join(opts.points)}: these run on the kernel host only "
                         "(--hosts ...,kernel)")
    if gem5_hosts:
        try:
            binary = gem5_binary(str(opts.gem5) if opts.gem5 else None)
            check_gem5_binary(binary)
        except UsageError as exc:
            raise UsageError(f"--hosts {','.join(gem5_hosts)} needs gem5: {exc}; or compare "
                             "the engine alone with --hosts engine") from None
        opts.gem5 = binary
        from percpu.run_request import guest_kernel

        stock = guest_kernel(opts.kernel_stock or "stock")
        if not stock.is_file():
            raise UsageError(f"--kernel-stock {stock} not found: run 'percpu guest build' or "
                             "pass --kernel-stock PATH/vmlinux")
    if "kernel" in opts.hosts:
        kernel = guest_kernel(opts.kernel_percpu or "percpu")
        if not kernel.is_file():
            raise UsageError(f"--hosts kernel: the percpu kernel {kernel} not found: run "
                             "'percpu guest build --kernel percpu'")
        if kernel_kind(kernel) != "percpu":
            raise UsageError(f"--kernel-percpu {kernel} is not the percpu kernel's build (its "
                             "manifest.json does not say kernel: percpu): build it with "
                             "'percpu guest build --kernel percpu'")


def versions(opts: Options, command: str) -> dict[str, Any]:
    from percpu import __version__

    out: dict[str, Any] = {"percpu": __version__, "command": command,
                           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    kernels = set()
    for info_path in sorted(opts.out.glob("*/*/*/percpu.json")):
        info = _read_json(info_path) or {}
        booted = (info.get("guest") or {}).get("booted") or {}
        if booted.get("kernel"):
            kernels.add(f"{info_path.parts[-4]}: {booted['kernel']}")
    out["kernels"] = sorted(kernels)
    if opts.gem5 and any(h != "engine" for h in opts.hosts):
        try:
            from percpu.gem5host.probe_run import probe

            out["gem5"] = probe(opts.gem5).get("gem5_version")
        except Exception:  # noqa: BLE001 - a version line is not worth failing the table
            out["gem5"] = None
    return out


def run_compare(opts: Options, command: str) -> int:
    validate(opts)
    units = plan(opts)
    if opts.dry_run:
        for u in units:
            state = ("finished" if not pending(u)
                     else f"to run ({','.join(pending(u))})")
            print(f"{u.name}: {state}\n  {' '.join(with_schemes(u, pending(u) or u.schemes))}")
        print(f"{sum(1 for u in units if pending(u))} of {len(units)} runs to make; "
              "nothing written (--dry-run)")
        return 0
    opts.out.mkdir(parents=True, exist_ok=True)
    try:
        return _run_and_write(opts, units, command)
    except KeyboardInterrupt:
        from percpu.cli import Interrupted

        kept = sum(1 for u in units if not pending(u))
        raise Interrupted(f"kept {kept} finished runs of {len(units)} in {opts.out}; the same "
                          "command resumes") from None


def _run_and_write(opts: Options, units: list[Unit], command: str) -> int:
    failed = execute(opts, units)
    result = collect(opts, units)
    result["options"] = {"points": opts.points, "cpus": opts.cpus, "machines": opts.machines,
                         "hosts": opts.hosts, "seeds": opts.seeds, "roi_scale": opts.roi_scale,
                         "profile": str(opts.profile) if opts.profile else None}
    ver = versions(opts, command)
    result["versions"] = ver
    result["failed"] = failed
    firsts = {}
    for u in units:
        if u.seed == 1:
            # Paths in the repository as the repository's (docs/profiles/...).
            firsts.setdefault((u.host, u.point), " ".join(
                ["percpu", *u.cmd[3:]]).replace(str(REPO) + os.sep, ""))
    commands = list(firsts.values())
    result["commands"] = commands
    table = markdown(opts, result, commands, ver)
    write_atomic(opts.out / "compare.json", json.dumps(result, indent=2, default=str) + "\n")
    write_atomic(opts.out / "compare.csv", csv_text(result))
    write_atomic(opts.out / "compare.md", table)
    if result["points"]:
        plot(result, opts.out / "compare.png")
    if opts.write_docs is not None:
        write_docs(opts.write_docs, table)
    if not opts.quiet:
        print(table)
    if failed:
        for name, why in failed.items():
            sys.stderr.write(f"percpu compare: {name} failed: {why}\n")
        return 1
    return 0


# --- click --------------------------------------------------------------------------------


def _default_points(hosts: list[str]) -> list[str]:
    return [p for p, d in point_defs().items() if not d.kernel_only or "kernel" in hosts]


@click.command("compare", context_settings={"help_option_names": ["-h", "--help"],
                                            "max_content_width": 110})
@click.option("--points", "points_text", default=None, metavar="A,B",
              help="points to run: " + ", ".join(point_defs()) + " [default: all; kmap-io* "
                   "only with the kernel host]")
@click.option("--cpus", "cpus_text", default="2,4", show_default=True, metavar="N,M",
              help="CPU counts")
@click.option("--machines", "machines_text", default="pcid,nopcid,pti", show_default=True,
              help="machines: pcid (PCID on), nopcid (--no-pcid), pti (--pti, PCID on)")
@click.option("--hosts", "hosts_text", default="engine,gem5", show_default=True,
              help="engine (percpu run), gem5 (the plugin on the stock kernel), kernel (the "
                   "percpu kernel under gem5)")
@click.option("--seeds", type=int, default=3, show_default=True,
              help="seeds 1..N per point on every host (gem5: docs/compare.md, what a seed "
                   "moves in the guest)")
@click.option("--roi-scale", type=float, default=1.0, show_default=True, metavar="K",
              help="regions of interest K x today's (each point's length parameter x K)")
@click.option("--gem5", "gem5_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="gem5.opt built with src_patches/ [default: $PERCPU_GEM5]")
@click.option("--profile", "profile_text", default=str(DEFAULT_PROFILE.relative_to(REPO)),
              show_default=True,
              help="cost profile of the simulated machine: the engine's --config on top of "
                   "gem5's geometry, and gem5's root-model costs; 'none' for default costs")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs/compare"), show_default=True, help="output directory")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="gem5 processes at once (each machine boots once, alone)")
@click.option("--engine-jobs", type=int, default=0, show_default=True,
              help="engine runs at once (0: one per core)")
@click.option("--checkpoint-dir", default=None, help="gem5's checkpoint directory "
              "[default: ~/.cache/percpu/checkpoints]")
@click.option("--kernel-stock", default=None, metavar="VMLINUX",
              help="the stock guest kernel [default: percpu guest build's]")
@click.option("--kernel-percpu", default=None, metavar="VMLINUX",
              help="the percpu kernel [default: percpu guest build --kernel percpu's]")
@click.option("--write-docs", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE.md", help="replace FILE.md's section between '" + DOC_BEGIN
              + "' and '" + DOC_END + "' with the table")
@click.option("--dry-run", is_flag=True, help="list the runs and their commands; write nothing")
@click.option("--quiet", "-q", is_flag=True, help="print only errors")
def compare_command(points_text, cpus_text, machines_text, hosts_text, seeds, roi_scale,
                    gem5_path, profile_text, out, jobs, engine_jobs, checkpoint_dir,
                    kernel_stock, kernel_percpu, write_docs, dry_run, quiet) -> None:
    """Compare the engine, the gem5 plugin and the percpu kernel point by point: overhead of
    percpu over its baseline (mean and range over seeds), root allocations by cause, lazy
    faults, mm switches, pool peak, host time, and whether the hosts agree (docs/compare.md).

    Writes OUT/<host>/<point>-s<seed>/<scheme>/, OUT/compare.{json,csv,md,png}; the same
    command again skips finished runs (resume).
    """
    hosts = parse_list(hosts_text, HOSTS, "--hosts")
    points = (parse_list(points_text, list(point_defs()), "--points") if points_text
              else _default_points(hosts))
    machines = parse_list(machines_text, list(MACHINES), "--machines")
    cpus = []
    for item in parse_list(cpus_text, [x.strip() for x in cpus_text.split(",")], "--cpus"):
        if not item.isdigit():
            raise UsageError(f"--cpus: '{item}' is not a CPU count: give e.g. --cpus 2,4")
        cpus.append(int(item))
    profile = None if profile_text == "none" else Path(profile_text)
    if (profile is not None and not profile.is_absolute() and not profile.exists()
            and (REPO / profile).is_file()):
        profile = REPO / profile  # the default names the repository's docs/profiles/
    if profile is not None and profile.exists():
        profile = profile.resolve()  # the runs' commands hold it, wherever they run
    opts = Options(out=out, points=points, cpus=cpus, machines=machines, hosts=hosts,
                   seeds=seeds, roi_scale=roi_scale, gem5=gem5_path, profile=profile,
                   jobs=jobs, engine_jobs=engine_jobs, checkpoint_dir=checkpoint_dir,
                   kernel_stock=kernel_stock, kernel_percpu=kernel_percpu,
                   write_docs=write_docs, dry_run=dry_run, quiet=quiet)
    command = "percpu compare" + ("" if len(sys.argv) < 3 else " " + " ".join(sys.argv[2:]))
    sys.exit(run_compare(opts, command))
