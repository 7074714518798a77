"""Hypothesis strategies that write random op programs (docs/op-program.md).

Each thread only names its own VMAs, so the generator knows which are mapped at each
step; VMAs of different threads and processes share top-level slots, so munmap frees
page tables other CPUs are walking through, which is what stresses the root schemes.
"""

from __future__ import annotations

from hypothesis import strategies as st

SLOT = 1 << 39  # one top-level (PML4) entry spans 512 GiB


@st.composite
def thread_ops(draw, tid: int, ncpus: int, kernel_ops: bool) -> list[str]:
    mapped: dict[str, int] = {}  # name -> pages
    prot: dict[str, str] = {}
    split: set[str] = set()  # VMAs cut by munmap/mprotect: brk would run into the rest
    lines: list[str] = []
    kmaps = kmap_locals = 0
    for _ in range(draw(st.integers(3, 25))):
        choice = draw(st.sampled_from(
            ["mmap", "mmap", "access", "access", "access", "munmap", "mprotect", "yield",
             "migrate", "kernel", "sleep", "brk", "fork"]))
        names = sorted(mapped)
        if choice == "mmap" or not names:
            name = f"t{tid}v{len(lines)}"
            pages = draw(st.integers(1, 6))
            slot = draw(st.integers(1, 4))
            addr = slot * SLOT + tid * (1 << 31) + len(lines) * (1 << 22)
            p = draw(st.sampled_from(["r", "rw", "rw", "rx", "rwx"]))
            lines.append(f"mmap {name} {addr:#x} {pages * 4096} {p}")
            mapped[name], prot[name] = pages, p
        elif choice == "access":
            name = draw(st.sampled_from(names))
            kind = draw(st.sampled_from(["load", "load", "store", "fetch"]))
            count = draw(st.integers(1, 12))
            if draw(st.booleans()):
                lines.append(f"{kind} {name} count={count} random")
            else:
                stride = draw(st.sampled_from([64, 4096, 4096 * 3]))
                lines.append(f"{kind} {name} count={count} stride={stride}")
        elif choice == "munmap":
            name = draw(st.sampled_from(names))
            if mapped[name] > 1 and draw(st.booleans()):
                lines.append(f"munmap {name} 0 4096")  # the name moves to the rest of the VMA
                mapped[name] -= 1
                split.add(name)
            else:
                lines.append(f"munmap {name}")
                del mapped[name]
        elif choice == "mprotect":
            name = draw(st.sampled_from(names))
            p = draw(st.sampled_from(["r", "rw", "rx"]))
            lines.append(f"mprotect {name} 0 4096 {p}")
            mapped[name] = 1  # the name now covers the re-protected page only
            split.add(name)
        elif choice == "brk" and set(names) - split:
            name = draw(st.sampled_from(sorted(set(names) - split)))
            pages = draw(st.integers(1, 6))
            lines.append(f"brk {name} {pages * 4096}")
            mapped[name] = pages
        elif choice == "fork":
            # A short-lived child: copies this mm, execs a fresh image, touches it, exits.
            lines.append("fork child")
        elif choice == "yield":
            lines.append("yield")
        elif choice == "sleep":
            lines.append(f"sleep {draw(st.integers(1000, 200000))}")
        elif choice == "migrate" and ncpus > 1:
            lines.append(f"migrate {draw(st.integers(0, ncpus - 1))}")
        elif choice == "kernel" and kernel_ops:
            what = draw(st.sampled_from(["kmap_local", "kmap", "percpu", "pgd"]))
            if what == "kmap_local":
                n = draw(st.integers(1, 3))
                lines += [f"kmap_local count={n}", f"kcopy {draw(st.integers(64, 8192))}", "yield",
                          f"kunmap_local count={n}"]
                kmap_locals += n
            elif what == "kmap":
                lines += ["kmap", "kcopy 256", "kunmap"]
                kmaps += 1
            elif what == "pgd":
                lines.append("kernel_pgd_add")
            else:
                lines.append(f"percpu_access count={draw(st.integers(1, 64))}")
    return lines


@st.composite
def programs(draw, kernel_ops: bool = True) -> tuple[str, int]:
    """Returns (program text, ncpus)."""
    ncpus = draw(st.integers(1, 4))
    nprocs = draw(st.integers(1, 3))
    out = ["percpu-ops 1"]
    tid = 0
    bodies = []
    for p in range(nprocs):
        out.append(f"mm m{p}")
        for _ in range(draw(st.integers(1, 3))):
            cpus = draw(st.sampled_from(["all", str(draw(st.integers(0, ncpus - 1)))]))
            out.append(f"task t{tid} mm=m{p} cpus={cpus}")
            bodies.append((tid, draw(thread_ops(tid, ncpus, kernel_ops))))
            tid += 1
    out += ["mm img", "  vma code 0x400000 16K rx", "  vma data 0x600000 32K rw",
            "task child mm=fork start=no"]
    bodies.append(("child", ["exec img",
                             "store data count=8 stride=4096", "fetch code count=4", "exit"]))
    if ncpus > 1 and draw(st.booleans()):
        # Hotplug while tasks hold kmap_local mappings: offline waits for them.
        victim = draw(st.integers(1, ncpus - 1))
        out.append("task hp mm=kernel cpus=0")
        bodies.append(("hp", [f"sleep {draw(st.integers(0, 50000))}", f"cpu_offline {victim}",
                              f"sleep {draw(st.integers(0, 50000))}", f"cpu_online {victim}"]))
    if draw(st.booleans()):
        out.append("task kw mm=kernel")
        bodies.append(("kw", ["syscall 500", "yield", "percpu_access count=4", "sleep 5000"]))
    for t, lines in bodies:
        out.append(f"program t{t}" if isinstance(t, int) else f"program {t}")
        out += [f"  {line}" for line in lines]
    return "\n".join(out) + "\n", ncpus
