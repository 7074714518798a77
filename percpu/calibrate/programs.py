"""The calibration microbenchmarks as engine op programs: one row of the fit each.

A row says what a measured figure is in the engine's terms: the op program that does
what the C program does, run for two iteration counts so that start-up cancels (the
figure is the marginal cost of one iteration), and which engine clock it is read from.
A few rows are differences of two programs (the shootdown's sender: with a remote
thread minus without), one is written out by hand (the exit path, which no op program
isolates) and one corrects for what the engine does not model (a read fault maps the
zero page: no page is allocated or zeroed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# Engine entries the fit can determine from these rows.
LATENCY_KEYS = ("cache.l1d.latency", "cache.l2.latency", "cache.llc.latency",
                "cache.dram.latency")
FIT_KEYS = ("cost.syscall", "cost.ctx_switch", "cost.switch_mm", "cost.wakeup",
            "cost.page_fault", "cost.zero_page", "cost.fork", "cost.exec", "cost.exit",
            "cost.flush_ipi_send", "cost.ipi_receive", *LATENCY_KEYS)

_IMAGE = """\
  vma text 0x400000 64K rx
  vma stack 0x7ffffff00000 64K rw
"""


def _mm(name: str, extra: str = "") -> str:
    return f"mm {name}\n{_IMAGE}{extra}"


def _task(name: str, mm: str, cpu: int, body: str, start: str = "yes") -> str:
    lines = "".join(f"  {line}\n" for line in body.strip().splitlines())
    return f"task {name} mm={mm} cpus={cpu} start={start}\nprogram {name}\n{lines}"


def _loop(n: int, body: str) -> str:
    inner = "".join(f"  {line}\n" for line in body.strip().splitlines())
    return f"repeat {n}\n{inner}end\n"


def _program(*parts: str) -> str:
    return "percpu-ops 1\n" + "".join(parts)


def syscall(n: int) -> str:
    return _program(_mm("m"), _task("t", "m", 0, _loop(n, "syscall")))


def yield_pair(threads: bool) -> Callable[[int], str]:
    def text(n: int) -> str:
        mms = _mm("m") if threads else _mm("m") + _mm("m2")
        return _program(mms, _task("a", "m", 0, _loop(n, "yield")),
                        _task("b", "m" if threads else "m2", 0, _loop(n, "yield")))
    return text


def pipe_pair(threads: bool, cross: bool) -> Callable[[int], str]:
    def text(n: int) -> str:
        mms = _mm("m") if threads else _mm("m") + _mm("m2")
        return _program(mms, _task("ping", "m", 0, _loop(n, "signal ab\nwait ba")),
                        _task("pong", "m" if threads else "m2", 1 if cross else 0,
                              _loop(n, "wait ab\nsignal ba")))
    return text


def first_touch(op: str) -> Callable[[int], str]:
    def text(n: int) -> str:
        heap = f"  vma heap 0x10000000 {n * 4}K rw\n"
        return _program(_mm("m", heap), _task("t", "m", 0, f"{op} heap count={n} stride=4096"))
    return text


def fork_exit(n: int) -> str:
    return _program(_mm("m"), _task("p", "m", 0, _loop(n, "fork c\nwait done")),
                    _task("c", "fork", 0, "signal done", start="no"))


def fork_exec_exit(n: int) -> str:
    return _program(_mm("m"), _mm("img"), _task("p", "m", 0, _loop(n, "fork c\nwait done")),
                    _task("c", "fork", 0, "exec img\nsignal done", start="no"))


def thread_create_join(n: int) -> str:
    return _program(_mm("m"), _task("p", "m", 0, _loop(n, "spawn th\nwait done")),
                    _task("th", "m", 0, "signal done", start="no"))


def mprotect(remote: bool) -> Callable[[int], str]:
    def text(n: int) -> str:
        page = "  vma page 0x20000000 4K rw\n"
        flip = _loop(n, "mprotect page 0 4K r\nmprotect page 0 4K rw")
        parts = [_mm("m", page), _task("a", "m", 0, "store page\n" + flip)]
        if remote:  # a thread of the same process computing on CPU 1 all along
            parts.append(_task("s", "m", 1, _loop(3 * n + 100, "compute 20000")))
        return _program(*parts)
    return text


def chase(size_bytes: int) -> Callable[[int], str]:
    pages = size_bytes // 4096

    lines = size_bytes // 64
    # Fault every page in, then bring the lines into the caches as the C program's
    # first pass does (a buffer far beyond the LLC needs no pass: it misses anyway).
    warm = f"store buf count={pages} stride=4096\n"
    if lines <= 1 << 18:
        warm += f"load buf count={lines} stride=64\n"

    def text(n: int) -> str:
        buf = f"  vma buf 0x100000000 {pages * 4}K rw\n"
        return _program(_mm("m", buf), _task("t", "m", 0, f"{warm}load buf count={n} random"))
    return text


@dataclass(frozen=True)
class Row:
    """One measured figure in the engine's terms (cycles per iteration)."""

    name: str
    measured: tuple[tuple[str, float], ...]   # the figure: sum of sign x measurement
    text: Callable[[int], str] | None = None  # the op program for n iterations
    minus: Callable[[int], str] | None = None  # subtracted program (same n)
    cpus: int = 1
    clock: str = "elapsed"  # elapsed | busy0 (CPU 0 not idle) | kernel1 (CPU 1 not user, idle)
    n: tuple[int, int] = (20, 100)
    columns: tuple[str, ...] = FIT_KEYS  # entries it can depend on (others stay put)
    # (entry, stat, factor): the real program differs from the op program by factor x
    # the stat's marginal count of entry (read faults allocate and zero nothing).
    adjust: tuple[tuple[str, str, float], ...] = ()
    analytic: dict[str, float] = field(default_factory=dict)  # hand-written row
    what: str = ""
    # False: reported beside the fit (engine figure against measurement), not fitted
    fitted: bool = True


def _one(name: str) -> tuple[tuple[str, float], ...]:
    return ((name, 1.0),)


def rows(sizes: dict[str, int], cpus: int) -> list[Row]:
    """Every row the fit may use; sizes names the chase buffer of each level."""
    out = [
        Row("syscall", _one("syscall"), syscall, what="getppid: syscall"),
        Row("yield_thread", _one("yield_thread"), yield_pair(True),
            what="two threads yield on one CPU: 2 x (syscall + ctx_switch)"),
        Row("yield_proc", _one("yield_proc"), yield_pair(False),
            what="two processes: the same plus 2 mm switches (switch_mm + cr3_noflush)"),
        Row("pipe_thread", _one("pipe_thread"), pipe_pair(True, False),
            what="pipe ping-pong, threads, one CPU: 4 syscalls, 2 wakeups, 2 switches"),
        Row("pipe_proc", _one("pipe_proc"), pipe_pair(False, False),
            what="the same between processes: plus 2 mm switches"),
        Row("fault_write", _one("fault_write"), first_touch("store"), n=(256, 1024),
            what="first write: page_fault + zero_page + pte_write + walks"),
        Row("fault_read", _one("fault_read"), first_touch("load"), n=(256, 1024),
            adjust=(("cost.zero_page", "pageFaults", -1.0),),
            what="first read maps the zero page: the same without zero_page"),
        Row("fork_exit", _one("fork_exit"), fork_exit, n=(5, 25),
            what="fork + exit + the parent's wait and wake-up"),
        Row("fork_exec_exit", _one("fork_exec_exit"), fork_exec_exit, n=(5, 25),
            what="fork + exec + exit + wait"),
        # A check, not a fit row: the engine charges a thread's exit as a process's
        # (cost.exit, which exit_to_wait measures on a process), while a real thread
        # exits far more cheaply, so this row cannot split clone_thread from exit.
        Row("thread_create_join", _one("thread_create_join"), thread_create_join, n=(5, 25),
            what="clone_thread + exit + join (check only: the engine's exit is a process's)",
            fitted=False),
        Row("exit_to_wait", _one("exit_to_wait"),
            analytic={"cost.exit": 1.0, "cost.wakeup": 1.0, "cost.ctx_switch": 1.0,
                      "cost.switch_mm": 1.0, "cost.cr3_noflush": 1.0, "cost.syscall": 0.5},
            what="written out: exit, the parent's wake-up, the switch to it, half a syscall"),
    ]
    if cpus >= 2:
        out += [
            # A check, not a fit row: most of a cross-CPU hand-off is the idle CPU's
            # wake-up latency (a VM exit and re-entry under a hypervisor), which the
            # engine does not model; fitting it would inflate cost.wakeup.
            Row("pipe_cross", _one("pipe_cross"), pipe_pair(False, True), cpus=2,
                what="pipe ping-pong across two CPUs (check only: idle wake-up latency)",
                fitted=False),
            Row("shootdown_send", (("mprotect_remote", 1.0), ("mprotect_local", -1.0)),
                mprotect(True), minus=mprotect(False), cpus=2, clock="busy0",
                columns=("cost.flush_ipi_send",),
                what="mprotect with a remote thread minus without: 2 x flush_ipi_send"),
            Row("ipi_lost", _one("ipi_lost"), mprotect(True), cpus=2, clock="kernel1",
                columns=("cost.ipi_receive",),
                what="what the remote CPU loses: 2 x (ipi_receive + invlpg)"),
        ]
    for level, size in sizes.items():
        out.append(Row(f"chase_{size // 1024}k", _one(f"chase_{size // 1024}k"), chase(size),
                       n=(2000, 10000), columns=LATENCY_KEYS,
                       what=f"pointer chase over {size // 1024} KiB ({level})"))
    return out
