"""`percpu sensitivity`: the click command behind percpu.analysis.sensitivity."""

from __future__ import annotations

from pathlib import Path

import click

from percpu.errors import UsageError
from percpu.run_request import DEFAULT_WORKLOAD


@click.command("sensitivity")
@click.option("--workload", "-w", default=DEFAULT_WORKLOAD, show_default=True, help="workload of the point")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="workload parameter of the point (repeatable)")
@click.option("--cpus", type=int, default=None, help="CPUs  [default: 4]")
@click.option("--no-pcid", is_flag=True, help="a CPU without PCID")
@click.option("--pti", is_flag=True, help="page-table isolation")
@click.option("--preset", type=click.Choice(["readme"]), default=None,
              help="readme: the README's three headline points (ctxmix, 4 CPUs: 4 and 7 "
                   "processes per CPU, and 4 with --no-pcid) instead of one point")
@click.option("--keys", default="estimates", show_default=True,
              help="parameters to vary: estimates, costs, or a comma-separated list")
@click.option("--factors", default="0.5,2", show_default=True,
              help="factors each parameter is scaled by")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="parameter override for every run (the values varied around)")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML overrides for every run, e.g. a `percpu calibrate` profile")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path),
              default=Path("percpu-sensitivity"), show_default=True,
              help="directory for sensitivity.{md,html,csv} and plots/")
@click.option("--format", "formats", default="md,html", show_default=True,
              help="comma-separated: md, html")
def sensitivity_command(workload, params, cpus, no_pcid, pti, preset, keys, factors, sets,
                        config_file, out, formats) -> None:
    """How much each estimated parameter moves the overhead of percpu against shared.

    Scales each parameter by each factor (0.5x and 2x) at a workload point, everything
    else held, runs shared and percpu on the engine, and writes a table (md, html, csv)
    and a tornado plot per point. See docs/sensitivity.md.
    """
    from percpu.analysis import sensitivity as sens
    from percpu.run_request import machine_overrides, parse_params

    fmts = [f.strip() for f in formats.split(",") if f.strip()]
    bad = [f for f in fmts if f not in ("md", "html")]
    if bad or not fmts:
        raise UsageError(f"--format: unknown format '{(bad or [formats])[0]}': use md, html")
    chosen = sens.choose_keys(keys)
    scale = sens.parse_factors(factors)
    base = machine_overrides(None, False, False, None, None, sets, config_file)
    if preset:
        if params or cpus is not None or no_pcid or pti or workload != DEFAULT_WORKLOAD:
            raise UsageError("--preset readme names its own points: drop -w, -p, --cpus, "
                             "--no-pcid and --pti")
        points = list(sens.README_POINTS)
    else:
        from percpu.workloads import find_workload

        wl = find_workload(workload)
        point_params = parse_params(params)
        wl.resolve(dict(point_params))  # checks them now
        over = machine_overrides(cpus, no_pcid, pti, None, None, (), None)
        label = " ".join([workload, *(f"{k}={v}" for k, v in point_params.items()),
                          *(["--no-pcid"] if no_pcid else []), *(["--pti"] if pti else []),
                          f"{int(over.get('machine.cpus', 4))} CPUs"])
        points = [sens.Point(label, workload, point_params, over)]
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    from percpu.paths import check_writable_dir

    check_writable_dir(out, "--out")  # before the runs, not after them
    results = []
    for point in points:
        click.echo(f"{point.label}:", err=True)
        results.append(sens.analyse(point, chosen, scale, base,
                                    progress=lambda m: click.echo(m, err=True)))
    import sys

    note = "Made with `percpu " + " ".join(sys.argv[1:]) + "`." if sys.argv[1:2] == [
        "sensitivity"] else ""
    if config_file:
        note += f" Every run also takes --config {config_file}."
    for path in sens.write_outputs(results, out, fmts, note):
        click.echo(str(path))
