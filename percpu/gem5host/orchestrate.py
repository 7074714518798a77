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
from percpu.gem5host.plan import (
    CLK_MHZ,
    Gem5Options,
    Machine,
    default_root_costs,
    roots_plan,
    validate,
)
from percpu.gem5host.run import (
    GuestFailure,
    ensure_checkpoint,
    figures,
    keep_failed,
    run_scheme,
    write_scheme_dir,
)

DEFAULT_CPUS = 2  # a boot takes minutes per CPU on the atomic model


def _program(workload: str) -> str:
    """The guest program a workload's gem5 script runs (workloads/guest/<name>.c)."""
    return workload.replace("-", "_")


GUEST_KERNELS = ("stock", "percpu")  # percpu.guest.cache.KERNELS: the guest builds


def _kernel(kernel: str | None) -> Path:
    """--kernel: a vmlinux path, or the name of a guest build (GUEST_KERNELS)."""
    if kernel and kernel not in GUEST_KERNELS:
        return Path(kernel)
    try:
        from percpu.guest import default_kernel
    except ImportError:
        raise UsageError("no --kernel given and this percpu has no guest builder: pass "
                         "--kernel PATH/vmlinux") from None
    return Path(default_kernel(kernel=kernel or GUEST_KERNELS[0]))


def run_gem5(*, workload: str, params: tuple[str, ...], scheme_text: str, cpus: int | None,
             no_pcid: bool, pti: bool, seed: int | None, outdir: Path, quiet: bool,
             no_report: bool, costs: dict[str, float] | None = None, check: bool = False, gem5: Path, kernel: str | None, cpu_type: str, caches: str,
             mem_mib: int, checkpoint_dir: str | None, timeout_s: float, max_sim_s: float,
             argv: list[str]) -> int:
    from percpu.cli import _check_writable, _parse_params, _write_report
    from percpu.gem5host.cli import GEM5_SCHEMES
    from percpu.workloads import find_workload

    if workload.startswith("trace:"):
        raise UsageError("traces replay on the engine only: the gem5 host runs the workloads' "
                         "guest programs (percpu workloads list)")
    wl = find_workload(workload)
    wl_params = wl.resolve(_parse_params(params))
    schemes = [s.strip() for s in scheme_text.split(",") if s.strip()]
    if not schemes:
        raise UsageError("--scheme needs at least one scheme, e.g. --scheme shared")
    for s in schemes:
        if s not in GEM5_SCHEMES:
            raise UsageError(f"unknown scheme '{s}' for the gem5 host: choose from "
                             f"{', '.join(GEM5_SCHEMES)} (percpu schemes)")
    costs = costs or default_root_costs()
    machine = Machine(cpus=cpus or DEFAULT_CPUS, pcid=not no_pcid, pti=pti)
    opts = Gem5Options(gem5=gem5, kernel=_kernel(kernel), cpu_type=cpu_type, caches=caches,
                       mem_mib=mem_mib, timeout_s=timeout_s, max_sim_s=max_sim_s)
    if checkpoint_dir:
        opts.checkpoint_dir = Path(checkpoint_dir)
    validate(opts, machine)
    from percpu.gem5host.probe_run import probe

    missing = [name for name, ok in probe(opts.gem5)["objects"].items() if not ok]
    if missing:
        raise UsageError(f"{opts.gem5} lacks percpu's plugin ({', '.join(missing)}): build gem5 "
                         "with src_patches/ and EXTRAS=.../src_patches/percpu_gem5 (docs/gem5.md)")
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"--outdir {outdir} exists and is not a directory: choose another path")
    _check_writable(outdir)
    for scheme in schemes:  # a run replaces OUTDIR/<scheme>/: never a directory it did not write
        sub = outdir / scheme
        if sub.is_dir() and any(sub.iterdir()) and not (sub / "stats.txt").is_file():
            raise UsageError(f"--outdir {outdir}: {sub} is not a previous run (no stats.txt) and "
                             "this run would replace it: move it away or choose another --outdir")
    seed_value = 1 if seed is None else seed
    script = wl.render("gem5", wl_params, cpus=machine.cpus, seed=seed_value)

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
    if not no_report:
        baseline = "shared" if "shared" in schemes else schemes[0]
        _write_report([p for _, p, _ in done], baseline, outdir, quiet)
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
