"""`percpu compare` end to end: the engine for real (small points), gem5 and the percpu
kernel through the real `percpu gem5 run` with a stand-in gem5 (fake_gem5.py: real gem5
output's header lines, the plugin's and the kernel's counters), and the agreement rules on
hand-made figures."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from percpu.compare import (
    DOC_BEGIN,
    DOC_END,
    agreement_for,
    check_count,
    check_overhead,
)
from percpu.gem5host.run import headline

FAKE = Path(__file__).with_name("fake_gem5.py")


def compare(tmp_path: Path, *args: str, env: dict | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "FAKE_GEM5_CALLS": str(tmp_path / "calls"),
                "XDG_CACHE_HOME": str(tmp_path / "cache"), **(env or {})}
    full_env.pop("PERCPU_GEM5", None)
    return subprocess.run([sys.executable, "-m", "percpu", "compare", "--out",
                           str(tmp_path / "cmp"), *args], capture_output=True, text=True,
                          env=full_env, check=False, timeout=timeout, cwd=tmp_path)


def kernels(tmp_path: Path) -> list[str]:
    """A stock and a percpu vmlinux as `percpu guest build` leaves them (the manifest says
    which kernel), for the stand-in gem5."""
    out = []
    for kind in ("stock", "percpu"):
        d = tmp_path / "guest" / kind
        d.mkdir(parents=True)
        (d / "vmlinux").write_bytes(b"\x7fELF")
        (d / "manifest.json").write_text(json.dumps({"kernel": kind}))
        out += [f"--kernel-{kind}", str(d / "vmlinux")]
    return out


GEM5_ARGS = ["--points", "pingpong", "--cpus", "2", "--machines", "nopcid", "--seeds", "2",
             "--roi-scale", "0.1", "--gem5", str(FAKE)]


def test_three_hosts_end_to_end(tmp_path):
    """Every figure of the table comes from a stat of a run directory, the kernel's
    overhead is against the plugin's shared run of the same seed, and the agreement cells
    follow from the figures."""
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Doc\n\nbefore\n{DOC_BEGIN}\nold table\n{DOC_END}\nafter\n")
    res = compare(tmp_path, *GEM5_ARGS, "--hosts", "engine,gem5,kernel",
                  "--checkpoint-dir", str(tmp_path / "cpt"), *kernels(tmp_path),
                  "--write-docs", str(doc))
    assert res.returncode == 0, res.stdout + res.stderr
    out = tmp_path / "cmp"
    result = json.loads((out / "compare.json").read_text())
    tag = "pingpong-x0.1-c2-nopcid"
    pt = result["points"][tag]
    assert set(pt["hosts"]) == {"engine", "gem5", "kernel"}
    for host in ("engine", "gem5", "kernel"):
        for seed in ("1", "2"):
            run = pt["hosts"][host]["seeds"][seed]
            pdir = out / run["percpu"]["simTicks"]["run"]
            bdir = out / run["baseline"]["simTicks"]["run"]
            p, b = headline(pdir), headline(bdir)
            assert run["overhead_pct"] == pytest.approx((p["simTicks"] / b["simTicks"] - 1) * 100)
            assert run["percpu"]["lazyFaults"]["value"] == p.get("percpu.lazyFaults", 0.0)
            if host == "kernel":
                # The kernel's own run against the same kernel's roots-off run of this seed.
                assert pdir == out / "kernel" / f"{tag}-s{seed}" / "shared" / "stats.txt"
                assert bdir == out / "kernel-off" / f"{tag}-s{seed}" / "shared" / "stats.txt"
                assert run["percpu"]["rootAllocs::total"]["value"] == 16  # the kernel's count
                assert run["percpu"]["lazyFaults"]["value"] == 40
                assert run["overhead_pct"] == pytest.approx(3.0, abs=0.01)
            if host == "gem5":
                assert run["overhead_pct"] == pytest.approx(5.0 + 0.2 * int(seed), abs=0.01)
                assert run["work"] == 2 * 6394546  # simInsts of both schemes' runs
                assert run["host_seconds"] == pytest.approx(2 * 6.96)
            if host == "engine":
                assert run["work"] == headline(pdir)["memRefs"] + headline(bdir)["memRefs"]
    s = pt["hosts"]["engine"]["summary"]["overhead_pct"]
    assert s["seeds"] == 2 and s["min"] <= s["mean"] <= s["max"]
    # Agreement: computed from the means, as agreement_for does.
    assert pt["agreement"] == json.loads(json.dumps(agreement_for(
        {h: {"summary": pt["hosts"][h]["summary"]} for h in pt["hosts"]})))
    gk = pt["agreement"]["gem5 vs kernel"]["overhead_pct"]
    assert gk["rule"].startswith("relative") and gk["pass"] is False  # +5 % against +3 %
    assert pt["speed_ratio"] == pytest.approx(
        pt["hosts"]["gem5"]["summary"]["host_seconds"]["mean"]
        / pt["hosts"]["engine"]["summary"]["host_seconds"]["mean"])
    md = (out / "compare.md").read_text()
    # No PCID: the kernel's one root page per CPU hides its switches from CR3 (—).
    assert f"| {tag} | kernel | +3.00 % [+3.00, +3.00] | 16 | 4 / 12 / 0 / 0 | 40 | — |" in md
    assert f"| {tag} | plugin | +5.30 % [+5.20, +5.40] |" in md
    assert f"| {tag} | plugin vs kernel | +76.7 % FAIL | -62.5 % FAIL |" in md
    assert "gem5 24.0.0.1" in md and "kernel: 6.1.0" in md
    assert "percpu gem5 run -w pingpong" in md and "--kernel" in md
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    rows = (out / "compare.csv").read_text().splitlines()
    assert rows[0] == "point,host,figure,mean,min,max,seeds"
    assert any(r.startswith(f"{tag},kernel,lazyFaults,40.0") for r in rows)
    text = doc.read_text()
    assert "old table" not in text and md in text and text.endswith(f"{DOC_END}\nafter\n")
    # Resume: the same command runs nothing (no gem5 process) and writes the same table.
    calls = (tmp_path / "calls").read_text()
    again = compare(tmp_path, *GEM5_ARGS, "--hosts", "engine,gem5,kernel",
                    "--checkpoint-dir", str(tmp_path / "cpt"), *kernels_again(tmp_path))
    assert again.returncode == 0, again.stderr
    assert "0 runs to make, 8 already finished" in again.stderr
    assert (tmp_path / "calls").read_text() == calls
    # A lost run (an interrupted one leaves none) is the only one made again.
    import shutil

    shutil.rmtree(out / "kernel" / f"{tag}-s2" / "shared")
    again = compare(tmp_path, *GEM5_ARGS, "--hosts", "engine,gem5,kernel",
                    "--checkpoint-dir", str(tmp_path / "cpt"), *kernels_again(tmp_path))
    assert again.returncode == 0, again.stderr
    assert "1 runs to make, 7 already finished" in again.stderr
    assert (tmp_path / "calls").read_text() == calls + "roi\n"


def kernels_again(tmp_path: Path) -> list[str]:
    return [a for kind in ("stock", "percpu")
            for a in (f"--kernel-{kind}", str(tmp_path / "guest" / kind / "vmlinux"))]


def test_kernel_counts_fall_back_to_percpu_json(tmp_path):
    """A kernel run whose stats.txt lacks the kernel's lines is read from percpu.json's
    guest.kernel_roots, and the figure names that as its source."""
    from percpu.compare import run_figures

    d = tmp_path / "kernel" / "p-s1" / "shared"
    d.mkdir(parents=True)
    (d / "stats.txt").write_text(
        "---------- Begin Simulation Statistics ----------\n"
        "simTicks 1000 # (Tick)\n"
        "board.processor.cores0.core.percpu.mmSwitches 7 # (Count)\n"
        "board.processor.cores0.core.percpu.rootAllocs::evicted 0 # the plugin's (Count)\n"
        "board.processor.cores0.core.percpu.lazyFaults 0 # the plugin's (Count)\n"
        "---------- End Simulation Statistics   ----------\n")
    (d / "percpu.json").write_text(json.dumps({"host": "gem5", "host_seconds": 12.5, "guest": {
        "kernel_roots": {"rootAllocs::evicted": 5, "rootAllocs::noPcid": 2,
                         "rootAllocs::total": 7, "lazyFaults": 11}}}))
    f = run_figures(d, tmp_path)
    assert f["rootAllocs::total"]["value"] == 7 and f["rootAllocs::evicted"]["value"] == 5
    assert f["lazyFaults"] == {"value": 11.0, "stat": "guest.kernel_roots.lazyFaults",
                               "run": "kernel/p-s1/shared/percpu.json"}
    assert f["mmSwitches"]["value"] == 7
    assert f["hostSeconds"]["value"] == 12.5  # no hostSeconds line: percpu.json's
    # Without PCID the kernel reloads one root page per CPU: CR3 counts no switch.
    info = json.loads((d / "percpu.json").read_text())
    (d / "percpu.json").write_text(json.dumps({**info, "machine": {"cpus": 2, "pcid": False}}))
    f = run_figures(d, tmp_path)
    assert f["mmSwitches"]["value"] is None and "not counted" in f["mmSwitches"]["stat"]
    assert f["rootAllocs::total"]["value"] == 7


def test_agreement_rules_on_hand_made_figures():
    # Reference over the threshold: relative, 10 %.
    assert check_overhead(11.0, 10.0, 5.0)["pass"] is True
    c = check_overhead(11.5, 10.0, 5.0)
    assert c["pass"] is False and c["diff"] == pytest.approx(0.15)
    assert check_overhead(-11.5, -10.0, 5.0)["diff"] == pytest.approx(-0.15)
    # Under it: absolute, 0.5 points.
    c = check_overhead(4.4, 4.0, 5.0)
    assert c["rule"].startswith("absolute") and c["pass"] is True
    assert check_overhead(4.6, 4.0, 5.0)["pass"] is False
    # The kernel's threshold is 2 %: 4 % is then compared relatively.
    assert check_overhead(4.6, 4.0, 2.0)["pass"] is False
    assert check_overhead(4.3, 4.0, 2.0)["pass"] is True
    assert check_overhead(2.4, 2.0, 2.0)["rule"].startswith("absolute")
    # Counts: 10 %, and nothing against 0 only agrees with 0.
    assert check_count(110, 100)["pass"] is True
    assert check_count(111, 100)["pass"] is False
    assert check_count(0, 0)["pass"] is True
    assert math.isinf(check_count(3, 0)["diff"]) and check_count(3, 0)["pass"] is False

    def host(overhead, allocs, lazy, switches):
        one = lambda v: {"mean": v, "min": v, "max": v, "seeds": 1, "values": [v]}
        return {"summary": {"overhead_pct": one(overhead), "rootAllocs::total": one(allocs),
                            "lazyFaults": one(lazy), "mmSwitches": one(switches)}}

    a = agreement_for({"engine": host(6.0, 100, 200, 400), "gem5": host(5.5, 95, 230, 405),
                       "kernel": host(1.0, 100, 200, 400)})
    assert set(a) == {"engine vs gem5", "engine vs kernel", "gem5 vs kernel"}
    eg = a["engine vs gem5"]
    assert eg["overhead_pct"]["pass"] is True  # 6.0 against 5.5: +9.1 %
    assert eg["rootAllocs::total"]["pass"] is True and eg["lazyFaults"]["pass"] is False
    ek = a["engine vs kernel"]["overhead_pct"]
    assert ek["rule"].startswith("absolute") and ek["pass"] is False  # 5 points off
    assert a["gem5 vs kernel"]["mmSwitches"]["pass"] is True


def test_interrupt_keeps_finished_runs_and_resume_skips_them(tmp_path):
    """A SIGTERM while a gem5 run hangs stops the comparison with exit 130: the engine's
    finished runs stay, the unfinished gem5 run leaves no scheme directory, no table is
    written; the same command then makes only the runs that were not finished."""
    args = ["--hosts", "engine,gem5", *GEM5_ARGS, "--checkpoint-dir", str(tmp_path / "cpt"),
            "--kernel-stock", str(kernels(tmp_path)[1])]
    env = {**os.environ, "FAKE_GEM5_CALLS": str(tmp_path / "calls"), "FAKE_GEM5": "hang",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("PERCPU_GEM5", None)
    proc = subprocess.Popen([sys.executable, "-m", "percpu", "compare", "--out",
                             str(tmp_path / "cmp"), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    deadline = time.monotonic() + 120
    calls = tmp_path / "calls"
    while not (calls.is_file() and "roi" in calls.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted; kept 2 finished runs of 4" in err and "the same command resumes" in err
    out = tmp_path / "cmp"
    assert len(list(out.glob("engine/*/percpu/stats.txt"))) == 2
    assert not list(out.glob("gem5/*/*/stats.txt"))
    assert not (out / "compare.json").exists()
    res = compare(tmp_path, *args)
    assert res.returncode == 0, res.stderr
    assert "2 runs to make, 2 already finished" in res.stderr
    assert len(json.loads((out / "compare.json").read_text())["points"]) == 1


def test_engine_only_without_gem5(tmp_path):
    """Engine only, for real and without gem5: small points, two seeds, mean and range."""
    res = compare(tmp_path, "--hosts", "engine", "--points", "pingpong,ctxmix-4", "--cpus", "2",
                  "--machines", "pcid,nopcid", "--seeds", "2", "--roi-scale", "0.2")
    assert res.returncode == 0, res.stderr
    assert "8 runs to make, 0 already finished" in res.stderr
    out = tmp_path / "cmp"
    result = json.loads((out / "compare.json").read_text())
    assert len(result["points"]) == 4 and result["failed"] == {}
    pt = result["points"]["ctxmix-4-x0.2-c2-nopcid"]["hosts"]["engine"]
    # Without PCID every mm switch makes a root.
    s = pt["summary"]
    assert s["rootAllocs::total"]["mean"] == s["mmSwitches"]["mean"] > 0
    assert s["rootAllocs::noPcid"]["mean"] == s["rootAllocs::total"]["mean"]
    ov = [pt["seeds"][k]["overhead_pct"] for k in ("1", "2")]
    assert s["overhead_pct"]["min"] == min(ov) and s["overhead_pct"]["max"] == max(ov)
    row = next(ln for ln in (out / "compare.md").read_text().splitlines()
               if ln.startswith("| ctxmix-4-x0.2-c2-nopcid | engine |"))
    assert f"{s['overhead_pct']['mean']:+.2f} % [{min(ov):+.2f}, {max(ov):+.2f}]" in row
    config = json.loads((out / "engine" / "ctxmix-4-x0.2-c2-nopcid-s2" / "percpu"
                         / "config.json").read_text())
    assert config["seed"] == 2 and config["params"]["rounds"] == 10
    assert config["costs"]["cost.lazy_fault"] == 1176  # the profile's, fitted to the kernel


def test_the_kmap_points_table_the_kernels_kmap_local_counts(tmp_path):
    """kmap-io maps kmap_local in each root's own slot, kmap-io-fixmap in the fixmap, every
    other point not at all (as the stock kernel): the kmap table shows the two kmap points'
    counts from the kernel's /proc/percpu_roots lines."""
    res = compare(tmp_path, "--points", "pingpong,kmap-io,kmap-io-fixmap", "--cpus", "2",
                  "--machines", "pcid", "--seeds", "1", "--roi-scale", "0.1", "--gem5",
                  str(FAKE), "--hosts", "gem5,kernel", "--checkpoint-dir",
                  str(tmp_path / "cpt"), *kernels(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    out = tmp_path / "cmp"
    md = (out / "compare.md").read_text()
    assert "| kmap-io-x0.1-c2-pcid | 10 | 0 | 0 | 0 | 0 | 0 |" in md
    assert "| kmap-io-fixmap-x0.1-c2-pcid | 0 | 10 | 0 | 0 | 0 | 0 |" in md
    assert "| pingpong-x0.1-c2-pcid | 0 |" not in md  # kmapdirect: no row
    result = json.loads((out / "compare.json").read_text())
    fig = result["points"]["kmap-io-x0.1-c2-pcid"]["hosts"]["kernel"]["seeds"]["1"]["percpu"]
    assert fig["kmap.localMaps::private"] == {
        "value": 10.0, "stat": "guest.kernel_roots.kmap.localMaps::private",
        "run": "kernel/kmap-io-x0.1-c2-pcid-s1/shared/percpu.json"}


def test_dry_run_lists_commands_and_writes_nothing(tmp_path):
    res = compare(tmp_path, *GEM5_ARGS, "--hosts", "gem5,kernel", "--points",
                  "pingpong,kmap-io", "--dry-run", *kernels(tmp_path))
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "cmp").exists()
    lines = res.stdout.splitlines()
    # Per point and seed: the plugin's (or the stock baseline's), the kernel's and its
    # roots-off baseline's.
    assert lines[-1] == "12 of 12 runs to make; nothing written (--dry-run)"
    # kmap-io runs on the kernel host and its stock baseline (shared only) alone.
    assert "gem5 kmap-io-x0.1-c2-nopcid seed 1: to run (shared)" in lines
    cmd = lines[lines.index("kernel pingpong-x0.1-c2-nopcid seed 2: to run (shared)") + 1]
    assert "gem5 run -w pingpong -p iterations=20 --cpus 2 --no-pcid --seed 2 -s shared" in cmd
    assert "--kernel " + str(tmp_path / "guest" / "percpu" / "vmlinux") in cmd
    # The kernel differs from its stock baseline by the roots alone, but on kmap-io.
    assert "--kernel-kmap direct" in cmd
    kmap = lines[lines.index("kernel kmap-io-x0.1-c2-nopcid seed 1: to run (shared)") + 1]
    assert "--kernel-kmap private" in kmap and "--kernel-roots" not in kmap
    off = lines[lines.index("kernel-off kmap-io-x0.1-c2-nopcid seed 1: to run (shared)") + 1]
    assert "--kernel-kmap private --kernel-roots off" in off
    plugin = lines[lines.index("gem5 pingpong-x0.1-c2-nopcid seed 1: to run (shared,percpu)")
                   + 1]
    assert "--set cost.lazy_fault=1176" in plugin and "--check" in plugin


@pytest.mark.parametrize(("args", "message"), [
    (["--points", "pingpong,nosuch"], "--points: unknown 'nosuch': choose from pingpong"),
    (["--machines", "pcid,smep"], "--machines: unknown 'smep'"),
    (["--hosts", "engine,qemu"], "--hosts: unknown 'qemu'"),
    (["--seeds", "0"], "--seeds 0: give 1 or more"),
    (["--roi-scale", "0"], "--roi-scale 0: give a positive factor"),
    (["--cpus", "2,x"], "--cpus: 'x' is not a CPU count"),
    (["--hosts", "engine", "--cpus", "999"], "--cpus 999 is out of range"),
    (["--hosts", "engine,gem5"], "--hosts gem5 needs gem5: no gem5 binary: pass --gem5"),
    (["--hosts", "kernel", "--gem5", "/nonexistent/gem5.opt"],
     "--hosts kernel needs gem5: gem5 binary /nonexistent/gem5.opt not found"),
    (["--hosts", "engine", "--write-docs", "README.none"], "--write-docs README.none: cannot"),
    (["--hosts", "engine", "--profile", "nosuch.toml"], "--profile nosuch.toml not found"),
    (["--hosts", "gem5", "--gem5", str(FAKE), "--kernel-stock", "/nonexistent/vmlinux"],
     "--kernel-stock /nonexistent/vmlinux not found"),
    (["--points", "kmap-io"], "these run on the kernel host only"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    res = compare(tmp_path, *args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.count("\n") == 1 and message in res.stderr, res.stderr
    assert not (tmp_path / "cmp").exists()


def test_write_docs_needs_the_markers(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("# no markers\n")
    res = compare(tmp_path, "--hosts", "engine", "--write-docs", str(doc))
    assert res.returncode == 2 and "has no marked section: add the lines" in res.stderr
    assert doc.read_text() == "# no markers\n" and not (tmp_path / "cmp").exists()


def test_docs_gem5_md_has_the_marked_section():
    """`percpu compare --write-docs docs/gem5.md` has a place to write the table."""
    from percpu.compare import REPO, check_doc_markers

    check_doc_markers(REPO / "docs" / "gem5.md")
