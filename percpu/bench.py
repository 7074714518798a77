"""`percpu bench`: simulated memory references per second and peak memory of the engine.

A fixed multi-process workload (8 processes on 4 CPUs; per round each fetches code,
sweeps a moving 256 KiB window, hits a 2 MiB hot set at random and strides sparsely
through a 16 MiB heap, then yields) runs on the embedded engine with the
full model and with the cache model off. Each measurement runs in a fresh process so
that peak RSS belongs to it alone. Targets (issue 2): >= 25 M refs/s full model,
>= 80 M refs/s without caches, RSS <= 64 MiB + 100 B per distinct touched page.
"""

from __future__ import annotations

import json
import subprocess
import sys

import click

PROCS, CPUS, HEAP_PAGES, HOT_PAGES = 8, 4, 4096, 512
WINDOW = 256 * 1024  # the sequential window moves through the heap from round to round


def bench_program(rounds: int) -> str:
    """Each process, per round: code fetches, a sequential 256 KiB window (loads and
    stores), random accesses to a 2 MiB hot set, a sparse page-strided sweep of its
    16 MiB heap (walks), then a yield to the next process on its CPU."""
    lines = ["percpu-ops 1"]
    for p in range(PROCS):
        lines += [
            f"mm p{p}",
            "  vma text 0x400000 64K rx",
            f"  vma heap 0x10000000 {HEAP_PAGES * 4}K rw",
            f"  vma hot 0x20000000 {HOT_PAGES * 4}K rw",
            f"task t{p} mm=p{p} cpus={p % CPUS}",
            f"program t{p}",
        ]
        for r in range(rounds):
            window = (r * WINDOW) % (HEAP_PAGES * 4096)
            lines += [
                "  fetch text count=512",
                f"  load heap {window:#x} count=4096 stride=64",
                f"  store heap {window:#x} count=2048 stride=128",
                "  load hot count=2048 random",
                "  store hot count=512 random",
                f"  load heap {r * 64:#x} count=256 stride={16 * 4096}",
                "  yield",
            ]
    return "\n".join(lines) + "\n"


def measure(rounds: int, cache: bool, scheme: str) -> dict:
    """Runs in a child process: only the extension and the parser are imported."""
    import resource
    import time

    from percpu import _core
    from percpu.workloads.program import parse_program

    prog = parse_program(bench_program(rounds), CPUS)
    values = {"machine.cpus": float(CPUS), "cache.enabled": 1.0 if cache else 0.0}
    start = time.perf_counter()
    out = _core.run(values, scheme, **prog.core_args())
    seconds = time.perf_counter() - start
    stats = {name: value for name, value, _, _ in out["stats"]}
    return {
        "scheme": scheme,
        "cache": cache,
        "refs": out["memory_references"],
        "seconds": seconds,
        "refs_per_s": out["memory_references"] / seconds,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "touched_pages": int(stats["system.dataPagesPeak"]),
    }


def run_in_child(code: str) -> dict:
    """Run `code` (which prints one JSON object) in a fresh interpreter and return the object.
    -P: the current directory is not put on its path, so that from a checkout's root it
    imports the installed percpu (with its built extension), not ./percpu."""
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"the bench child process failed (exit {out.returncode}): {last}")
    return json.loads(out.stdout)


def run_child(rounds: int, cache: bool, scheme: str) -> dict:
    """One measurement in a fresh interpreter (run_in_child)."""
    return run_in_child(f"import json; from percpu.bench import measure; "
                        f"print(json.dumps(measure({rounds}, {cache}, {scheme!r})))")


@click.command("bench")
@click.option("--rounds", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="rounds of the fixed workload (each is 8 x 9,472 references)")
@click.option("--scheme", "-s", default="percpu", show_default=True, help="root scheme to time")
@click.option("--json", "as_json", is_flag=True, help="print the measurements as JSON")
def bench_command(rounds: int, scheme: str, as_json: bool) -> None:
    """Measure the engine's speed (references/s) and peak memory on a fixed workload.

    Targets: 25 M references/s with the full model, 80 M with the cache model off, peak
    RSS within 64 MiB + 100 B per touched page (README, Performance).
    """
    from percpu.run_request import check_schemes

    check_schemes(scheme)
    results = []
    for cache in (True, False):
        results.append(run_child(rounds, cache, scheme))
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for r in results:
        target = 25e6 if r["cache"] else 80e6
        budget = 64 * 2**20 + 100 * r["touched_pages"]
        click.echo(
            f"{'full model ' if r['cache'] else 'caches off '} {scheme}: "
            f"{r['refs'] / 1e6:.1f} M refs in {r['seconds']:.2f} s = "
            f"{r['refs_per_s'] / 1e6:.1f} M refs/s (target {target / 1e6:.0f} M: "
            f"{'met' if r['refs_per_s'] >= target else 'MISSED'}); peak RSS "
            f"{r['peak_rss_bytes'] / 2**20:.1f} MiB for {r['touched_pages']:,} touched pages "
            f"(budget {budget / 2**20:.1f} MiB: "
            f"{'met' if r['peak_rss_bytes'] <= budget else 'MISSED'})")
