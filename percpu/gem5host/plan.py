"""From the command line's flags to the plans of the gem5 processes of one run.

A run is one boot (skipped when its checkpoint exists) and one region-of-interest
process per scheme. Each gem5 process reads a plan (JSON) that percpu/gem5host/
system.py turns into an X86Board. Everything the boot depends on goes into the
checkpoint's key, so a checkpoint is reused only by runs that would have booted
the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from percpu.run_request import (
    KERNEL_KMAP_DEFAULT,
    KERNEL_KMAP_OPTIONS,
    ROOT_MODEL_COSTS,
    Gem5Options,
    cache_root,
    default_root_costs,
)

# gem5 x86 boots Linux with these (the stdlib's X86Board defaults, minus the disk):
# lpj skips the delay-loop calibration, which takes long in simulation.
BASE_KERNEL_ARGS = ["earlyprintk=ttyS0", "console=ttyS0", "lpj=7999923", "rdinit=/init",
                    "percpu.selftest=1"]
# gem5 says HygonGenuine, which Linux treats as not affected by Meltdown: PTI stays
# off unless forced (arch/x86/mm/pti.c, pti_check_boottime_disable).
PTI_ARGS = {True: "pti=on", False: "nopti"}
# gem5's classic CPUs run at the board's clock; 3 GHz as the engine's default.
CLK_MHZ = 3000
CLK_FREQ = f"{CLK_MHZ / 1000:g}GHz"  # as gem5 params spell it: "3GHz"
# The root model's pool sits at the top of guest memory, withheld from the guest's E820
# map: at least the proposal's bound (4 KiB x CPUs x 6 ASIDs, x2 with PTI), in whole MiB.
# Every boot reserves it, whatever the scheme, so one checkpoint serves every scheme.
MIB = 1 << 20


@dataclass
class Machine:
    cpus: int
    pcid: bool
    pti: bool


def root_pool_bytes(machine: Machine) -> int:
    from percpu.params import core

    # The bound from core/root/bounds.h, the one place it is computed.
    bound = core().root_pool_bound_bytes(machine.cpus, machine.pti)
    return max(MIB, -(-bound // MIB) * MIB)


def root_pool(opts: Gem5Options, machine: Machine) -> dict[str, int]:
    size = root_pool_bytes(machine)
    return {"base": opts.mem_mib * MIB - size, "size": size}


def kernel_args(machine: Machine, opts: Gem5Options | None = None) -> list[str]:
    """The guest's command line; --kernel-roots off adds percpu_roots=off (docs/kernel.md)."""
    roots_off = opts is not None and opts.kernel_roots == "off"
    return [*BASE_KERNEL_ARGS, PTI_ARGS[machine.pti], *(["percpu_roots=off"] if roots_off else [])]


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def boot_inputs(opts: Gem5Options, machine: Machine) -> dict[str, Any]:
    """Everything a boot depends on: the checkpoint's key is their hash."""
    return {
        "kernel_sha256": file_digest(opts.kernel),
        # gem5.opt is about a gigabyte: its size and time stand in for a hash.
        "gem5": [str(opts.gem5.resolve()), opts.gem5.stat().st_size, opts.gem5.stat().st_mtime_ns],
        "cpus": machine.cpus,
        "pcid": machine.pcid,
        "pti": machine.pti,
        "mem_mib": opts.mem_mib,
        "clk_freq": CLK_FREQ,
        "kernel_args": kernel_args(machine, opts),
        "root_pool": root_pool(opts, machine),
    }


def checkpoint_key(inputs: dict[str, Any]) -> str:
    text = json.dumps(inputs, sort_keys=True)
    return f"c{inputs['cpus']}-{'pcid' if inputs['pcid'] else 'nopcid'}-" \
           f"{'pti' if inputs['pti'] else 'nopti'}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def placeholder_disk() -> Path:
    """X86Board wants a disk image although the guest runs from its initramfs: any small
    file does (docs/references.md, "gem5's X86Board")."""
    path = cache_root() / "gem5" / "empty-disk.img"
    if not path.is_file() or path.stat().st_size != 1 << 20:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own: two runs may make it at once (a sweep's first points).
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(bytes(1 << 20))
        os.replace(tmp, path)
    return path


def common_plan(opts: Gem5Options, machine: Machine) -> dict[str, Any]:
    return {
        "cpus": machine.cpus,
        "pcid": machine.pcid,
        "mem_size": f"{opts.mem_mib}MiB",
        "clk_freq": CLK_FREQ,
        "kernel": str(opts.kernel),
        "disk": str(placeholder_disk()),
        "kernel_args": kernel_args(machine, opts),
        "pti": machine.pti,
        "root_pool": root_pool(opts, machine),
    }


def boot_plan(opts: Gem5Options, machine: Machine, checkpoint: Path) -> dict[str, Any]:
    # Atomic CPUs without caches: the cheapest way through boot; the checkpoint holds
    # no cache state, so any hierarchy can restore it.
    return {**common_plan(opts, machine), "phase": "boot", "cpu_type": "atomic",
            "caches": "none", "checkpoint": str(checkpoint),
            "max_ticks": int(opts.max_sim_s * 1e12)}


def roots_plan(scheme: str, costs: dict[str, float], check: bool) -> dict[str, Any]:
    """What system.py gives the PercpuRootModel: the scheme, the costs it charges (from
    the cost table, --set overrides applied) and whether it checks."""
    return {"scheme": scheme, "check": check,
            **{param: round(costs[key]) for key, param in ROOT_MODEL_COSTS.items()}}


def roi_plan(opts: Gem5Options, machine: Machine, checkpoint: Path, readfile: Path,
             scheme: str, roots: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**common_plan(opts, machine), "phase": "roi", "scheme": scheme,
            "cpu_type": opts.cpu_type, "caches": opts.caches, "restore": str(checkpoint),
            "readfile": str(readfile), "max_ticks": int(opts.max_sim_s * 1e12),
            "roots": roots or roots_plan(scheme, default_root_costs(), False)}


def guest_script(script: str, opts: Gem5Options, *, check: bool, seed: int | None = None) -> str:
    """The script a phase hands the guest: what the gem5 host runs before every workload's
    (or the calibration's) own lines, after their #! line.
    - The percpu kernel's run-time options (docs/kernel.md): its checker only with --check
      (the boot left it on), its own timing of root paths only with --kernel-time, its
      kmap_local as --kernel-kmap says.
    - The seed: that many execs of /bin/true. Each exec takes its ASLR draws from the
      kernel's random stream and takes time, so another seed gives the program's processes
      another layout and starts them at another phase of the timer tick (docs/compare.md,
      "Seeds on gem5")."""
    prelude = []
    if opts.kernel_kind == "percpu":
        options = ["check" if check else "nocheck", "time" if opts.kernel_time else "notime",
                   KERNEL_KMAP_OPTIONS[opts.kernel_kmap or KERNEL_KMAP_DEFAULT]]
        prelude += ["# percpu: the percpu kernel's run-time options (docs/kernel.md)",
                    f"echo {','.join(options)} >/proc/percpu_roots || exit 3"]
    if seed is not None:
        prelude += [f"# percpu: the seed ({seed}, --seed) as execs before the program",
                    f"i=0; while [ $i -lt {seed} ]; do /bin/true; i=$((i + 1)); done"]
    if not prelude:
        return script
    first, _, rest = script.partition("\n")
    if not first.startswith("#!"):
        first, rest = "", script
    return "".join(line + "\n" for line in [first, *prelude] if line) + rest


def as_json(obj: Any) -> str:
    if hasattr(obj, "__dataclass_fields__"):
        obj = asdict(obj)
    return json.dumps(obj, indent=2, default=str) + "\n"
