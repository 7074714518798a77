"""What the percpu kernel says of its roots over a calibration (docs/kernel.md): the
guest script's calib-roots lines, /proc/percpu_roots read after the benchmarks. With
percpu_roots=time the kernel counts its own TSC cycles per root made and per lazy
fault's fix-up; the fit turns them into cost.root_alloc and, with lazy_touch, into
cost.lazy_fault (calibrate.root_costs)."""

from __future__ import annotations

from pathlib import Path

from percpu.errors import UsageError


def parse_kernel_roots(text: str) -> dict[str, int]:
    """The calib-roots lines of a guest's console: counter name -> value ({} if none)."""
    roots = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "calib-roots" and parts[2].isdigit():
            roots[parts[1]] = int(parts[2])
    return roots


def kernel_roots_notes(roots: dict[str, int]) -> list[str]:
    """The profile's notes on what the kernel did over the calibration."""
    if not roots:
        return []
    made, lazy = roots.get("rootAllocs::total", 0), roots.get("lazyFaults", 0)
    notes = [(f"the percpu kernel made {made:,} roots and took {lazy:,} lazy faults "
              f"(checker violations: {roots.get('checkerViolations', 0)})")]
    if roots.get("timing"):
        per = [(f"{roots['rootMakeCycles'] / made:,.0f} TSC cycles per root made"
                if made else "no root made"),
               (f"{roots['lazyFaultFixupCycles'] / lazy:,.0f} per lazy fault's fix-up"
                if lazy else "no lazy fault")]
        notes.append("the percpu kernel's own timing (percpu_roots=time): " + ", ".join(per))
    return notes


def baseline_console(path: Path) -> Path:
    """--baseline PROFILE.toml: the console log its calibration kept beside it
    (<name>.console.log), whose samples the baseline's costs were fitted from."""
    console = path.with_suffix(".console.log")
    if not path.is_file():
        raise UsageError(f"--baseline {path} not found: give the profile `percpu gem5 "
                         "calibrate --kernel stock` wrote")
    if not console.is_file():
        raise UsageError(f"--baseline {path} has no {console.name} beside it: give a profile "
                         "that `percpu gem5 calibrate` wrote (it keeps the guest's console)")
    return console
