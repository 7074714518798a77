"""The gem5 host's main job: validate, boot or reuse the checkpoint, run each scheme,
write the directories and the report. The engine's `percpu run` has the same shape.
"""

from __future__ import annotations

import platform
import shutil
import sys
from pathlib import Path
from typing import Any

from percpu import __version__
from percpu.atomic import make_temp_dir
from percpu.errors import UsageError
from percpu.gem5host.plan import CLK_MHZ, Gem5Options, Machine, guest_script, roots_plan
from percpu.gem5host.run import (
    GuestFailure,
    ensure_checkpoint,
    figures,
    keep_failed,
    run_scheme,
    write_scheme_dir,
)
from percpu.run_request import Run, write_run_report


def _program(workload: str) -> str:
    """The guest program a workload's gem5 script runs (workloads/guest/<name>.c)."""
    return workload.replace("-", "_")


def run_gem5(run: Run, argv: list[str]) -> int:
    """Run a validated gem5 run request (RunRequest.validate("gem5"))."""
    from percpu.gem5host.probe_run import lacks_plugin, probe

    opts: Gem5Options = run.gem5
    wl, wl_params, schemes, outdir = run.workload, run.params, run.schemes, run.outdir
    quiet, check, costs = run.request.quiet, run.request.check, run.overrides
    machine = Machine(cpus=run.cpus, pcid=not run.request.no_pcid, pti=run.request.pti)
    missing = [name for name, ok in probe(opts.gem5)["objects"].items() if not ok]
    if missing:
        raise UsageError(lacks_plugin(opts.gem5, missing))
    seed_value = run.seed
    script = guest_script(wl.render("gem5", wl_params, cpus=machine.cpus, seed=seed_value),
                          opts, check=check, seed=seed_value)

    try:
        checkpoint, boot = ensure_checkpoint(opts, machine, quiet)
    except GuestFailure as exc:
        sys.stderr.write(f"percpu: error: {exc}\n")
        return 1
    outdir.mkdir(parents=True, exist_ok=True)
    done: list[tuple[str, Path, dict[str, float]]] = []
    for i, scheme in enumerate(schemes, 1):
        if not quiet:
            sys.stderr.write(f"[{i}/{len(schemes)}] {wl.name} under {scheme} on gem5 "
                             f"({opts.cpu_type}, {machine.cpus} CPUs) ...\n")
        work = make_temp_dir(outdir, f".{scheme}.")
        try:
            roots = roots_plan(scheme, costs, check)
            result = run_scheme(opts, machine, checkpoint, scheme, script, work,
                                _program(wl.name), quiet, roots)
        except GuestFailure as exc:
            failed = keep_failed(work, outdir / f"{scheme}.failed")
            sys.stderr.write(f"percpu: error: {exc}; the failed run (console.log, simerr.txt) "
                             f"is in {failed}\n")
            return 1
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            if done and not quiet:
                sys.stderr.write(f"percpu: interrupted; kept the finished runs: "
                                 f"{', '.join(str(p) for _, p, _ in done)}\n")
            raise
        info = run_info(wl.name, wl_params, scheme, seed_value, machine, opts, checkpoint, boot,
                        result, argv)
        info["roots"] = roots
        final = outdir / scheme
        done.append((scheme, final, write_scheme_dir(result, final, info)))
        if not quiet:
            sys.stderr.write(f"    {result.host_seconds:.0f} s; wrote {final}\n")
    if not quiet:
        print_comparison(wl.name, wl_params, machine, opts, done)
    if not run.request.no_report:
        write_run_report([p for _, p, _ in done], run.baseline, outdir, quiet)
    violations = {scheme: h.get("percpu.checkerViolations", 0) for scheme, _, h in done}
    if check and any(violations.values()):
        bad = ", ".join(f"{s} {v:.0f}" for s, v in violations.items() if v)
        sys.stderr.write(f"percpu: checker violations ({bad}): the first of each is described "
                         "in that scheme's simerr.txt\n")
        return 1
    return 0


def run_info(workload: str, wl_params: dict[str, Any], scheme: str, seed: int, machine: Machine,
             opts: Gem5Options, checkpoint: Path, boot: dict, result, argv: list[str]) -> dict:
    """percpu.json: the keys `percpu report` reads beside gem5's own config files."""
    rep = result.report
    return {
        "percpu_gem5_version": __version__,
        "host": "gem5",
        "workload": workload,
        "params": wl_params,
        "scheme": scheme,
        "seed": seed,
        "machine": {"cpus": machine.cpus, "pcid": machine.pcid, "pti": machine.pti,
                    "paging": 4, "freq_ghz": CLK_MHZ / 1000},
        "gem5": {"binary": str(opts.gem5), "cpu_type": opts.cpu_type, "caches": opts.caches,
                 "mem_mib": opts.mem_mib, "kernel": str(opts.kernel),
                 "kernel_args": boot["inputs"]["kernel_args"], "checkpoint": str(checkpoint),
                 "boot_host_seconds": boot.get("host_seconds"),
                 "exit_cause": result.phase.get("cause"),
                 "monitors": result.phase.get("monitors")},
        "guest": {"booted": boot.get("booted", {}), "selftest_passed": boot.get("selftest_passed"),
                  "selftest_failed": boot.get("selftest_failed"),
                  "selftest_skipped": boot.get("selftest_skipped"),
                  "summary": rep.summary_lines[-1] if rep.summary_lines else None,
                  # The percpu kernel's /proc/percpu_roots over the region of interest.
                  "kernel_roots": rep.kernel_roots},
        "stats_dump": "the region of interest (reset and dumped by the guest program's m5 ops)",
        "host_seconds": round(result.host_seconds, 1),
        "versions": {"percpu": __version__, "python": platform.python_version()},
        "command": argv,
    }


def print_comparison(workload: str, wl_params: dict[str, Any], machine: Machine,
                     opts: Gem5Options, done: list[tuple[str, Path, dict[str, float]]]) -> None:
    import pandas as pd

    print(f"\nworkload {workload} ({', '.join(f'{k}={v}' for k, v in wl_params.items())}) in a "
          f"gem5 guest on {machine.cpus} {opts.cpu_type} CPUs, PCID "
          f"{'on' if machine.pcid else 'off'}, PTI {'on' if machine.pti else 'off'}\n")
    table = pd.DataFrame({scheme: figures(h) for scheme, _, h in done}).fillna("")
    print(table.to_string())
