"""The percpu kernel's own counts in a gem5 run's stats.txt.

A run of the percpu kernel (src_patches/linux-6.1/, docs/kernel.md) uses the plugin's
`shared` scheme: gem5 walks whatever the kernel loads, and the plugin's root stats stay
0. What the kernel counted over the region of interest (its /proc/percpu_roots, printed
by the guest program as `percpu-roots:` lines) goes into the region of interest's dump
under the names the engine and the plugin use (docs/names.md), system-wide because the
kernel prints totals: `board.percpu.<name>`, which the analysis reads as
`system.percpu.<name>` and sums with the per-CPU zeros. So `percpu report` and the
comparison read the kernel column as they read the others. The kernel's own timing of
its paths (percpu_roots=time) and its kmap_local counts (kmap.*) go under
`board.percpu.kernel.<name>`.
"""

from __future__ import annotations

from pathlib import Path

from percpu.analysis.stats_txt import BEGIN_BANNER, END_BANNER
from percpu.atomic import write_atomic
from percpu.params import core

KERNEL_ONLY_PREFIX = "board.percpu.kernel."
SHARED_PREFIX = "board.percpu."
# Lines of /proc/percpu_roots that are switches, not counts.
NOT_COUNTS = {"enabled"}


def shared_names() -> set[str]:
    """The names the kernel shares with the models (core/root/names.h)."""
    c = core()
    names = set(c.ROOT_STAT_NAMES) - {"rootAllocs"}
    return names | {f"rootAllocs::{x}" for x in (*c.ROOT_ALLOC_CAUSES, "total")}


def stat_lines(roots: dict[str, int]) -> dict[str, str]:
    """gem5 stats.txt lines for the kernel's counts, by full stat name."""
    shared = shared_names()
    out = {}
    for name, value in roots.items():
        if name in NOT_COUNTS:
            continue
        full = (SHARED_PREFIX if name in shared else KERNEL_ONLY_PREFIX) + name
        what = ("the percpu kernel's /proc/percpu_roots over the region of interest"
                if name in shared else "the percpu kernel's kmap_local counts"
                if name.startswith("kmap.") else
                "the percpu kernel's own timing (percpu_roots=time)")
        out[full] = f"{full:<60} {value:>20}   # {what} (Count)"
    return out


def merge_kernel_roots(stats: Path, roots: dict[str, int]) -> int:
    """Write the kernel's counts into the first complete dump of stats (the region of
    interest): a line the plugin already printed under that name gets the kernel's value,
    the others are added before the dump's end. Returns how many lines were written."""
    if not roots:
        return 0
    lines = stats.read_text().splitlines()
    try:
        begin = lines.index(BEGIN_BANNER)
        end = lines.index(END_BANNER, begin)
    except ValueError:
        raise ValueError(f"{stats}: no complete statistics dump to add the kernel's "
                         "counts to") from None
    new = stat_lines(roots)
    written = len(new)
    for i in range(begin + 1, end):
        name = lines[i].split(maxsplit=1)[0] if lines[i].strip() else ""
        if name in new:
            lines[i] = new.pop(name)
    lines[end:end] = list(new.values())
    write_atomic(stats, "\n".join(lines) + "\n")
    return written
