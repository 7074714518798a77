"""cost.lazy_fault and cost.root_alloc measured on the percpu kernel: its calib-roots
lines (its own counts and, with percpu_roots=time, its own cycles) and calib_fault
--bench lazy's figures, against a stock kernel's lazy_touch (--baseline)."""

import subprocess
import sys

import pytest

from percpu.calibrate.calibrate import root_costs
from percpu.calibrate.kernel_roots import parse_kernel_roots
from percpu.params import load_toml

VALUES = {"cost.pte_write": 5.0, "cache.l1d.latency": 4.0}
ROOTS = {"rootAllocs::total": 100, "lazyFaults": 400, "timing": 1,
         "rootMakeCycles": 100 * 3000, "lazyFaultFixupCycles": 400 * 250}
CYC = {"lazy_touch": (2500.0, 0.01), "tlb_miss_touch": (600.0, 0.01)}


def by_key(entries):
    return {e.key: e for e in entries}


def test_against_the_stock_kernels_touch_the_difference_is_the_fault():
    got = by_key(root_costs(CYC, VALUES, ROOTS, {"lazy_touch": 900.0}, 1.0, 1200.0))
    lazy = got["cost.lazy_fault"]
    assert lazy.how == "measured" and lazy.value == 2500 - 900 - 5 - 4
    assert "the kernel's own fix-up is 250" in lazy.note
    alloc = got["cost.root_alloc"]
    assert alloc.how == "measured" and alloc.value == 3000 - 1200
    assert "over 100 roots" in alloc.note


def test_a_fresh_slots_touch_is_preferred_to_the_remade_roots():
    """slot_touch (a demand fault, then the lazy fault) needs no ASID taken from the mm:
    where both kernels have it, it is the measurement."""
    cyc = {**CYC, "slot_touch": (9000.0, 0.02)}
    lazy = by_key(root_costs(cyc, VALUES, ROOTS, {"lazy_touch": 900.0, "slot_touch": 8200.0},
                             1.0, 1200.0))["cost.lazy_fault"]
    assert lazy.value == 9000 - 8200 - 5 - 4 and lazy.note.startswith(
        "one lazy top-level fault of the percpu kernel: slot_touch")


def test_without_a_baseline_the_second_pass_bounds_it_from_above():
    lazy = by_key(root_costs(CYC, VALUES, ROOTS, None, 1.0, 1200.0))["cost.lazy_fault"]
    assert lazy.value == 2500 - 600 - 5 - 4 and "upper bound" in lazy.note


def test_tsc_cycles_are_converted_to_core_cycles():
    alloc = by_key(root_costs(CYC, VALUES, ROOTS, {"lazy_touch": 900.0}, 0.5, 1000.0))["cost.root_alloc"]
    assert alloc.value == 3000 * 0.5 - 1000


def test_a_copy_dearer_than_the_whole_root_floors_at_zero_and_says_so():
    alloc = by_key(root_costs(CYC, VALUES, ROOTS, {"lazy_touch": 900.0}, 1.0, 5000.0))["cost.root_alloc"]
    assert alloc.value == 0 and "floored at 0" in alloc.note


@pytest.mark.parametrize("roots", [{}, {**ROOTS, "lazyFaults": 0, "timing": 0}])
def test_no_roots_or_no_timing_measures_nothing(roots):
    got = by_key(root_costs(CYC, VALUES, roots, {"lazy_touch": 900.0}, 1.0, 1200.0))
    assert "cost.root_alloc" not in got
    assert ("cost.lazy_fault" in got) == bool(roots.get("lazyFaults"))


def test_calib_roots_lines_are_read_from_a_console():
    text = "noise\ncalib-roots lazyFaults 12\ncalib-roots timing 1\ncalib-roots bad x\n"
    assert parse_kernel_roots(text) == {"lazyFaults": 12, "timing": 1}


def percpu(*args, cwd):
    return subprocess.run([sys.executable, "-m", "percpu", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def test_a_percpu_kernels_console_gives_measured_costs_in_the_profile(tmp_path):
    lines = ["calib-info cpus 2", "calib-info pti off", "calib core_mhz 3000 MHz",
             "calib tsc_mhz 3000 MHz"]
    for _ in range(3):
        lines += ["calib lazy_touch 1000 ns", "calib tlb_miss_touch 200 ns",
                  "calib syscall 100 ns"]
    lines += [f"calib-roots {k} {v}" for k, v in ROOTS.items()]
    (tmp_path / "c.log").write_text("\n".join(lines) + "\n")
    out = percpu("calibrate", "--from-samples", "c.log", "--out", "p.toml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    values = load_toml(tmp_path / "p.toml")
    text = (tmp_path / "p.toml").read_text()
    # 800 ns at 3 GHz, less the entry's write and read (pte_write 5, L1D latency 4).
    assert values["cost.lazy_fault"] == 2400 - 5 - 4
    assert "lazy_fault = 2391  # measured" in text
    assert "cost.root_alloc" in values and "root_alloc = " in text
    assert "the percpu kernel made 100 roots and took 400 lazy faults" in text


def console(path, touch_ns, roots=None, syscall_ns=100, pti="off"):
    lines = ["calib-info cpus 2", f"calib-info pti {pti}", "calib-info pcid yes",
             "calib core_mhz 3000 MHz", "calib tsc_mhz 3000 MHz"]
    for _ in range(3):
        lines += [f"calib lazy_touch {touch_ns} ns", "calib tlb_miss_touch 200 ns",
                  f"calib syscall {syscall_ns} ns"]
    lines += [f"calib-roots {k} {v}" for k, v in (roots or {}).items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_with_a_baseline_the_profile_is_the_stock_machines_plus_the_roots(tmp_path):
    """--baseline: the costs are fitted on the stock kernel's samples (what the engine
    adds roots to), the lazy fault is lazy_touch less the stock kernel's."""
    from percpu.calibrate.calibrate import run_calibration

    console(tmp_path / "stock.console.log", 300, syscall_ns=100)
    (tmp_path / "stock.toml").write_text("# stand-in\n")
    mine = console(tmp_path / "percpu.console.log", 1000, ROOTS, syscall_ns=150)
    cal = run_calibration(samples_file=mine, clock_mhz=3000.0, baseline=tmp_path / "stock.toml")
    got = cal.overrides()
    assert got["cost.lazy_fault"] == (1000 - 300) * 3 - 5 - 4
    lazy = next(e for e in cal.entries if e.key == "cost.lazy_fault")
    assert "lazy_touch on the percpu kernel (3,000 cycles) less the stock kernel's (900" \
        in lazy.note
    assert cal.measurements["syscall"].value == 100  # the stock kernel's
    assert any("costs fitted on the baseline kernel's samples" in n for n in cal.notes)


@pytest.mark.parametrize("setup, message", [
    ("none", "not found"),
    ("no-console", "has no stock.console.log beside it"),
    ("pti", "is another machine (pti on there, off here)"),
])
def test_a_baseline_that_cannot_serve_is_refused(tmp_path, setup, message):
    from percpu.calibrate.calibrate import run_calibration
    from percpu.errors import UsageError

    if setup != "none":
        (tmp_path / "stock.toml").write_text("# stand-in\n")
    if setup == "pti":
        console(tmp_path / "stock.console.log", 300, pti="on")
    mine = console(tmp_path / "percpu.console.log", 1000, ROOTS)
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_calibration(samples_file=mine, clock_mhz=3000.0, baseline=tmp_path / "stock.toml")


def test_the_guest_script_gives_the_lazy_bench_its_own_samples():
    """A lazy fault on gem5 is as small as the walk's noise: the bench runs 15 samples of
    128 slots even when the calibration asks for 3 samples per bench."""
    from percpu.calibrate.guest_script import render

    script = render(cpus=2, samples=3)
    lazy = next(ln for ln in script.splitlines() if "--bench lazy" in ln)
    assert "--slots 128" in lazy and "--samples 15" in lazy
    syscall = next(ln for ln in script.splitlines() if "calib_syscall" in ln)
    assert "--samples 3" in syscall
