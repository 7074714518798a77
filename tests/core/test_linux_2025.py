"""Linux 6.15's TLB rules (machine.linux=6.15, docs/linux-2025.md) against the independent
model (percpu.trace.linux_asid with global_asids=True), and the checker on the proposal
there: a broadcast flush runs no handler on other CPUs, so unfixed roots keep entries to
freed page tables (root.broadcast_fix=0) and the fixed variants (1, 2) keep none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from percpu import _core
from percpu.workloads.definition import find_workload
from percpu.workloads.program import parse_program
from tests.core.asid_oracle import allocs_by_cause, check_events
from tests.core.programs import SLOT, thread_ops

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "linux-2025"
SCHEMES = [name for name, _ in _core.scheme_names()]
# jiffies at 10 kHz: consider_global_asid's 1-in-32 sample (pid & 31 == jiffies & 31)
# comes round every 9.6 M cycles, so short programs reach it.
LINUX_615 = {"machine.linux": 6.15, "machine.invlpgb": 1.0, "noise.tick_hz": 10000.0}
UNFIXED = "the root keeps a top-level entry its mm freed, after the flush"


@st.composite
def threaded_programs(draw) -> tuple[str, int]:
    """Processes whose threads churn mappings on 4 to 6 CPUs at once (the case that earns a
    global ASID), each thread's loop followed by random ops (tests/core/programs.py)."""
    ncpus = draw(st.integers(4, 6))
    out = ["percpu-ops 1"]
    bodies = []
    tid = 0
    for p in range(draw(st.integers(1, 3))):
        out.append(f"mm m{p}")
        for t in range(draw(st.integers(ncpus - 1, ncpus + 1))):
            cpus = draw(st.sampled_from([str(t % ncpus), str(t % ncpus), "all"]))
            out.append(f"task t{tid} mm=m{p} cpus={cpus}")
            slot = draw(st.integers(1, 6))  # shared with other threads, or not
            addr = slot * SLOT + tid * (1 << 31)
            pages = draw(st.integers(1, 40))
            body = [f"repeat {draw(st.integers(20, 120))}",
                    f"  mmap b{tid} {addr:#x} {pages * 4096} rw",
                    f"  store b{tid} count={min(pages, 8)} stride=4096",
                    f"  munmap b{tid}"]
            if draw(st.booleans()):
                body.append(f"  {draw(st.sampled_from(['yield', 'sleep 20000', 'syscall 500']))}")
            body.append("end")
            body += draw(thread_ops(tid, ncpus, kernel_ops=True))
            bodies.append((tid, body))
            tid += 1
    out += ["mm img", "  vma code 0x400000 16K rx", "  vma data 0x600000 32K rw",
            "task child mm=fork start=no"]
    bodies.append(("child", ["exec img", "store data count=8 stride=4096", "exit"]))
    for t, lines in bodies:
        out.append(f"program t{t}" if isinstance(t, int) else f"program {t}")
        out += [f"  {line}" for line in lines]
    return "\n".join(out) + "\n", ncpus


def run(text: str, ncpus: int, scheme: str, values: dict[str, float], **kw) -> dict:
    prog = parse_program(text, ncpus)
    return _core.run({**values, "machine.cpus": float(ncpus)}, scheme, **kw, **prog.core_args())


def stats_of(out: dict) -> dict[str, float]:
    return {name: value for name, value, _, _ in out["stats"]}


def total(stats: dict[str, float], leaf: str, ncpus: int) -> float:
    return sum(stats[f"system.cpu{c}.{leaf}"] for c in range(ncpus))


@settings(max_examples=40, deadline=None)
@given(case=threaded_programs(), scheme=st.sampled_from(SCHEMES),
       pti=st.sampled_from([0.0, 1.0]), seed=st.integers(0, 1000),
       max_asid=st.sampled_from([8, 9, 10, 2046]), fix=st.sampled_from([1, 2]))
def test_engine_follows_linux_615_and_fixed_roots_pass_the_checker(case, scheme, pti, seed,
                                                                   max_asid, fix):
    text, ncpus = case
    values = {**LINUX_615, "machine.pti": pti, "machine.seed": float(seed),
              "linux.max_asid_available": float(max_asid), "root.broadcast_fix": float(fix)}
    out = run(text, ncpus, scheme, values, record_asid_events=True, check=True)
    problems, model = check_events(out["asid_events"], ncpus=ncpus, pcid=True, scheme=scheme,
                                   global_asids=True, max_asid=max_asid)
    assert problems == []
    assert out["violation_count"] == 0, out["violations"][:3]
    stats = stats_of(out)
    assert stats["system.globalAsid.assigned"] == model.assigned
    assert stats["system.globalAsid.resets"] == model.resets
    if scheme != "shared":
        engine = allocs_by_cause(stats, ncpus)
        for cpu in range(ncpus):
            assert engine[cpu] == +model.per_cpu[cpu], cpu


# Four threaded processes one after another, each on 4 CPUs at once: with 3 global ASIDs
# (MAX_ASID_AVAILABLE 9: 6, 7, 8) the fourth needs a reset that frees the first's.
def _sequential(nprocs: int, iterations: int) -> str:
    out = ["percpu-ops 1"]
    bodies = []
    for p in range(nprocs):
        out.append(f"mm p{p}")
        for t in range(4):
            out.append(f"task p{p}t{t} mm=p{p} cpus={t}")
            body = [] if p == 0 else [f"wait done{p - 1}", "sleep 100000"]
            addr = (32 + t) * SLOT
            body += [f"repeat {iterations}", f"  mmap b{t} {addr:#x} 16K rw",
                     f"  store b{t} count=4 stride=4096", f"  munmap b{t}", "end", f"signal done{p}"]
            bodies.append((f"p{p}t{t}", body))
    for name, lines in bodies:
        out.append(f"program {name}")
        out += [f"  {line}" for line in lines]
    return "\n".join(out) + "\n"


def test_global_asids_are_freed_and_reused_after_a_reset():
    values = {**LINUX_615, "linux.max_asid_available": 9.0}
    out = run(_sequential(4, 700), 4, "percpu", values, record_asid_events=True, check=True)
    problems, model = check_events(out["asid_events"], ncpus=4, pcid=True, scheme="percpu",
                                   global_asids=True, max_asid=9)
    assert problems == []
    assert out["violation_count"] == 0
    stats = stats_of(out)
    kinds = _core.ASID_EVENT_KINDS
    given_out = [ev[7] for ev in out["asid_events"]
                 if kinds[ev[0]] == "considerGlobalAsid" and ev[7]]
    assigned = list(dict.fromkeys(  # the first sighting of each mm's ASID
        (ev[2], ev[7]) for ev in out["asid_events"]
        if kinds[ev[0]] == "considerGlobalAsid" and ev[7]))
    assert given_out, "no process earned a global ASID"
    assert [g for _, g in assigned] == [6, 7, 8, 6]
    assert stats["system.globalAsid.assigned"] == 4
    assert stats["system.globalAsid.resets"] == 2 == model.resets  # at the first and the fourth


def test_6_1_and_machines_without_invlpgb_or_pcid_get_no_global_asid():
    prog = _sequential(1, 400)
    for values in ({"noise.tick_hz": 10000.0},
                   {**LINUX_615, "machine.invlpgb": 0.0},
                   {**LINUX_615, "machine.pcid": 0.0}):
        stats = stats_of(run(prog, 4, "percpu", values))
        assert stats["system.globalAsid.assigned"] == 0, values
        assert total(stats, "tlbFlush.broadcast", 4) == 0
        assert total(stats, "invlpgb", 4) == 0
    stats = stats_of(run(prog, 4, "percpu", LINUX_615))
    assert stats["system.globalAsid.assigned"] == 1
    assert total(stats, "tlbFlush.broadcast", 4) > 0
    assert total(stats, "globalAsid.transitions", 4) >= 3  # the CPUs running it at the time


def render(workload: str, ncpus: int, params: dict) -> str:
    """A shipped workload by name, or one of examples/linux-2025/ by its directory name."""
    name = str(EXAMPLES / workload) if (EXAMPLES / workload).is_dir() else workload
    wl = find_workload(name)
    return wl.render("engine", wl.resolve({k: str(v) for k, v in params.items()}), ncpus)


THREADED = [
    ("threads-munmap", {"iterations": 100}),
    ("server-threads", {"requests": 60, "work_cycles": 200000}),
    ("tlb-flush2", {"iterations": 100, "fresh_slot": True, "pages": 64}),
]


@pytest.mark.parametrize(("workload", "params"), THREADED, ids=[w for w, _ in THREADED])
def test_checker_catches_unfixed_roots_and_passes_the_fixes(workload, params):
    text = render(workload, 4, params)
    caught = run(text, 4, "percpu", {**LINUX_615, "root.broadcast_fix": 0.0,
                                     "check.max_reports": 1000.0}, check=True)
    assert stats_of(caught)["system.globalAsid.assigned"] == 1
    assert caught["violation_count"] > 0
    whats = {v[0] for v in caught["violations"]}
    assert UNFIXED in whats
    # And later a walk through the stale entry reads the freed table.
    assert any("freed page-table frame" in w or "reused root differs" in w for w in whats), whats
    for fix in (1.0, 2.0):
        out = run(text, 4, "percpu", {**LINUX_615, "root.broadcast_fix": fix}, check=True)
        assert out["violation_count"] == 0, (fix, out["violations"][:3])
        stats = stats_of(out)
        assert stats["system.globalAsid.assigned"] == 1
        assert total(stats, "percpu.rootEntriesDropped", 4) > 0
        # 1 IPIs every CPU holding a root of the mm; 2 clears the entries itself.
        assert (total(stats, "percpu.broadcastFix.ipis", 4) > 0) == (fix == 1.0)
        if fix == 1.0:
            assert total(stats, "percpu.broadcastFix.remoteDrops", 4) == 0


@pytest.mark.parametrize("value", ["6.12", "2025", "x"])
def test_machine_linux_takes_6_1_or_6_15_only(tmp_path, value):
    proc = subprocess.run([sys.executable, "-m", "percpu", "run", "--set",
                           f"machine.linux={value}", "-o", str(tmp_path / "out"), "-q"],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "machine.linux" in lines[0] and ("takes 6.1" in lines[0] or "number" in lines[0])
    assert not (tmp_path / "out").exists()


def test_a_sweep_takes_machine_linux_as_an_axis(tmp_path):
    spec = tmp_path / "spec.toml"

    def dry_run(axis: str) -> subprocess.CompletedProcess:
        spec.write_text(f'[sweep]\nworkload = "threads-munmap"\nschemes = ["percpu"]\n'
                        f'outdir = "{tmp_path / "out"}"\n[grid]\n{axis}\n')
        return subprocess.run([sys.executable, "-m", "percpu", "sweep", str(spec), "--dry-run"],
                              capture_output=True, text=True, cwd=tmp_path, check=False)

    ok = dry_run('set."machine.linux" = [6.1, 6.15]')
    assert ok.returncode == 0, ok.stderr
    assert "2 points" in ok.stdout + ok.stderr
    bad = dry_run('set."machine.linux" = [6.1, 6.2]')
    assert bad.returncode == 2 and "machine.linux takes 6.1" in bad.stderr
    axis = dry_run('set."machine.cpus" = [2, 4]')
    assert axis.returncode == 2 and "use the axes cpus" in axis.stderr
    assert not (tmp_path / "out").exists()
