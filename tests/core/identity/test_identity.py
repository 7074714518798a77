"""Behaviour identity: every statistic of every point of collect.py's matrix (every
workload and recorded trace x every scheme x PCID on/off x PTI off/on) equals what the
pre-split engine produced. The reference is regenerate.py's output from BASE_REVISION,
not a hand-kept file: rerun the script to rebuild it from that revision."""

from __future__ import annotations

import gzip
import json

from tests.core.identity.collect import collect
from tests.core.identity.regenerate import BASE_REVISION, REFERENCE


def test_reference_comes_from_the_base_revision():
    with gzip.open(REFERENCE, "rt") as f:
        data = json.load(f)
    assert data["base_revision"] == BASE_REVISION
    assert data["generated_by"] == "tests/core/identity/regenerate.py"


def test_every_statistic_matches_the_pre_split_engine():
    with gzip.open(REFERENCE, "rt") as f:
        want = json.load(f)["points"]
    got = collect()
    assert sorted(got) == sorted(want), "the matrix changed: rerun regenerate.py"
    diffs = []
    for point, stats in want.items():
        if got[point] == stats:
            continue
        names = sorted(set(stats) | set(got[point]))
        bad = [n for n in names if got[point].get(n) != stats.get(n)]
        diffs.append(f"{point}: " + ", ".join(
            f"{n} {stats.get(n)} -> {got[point].get(n)}" for n in bad[:5]))
    assert not diffs, f"{len(diffs)} points differ:\n" + "\n".join(diffs[:20])
