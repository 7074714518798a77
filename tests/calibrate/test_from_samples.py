"""`percpu calibrate --from-samples`: samples captured elsewhere (the gem5 guest's
console) give a profile; from timings the engine itself generated, it recovers the
costs that generated them."""

import subprocess
import sys

import pytest

from percpu.calibrate import fit as fitting
from percpu.calibrate.programs import FIT_KEYS, rows
from percpu.params import load_toml

MHZ = 3000.0
SIZES = {"L1D": 16 * 1024, "L2": 128 * 1024, "LLC": 2 << 20, "DRAM": 32 << 20}
INFO = ["calib-info cpu Simulated X86 (gem5)", "calib-info cpus 2",
        "calib-info kernel Linux 6.1.0", "calib-info pti off", "calib-info hypervisor none",
        "calib-info cache L1D 32 8", "calib-info cache L2 256 4", "calib-info cache LLC 8192 16"]


def percpu(*args, cwd):
    return subprocess.run([sys.executable, "-m", "percpu", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def truth():
    base = fitting.engine_values({"cache.l1d.size_kib": 32, "cache.l1d.ways": 8,
                                  "cache.l2.size_kib": 256, "cache.l2.ways": 4}, 2)
    base["machine.freq_mhz"] = MHZ
    values = dict(base)
    for i, key in enumerate(FIT_KEYS):
        values[key] = float(round(base[key] * (1.6 if i % 2 else 0.7)))
    return values


def test_samples_from_the_engine_give_back_its_costs(tmp_path, truth):
    cycles = fitting.synthetic_measurements(rows(SIZES, 2), truth)
    lines = ["boot noise the parser skips", *INFO]
    lines += [f"calib core_mhz {MHZ} MHz"] * 3
    for name, c in cycles.items():
        for wobble in (0.999, 1.0, 1.001):
            lines.append(f"calib {name} {c / MHZ * 1000 * wobble:.4f} ns")
    (tmp_path / "console.log").write_text("\n".join(lines) + "\n")
    out = percpu("calibrate", "--from-samples", "console.log", "--out", "guest.toml",
                 cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    values = load_toml(tmp_path / "guest.toml")
    for key in FIT_KEYS:
        assert values[key] == pytest.approx(truth[key], rel=0.05, abs=2), key
    assert values["machine.freq_mhz"] == MHZ
    assert values["cache.l2.size_kib"] == 256  # from the calib-info lines
    text = (tmp_path / "guest.toml").read_text()
    assert 'kernel = "Linux 6.1.0"' in text and "virtualised = false" in text


def test_samples_without_a_clock_need_clock_mhz(tmp_path):
    (tmp_path / "s.log").write_text("calib syscall 50 ns\n")
    out = percpu("calibrate", "--from-samples", "s.log", "--out", "p.toml", cwd=tmp_path)
    assert out.returncode == 2 and "--clock-mhz" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = percpu("calibrate", "--from-samples", "s.log", "--clock-mhz", "2000", "--out", "p.toml",
                 cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert load_toml(tmp_path / "p.toml")["cost.syscall"] == 100


@pytest.mark.parametrize("content,args", [
    (None, []),
    ("no samples here\n", []),
    ("calib syscall 50 ns\n", ["--quick"]),
])
def test_bad_samples_are_one_line_and_exit_2(tmp_path, content, args):
    if content is not None:
        (tmp_path / "s.log").write_text(content)
    out = percpu("calibrate", "--from-samples", "s.log", *args, "--out", "p.toml", cwd=tmp_path)
    assert out.returncode == 2, out
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "p.toml").exists()


def test_the_guest_script_runs_here_and_its_output_fits(tmp_path, built):
    """The script the gem5 guest runs, pointed at programs built here: its console
    output is what --from-samples reads."""
    from percpu.calibrate.guest_script import render

    script = render(cpus=2, l1d_kib=32, l2_kib=256, llc_kib=2048, scale=50, samples=2,
                    bindir=str(built.directory))
    (tmp_path / "calib.sh").write_text(script)
    done = subprocess.run(["sh", str(tmp_path / "calib.sh")], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0 and "failed" not in done.stdout, done.stdout + done.stderr
    (tmp_path / "console.log").write_text(done.stdout)
    out = percpu("calibrate", "--from-samples", "console.log", "--out", "g.toml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    profile = load_toml(tmp_path / "g.toml")
    assert "cost.syscall" in profile
    # Outside gem5 the m5 clock does not answer: the samples are timed (and said to be
    # timed) with CLOCK_MONOTONIC, and every benchmark still ran.
    assert "calib-info timer CLOCK_MONOTONIC" in done.stdout
    assert 'timer = "CLOCK_MONOTONIC"' in (tmp_path / "g.toml").read_text()


def test_the_guest_script_times_with_gems_clock_when_it_answers() -> None:
    """The script probes calib_clock --m5-clock once and passes the flag to every benchmark
    then; the profile records which timer was used."""
    from percpu.calibrate.guest_script import render
    from percpu.calibrate.machine import machine_from_info

    script = render(cpus=2, bindir="/sbin")
    assert "/sbin/calib_clock --m5-clock --iters 1 --samples 1" in script
    bench_lines = [ln for ln in script.splitlines() if ln.startswith("/sbin/calib_")]
    assert bench_lines and all(" $m5clock || " in ln for ln in bench_lines)
    m = machine_from_info(["calib-info timer m5 rpns (simulated ns)"], "console.log")
    assert m.timer == "m5 rpns (simulated ns)"


@pytest.mark.parametrize(("flags", "meltdown", "said"), [
    ("fpu pcid pti", "Not affected", "on"),  # pti=on forced on gem5's unaffected CPU
    ("fpu pcid", "Mitigation: PTI", "on"),
    ("fpu pcid", "Not affected", "off")])
def test_the_guest_script_says_pti_from_the_cpu_flag(tmp_path, flags, meltdown, said) -> None:
    """PTI forced on (pti=on) on a CPU without the Meltdown bug maps PTI while the
    vulnerability file reads "Not affected": the script reads the pti CPU flag first."""
    import subprocess

    from percpu.calibrate.guest_script import render

    lines = render(cpus=2).splitlines()
    start = next(i for i, ln in enumerate(lines) if "' pti' /proc/cpuinfo" in ln)
    block = "\n".join(lines[start:start + 4])
    assert lines[start + 3] == "fi"
    (tmp_path / "cpuinfo").write_text(f"flags\t\t: {flags}\n")
    (tmp_path / "meltdown").write_text(meltdown + "\n")
    block = block.replace("/proc/cpuinfo", str(tmp_path / "cpuinfo")).replace(
        "/sys/devices/system/cpu/vulnerabilities/meltdown", str(tmp_path / "meltdown"))
    out = subprocess.run(["sh", "-c", block], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"calib-info pti {said}"


def test_a_negative_allocation_proxy_is_floored_and_said() -> None:
    """gem5's guest clears a page in user space (rep stosb, byte by byte) slower than its
    kernel does: fault_write - fault_read - zero_page is negative. The proxy is 0 and its
    line says why, instead of a silent 0."""
    from percpu.calibrate.calibrate import _proxies
    from percpu.calibrate.machine import Machine

    m = Machine("x", 2, "k", "off", True, "", "never")
    values = {"cost.pte_write": 10.0, "cache.l1d.latency": 4.0, "cost.cr3_noflush": 30.0}
    cyc = {"fault_write": (3300.0, 0.01), "fault_read": (1630.0, 0.01),
           "zero_page": (4740.0, 0.02)}
    alloc = next(e for e in _proxies(cyc, values, m) if e.key == "cost.root_alloc")
    assert alloc.value == 0 and alloc.how == "proxy"
    assert "floored at 0: zero_page (4,740 cycles) exceeds fault_write - fault_read (1,670)" \
        in alloc.note
    cyc["zero_page"] = (1000.0, 0.02)
    alloc = next(e for e in _proxies(cyc, values, m) if e.key == "cost.root_alloc")
    assert alloc.value == 670 and "floored" not in alloc.note


def test_a_profile_is_readable_by_others(tmp_path) -> None:
    """The profile gets the umask's mode, not mkstemp's 0600 (a shared cluster's colleagues
    read it)."""
    import os
    import stat

    (tmp_path / "s.log").write_text("calib syscall 100 ns\ncalib syscall 101 ns\n")
    old = os.umask(0o022)
    try:
        out = percpu("calibrate", "--from-samples", "s.log", "--clock-mhz", "3000",
                     "--out", "p.toml", cwd=tmp_path)
    finally:
        os.umask(old)
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE((tmp_path / "p.toml").stat().st_mode) == 0o644


def test_a_sliced_llc_from_sysfs_is_fitted_and_runs(tmp_path):
    # CI once ran on a Xeon whose sysfs LLC is 107,520 KiB in 15 ways (114,688 sets, not
    # a power of two): the engine refused the geometry, the fit was silently skipped and
    # the profile lacked cost.syscall. Now the profile has it and a run takes the profile.
    info = [*INFO[:-1], "calib-info cache LLC 107520 15", "calib core_mhz 2400 MHz",
            "calib syscall 50 ns"]
    (tmp_path / "s.log").write_text("\n".join(info) + "\n")
    out = percpu("calibrate", "--from-samples", "s.log", "--out", "p.toml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    values = load_toml(tmp_path / "p.toml")
    assert values["cache.llc.size_kib"] == 107520 and values["cache.llc.ways"] == 15
    assert values["cost.syscall"] == 120  # 50 ns at 2,400 MHz
    run = percpu("run", "-p", "rounds=3", "-q", "--no-report", "--config", "p.toml",
                 "-o", "m5", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
