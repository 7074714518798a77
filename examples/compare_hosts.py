#!/usr/bin/env python3
"""The engine against gem5, point by point (docs/gem5.md, "Engine against gem5").

Runs each point under shared and percpu on both hosts: gem5 (`percpu gem5 run`, a real
Linux guest, one post-boot checkpoint per machine) and the embedded engine on gem5's
geometry (`percpu run --config docs/profiles/gem5-v24-classic-timing.toml --set
root.fill_at_fault=0`, so the engine, like the guest, takes a lazy fault per new pgd
entry). Writes OUT/<host>/<point>/<scheme>/ run directories, OUT/compare.json (every
figure with the stat it came from) and OUT/compare.md (the table docs/gem5.md quotes).
`percpu report OUT/engine OUT/gem5` shows the same runs side by side (with
--engine-seeds N, the engine's points as the mean and 95 % interval over its seeds).

    python examples/compare_hosts.py --gem5 $PERCPU_GEM5 --cpus 2 4 --out runs/hosts

Points: pingpong, ctxmix at 4 and 8 processes per CPU, forkexec and threads-munmap,
each with PCID and with --no-pcid. Overhead is percpu's simTicks over shared's, minus 1
(the region of interest's simulated time on both hosts).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "docs" / "profiles" / "gem5-v24-classic-timing.toml"
CAUSES = ("firstUse", "evicted", "flushedInactive", "noPcid")


def points(cpus: int) -> list[tuple[str, str, list[str]]]:
    """(name, workload, params) at `cpus` CPUs: small enough for gem5's timing CPUs."""
    return [
        ("pingpong", "pingpong", ["iterations=200"]),
        ("ctxmix-4", "ctxmix", ["procs_per_cpu=4", "rounds=50", "pages=4", "work_cycles=2000"]),
        ("ctxmix-8", "ctxmix", ["procs_per_cpu=8", "rounds=50", "pages=4", "work_cycles=2000"]),
        ("forkexec", "forkexec", ["forks=20"]),
        ("threads-munmap", "threads-munmap", [f"threads={cpus}", "iterations=50"]),
    ]


def run(cmd: list[str], log: Path) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        return subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode


def figures(run_dir: Path) -> dict[str, float]:
    from percpu.gem5host.run import headline

    h = headline(run_dir / "stats.txt")
    out = {f"rootAllocs::{c}": h.get(f"percpu.rootAllocs::{c}", 0.0) for c in CAUSES}
    out["rootAllocs::total"] = sum(out[f"rootAllocs::{c}"] for c in CAUSES)
    out["lazyFaults"] = h.get("percpu.lazyFaults", 0.0)
    out["rootPoolPeakBytes"] = h.get("percpu.rootPoolPeakBytes", 0.0)
    out["mmSwitches"] = h.get("percpu.mmSwitches", h.get("mmSwitches", 0.0))
    out["simTicks"] = h.get("simTicks", 0.0)
    out["rootCopyCycles"] = h.get("percpu.rootCopyCycles", 0.0)
    # The engine has no instruction count; gem5's is the guest's, summed over CPUs.
    out["instructions"] = h.get("commitStats0.numInsts", 0.0)
    out["checkerViolations"] = h.get("percpu.checkerViolations", 0.0)
    return out


def engine_dir(out: Path, host: str, tag: str, seed: int) -> Path:
    """Where the engine's run of one point at one seed goes (seed 1: the table's run)."""
    return out / host / tag if seed == 1 else out / host / "seeds" / f"{tag}-s{seed}"


def seed_spread(run_dirs: list[Path]) -> dict[str, dict[str, float]]:
    """percpu's counts over the engine's seeds: mean, min and max of each."""
    per_seed = [figures(d / "percpu") for d in run_dirs if (d / "percpu" / "stats.txt").is_file()]
    out = {}
    for k in ("rootAllocs::total", "lazyFaults", "mmSwitches", "simTicks"):
        vals = [f[k] for f in per_seed]
        out[k] = {"mean": sum(vals) / len(vals), "min": min(vals), "max": max(vals),
                  "seeds": len(vals)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gem5", required=True, help="gem5.opt built with src_patches/")
    ap.add_argument("--cpus", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--out", type=Path, default=Path("runs/hosts"))
    ap.add_argument("--jobs", type=int, default=2, help="gem5 processes at once")
    ap.add_argument("--only", nargs="*", default=None, help="point names to run")
    ap.add_argument("--pcid", choices=("both", "on", "off"), default="both",
                    help="run each point with PCID, without, or both")
    ap.add_argument("--pti", action="store_true",
                    help="page-table isolation on both hosts (points tagged -pti; gem5 boots "
                         "a PTI checkpoint per machine)")
    ap.add_argument("--checkpoint-dir", default=None)
    ap.add_argument("--kernel", default=None, help="guest vmlinux [default: percpu guest build's]")
    ap.add_argument("--engine-config", type=Path, default=None,
                    help="also run the engine with this cost profile on top of gem5's geometry "
                         "(e.g. `percpu gem5 calibrate`'s profile of the simulated machine), "
                         "as host 'engine+<file stem>', and gem5 with the profile's values of "
                         "the costs its root model charges, as host 'gem5+<file stem>'")
    ap.add_argument("--engine-seeds", type=int, default=1, metavar="N",
                    help="run the engine at seeds 1..N (its noise: ASLR, ticks, jitter): "
                         "compare.md gives its lazy faults as the mean with the range, since "
                         "the ASLR draw decides how many top-level slots each process touches, "
                         "and compare.json the spread of its allocations, mm switches and "
                         "simTicks too; the other columns are seed 1's runs, "
                         "OUT/<host>/<point>/ (the others OUT/<host>/seeds/<point>-sN/)")
    ap.add_argument("--reuse-gem5", action="store_true",
                    help="keep gem5 points that OUT/gem5/ already holds (both schemes' stats)")
    args = ap.parse_args()
    if args.engine_seeds < 1:
        ap.error("--engine-seeds must be 1 or more")

    todo = []
    for cpus in args.cpus:
        for pcid in {"both": (True, False), "on": (True,), "off": (False,)}[args.pcid]:
            for name, workload, params in points(cpus):
                if args.only and name not in args.only:
                    continue
                tag = f"{name}-c{cpus}-{'pcid' if pcid else 'nopcid'}{'-pti' if args.pti else ''}"
                common = ["-w", workload, *[a for p in params for a in ("-p", p)],
                          "--cpus", str(cpus), "-s", "shared,percpu", "--no-report", "-q"]
                common += [] if pcid else ["--no-pcid"]
                common += ["--pti"] if args.pti else []
                todo.append((tag, cpus, pcid, common))

    percpu = [sys.executable, "-m", "percpu"]
    gem5_extra = ["--gem5", args.gem5, "--check"]
    if args.checkpoint_dir:
        gem5_extra += ["--checkpoint-dir", args.checkpoint_dir]
    if args.kernel:
        gem5_extra += ["--kernel", args.kernel]

    # gem5 with the profile: the same costs as engine+<stem> where gem5 charges them (the
    # root model's three; gem5 simulates the rest of the machine itself).
    gem5_hosts = {"gem5": []}
    if args.engine_config:
        from percpu.params import load_toml
        from percpu.run_request import ROOT_MODEL_COSTS

        profile = load_toml(args.engine_config)
        gem5_hosts[f"gem5+{args.engine_config.stem}"] = [
            a for k in ROOT_MODEL_COSTS if k in profile for a in ("--set", f"{k}={profile[k]}")]

    def gem5_point(item):
        (tag, _, _, common), host = item
        out = args.out / host / tag
        if args.reuse_gem5 and all((out / s / "stats.txt").is_file() for s in ("shared", "percpu")):
            return f"{host} {tag}", 0
        return f"{host} {tag}", run([*percpu, "gem5", "run", *common, *gem5_extra,
                                     *gem5_hosts[host], "-o", str(out)],
                                    args.out / "logs" / f"{host}-{tag}.log")

    # Boot each machine once (its first point), then the rest in parallel.
    first = {}
    for item in todo:
        first.setdefault((item[1], item[2]), item)
    codes = {}
    with ThreadPoolExecutor(args.jobs) as pool:
        for tag, code in pool.map(gem5_point, [(t, "gem5") for t in first.values()]):
            codes[tag] = code
            print(f"{tag}: exit {code}", flush=True)
        rest = [(t, h) for h in gem5_hosts for t in todo
                if h != "gem5" or t not in first.values()]
        for tag, code in pool.map(gem5_point, rest):
            codes[tag] = code
            print(f"{tag}: exit {code}", flush=True)
    engines = {"engine": [str(PROFILE)]}
    if args.engine_config:
        engines[f"engine+{args.engine_config.stem}"] = [str(PROFILE), str(args.engine_config)]
    for host, configs in engines.items():
        for tag, _, _, common in todo:
            for seed in range(1, args.engine_seeds + 1):
                out = engine_dir(args.out, host, tag, seed)
                name = f"{host} {tag}" + (f" seed {seed}" if seed > 1 else "")
                code = run([*percpu, "run", *common, *[a for c in configs for a in ("--config", c)],
                            "--seed", str(seed), "--set", "root.fill_at_fault=0", "--check",
                            "--force", "-o", str(out)],
                           args.out / "logs" / f"{name.replace(' ', '-')}.log")
                print(f"{name}: exit {code}", flush=True)
                codes[name] = code

    rows, table = [], {}
    for tag, *_ in todo:
        for host in (*engines, *gem5_hosts):
            base = args.out / host / tag
            if not (base / "percpu" / "stats.txt").is_file():
                continue
            fs = {s: figures(base / s) for s in ("shared", "percpu")}
            p, s = fs["percpu"], fs["shared"]
            overhead = (p["simTicks"] / s["simTicks"] - 1) * 100 if s["simTicks"] else None
            table[f"{host} {tag}"] = {"shared": s, "percpu": p, "overhead_pct": overhead}
            if host in engines and args.engine_seeds > 1:
                table[f"{host} {tag}"]["seeds"] = seed_spread(
                    [engine_dir(args.out, host, tag, n) for n in range(1, args.engine_seeds + 1)])
            rows.append((tag, host, p, overhead))
    (args.out / "compare.json").write_text(json.dumps(table, indent=2) + "\n")
    lines = [("| point | host | mm switches | root allocs (firstUse / evicted / flushedInactive "
              "/ noPcid) | lazy faults | pool peak (KiB) | copy cycles per alloc | overhead (simTicks) "
              "| guest instructions, percpu vs shared | violations |"),
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for tag, host, p, overhead in rows:
        s = table[f"{host} {tag}"]["shared"]
        # Every column is seed 1's run (so ratios such as copy cycles per allocation come
        # from one run); with --engine-seeds the lazy faults, which the ASLR draw decides,
        # are the mean (min-max) over the seeds, and compare.json has the other spreads.
        spread = table[f"{host} {tag}"].get("seeds")
        lazy = (f"{spread['lazyFaults']['mean']:.0f} ({spread['lazyFaults']['min']:.0f}-"
                f"{spread['lazyFaults']['max']:.0f})" if spread else f"{p['lazyFaults']:.0f}")
        per_alloc = (f"{p['rootCopyCycles'] / p['rootAllocs::total']:.0f}"
                     if p["rootAllocs::total"] else "—")
        insts = (f"{(p['instructions'] / s['instructions'] - 1) * 100:+.1f} %"
                 if s["instructions"] else "—")
        causes = " / ".join(f"{p[f'rootAllocs::{c}']:.0f}" for c in CAUSES)
        ov = "—" if overhead is None else f"{overhead:+.2f} %"
        lines.append(f"| {tag} | {host} | {p['mmSwitches']:.0f} | {p['rootAllocs::total']:.0f} "
                     f"({causes}) | {lazy} | {p['rootPoolPeakBytes'] / 1024:.0f} "
                     f"| {per_alloc} | {ov} | {insts} | {p['checkerViolations']:.0f} |")
    (args.out / "compare.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    failed = {k: v for k, v in codes.items() if v}
    if failed:
        print(f"failed: {failed} (logs in {args.out / 'logs'})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
