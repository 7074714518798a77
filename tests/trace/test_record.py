"""`percpu trace record` and `snapshot`: perf output parsing, lackey logs, real recordings as
root with perf (tracepoints, software events, --memory), and one-line exit-2 errors when
perf, valgrind or the command is missing.

The real-recording tests need root and perf (Debian: linux-perf). Where perf cannot record
system-wide, they check that `trace record` says so in one line instead (never skipped)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from percpu.errors import UsageError
from percpu.trace.format import Exec, Fault, Fork, MemMap, Switch, read_trace
from percpu.trace.record import (
    build_trace,
    parse_perf_script,
)
from percpu.trace.replay import trace_to_program
from percpu.workloads.program import parse_program

ROOT = Path(__file__).resolve().parents[2]
GUEST = ROOT / "workloads" / "guest"
REGISTER = ("from percpu.cli import main, main_group\n"
            "from percpu.trace.cli import trace_group\n"
            "if 'trace' not in main_group.commands:\n"
            "    main_group.add_command(trace_group, 'trace')\n")


def cli(args: list[str], env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`percpu ARGS` in a fresh interpreter (the trace group registered if the lead has not)."""
    code = REGISTER + "import sys\nmain(sys.argv[1:])\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300, check=False)


@pytest.fixture(scope="module")
def pingpong() -> Path:
    exe = GUEST / "build" / "pingpong"
    if not exe.exists():
        subprocess.run(["make", "-C", str(GUEST)], check=True, capture_output=True)
    return exe


@pytest.fixture(scope="module")
def perf_state() -> str | None:
    """None when perf records system-wide here, else the one-line reason it cannot."""
    from percpu.trace.record import find_perf, probe_sources

    try:
        probe_sources(find_perf())
    except UsageError as exc:
        return str(exc)
    return None


# ------------------------------------------------------------------ parsing

TP_LINES = """\
 22946/22946 [001]  2934.484928688:    sched:sched_process_exec: filename=/bin/sh pid=22946 old_pid=22946
 22946/22946 [001]  2934.486227274:    sched:sched_process_exec: filename=/x/pingpong pid=22946 old_pid=22946
 22946/22946 [001]  2934.486429673:       syscalls:sys_exit_brk: 0x3e5f3000
 22946/22946 [001]  2934.486605664:     syscalls:sys_enter_mmap: addr: 0x00000000, len: 0x00004000, prot: 0x00000003, flags: 0x00000022, fd: 0xffffffff, off: 0x00000000
 22946/22946 [001]  2934.486634667:      syscalls:sys_exit_mmap: 0x7fca77434000
 22946/22946 [001]  2934.486640000:   syscalls:sys_enter_munmap: addr: 0x7fca77434000, len: 0x00001000
 22946/22946 [001]  2934.486650000: syscalls:sys_enter_mprotect: start: 0x004a4000, len: 0x00004000, prot: 0x00000001
 22946/22946 [001]  2934.486747580:    sched:sched_process_fork: comm=pingpong pid=22946 child_comm=pingpong child_pid=22967
 22946/22946 [001]  2934.486758380:          sched:sched_switch: prev_comm=pingpong prev_pid=22946 prev_prio=120 prev_state=R ==> next_comm=pingpong next_pid=22967 next_prio=120
 22967/22967 [001]  2934.486800000: exceptions:page_fault_user: address=0x7fca77430008 ip=0x401000 error_code=0x6
 22967/22967 [001]  2934.486810000:          sched:sched_switch: prev_comm=pingpong prev_pid=22967 prev_prio=120 prev_state=S ==> next_comm=kworker/1:0 next_pid=33 next_prio=120
    33/33    [001]  2934.486820000:          sched:sched_switch: prev_comm=kworker/1:0 prev_pid=33 prev_prio=120 prev_state=I ==> next_comm=ping pong next_pid=22946 next_prio=120
 22967/22967 [000]  2934.487365288:    sched:sched_process_exit: comm=pingpong pid=22967 prio=120 group_dead=true
"""

SW_LINES = """\
    0/0     [000]     0.000000000: PERF_RECORD_FORK(23389:23389):(23388:23388)
    0/0     [000]     0.000000000: PERF_RECORD_COMM: perf-exec:23389/23389
23389/23389 [000]  2969.697564344: PERF_RECORD_COMM exec: sh:23389/23389
23389/23389 [000]  2969.697600000: PERF_RECORD_COMM exec: pingpong:23389/23389
23389/23389 [000]  2969.697630848: page-faults:     55e6c543d240 ffffffff81775b9a
23389/23389 [000]  2969.697759179: page-faults:     7f281c4f4b70     7f281c4f4b70
23389/23389 [000]  2969.697800000: PERF_RECORD_FORK(23390:23390):(23389:23389)
23389/23389 [000]  2969.697900000: PERF_RECORD_SWITCH_CPU_WIDE OUT preempt  next pid/tid: 23390/23390
23390/23390 [000]  2969.697910000: PERF_RECORD_SWITCH_CPU_WIDE IN           prev pid/tid: 23389/23389
23390/23390 [000]  2969.698000000: PERF_RECORD_EXIT(23390:23390):(23389:23389)
23390/23390 [000]  2969.698100000: PERF_RECORD_SWITCH_CPU_WIDE OUT          next pid/tid:     0/0
"""


def test_parse_tracepoint_script() -> None:
    raw = parse_perf_script(TP_LINES.splitlines(), software=False)
    kinds = [type(ev).__name__ for _, ev in raw.events]
    assert kinds == ["Exec", "Exec", "MemMap", "MemMap", "MemMap", "MemMap", "Fork", "Switch",
                     "Fault", "Switch", "Switch", "Exit"]
    fault = next(ev for _, ev in raw.events if isinstance(ev, Fault))
    assert (fault.addr, fault.kind, fault.err) == (0x7FCA77430008, "w", 6)
    maps = [ev for _, ev in raw.events if isinstance(ev, MemMap)]
    assert [(m.op, m.addr, m.length, m.prot) for m in maps] == [
        ("brk", 0x3E5F3000, 0, 3), ("mmap", 0x7FCA77434000, 0x4000, 3),
        ("munmap", 0x7FCA77434000, 0x1000, 0), ("mprotect", 0x4A4000, 0x4000, 1)]
    sw = next(ev for _, ev in raw.events if isinstance(ev, Switch))
    assert (sw.prev, sw.next, sw.state) == (22946, 22967, "R")
    assert raw.comm[22946] == "ping pong"
    trace = build_trace(raw, 22946, wrapper_path="/bin/sh", recorder_pids=set(), meta={})
    # Time 0 is the command's exec (the second one: the first is the /bin/sh wrapper's).
    assert isinstance(trace.events[0], Exec) and trace.events[0].t == 0
    assert trace.events[0].path == "/x/pingpong"
    assert not any(isinstance(e, MemMap) and e.op == "brk" and e.t < 0 for e in trace.events)
    assert trace.tasks[22967].cls == "c" and trace.tasks[22946].cls == "c"
    assert trace.tasks[33].cls == "k"
    assert trace.meta["root_pid"] == "22946"


def test_switch_in_records_fill_missing_switches() -> None:
    """Some kernels emit no sched_switch from the idle task's context (this machine's among
    them): the incoming task's PERF_RECORD_SWITCH_CPU_WIDE IN record stands in for it."""
    lines = [
        (" 5/5 [001]  10.000000100:          sched:sched_switch: prev_comm=a prev_pid=5 "
        "prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120"),
        " 5/5 [001]  10.000000500: PERF_RECORD_SWITCH_CPU_WIDE IN           prev pid/tid:     0/0",
        (" 6/6 [000]  10.000000600:          sched:sched_switch: prev_comm=b prev_pid=6 "
        "prev_prio=120 prev_state=R ==> next_comm=c next_pid=7 next_prio=120"),
        " 7/7 [000]  10.000000700: PERF_RECORD_SWITCH_CPU_WIDE IN           prev pid/tid:     6/6",
    ]
    raw = parse_perf_script(lines, software=False)
    switches = [(ns, ev.cpu, ev.prev, ev.next) for ns, ev in raw.events]
    assert switches == [(10_000_000_100, 1, 5, 0), (10_000_000_500, 1, 0, 5),
                        (10_000_000_600, 0, 6, 7)]
    assert raw.filled_switches == 1


def test_parse_software_script() -> None:
    raw = parse_perf_script(SW_LINES.splitlines(), software=True)
    trace = build_trace(raw, 23389, wrapper_path="/bin/sh", recorder_pids=set(), meta={})
    kinds = [type(ev).__name__ for ev in trace.events]
    assert kinds == ["Exec", "Fault", "Fault", "Fork", "Switch", "Exit", "Switch"]
    faults = [ev for ev in trace.events if isinstance(ev, Fault)]
    assert [(f.kind, f.err) for f in faults] == [("r", -1), ("x", -1)]
    assert trace.tasks[23390].pid == 23390 and trace.tasks[23390].cls == "c"
    assert trace.tasks[0].cls == "i"
    assert next(ev for ev in trace.events if isinstance(ev, Fork)).child == 23390


# ------------------------------------------------------------------ real recordings


def _check_recording(path: Path, software: bool) -> None:
    trace = read_trace(path)
    mine = {t.tid for t in trace.tasks.values() if t.cls == "c"}
    assert len({trace.tasks[t].pid for t in mine}) == 3  # pingpong and its two children
    types = {type(e).__name__ for e in trace.events}
    assert {"Switch", "Fork", "Exit", "Fault"} <= types
    assert any(isinstance(e, Switch) and e.prev in mine and e.next in mine for e in trace.events)
    if software:
        assert "software" in trace.meta["sources"] and "MemMap" not in types
    else:
        # What the recording holds follows what perf could record on this machine (the
        # header names it): the full set here; fewer where some tracepoints are missing.
        sources = trace.meta["sources"]
        assert "sched_switch" in sources
        if "mmap" in sources:
            assert "MemMap" in types
        if "page_fault_user" in sources:
            assert any(isinstance(e, Fault) and e.err >= 0 for e in trace.events)
    assert trace.meta["exit_status"] == "0"
    text = trace_to_program(path, 2)
    parse_program(text, 2)


def test_record_tracepoints_with_memory(tmp_path: Path, pingpong: Path,
                                        perf_state: str | None) -> None:
    out = tmp_path / "pp.trace.gz"
    res = cli(["trace", "record", "--memory", "--out", str(out), "--", str(pingpong),
               "--iterations", "30", "--pages", "2"])
    if perf_state is not None or shutil.which("valgrind") is None:
        # perf cannot record here, or valgrind is missing: the one-line reason, exit 2.
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "perf" in res.stderr or "valgrind" in res.stderr
        return
    assert res.returncode == 0, res.stderr
    assert "percpu: wrote" in res.stderr and "access runs" in res.stderr
    _check_recording(out, software=False)
    trace = read_trace(out)
    assert trace.accesses and int(trace.meta["mem_raw_accesses"]) > 1000
    assert {a.pid for a in trace.accesses} <= {t.pid for t in trace.tasks.values()}


def test_record_software_events(tmp_path: Path, pingpong: Path,
                                perf_state: str | None) -> None:
    out = tmp_path / "pp.trace"
    res = cli(["trace", "record", "--events", "software", "-o", str(out), "--", str(pingpong),
               "--iterations", "30", "--pages", "2"])
    if perf_state is not None:
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
        return
    assert res.returncode == 0, res.stderr
    _check_recording(out, software=True)


def _fake_path(tmp_path: Path, tools: list[str]) -> dict[str, str]:
    """An environment whose PATH holds only TOOLS (symlinks to the real ones)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        real = shutil.which(tool)
        assert real, f"{tool} is needed for this test"
        (bin_dir / tool).symlink_to(real)
    env = dict(os.environ)
    env["PATH"] = str(bin_dir)
    return env


def test_record_without_perf_exits_2(tmp_path: Path) -> None:
    env = _fake_path(tmp_path, ["true"])
    res = cli(["trace", "record", "--out", str(tmp_path / "t.trace"), "--", "true"], env=env)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "perf not found" in lines[0] and "linux-perf" in lines[0]
    assert not (tmp_path / "t.trace").exists()


def test_record_memory_without_valgrind_exits_2(tmp_path: Path) -> None:
    env = _fake_path(tmp_path, ["true", "perf"] if shutil.which("perf") else ["true"])
    res = cli(["trace", "record", "--memory", "--", "true"], env=env, cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "valgrind" in lines[0]


def test_record_bad_command_exits_2(tmp_path: Path) -> None:
    res = cli(["trace", "record", "--", "/no/such/program"], cwd=tmp_path)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "not found" in res.stderr
    res = cli(["trace", "record"], cwd=tmp_path)
    assert res.returncode == 2


def test_snapshot_of_a_live_process(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(0.2)
        out = tmp_path / "s.trace"
        res = cli(["trace", "snapshot", str(proc.pid), "--out", str(out)])
        assert res.returncode == 0, res.stderr
    finally:
        proc.kill()
        proc.wait()
    snap = read_trace(out)
    assert snap.kind == "snapshot" and snap.meta["pid"] == str(proc.pid)
    assert snap.meta["slot_source"] in ("pagemap", "vmas")
    if os.geteuid() == 0:
        assert snap.meta["slot_source"] == "pagemap" and int(snap.meta["present_pages"]) > 0
    assert any(v.name == "[stack]" for v in snap.vmas)
    levels = {s.level for s in snap.slots}
    assert levels == {"pgd", "pud", "pmd"}
    # Every pmd slot lies under a listed pud slot, and every pud under a pgd slot.
    pgd = {i for s in snap.slots if s.level == "pgd" for i in s.indices}
    puds = {(s.prefix[0], i) for s in snap.slots if s.level == "pud" for i in s.indices}
    assert {g for g, _ in puds} == pgd
    assert {s.prefix for s in snap.slots if s.level == "pmd"} <= puds
    text = trace_to_program(out, 1)
    parse_program(text, 1)


def test_snapshot_errors(tmp_path: Path) -> None:
    res = cli(["trace", "snapshot", "999999999"], cwd=tmp_path)
    assert res.returncode == 2 and "no process" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    from percpu.trace.record import is_kernel_thread

    kthread = next((int(p.name) for p in Path("/proc").iterdir()
                    if p.name.isdigit() and is_kernel_thread(int(p.name))), None)
    if kthread is not None:  # kernel threads are visible here: no user address space
        res = cli(["trace", "snapshot", str(kthread)], cwd=tmp_path)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
        assert "no user address space" in res.stderr


def test_replay_command(tmp_path: Path) -> None:
    res = cli(["trace", "replay", str(ROOT / "workloads/traces/pingpong.trace.gz"),
               "--cpus", "2", "--max-ops", "500"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("percpu-ops 1\n")
    assert sum(len(t.ops) for t in parse_program(res.stdout, 2).tasks) <= 500
    bad = tmp_path / "bad.trace"
    bad.write_text("percpu-trace 1\nS 1 2\n")
    res = cli(["trace", "replay", str(bad)])
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
