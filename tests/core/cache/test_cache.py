"""core/cache/'s set-associative LRU cache against a reference: each set an LRU list of
line numbers, the set being the line modulo the set count. Power-of-two set counts take
the mask path; others (a sliced LLC as sysfs reports it, 105 MiB in 15 ways) the modulo
path, and both must behave as the reference does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[3]
LINE = 64


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    exe = tmp_path_factory.mktemp("cache") / "cache_driver"
    build = subprocess.run(
        ["nice", "-n", "10", cxx, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror",
         f"-I{REPO / 'core'}", str(REPO / "core/cache/cache.cc"),
         str(Path(__file__).with_name("cache_driver.cc")), "-o", str(exe)],
        capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr[-3000:]
    return exe


def run(driver, cases):
    text = "".join(f"{size} {ways} {' '.join(map(str, lines))}\n" for size, ways, lines in cases)
    out = subprocess.run([str(driver)], input=text, capture_output=True, text=True,
                         check=True, timeout=60)
    return out.stdout.splitlines()


def reference(size: int, ways: int, lines: list[int]) -> str:
    sets = size // LINE // ways
    lru: dict[int, list[int]] = {}
    out = []
    for line in lines:
        s = lru.setdefault(line % sets, [])
        if line in s:
            s.remove(line)
            out.append("H")
        else:
            if len(s) == ways:
                s.pop(0)
            out.append("M")
        s.append(line)
    return "".join(out)


GEOMETRY = st.tuples(st.integers(1, 12), st.integers(1, 16)).map(
    lambda sw: (sw[0] * sw[1] * LINE, sw[1]))  # (size in bytes, ways): any set count


@settings(max_examples=60, deadline=None)
@given(cases=st.lists(st.tuples(GEOMETRY, st.lists(st.integers(0, 200), max_size=300)),
                      min_size=1, max_size=20))
def test_hits_and_misses_match_the_reference_lru(driver, cases):
    flat = [(size, ways, lines) for (size, ways), lines in cases]
    assert run(driver, flat) == [reference(*c) for c in flat]


def test_a_sliced_llc_geometry_runs_and_keeps_its_capacity(driver):
    # 107,520 KiB in 15 ways (a Xeon's LLC in sysfs): 114,688 sets, not a power of two.
    size, ways = 107520 * 1024, 15
    sets = size // LINE // ways
    # `ways` lines per set fit; one more in set 0 evicts its least recently used
    # (line `sets`, since line 0 was just touched again).
    fill = [s + k * sets for k in range(ways) for s in (0, 1, sets - 1)]
    again = [0, 1, sets - 1, ways * sets, 0, sets]
    (out,) = run(driver, [(size, ways, fill + again)])
    assert out == "M" * len(fill) + "HHH" + "M" + "H" + "M"


@pytest.mark.parametrize("size,ways", [(100, 1), (64 * 10, 3), (0, 4), (64 * 8, 0)])
def test_a_geometry_that_is_not_whole_sets_is_refused(driver, size, ways):
    assert run(driver, [(size, ways, [1])]) == [
        "error: cache geometry: size must be a whole number of 64 B x ways sets"]
