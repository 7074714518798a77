"""Long-run benchmark: a run's cost must grow with its work, not its history.

forkexec (every fork a new task and two new mms: fork's copy and exec's image) runs at 1x,
10x and 100x its default length (forks=50 per forker), each in a fresh process, on the
full model; the engine's simulated references per host second and host microseconds per
fork should stay flat. Before exited tasks and dead mms were freed (and sleepers kept in a
heap), both grew with the number of tasks and mms the run had ever made.

    python -m percpu.bench_long [--scales 1,10,100] [--scheme percpu] [--json]
"""

from __future__ import annotations

import argparse
import json

DEFAULT_FORKS = 50


def measure(forks: int, scheme: str) -> dict:
    """Runs in a child process."""
    import resource
    import time

    from percpu.params import core, specs
    from percpu.workloads import find_workload
    from percpu.workloads.program import parse_program

    wl = find_workload("forkexec")
    values = {s.key: s.default for s in specs().values()}
    cpus = int(values["machine.cpus"])
    text = wl.render("engine", wl.resolve({"forks": str(forks)}), cpus=cpus, seed=1)
    prog = parse_program(text, cpus)
    start = time.perf_counter()
    out = core().run(values, scheme, **prog.core_args())
    seconds = time.perf_counter() - start
    stats = {name: value for name, value, _, _ in out["stats"]}
    return {
        "forks": forks,
        "scheme": scheme,
        "refs": out["memory_references"],
        "mms": int(stats["system.mmsCreated"]),
        "seconds": seconds,
        "refs_per_s": out["memory_references"] / seconds,
        "us_per_fork": seconds / (forks * cpus) * 1e6,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_child(forks: int, scheme: str) -> dict:
    from percpu.bench import run_in_child

    return run_in_child(f"import json; from percpu.bench_long import measure; "
                        f"print(json.dumps(measure({forks}, {scheme!r})))")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10,100", help="multiples of forks=50")
    parser.add_argument("--scheme", default="percpu")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [run_child(DEFAULT_FORKS * int(s), args.scheme) for s in args.scales.split(",")]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    first = results[0]
    for r in results:
        print(f"forkexec forks={r['forks']:>6} ({r['forks'] // DEFAULT_FORKS:>3}x) "
              f"{r['scheme']}: {r['mms']:>7,} mms, {r['refs'] / 1e6:7.2f} M refs in "
              f"{r['seconds']:7.2f} s = {r['refs_per_s'] / 1e6:5.2f} M refs/s "
              f"({r['refs_per_s'] / first['refs_per_s']:4.2f} of 1x), "
              f"{r['us_per_fork']:6.1f} us/fork, peak RSS {r['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
