"""Behaviour identity: every statistic of every point of collect.py's matrix (every
workload and recorded trace x every scheme x PCID on/off x PTI off/on) equals what the
engine of BASE_REVISION produced. The reference is regenerate.py's output from that
revision, not a hand-kept file: rerun the script to rebuild it."""

from __future__ import annotations

import gzip
import json

from tests.core.identity.collect import collect
from tests.core.identity.regenerate import BASE_REVISION, REFERENCE

NEW_STATS = ("system.noise.", "system.live.")
# Stats renamed since the base revision to the one name every host uses (core/root/names.h):
# old leaf -> new leaf.
RENAMED = {"percpu.staleEntriesDropped": "percpu.rootEntriesDropped",
           "checker.violations": "percpu.checkerViolations",
           "kernelPgd.rootWrites": "percpu.kernelSyncs"}


def renamed(name: str) -> str:
    """A base-revision stat under its name today."""
    for old, new in RENAMED.items():
        if name.endswith("." + old):
            return name[:-len(old)] + new
    return name
# Linux 6.15's counters (issue 26, docs/linux-2025.md): 0 under the default machine.linux=6.1.
LINUX_2025_STATS = {"tlbFlush.broadcast", "invlpgb", "tlbsync", "globalAsid.transitions",
                    "percpu.broadcastFix.ipis", "percpu.broadcastFix.remoteDrops",
                    "globalAsid.assigned", "globalAsid.peakInUse", "globalAsid.resets",
                    "percpu.globalRootPagesPeak"}


def is_new(name: str) -> bool:
    """A stat added since the base revision."""
    leaf = name.split(".", 2)[2] if name.startswith("system.cpu") else name.split(".", 1)[1]
    return name.startswith(NEW_STATS) or leaf in LINUX_2025_STATS
# compute and syscall work, jittered or not; tasks and mms alive at the end
COUNTS_WORK = {"system.noise.workCycles", "system.live.tasks", "system.live.mms"}


def test_reference_comes_from_the_base_revision():
    with gzip.open(REFERENCE, "rt") as f:
        data = json.load(f)
    assert data["base_revision"] == BASE_REVISION
    assert data["generated_by"] == "tests/core/identity/regenerate.py"


def test_every_statistic_matches_the_base_revision():
    with gzip.open(REFERENCE, "rt") as f:
        want = {point: {renamed(n): v for n, v in stats.items()}
                for point, stats in json.load(f)["points"].items()}
    got = collect()
    assert sorted(got) == sorted(want), "the matrix changed: rerun regenerate.py"
    diffs = []
    for point, stats in want.items():
        # Stats added since the base revision: only the noise counters (docs/noise.md),
        # which with noise off count nothing but the work the program asked for, the
        # live task and mm counts, and Linux 6.15's counters, 0 under 6.1.
        added = set(got[point]) - set(stats)
        assert all(is_new(n) for n in added), sorted(added)
        assert all(got[point][n] == 0 for n in added if n not in COUNTS_WORK), sorted(added)
        if {n: v for n, v in got[point].items() if n not in added} == stats:
            continue
        names = sorted(set(stats) | set(got[point]) - added)
        bad = [n for n in names if got[point].get(n) != stats.get(n)]
        diffs.append(f"{point}: " + ", ".join(
            f"{n} {stats.get(n)} -> {got[point].get(n)}" for n in bad[:5]))
    assert not diffs, f"{len(diffs)} points differ:\n" + "\n".join(diffs[:20])
