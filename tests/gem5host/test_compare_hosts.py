"""examples/compare_hosts.py with the stand-in gem5: every host's rows are written, the
engine and gem5 also with an extra cost profile, and --reuse-gem5 runs no gem5 point twice."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FAKE = Path(__file__).with_name("fake_gem5.py")


def compare(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    kernel = tmp_path / "vmlinux"
    kernel.write_bytes(b"\x7fELF")
    env = {**os.environ, "FAKE_GEM5_CALLS": str(tmp_path / "calls"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / "compare_hosts.py"), "--gem5", str(FAKE),
         "--cpus", "2", "--only", "pingpong", "--out", str(tmp_path / "hosts"),
         "--checkpoint-dir", str(tmp_path / "cpt"), "--kernel", str(kernel), *args],
        capture_output=True, text=True, env=env, check=False, timeout=600)


def test_compare_hosts_with_an_engine_profile(tmp_path):
    (tmp_path / "costs.toml").write_text("[cost]\nlazy_fault = 1400\n")
    res = compare(tmp_path, "--engine-config", str(tmp_path / "costs.toml"))
    assert res.returncode == 0, res.stdout + res.stderr
    table = json.loads((tmp_path / "hosts" / "compare.json").read_text())
    assert set(table) == {f"{host} pingpong-c2-{p}"
                          for host in ("engine", "engine+costs", "gem5", "gem5+costs")
                          for p in ("pcid", "nopcid")}
    # The extra profile reaches the engine: dearer lazy faults, a larger overhead.
    base, dear = table["engine pingpong-c2-nopcid"], table["engine+costs pingpong-c2-nopcid"]
    assert dear["percpu"]["lazyFaults"] == base["percpu"]["lazyFaults"] > 0
    assert dear["overhead_pct"] > base["overhead_pct"]
    config = json.loads((tmp_path / "hosts" / "engine+costs" / "pingpong-c2-nopcid" / "percpu"
                         / "config.json").read_text())
    assert config["costs"]["cost.lazy_fault"] == 1400
    # gem5+costs: the profile's value of a cost the root model charges reaches gem5's plan.
    plans = {h: json.loads((tmp_path / "hosts" / h / "pingpong-c2-nopcid" / "percpu"
                            / "plan.json").read_text()) for h in ("gem5", "gem5+costs")}
    assert "1400" not in json.dumps(plans["gem5"])
    assert '"lazy_fault_cycles": 1400' in json.dumps(plans["gem5+costs"])
    md = (tmp_path / "hosts" / "compare.md").read_text()
    assert "| pingpong-c2-pcid | gem5 |" in md
    # Copy cycles per allocation: the engine's rootCopyCycles over its allocations (every
    # no-PCID mm switch allocates and copies); the engine reports no instructions.
    p = base["percpu"]
    assert p["rootAllocs::total"] > 0 and p["rootCopyCycles"] > 0
    row = next(ln for ln in md.splitlines() if ln.startswith("| pingpong-c2-nopcid | engine |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[6] == f"{p['rootCopyCycles'] / p['rootAllocs::total']:.0f}"
    assert cells[8] == "—"
    calls = (tmp_path / "calls").read_text().split()
    res = compare(tmp_path, "--reuse-gem5")
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "calls").read_text().split() == calls


def test_compare_hosts_with_pti(tmp_path):
    """--pti runs both hosts with page-table isolation, tagged -pti; --pcid on runs only the
    PCID points."""
    res = compare(tmp_path, "--pti", "--pcid", "on")
    assert res.returncode == 0, res.stdout + res.stderr
    table = json.loads((tmp_path / "hosts" / "compare.json").read_text())
    assert set(table) == {f"{host} pingpong-c2-pcid-pti" for host in ("engine", "gem5")}
    point = tmp_path / "hosts" / "{}" / "pingpong-c2-pcid-pti" / "percpu"
    config = json.loads(Path(str(point).format("engine"), "config.json").read_text())
    assert config["machine"]["pti"] is True and config["machine"]["pcid"] is True
    # gem5 boots the guest with pti=on and restores the PTI machine's own checkpoint.
    plan = json.loads(Path(str(point).format("gem5"), "plan.json").read_text())
    assert "pti=on" in plan["kernel_args"] and "-pti-" in plan["restore"]


def test_compare_hosts_over_engine_seeds(tmp_path):
    """--engine-seeds N runs the engine at seeds 1..N and gives its counts as the mean with
    the range: each image's ASLR draw decides whether its mmap'd heap shares the stack's
    top-level slot, so the lazy faults per allocation vary by seed as in the guest."""
    res = compare(tmp_path, "--pcid", "off", "--engine-seeds", "4")
    assert res.returncode == 0, res.stdout + res.stderr
    table = json.loads((tmp_path / "hosts" / "compare.json").read_text())
    row = table["engine pingpong-c2-nopcid"]
    spread = row["seeds"]["lazyFaults"]
    assert spread["seeds"] == 4
    lazies = [json_lazy(tmp_path / "hosts" / "engine" / d / "percpu" / "stats.txt")
              for d in ("pingpong-c2-nopcid", *(f"seeds/pingpong-c2-nopcid-s{n}" for n in (2, 3, 4)))]
    assert spread["min"] == min(lazies) and spread["max"] == max(lazies)
    assert spread["mean"] == sum(lazies) / 4
    assert row["percpu"]["lazyFaults"] == lazies[0]  # seed 1's run is the table's run dir
    # gem5 runs once; only the engine has seeds.
    assert "seeds" not in table["gem5 pingpong-c2-nopcid"]
    md = (tmp_path / "hosts" / "compare.md").read_text()
    line = next(ln for ln in md.splitlines() if ln.startswith("| pingpong-c2-nopcid | engine |"))
    assert f"{spread['mean']:.0f} ({spread['min']:.0f}-{spread['max']:.0f})" in line
    bad = compare(tmp_path, "--engine-seeds", "0")
    assert bad.returncode == 2 and "--engine-seeds must be 1 or more" in bad.stderr


def json_lazy(stats: Path) -> float:
    from percpu.gem5host.run import headline

    return headline(stats).get("percpu.lazyFaults", 0.0)
