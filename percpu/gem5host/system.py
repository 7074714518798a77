"""The gem5 side of a percpu run: build an X86Board from a plan and simulate one phase.

This module runs inside gem5.opt (configs/percpu.py hands it the plan that the
orchestrator, percpu/gem5host/run.py, wrote as JSON). It imports only gem5, its
stdlib and the Python standard library: gem5's embedded interpreter need not have
percpu's dependencies.

Two phases, each its own gem5 process:
- boot: atomic CPUs, no caches (the fastest way through Linux's boot). The guest's
  init runs `m5 exit` once it is ready (workloads/guest/init.sh); that exit takes
  a checkpoint and ends the process.
- roi: restore that checkpoint on the measured CPU model and cache hierarchy, hand
  the workload's script to the guest through readfile, and run until the guest
  ends the simulation. The guest programs reset the stats when their region of
  interest starts and dump them when it ends, so stats.txt holds exactly the
  region of interest (gem5's own dump at exit is switched off).
"""

from __future__ import annotations

import atexit
import json
import sys
from pathlib import Path

import m5
from gem5.components.boards.x86_board import X86Board
from gem5.components.cachehierarchies.classic.no_cache import NoCache
from gem5.components.cachehierarchies.classic.private_l1_private_l2_walk_cache_hierarchy import (
    PrivateL1PrivateL2WalkCacheHierarchy,
)
from gem5.components.memory.single_channel import SingleChannelDDR4_2400
from gem5.components.processors.cpu_types import CPUTypes
from gem5.components.processors.simple_processor import SimpleProcessor
from gem5.isas import ISA
from gem5.resources.resource import DiskImageResource, KernelResource
from gem5.simulate.exit_event import ExitEvent
from gem5.simulate.simulator import Simulator
from m5.objects import X86ISA, X86E820Entry
from m5.params import NULL

# CPUID bits (Intel SDM vol. 2A, CPUID): leaf 1 ECX bit 17 is PCID, leaf 7 EBX bit 10
# is INVPCID. X86ISA keeps each leaf as [EAX, EBX, EDX, ECX].
CPUID_1_ECX_PCID = 1 << 17
CPUID_7_EBX_INVPCID = 1 << 10

CPU_TYPES = {"atomic": CPUTypes.ATOMIC, "timing": CPUTypes.TIMING, "o3": CPUTypes.O3,
             "minor": CPUTypes.MINOR}


def cpuid_isa(pcid: bool) -> X86ISA:
    """An X86ISA whose CPUID says what the plan's machine has: PCID and INVPCID, or
    neither (Thomas Gleixner's "CPU without PCID")."""
    isa = X86ISA()
    # Param vectors hold UInt32 param values: work on plain ints.
    fms = [int(v) for v in isa.FamilyModelStepping]
    ext = [int(v) for v in isa.ExtendedFeatures]
    if pcid:
        fms[3] |= CPUID_1_ECX_PCID
        ext[1] |= CPUID_7_EBX_INVPCID
    else:
        fms[3] &= ~CPUID_1_ECX_PCID
        ext[1] &= ~CPUID_7_EBX_INVPCID
    isa.FamilyModelStepping = fms
    isa.ExtendedFeatures = ext
    return isa


def cache_hierarchy(name: str, cpus: int):
    # Classic: private 32 KiB L1s and a 1 MiB L2 per core, with the walk caches that
    # stdlib hierarchy adds for page-table walker traffic.
    if name == "none":
        return NoCache()
    if name == "classic":
        return PrivateL1PrivateL2WalkCacheHierarchy(l1d_size="32KiB", l1i_size="32KiB",
                                                    l2_size="1MiB")
    if name == "ruby":
        from gem5.components.cachehierarchies.ruby.mesi_two_level_cache_hierarchy import (
            MESITwoLevelCacheHierarchy,
        )

        return MESITwoLevelCacheHierarchy(l1i_size="32KiB", l1i_assoc=8, l1d_size="32KiB",
                                          l1d_assoc=8, l2_size="1MiB", l2_assoc=16,
                                          num_l2_banks=cpus)
    raise ValueError(f"unknown cache hierarchy {name!r}")


def reserve_root_pool(board: X86Board, pool: dict) -> None:
    """Withhold the root model's pool (the top of memory) from the guest: the E820 map
    X86Board builds, with the pool carved out of the last usable range as reserved
    (type 2), so the guest never allocates there and root reads are ordinary memory
    reads through the caches."""
    base, size = int(pool["base"]), int(pool["size"])
    top = int(board.mem_ranges[0].size())
    if base + size != top or base <= 0x100000:
        raise ValueError(f"root pool {base:#x}+{size:#x} is not the top of {top:#x} bytes")
    board.workload.e820_table.entries = [
        # As X86Board: the first megabyte (with the legacy hole), then usable memory,
        # then the m5ops range below 4 GiB.
        X86E820Entry(addr=0, size="639kB", range_type=1),
        X86E820Entry(addr=0x9FC00, size="385kB", range_type=2),
        X86E820Entry(addr=0x100000, size=f"{base - 0x100000:d}B", range_type=1),
        X86E820Entry(addr=base, size=f"{size:d}B", range_type=2),
        X86E820Entry(addr=0xFFFF0000, size="64kB", range_type=2),
    ]


def attach_monitors(board: X86Board, plan: dict) -> int:
    """Attach the plugin's per-CPU CR3/INVLPG/INVPCID monitors (src_patches/percpu_gem5)
    and, when the plugin has it, the system's root model: PercpuRootModel at board.percpu
    and, for a scheme with roots, PercpuWalkers in every TLB. Returns how many monitors
    were attached (0 when this gem5 lacks the plugin)."""
    monitor_class = getattr(m5.objects, plan.get("monitor_class", "PercpuCr3Monitor"), None)
    if monitor_class is None:
        return 0
    roots = plan.get("roots") or {}
    model = None
    if hasattr(m5.objects, "PercpuRootModel") and roots:
        pool = plan["root_pool"]
        model = m5.objects.PercpuRootModel(
            scheme=roots["scheme"], num_cpus=plan["cpus"], pti=plan["pti"],
            pool_base=int(pool["base"]), pool_size=f"{int(pool['size'])}B",
            root_alloc_cycles=roots["root_alloc_cycles"],
            lazy_fault_cycles=roots["lazy_fault_cycles"], check=roots["check"])
        board.percpu = model
    attached = 0
    for core in board.get_processor().get_cores():
        cpu = core.get_simobject()
        cpu.percpu = monitor_class(pti=plan["pti"], roots=model if model is not None else NULL)
        if model is not None and roots["scheme"] != "shared":
            # Replaced before the board connects the walker ports (_pre_instantiate).
            cpu.mmu.itb.walker = m5.objects.PercpuWalker(roots=model)
            cpu.mmu.dtb.walker = m5.objects.PercpuWalker(roots=model)
        attached += 1
    return attached


def build_board(plan: dict) -> X86Board:
    processor = SimpleProcessor(cpu_type=CPU_TYPES[plan["cpu_type"]], num_cores=plan["cpus"],
                                isa=ISA.X86)
    for core in processor.get_cores():
        core.get_simobject().isa = [cpuid_isa(plan["pcid"])]
    board = X86Board(
        clk_freq=plan["clk_freq"],
        processor=processor,
        memory=SingleChannelDDR4_2400(size=plan["mem_size"]),
        cache_hierarchy=cache_hierarchy(plan["caches"], plan["cpus"]),
    )
    board.set_kernel_disk_workload(
        kernel=KernelResource(local_path=plan["kernel"]),
        disk_image=DiskImageResource(local_path=plan["disk"]),
        readfile=plan.get("readfile"),
        kernel_args=plan["kernel_args"],
        checkpoint=Path(plan["restore"]) if plan.get("restore") else None,
    )
    if plan.get("root_pool"):
        reserve_root_pool(board, plan["root_pool"])
    return board


def write_result(plan: dict, **fields) -> None:
    """The phase's outcome, for the orchestrator: one JSON file in this process's outdir."""
    out = Path(m5.options.outdir) / "phase.json"
    out.write_text(json.dumps({"phase": plan["phase"], **fields}, indent=2) + "\n")


def run_boot(plan: dict) -> None:
    board = build_board(plan)
    checkpoint = Path(plan["checkpoint"])

    def on_exit():
        # The first `m5 exit` is init saying "ready": everything after it is the workload.
        simulator.save_checkpoint(checkpoint)
        yield True

    simulator = Simulator(board=board, on_exit_event={ExitEvent.EXIT: on_exit()})
    simulator.run(max_ticks=plan.get("max_ticks") or m5.MaxTick)
    cause = simulator.get_last_exit_event_cause()
    write_result(plan, cause=cause, tick=simulator.get_current_tick(),
                 checkpointed=(checkpoint / "m5.cpt").is_file())


def run_roi(plan: dict) -> None:
    board = build_board(plan)
    monitors = attach_monitors(board, plan)
    dumps = {"count": 0}

    def on_exit():
        # The guest's m5 exit: the workload (or its script) has finished. Only the
        # guest's dumps (its region of interest) belong in stats.txt, so drop the dump
        # gem5 registers at instantiation for the end of the process.
        atexit.unregister(m5.stats.dump)
        yield True

    simulator = Simulator(board=board, on_exit_event={ExitEvent.EXIT: on_exit()})
    simulator.run(max_ticks=plan.get("max_ticks") or m5.MaxTick)
    cause = simulator.get_last_exit_event_cause()
    stats = Path(m5.options.outdir) / "stats.txt"
    if not stats.is_file() or stats.stat().st_size == 0:
        m5.stats.dump()  # the guest never dumped: keep what there is, marked by phase.json
        dumps["fallback"] = True
    write_result(plan, cause=cause, tick=simulator.get_current_tick(), monitors=monitors,
                 fallback_dump=bool(dumps.get("fallback")))


def main(plan_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    if plan["phase"] == "boot":
        run_boot(plan)
    elif plan["phase"] == "roi":
        run_roi(plan)
    else:
        sys.exit(f"configs/percpu.py: error: unknown phase {plan['phase']!r} in {plan_path}")


if __name__ == "__m5_main__":  # gem5.opt [options] system.py PLAN.json
    main(sys.argv[1])
