"""The calibration runs: which program, with which arguments, prints which figures."""

from __future__ import annotations

from dataclasses import dataclass

from percpu.calibrate.machine import Machine


@dataclass(frozen=True)
class Bench:
    key: str                 # the name --only takes
    program: str
    args: tuple[str, ...]
    emits: tuple[str, ...]   # the figures it prints
    what: str
    cpus: int = 1
    statistic: str = "median"
    min_samples: int = 0     # in a guest (one run): at least this many, whatever --samples


def chase_sizes(machine: Machine) -> dict[str, int]:
    """A chase buffer per level: half of L1D, half of L2, an LLC-resident size that
    the STLB still covers (at most 4 MiB), and four times the LLC (at least 64 MiB)."""
    kib = {level: machine.cache_kib(level) for level in ("L1D", "L2", "LLC")}
    l1, l2, llc = (kib["L1D"] or 32), (kib["L2"] or 256), (kib["LLC"] or 8192)
    llc_size = min(llc // 4, 4096)
    if llc_size < 2 * l2:
        llc_size = llc // 2
    return {"L1D": l1 // 2 * 1024, "L2": l2 // 2 * 1024, "LLC": llc_size * 1024,
            "DRAM": max(4 * llc, 65536) * 1024}


def benches(machine: Machine, quick: bool) -> list[Bench]:
    """Each sample is short (about half a millisecond), so that on a shared machine most
    samples run inside one time slice and the median is the uncontended figure."""
    q = 4 if quick else 1  # --quick: a quarter of the iterations per sample
    llc_pages = 2 * (machine.cache_kib("LLC") or 8192) // 4

    def it(n: int) -> tuple[str, ...]:
        return ("--iters", str(max(1, n // q)))

    def pages(n: int) -> str:
        return str(max(16, n // q))

    out = [
        Bench("clock", "calib_clock", (*it(100000), "--samples", "30"), ("core_mhz", "tsc_mhz"),
              "core clock (dependent adds) and TSC rate", statistic="p90"),
        Bench("syscall", "calib_syscall", it(4000), ("syscall",), "getppid round trip"),
        Bench("fault_write", "calib_fault", ("--bench", "write", "--pages", pages(512)),
              ("fault_write",), "anonymous first write (allocate, zero)"),
        Bench("fault_read", "calib_fault", ("--bench", "read", "--pages", pages(512)),
              ("fault_read",), "anonymous first read (zero page)"),
        Bench("fault_minor", "calib_fault", ("--bench", "minor", "--pages", pages(256)),
              ("fault_minor",), "minor fault installing an existing page"),
        Bench("zero_page", "calib_fault", ("--bench", "zero", "--pages", pages(2048),
                                           "--buffer-pages", str(llc_pages)),
              ("zero_page",), "clearing a cold 4 KiB page (rep stosb)"),
        Bench("yield_thread", "calib_sched", ("--bench", "yield", "--threads", *it(200)),
              ("yield_thread",), "sched_yield between two threads on CPU 0"),
        Bench("yield_proc", "calib_sched", ("--bench", "yield", *it(200)),
              ("yield_proc",), "sched_yield between two processes on CPU 0"),
        Bench("pipe_thread", "calib_sched", ("--bench", "pipe", "--threads", *it(100)),
              ("pipe_thread",), "pipe ping-pong, two threads on CPU 0"),
        Bench("pipe_proc", "calib_sched", ("--bench", "pipe", *it(100)),
              ("pipe_proc",), "pipe ping-pong, two processes on CPU 0"),
        Bench("pipe_cross", "calib_sched", ("--bench", "pipe", "--cross", *it(20)),
              ("pipe_cross",), "pipe ping-pong, processes on CPUs 0 and 1", cpus=2),
        Bench("fork_exit", "calib_proc", ("--bench", "fork", *it(10)), ("fork_exit",),
              "fork, child exits, waitpid"),
        Bench("fork_exec_exit", "calib_proc", ("--bench", "exec", *it(4)),
              ("fork_exec_exit",), "fork, exec of a static program that exits, waitpid"),
        Bench("thread_create_join", "calib_proc", ("--bench", "thread", *it(40)),
              ("thread_create_join",), "pthread_create and pthread_join"),
        Bench("exit_to_wait", "calib_proc", ("--bench", "exit", *it(10)), ("exit_to_wait",),
              "child's _exit to the parent's return from waitpid"),
        # With the percpu kernel, lazy_touch less its percpu_roots=off figure is the lazy
        # top-level fault, measured (docs/kernel.md); elsewhere a cold-TLB access.
        # A lazy fault is a few hundred cycles on gem5 against a walk's cache misses
        # that vary by as much from sample to sample: many slots, many samples.
        Bench("lazy_touch", "calib_fault", ("--bench", "lazy", "--slots", "128"),
              ("lazy_touch", "tlb_miss_touch", "slot_touch"),
              "first access to each of 128 top-level slots after CPU 0's root is made anew, "
              "then after a local flush; first read of a page in each of 96 slots whose "
              "tables were freed", cpus=2, min_samples=15),
        Bench("mprotect_local", "calib_shootdown", it(300), ("mprotect_local",),
              "mprotect RW->R->RW, single-threaded"),
        Bench("mprotect_remote", "calib_shootdown", ("--remote", *it(100)),
              ("mprotect_remote", "ipi_lost"),
              "the same with a thread spinning on CPU 1 (shootdown IPIs)", cpus=2),
    ]
    chase_iters = {"L1D": 200000, "L2": 100000, "LLC": 5000, "DRAM": 3000}
    for level, size in chase_sizes(machine).items():
        out.append(Bench(f"chase_{level.lower()}", "calib_chase",
                         ("--bench", "chase", "--size", str(size), *it(chase_iters[level])),
                         (f"chase_{size // 1024}k",), f"pointer chase, {size // 1024} KiB ({level})"))
    out.append(Bench("copy_2k", "calib_chase",
                     ("--bench", "copy", "--size", str(llc_pages * 4096), *it(3000)),
                     ("copy_2k",), "2 KiB copy into a cold page (a root's kernel half)"))
    return [b for b in out if b.cpus <= machine.cpus]
