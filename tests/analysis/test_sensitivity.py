"""`percpu sensitivity`: each estimated parameter varied around its value at a point."""

import subprocess
import sys

import pytest

from percpu.analysis import sensitivity as sens
from percpu.errors import UsageError

# Past the 6-ASID cliff on 2 CPUs, short: every switch allocates a root.
CLIFF = sens.Point("ctxmix p7 2 CPUs", params={"procs_per_cpu": "7", "rounds": "20"},
                   overrides={"machine.cpus": 2.0})


@pytest.fixture(scope="module")
def cliff():
    return sens.analyse(CLIFF, ["cost.lazy_fault", "cost.root_alloc", "cost.kmap"],
                        (0.5, 1.5, 2.0))


def test_a_cost_the_proposal_pays_moves_the_overhead_monotonically(cliff):
    lazy = next(s for s in cliff.swings if s.key == "cost.lazy_fault")
    assert lazy.values == [350, 1050, 1400]
    assert lazy.overheads[0] < cliff.baseline < lazy.overheads[1] < lazy.overheads[2]
    assert lazy.swing == pytest.approx(lazy.overheads[2] - lazy.overheads[0])
    assert cliff.ranked()[0].key == "cost.lazy_fault"


def test_a_cost_the_workload_never_pays_does_not_matter(cliff):
    kmap = next(s for s in cliff.swings if s.key == "cost.kmap")
    assert kmap.swing == 0.0
    assert "| `cost.kmap` | 150 |" in sens.markdown([cliff])
    assert sens.markdown([cliff]).count("| no |") == 1


def test_baseline_is_the_overhead_of_a_plain_run(cliff):
    assert cliff.baseline == pytest.approx(sens.overhead(CLIFF, {}))
    assert cliff.baseline > 1.0  # past the cliff percpu pays for its roots


def test_integer_parameters_round_and_never_land_on_the_baseline():
    assert sens.scaled("psc.top.entries", 4, 0.5) == 2
    assert sens.scaled("cost.gs_prefix", 1, 2.0) == 2
    assert sens.scaled("cost.pte_write", 5, 1.1) == 6  # 5.5 rounds to 6
    assert sens.scaled("cost.pte_write", 5, 0.95) == 4  # 4.75 rounds back onto 5: moved
    assert "cost.lazy_fault" in sens.estimated_keys() and "cost.invlpg" not in sens.estimated_keys()


@pytest.mark.parametrize("text", ["nosuch.key", "machine.pcid", ""])
def test_bad_keys_are_refused(text):
    with pytest.raises(UsageError):
        sens.choose_keys(text)


def percpu(*args, cwd):
    return subprocess.run([sys.executable, "-m", "percpu", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def test_command_writes_table_csv_and_tornado_plot(tmp_path):
    out = percpu("sensitivity", "-p", "procs_per_cpu=7", "-p", "rounds=10", "--cpus", "2",
                 "--keys", "cost.lazy_fault,cost.kmap", "--out", "s", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    md = (tmp_path / "s" / "sensitivity.md").read_text()
    assert "cost.lazy_fault" in md and "Sensitive to: cost.lazy_fault." in md
    png = next((tmp_path / "s" / "plots").glob("*.png")).read_bytes()
    assert png.startswith(b"\x89PNG")
    assert "<img" in (tmp_path / "s" / "sensitivity.html").read_text()
    rows = (tmp_path / "s" / "sensitivity.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2  # header, 2 keys x 2 factors


@pytest.mark.parametrize("args", [
    ["--keys", "nosuch"],
    ["--factors", "1"],
    ["--factors", "x"],
    ["--preset", "readme", "-p", "procs_per_cpu=3"],
    ["--format", "pdf"],
    ["-w", "nosuch"],
    ["-p", "procs_per_cpu=0"],
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args):
    out = percpu("sensitivity", *args, "--out", "s", cwd=tmp_path)
    assert out.returncode == 2, out
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "s").exists()


def test_several_points_get_a_summary_row_per_parameter(cliff):
    few = sens.Point("ctxmix p2 2 CPUs", params={"procs_per_cpu": "2", "rounds": "20"},
                     overrides={"machine.cpus": 2.0})
    low = sens.analyse(few, ["cost.lazy_fault"], (0.5, 2.0))
    md = sens.markdown([low, cliff])
    assert "## Summary" in md
    row = next(line for line in md.splitlines() if line.startswith("| `cost.lazy_fault`"))
    assert row.count("..") == 2  # a range at each point
