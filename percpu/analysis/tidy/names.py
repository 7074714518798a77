"""Stat names of either host (engine, gem5 stdlib or legacy configs) split into CPU, CPU set,
component, stat and bucket."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# ---------------------------------------------------------------------------
# Names


@dataclass(frozen=True)
class NameParts:
    """A stat name split into the tidy columns; pattern has the CPU index as '*'."""

    cpu: int | None
    cpu_set: str
    component: str
    stat: str
    bucket: str
    pattern: str


# Each rule: a regex matched at the start of the name (before "::") whose
# groups "set" and "idx" locate the CPU. Order matters: first match wins.
_STDLIB_CORE = re.compile(r"board\.processor\.(?P<set>[A-Za-z_]+?)(?P<idx>\d*)\.core(?=\.)")
_LEGACY_CPU = re.compile(r"(?:system|board)\.(?P<set>(?:[A-Za-z]+_)*cpus?)(?P<idx>\d*)(?=\.)")
# gem5 v24 PrivateL1PrivateL2CacheHierarchy names its per-core caches
# l1d-cache-N / l1i-cache-N / l2-cache-N; older hierarchies use lists
# (l1dcaches0, iptw_caches0, l2buses0). Unindexed names are shared or ambiguous.
_STDLIB_CACHE = re.compile(
    r"board\.cache_hierarchy\.(?P<set>l1d-cache-|l1i-cache-|l2-cache-|l1dcaches|l1icaches|"
    r"l2caches|iptw_caches|dptw_caches|l2buses|mmucaches)(?P<idx>\d+)(?=\.)"
)
_RUBY_L1 = re.compile(
    r"(?:board\.cache_hierarchy\.ruby_system\.(?P<set>l1_controllers)"
    r"|system\.ruby\.(?P<set2>l1_cntrl))(?P<idx>\d+)(?=\.)"
)
_CACHE_COMPONENT = {
    "l1d-cache-": "l1d", "l1i-cache-": "l1i", "l2-cache-": "l2", "l1dcaches": "l1d",
    "l1icaches": "l1i", "l2caches": "l2", "iptw_caches": "iptw", "dptw_caches": "dptw",
    "l2buses": "l2bus", "mmucaches": "mmu_cache",
}  # fmt: skip
_ROOTS = ("system", "board")


# Crossbar stats name a port path inside the stat ("pktCount_board.cache_hierarchy.
# l1d-cache-0.mem_side_port"): the stat starts at the segment that embeds a root.
_EMBEDDED_PATH = re.compile(r"\.(?=pkt(?:Count|Size)_(?:board|system)\.)")


@lru_cache(maxsize=1 << 16)
def normalise_name(name: str) -> NameParts:
    """Split a stat name into cpu, cpu_set, component, stat and bucket.

    Understands the engine's and legacy configs' system.cpuN / system.cpu
    (one CPU, no index) / system.switch_cpusN, the stdlib's
    board.processor.coresN.core / cores.core / startN.core / switchN.core,
    stdlib per-core caches (board.cache_hierarchy.l1d-cache-N, l1dcachesN, ...)
    and Ruby L1 controllers. Anything else is system-wide: cpu None and the
    component is the path below the root object. Never raises.
    """
    base, _, bucket = name.partition("::")
    embedded = _EMBEDDED_PATH.search(base)
    if embedded is not None:
        prefix, stat = base[: embedded.start()], base[embedded.end() :]
    else:
        prefix, _, stat = base.rpartition(".")
    dotted = prefix + "."
    for rx in (_STDLIB_CORE, _LEGACY_CPU, _STDLIB_CACHE, _RUBY_L1):
        m = rx.match(dotted)
        if m is None:
            continue
        idx = m["idx"]
        cpu = int(idx) if idx else 0
        pattern = name[: m.start("idx")] + "*" + name[m.end("idx") :] if idx else name
        component = prefix[m.end() + 1 :]
        if rx is _STDLIB_CACHE:
            component = _join(_CACHE_COMPONENT[m["set"]], component)
            return NameParts(cpu, "", component, stat, bucket, pattern)
        if rx is _RUBY_L1:
            component = _join(m["set"] or m["set2"], component)
            return NameParts(cpu, "", component, stat, bucket, pattern)
        return NameParts(cpu, m["set"], component, stat, bucket, pattern)
    parts = prefix.split(".") if prefix else []
    if parts and parts[0] in _ROOTS:
        parts = parts[1:]
    return NameParts(None, "", ".".join(parts), stat, bucket, name)


def _join(head: str, tail: str) -> str:
    return f"{head}.{tail}" if tail else head
