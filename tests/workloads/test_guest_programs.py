"""Guest microbenchmarks (workloads/guest/): build them with make and run each natively with
small parameters, taken from the workload's rendered gem5.sh so that the command line the
gem5 guest will run is the one tested. Also: the m5op helper does nothing harmful outside
gem5, and bad options are rejected with exit code 2.

Native runs never touch the host: m5 ops go to a device path that cannot work
(PERCPU_M5OP_DEV), and hotplug writes to a fake sysfs directory (--sysfs)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from wlrender import (
    GUEST,
    GUEST_BUILD,
    defaults,
    guest_command,
    render,
)

from percpu.workloads import find_workload

PROGRAMS = ["ctxmix", "pingpong", "forkexec", "threads_munmap", "kmap_io", "server", "hotplug"]
TIMEOUT = 60
# Native runs use at most the CPUs this machine has (pinning to absent CPUs only warns).
CPUS = max(1, min(2, os.cpu_count() or 1))

SMALL: dict[str, dict[str, Any]] = {
    "ctxmix": {"procs_per_cpu": 3, "rounds": 20, "pages": 4, "work_cycles": 1000},
    "pingpong": {"pairs": 2, "iterations": 200, "pages": 2},
    "forkexec": {"forkers_per_cpu": 1, "forks": 5, "pages": 8},
    "threads-munmap": {"threads": 3, "iterations": 20, "map_pages": 4},
    "kmap-io": {"procs_per_cpu": 1, "iterations": 5, "io_kib": 16},
    "server": {"workers": 3, "requests": 20, "pages": 2, "work_cycles": 1000},
    "hotplug": {"holders": 2, "cycles": 2, "sleep_us": 1000, "offline_us": 500},
}
# Further variants: the other side of each workload's bools.
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("ctxmix", {"pinned": False}),
    ("pingpong", {"same_cpu": False}),
    ("forkexec", {"exec": False, "pinned": False}),
    ("threads-munmap", {"fresh_slot": False, "pinned": False}),
    ("kmap-io", {"pinned": False, "io_kib": 40}),
    ("server", {"pinned": False, "pages": 0, "work_cycles": 0}),
]


@pytest.fixture(scope="session")
def guest_build() -> Path:
    """Build every guest program once (make -C workloads/guest)."""
    for tool in ("make", "gcc"):
        if shutil.which(tool) is None:
            pytest.fail(
                f"{tool} not found: the guest programs need make and gcc "
                "(Debian: apt-get install build-essential)"
            )
    res = subprocess.run(
        ["make", "-C", str(GUEST), f"-j{os.cpu_count() or 2}"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if res.returncode != 0:
        hint = ""
        if "cannot find -lc" in res.stderr or "-lpthread" in res.stderr:
            hint = " (static libc missing: apt-get install libc6-dev)"
        pytest.fail(f"make -C workloads/guest failed{hint}:\n{res.stdout}\n{res.stderr}")
    for prog in PROGRAMS:
        assert (GUEST_BUILD / prog).is_file(), f"make did not build {prog}"
    return GUEST_BUILD


def summary(stdout: str, prog: str) -> dict[str, str]:
    """key=value facts of the program's one summary line."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith(f"{prog}: ")]
    assert len(lines) == 1, f"expected one summary line from {prog}, got:\n{stdout}"
    return dict(re.findall(r"(\w+)=(\S+)", lines[0]))


def run(argv: list[str], env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = os.environ | {"PERCPU_M5OP_DEV": "/nonexistent/percpu-m5op"} | (env_extra or {})
    return subprocess.run(
        argv, check=False, capture_output=True, text=True, timeout=TIMEOUT, env=env
    )


def guest_argv(build: Path, workload: str, params: dict[str, Any], tmp: Path) -> list[str]:
    """The command line of the rendered gem5.sh, pointed at the native build."""
    script = render(find_workload(workload), "gem5", params, CPUS, style="plain")
    cmd = guest_command(script)
    argv = [str(build / cmd.binary)] + cmd.argv[1:]
    if cmd.binary == "hotplug":
        argv += ["--sysfs", str(fake_sysfs(tmp))]  # never the host's real CPUs
    return argv


def fake_sysfs(tmp: Path) -> Path:
    root = tmp / "sysfs-cpu"
    for cpu in range(CPUS):
        (root / f"cpu{cpu}").mkdir(parents=True, exist_ok=True)
        (root / f"cpu{cpu}" / "online").write_text("1\n")
    return root


def check_facts(workload: str, p: dict[str, Any], f: dict[str, str], tmp: Path) -> None:
    def num(key: str) -> int:
        return int(f[key])

    assert num("cpus") == CPUS
    if "failed" in f:
        assert num("failed") == 0
    if workload == "ctxmix":
        procs = p["procs_per_cpu"] * CPUS
        assert num("procs") == procs
        assert num("turns") == procs * p["rounds"]
        assert num("pinned") == int(p["pinned"])
    elif workload == "pingpong":
        assert num("procs") == 2 * p["pairs"]
        assert num("roundtrips") == p["pairs"] * p["iterations"]
        assert num("same_cpu") == int(p["same_cpu"])
    elif workload == "forkexec":
        forkers = p["forkers_per_cpu"] * CPUS
        assert num("forkers") == forkers
        assert num("total_forks") == forkers * p["forks"]
        assert num("children_failed") == 0
        assert f["exec_target"] == ("self" if p["exec"] else "none")
    elif workload == "threads-munmap":
        maps = p["threads"] * p["iterations"]
        assert num("threads") == p["threads"]
        assert num("maps") == maps
        assert num("slot_hits") == (maps if p["fresh_slot"] else 0)
    elif workload == "kmap-io":
        procs = p["procs_per_cpu"] * CPUS
        io_kib = -(-p["io_kib"] // 4) * 4
        assert num("procs") == procs
        assert num("io_kib") == io_kib
        assert num("copies") == procs * p["iterations"] * 4
        assert num("bytes") == num("copies") * io_kib * 1024
    elif workload == "server":
        assert num("workers") == p["workers"]
        assert num("handled") == p["workers"] * p["requests"]
    elif workload == "hotplug":
        assert num("holders") == p["holders"]
        assert num("mapped_pages") == p["holders"] * p["cycles"] * p["maps"]
        assert num("target_cpu") == CPUS - 1
        if CPUS > 1:
            assert f["hotplug"] == "ok"
            assert num("offlined") == num("onlined") == p["cycles"]
            online = tmp / "sysfs-cpu" / f"cpu{CPUS - 1}" / "online"
            assert online.read_text().strip() == "1", "the CPU must end online"
        else:
            assert f["hotplug"] == "single-cpu"


CASES = [pytest.param(w, {}, id=w) for w in SMALL] + [
    pytest.param(w, v, id=f"{w}-" + "-".join(f"{k}={v[k]}" for k in v)) for w, v in VARIANTS
]


@pytest.mark.parametrize(("workload", "overrides"), CASES)
def test_guest_program_runs(
    guest_build: Path, workload: str, overrides: dict[str, Any], tmp_path: Path
) -> None:
    params = defaults(find_workload(workload)) | SMALL[workload] | overrides
    argv = guest_argv(guest_build, workload, params, tmp_path)
    assert "--roi" in argv
    res = run(argv)
    assert res.returncode == 0, f"{argv}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    prog = Path(argv[0]).name
    check_facts(workload, params, summary(res.stdout, prog), tmp_path)
    # --roi without a usable /dev/mem: exactly one warning line, then on as normal
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("m5op:")]
    assert len(warnings) == 1, res.stderr


@pytest.mark.parametrize("prog", PROGRAMS)
def test_without_roi_m5op_stays_silent(guest_build: Path, prog: str, tmp_path: Path) -> None:
    """Without --roi the helper never touches the device (no warning, exit 0), even when
    the device path exists."""
    dev = tmp_path / "mem"
    dev.write_bytes(b"\0" * 4096)
    workload = {"threads_munmap": "threads-munmap", "kmap_io": "kmap-io"}.get(prog, prog)
    params = defaults(find_workload(workload)) | SMALL[workload]
    argv = [a for a in guest_argv(guest_build, workload, params, tmp_path) if a != "--roi"]
    res = run(argv, {"PERCPU_M5OP_DEV": str(dev)})
    assert res.returncode == 0, res.stderr
    assert "m5op" not in res.stderr
    summary(res.stdout, prog)


def test_m5op_mapping_that_faults_is_survived(guest_build: Path, tmp_path: Path) -> None:
    """A device that maps but is not gem5's (reads fault with SIGBUS): one warning, no crash,
    and the later ops (dumpstats, exit) are no-ops."""
    dev = tmp_path / "mem"
    dev.write_bytes(b"\0" * 4096)  # mmap at offset 0xFFFF0000 succeeds; reading it faults
    res = run(
        [
            str(guest_build / "ctxmix"),
            "--cpus",
            "1",
            "--procs-per-cpu",
            "2",
            "--rounds",
            "3",
            "--roi",
        ],
        {"PERCPU_M5OP_DEV": str(dev)},
    )
    assert res.returncode == 0, res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("m5op:")]
    assert len(warnings) == 1 and "bus error" in warnings[0], res.stderr
    assert summary(res.stdout, "ctxmix")["turns"] == "6"


def test_m5op_device_that_cannot_map(guest_build: Path) -> None:
    res = run(
        [
            str(guest_build / "server"),
            "--cpus",
            "1",
            "--workers",
            "1",
            "--requests",
            "2",
            "--roi",
            "--no-exit",
        ],
        {"PERCPU_M5OP_DEV": "/dev/null"},
    )
    assert res.returncode == 0, res.stderr
    assert len([ln for ln in res.stderr.splitlines() if ln.startswith("m5op:")]) == 1


@pytest.mark.parametrize("device", ["/nonexistent/percpu-m5op", "faulting"])
def test_m5_clock_outside_gem5_is_refused(guest_build: Path, device: str, tmp_path: Path) -> None:
    """--m5-clock without gem5 (no device, or a mapping whose reads fault): exit 2 with a line
    that names the option and the fix, before any sample (a sample of 0 ns is worse)."""
    if device == "faulting":
        dev = tmp_path / "mem"
        dev.write_bytes(b"\0" * 4096)
        device = str(dev)
    res = run([str(guest_build / "ctxmix"), "--cpus", "1", "--rounds", "2", "--m5-clock"],
              {"PERCPU_M5OP_DEV": device})
    assert res.returncode == 2, res.stderr
    assert "ctxmix: --m5-clock: gem5's m5 op region is not reachable" in res.stderr
    assert "drop --m5-clock" in res.stderr
    assert res.stdout == ""


def test_m5op_constants_match_gem5() -> None:
    """gem5 include/gem5/asm/generic/m5ops.h: EXIT 0x21, RESET_STATS 0x40, DUMP_STATS 0x41;
    the x86 address-based region is 64 KiB at 0xFFFF0000, op N at offset N << 8, read with
    one 64-bit load (a 32-bit access aborts gem5 v24)."""
    header = (GUEST / "m5op.h").read_text()
    source = (GUEST / "m5op.c").read_text()
    defs = dict(re.findall(r"#define (M5OP_\w+) (0x[0-9A-Fa-f]+)(?:UL)?", header))
    assert int(defs["M5OP_EXIT"], 16) == 0x21
    assert int(defs["M5OP_RESET_STATS"], 16) == 0x40
    assert int(defs["M5OP_DUMP_STATS"], 16) == 0x41
    assert int(defs["M5OP_PHYS_BASE"], 16) == 0xFFFF0000
    assert int(defs["M5OP_MAP_SIZE"], 16) == 0x10000
    assert "<< 8" in source and "movq" in source and "volatile uint64_t" in source


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rounds", "0"], "out of range"),
        (["--bogus"], "unknown option"),
        (["--rounds"], "needs a value"),
        (["--rounds", "ten"], "not an integer"),
        (["--pinned=1"], "takes no value"),
    ],
)
def test_bad_options_exit_2(guest_build: Path, args: list[str], message: str) -> None:
    res = run([str(guest_build / "ctxmix"), *args])
    assert res.returncode == 2
    assert message in res.stderr
    assert res.stdout == ""


@pytest.mark.parametrize("prog", PROGRAMS)
def test_help_lists_every_parameter(guest_build: Path, prog: str) -> None:
    res = run([str(guest_build / prog), "--help"])
    assert res.returncode == 0
    workload = {"threads_munmap": "threads-munmap", "kmap_io": "kmap-io"}.get(prog, prog)
    for name, spec in find_workload(workload).params.items():
        flag = name.replace("_", "-")
        assert flag in res.stdout, f"{prog} --help does not mention --{flag}"
        if spec.type == "int":
            assert f"({spec.min}..{spec.max}, default {spec.default})" in res.stdout, (
                f"{prog} --{flag}: range/default differ from workload.toml"
            )
        else:
            assert f"(default {'on' if spec.default else 'off'})" in res.stdout


def test_hotplug_without_permission_continues(guest_build: Path, tmp_path: Path) -> None:
    if CPUS < 2:
        pytest.skip("needs two CPUs to name a CPU other than 0")
    res = run(
        [
            str(guest_build / "hotplug"),
            "--cpus",
            "2",
            "--cycles",
            "1",
            "--sleep-us",
            "0",
            "--offline-us",
            "0",
            "--sysfs",
            str(tmp_path / "absent"),
        ]
    )
    assert res.returncode == 0, res.stderr
    assert "cannot write" in res.stderr
    f = summary(res.stdout, "hotplug")
    assert f["hotplug"] == "unavailable" and f["offlined"] == "0"


def test_m5_helper_outside_gem5(guest_build: Path) -> None:
    """The guest's m5 helper: unknown commands are refused before any op; outside gem5
    ops warn once and do nothing, and readfile exits 1 with no output (no workload)."""
    m5 = guest_build / "m5"
    bad = subprocess.run([str(m5), "bogus"], check=False, capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert bad.returncode == 2 and "unknown command 'bogus'" in bad.stderr
    assert "m5op:" not in bad.stderr
    env = {**os.environ, "PERCPU_M5OP_DEV": "/nonexistent/mem"}
    for cmd in ("exit", "resetstats", "dumpstats", "checkpoint"):
        res = subprocess.run([str(m5), cmd], check=False, capture_output=True, text=True, env=env,
                             timeout=TIMEOUT)
        assert res.returncode == 0, res.stderr
        assert res.stderr.count("m5op: warning") == 1
    read = subprocess.run([str(m5), "readfile"], check=False, capture_output=True, env=env,
                          timeout=TIMEOUT)
    assert read.returncode == 1 and read.stdout == b""


def test_m5_helper_op_numbers_match_gem5() -> None:
    """gem5 m5ops.h: CHECKPOINT 0x43, READ_FILE 0x50; readfile's arguments (buffer, length,
    offset) go in rdi, rsi, rdx."""
    defs = dict(re.findall(r"#define (M5OP_\w+) (0x[0-9A-Fa-f]+)(?:UL)?",
                           (GUEST / "m5op.h").read_text()))
    assert int(defs["M5OP_CHECKPOINT"], 16) == 0x43
    assert int(defs["M5OP_READ_FILE"], 16) == 0x50
    assert int(defs["M5OP_RPNS"], 16) == 0x07
    assert '"D"(a0), "S"(a1), "d"(a2)' in (GUEST / "m5op.c").read_text()


def test_roots_stress_checks_its_data_natively(guest_build: Path) -> None:
    """roots_stress (the percpu kernel's stress, docs/kernel.md) on the host kernel: every
    part runs (processes remapping their slots, threads reading a buffer the remapper
    frees under them, a fork/exec storm) and every check holds."""
    binary = guest_build / "roots_stress"
    proc = run([str(binary), "--seconds", "1", "--procs-per-cpu", "2", "--slots", "3",
                "--pages", "2", "--threads", "3", "--forkers", "1", "--self", str(binary),
                "--cpus", str(CPUS)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    f = summary(proc.stdout, "roots_stress")
    assert (f["procs"], f["slots"], f["threads"]) == (str(2 * CPUS), "3", "3")
    assert int(f["remaps"]) > 0 and int(f["thread_reads"]) > 0 and int(f["forks"]) > 0
    assert f["errors"] == f["data_errors"] == f["thread_errors"] == f["fork_failures"] == "0"


def test_roots_stress_child_fails_when_exec_cannot_find_it(guest_build: Path) -> None:
    """A fork/exec storm whose children cannot exec counts them as failures: the stress
    reports what it could not check instead of passing."""
    binary = guest_build / "roots_stress"
    proc = run([str(binary), "--seconds", "1", "--procs-per-cpu", "0", "--threads", "2",
                "--forkers", "1", "--self", "/nonexistent/roots_stress", "--cpus", "1"])
    assert proc.returncode == 1
    f = summary(proc.stdout, "roots_stress")
    assert int(f["fork_failures"]) == int(f["forks"]) > 0
    assert int(f["errors"]) >= int(f["fork_failures"])


def test_roi_counters_of_the_percpu_kernel(guest_build: Path, tmp_path: Path) -> None:
    """On the percpu kernel a guest program prints /proc/percpu_roots over its ROI (docs/
    kernel.md): counters as differences, peaks and bounds as read, before its summary;
    elsewhere nothing. The file is faked here ($PERCPU_ROOTS_PROC): it does not change
    during the run, so every counter's difference is 0."""
    fake = tmp_path / "percpu_roots"
    fake.write_text("enabled 1\nrootAllocs::total 10\nlazyFaults 100\n"
                    "rootPoolPeakBytes 8192\nmaxLazyFaultsPerRoot 3\n")
    argv = [str(guest_build / "ctxmix"), "--procs-per-cpu", "1", "--rounds", "2", "--pages",
            "1", "--work-cycles", "10", "--cpus", str(CPUS)]
    proc = run(argv, {"PERCPU_ROOTS_PROC": str(fake)})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:5] == ["percpu-roots: enabled 1", "percpu-roots: rootAllocs::total 0",
                         "percpu-roots: lazyFaults 0", "percpu-roots: rootPoolPeakBytes 8192",
                         "percpu-roots: maxLazyFaultsPerRoot 3"]
    assert lines[5].startswith("ctxmix: ")
    plain = run(argv, {"PERCPU_ROOTS_PROC": str(tmp_path / "absent")})
    assert not any(ln.startswith("percpu-roots:") for ln in plain.stdout.splitlines())
