"""Writes a calibration as a TOML cost profile that `--config` reads.

Parameter overrides go in [machine], [cost] and [cache] (each value with a comment
saying how it was obtained); everything else, the machine, kernel, date, command,
load and every raw measurement, goes under [profile], which `--config` skips.
Entries the calibration could not measure are written as comments, so the profile
says what it leaves at the cited or estimated default.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from percpu.errors import UsageError

if TYPE_CHECKING:
    from percpu.calibrate.calibrate import Calibration

SECTIONS = ("machine", "cost", "cache")


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _num(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"


def render(cal: Calibration) -> str:
    m = cal.machine
    where = (f"{m.hypervisor} virtual machine" if m.virtualised
             else f"simulated by {m.simulator}" if m.simulator else "bare metal")
    lines = [
        f"# percpu cost profile: {m.cpu_model}, {m.cpus} CPUs, {where}, {m.kernel}",
        f"# Written by `{cal.command}` on {m.date} in {cal.seconds:.0f} s (docs/calibration.md).",
        "# It describes that machine only: pass it with --config to model it. The engine's",
        "# defaults stay the cited ones; a profile becomes a default only with its machine said.",
    ]
    if m.virtualised:
        lines += [
            "# VIRTUALISED: page faults, IPIs, idle wake-ups and (with EPT/NPT) TLB misses go",
            "# through the hypervisor, and the TSC is a fixed-rate timer, not a cycle counter",
            "# (cycles come from a dependent-add chain). Costs here are the VM's, not the metal's.",
        ]
    la, lb = m.load_before, cal.load_after
    lines += [
        (f"# Load average (1, 5, 15 min) before: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}; "
         f"after: {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}."),
        "",
        "[profile]",
        f"machine = {_q(m.slug())}",
        f"cpu = {_q(m.cpu_model)}",
        f"cpus = {m.cpus}",
        f"virtualised = {'true' if m.virtualised else 'false'}",
        f"hypervisor = {_q(m.hypervisor)}",
        *([f"simulator = {_q(m.simulator)}"] if m.simulator else []),
        f"kernel = {_q(m.kernel)}",
        f"pti = {_q(m.pti)}",
        f"pcid = {'true' if m.pcid else 'false'}",
        f"thp = {_q(m.thp)}",
        f"timer = {_q(m.timer)}",
        f"date = {_q(m.date)}",
        f"command = {_q(cal.command)}",
        f"seconds = {cal.seconds:.1f}",
        f"load_before = [{', '.join(f'{x:.2f}' for x in la)}]",
        f"load_after = [{', '.join(f'{x:.2f}' for x in lb)}]",
        f"static_build = {'true' if cal.static else 'false'}",
        f"realtime = {'true' if cal.realtime else 'false'}",
        f"core_mhz = {cal.clock.core_mhz:.1f}",
        f"tsc_mhz = {cal.clock.tsc_mhz:.1f}",
    ]
    if cal.fit is not None:
        lines.append(f"fit_rank = {cal.fit.rank}")
        lines.append(f"fit_weighted_rms = {cal.fit.residual:.3f}")
    for note in cal.notes:
        lines.append(f"# note: {note}")
    lines.append("")
    for name, meas in cal.measurements.items():
        lines.append(f"[profile.measurements.{name}]")
        lines.append(f"value = {meas.value:.4g}")
        lines.append(f"unit = {_q(meas.unit)}")
        if name in cal.cycles:
            lines.append(f"cycles = {cal.cycles[name][0]:.4g}")
        lines.append(f"p25 = {meas.p25:.4g}")
        lines.append(f"p75 = {meas.p75:.4g}")
        lines.append(f"samples = {len(meas.samples)}")
        lines.append(f"runs = {meas.runs}")
        lines.append(f"stable = {'true' if meas.stable else 'false'}")
        lines.append("")
    if cal.fit is not None:
        for row in cal.fit.rows:
            lines.append(f"[profile.fit.{row.name}]")
            lines.append(f"measured_cycles = {row.measured:.4g}")
            lines.append(f"engine_defaults = {row.before:.4g}")
            lines.append(f"engine_fitted = {row.after:.4g}")
            lines.append(f"what = {_q(row.what)}")
            lines.append(f"fitted = {'true' if row.fitted else 'false'}")
            lines.append("")
    for name, (measured, engine, what) in cal.checks.items():
        lines.append(f"[profile.checks.{name}]")
        lines.append(f"measured_cycles = {measured:.4g}")
        lines.append(f"engine_cycles = {engine:.4g}")
        lines.append(f"what = {_q(what)}")
        lines.append("")
    for section in SECTIONS:
        entries = [e for e in cal.entries if e.key.split(".", 1)[0] == section]
        skipped = [(k, why) for k, why in cal.not_measured if k.split(".", 1)[0] == section]
        if not entries and not skipped:
            continue
        lines.append(f"[{section}]")
        for e in entries:
            spread = f", IQR {e.spread * 100:.0f} %" if e.spread is not None else ""
            lines.append(f"{e.key.split('.', 1)[1]} = {_num(e.value)}  # {e.how}{spread}: {e.note}")
        for key, why in skipped:
            lines.append(f"# {key.split('.', 1)[1]} not measured: {why}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_profile(cal: Calibration, path: Path) -> Path:
    """Write atomically (beside the target, then renamed), readable as any output is."""
    from percpu.atomic import write_atomic

    text = render(cal)
    path = path.resolve()
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write the profile to {path}: {exc.strerror}; "
                         "choose another path with --out") from None
    return path
