"""Model parameters from --set, --config and a sweep spec: an integer parameter refuses a
fraction (the engine would truncate it), a flag and a --set of the same parameter must
agree, and a geometry the engine cannot build is refused naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from percpu.params import specs
from tests.sweep.helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["-p", "rounds=2", "-p", "pages=4", "--no-report", "-q"]


def _integer_keys_core_reads() -> set[str]:
    """Every parameter core/ reads as an integer: get_int, get_bool, the Cycles of the
    cost cache (cost_cache.h), and the seed (a uint64_t)."""
    keys = {"machine.seed"}
    for path in (ROOT / "core").rglob("*"):
        if path.suffix not in (".h", ".cc"):
            continue
        text = path.read_text()
        keys |= set(re.findall(r'get_(?:int|bool)\("([a-z0-9_.]+)"\)', text))
        if path.name == "cost_cache.h":
            keys |= set(re.findall(r'X\(\w+, "([a-z0-9_.]+)"\)', text))
    return keys


def test_every_key_core_reads_as_an_integer_refuses_fractions():
    keys = _integer_keys_core_reads()
    assert len(keys) > 40  # the scan found the table, not nothing
    table = specs()
    assert keys <= set(table)
    assert not [k for k in keys if not table[k].integer]
    assert not table["noise.compute_jitter"].integer and not table["machine.freq_mhz"].integer


@pytest.mark.parametrize(("args", "line"), [
    (["--set", "tlb.l1d.entries=64.5"],
     "--set tlb.l1d.entries=64.5: tlb.l1d.entries takes a whole number of entries, not 64.5"),
    (["--set", "cost.invlpg=260.5"],
     "--set cost.invlpg=260.5: cost.invlpg takes a whole number of cycles, not 260.5"),
    (["--set", "machine.pcid=0.5"], "--set machine.pcid=0.5: machine.pcid takes 0 or 1, not 0.5"),
    (["--cpus", "4", "--set", "machine.cpus=8"],
     "--cpus 4 and --set machine.cpus=8 disagree: give it once (--cpus or --set machine.cpus)"),
    (["--seed", "3", "--set", "machine.seed=5"],
     "--seed 3 and --set machine.seed=5 disagree: give it once (--seed or --set machine.seed)"),
    (["--no-pcid", "--set", "machine.pcid=1"], "--no-pcid and --set machine.pcid=1 disagree"),
    (["--paging", "5", "--set", "machine.paging_levels=4"],
     "--paging 5 and --set machine.paging_levels=4 disagree"),
    (["--set", "tlb.l1d.entries=48"],
     ("tlb.l1d.entries=48: tlb.l1d.entries must be tlb.l1d.ways (4) times a power of two "
      "(its sets): use e.g. 32 or 64")),
    (["--set", "tlb.stlb.ways=5"],
     ("tlb.stlb.ways=5: tlb.stlb.ways must divide tlb.stlb.entries (1536) into a "
      "power-of-two number of sets")),
    (["--set", "cache.l2.ways=7"],
     ("cache.l2.ways=7: cache.l2.size_kib (256 KiB, 4096 lines of 64 bytes) must be a "
      "whole number of sets of cache.l2.ways (7) lines")),
])
def test_bad_values_get_one_line_naming_the_key_and_write_nothing(tmp_path, capsys, args, line):
    out = tmp_path / "out"
    code, stdout, err = run_cli("run", *SMALL, *args, "-o", str(out), capsys=capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("percpu: error: ") and line in lines[0]
    assert not stdout and not out.exists()


def test_flags_and_set_that_agree_and_whole_numbers_run(tmp_path, capsys):
    code, _, err = run_cli("run", *SMALL, "--cpus", "2", "--set", "machine.cpus=2",
                           "--set", "tlb.l1d.entries=64.0", "--set", "noise.compute_jitter=0.05",
                           "-s", "shared", "-o", str(tmp_path / "out"), capsys=capsys)
    assert code == 0, err
    config = (tmp_path / "out" / "shared" / "config.json").read_text()
    assert '"tlb.l1d.entries": 64.0' in config and '"machine.cpus": 2' in config


def test_a_config_file_fraction_names_its_line(tmp_path, capsys):
    conf = tmp_path / "geometry.toml"
    conf.write_text("[tlb]\nl1d.ways = 4\nl1d.entries = 64.5\n")
    code, _, err = run_cli("run", *SMALL, "--config", str(conf), "-o", str(tmp_path / "o"),
                           capsys=capsys)
    assert code == 2
    assert f"--config {conf}:3: tlb.l1d.entries = 64.5: tlb.l1d.entries takes a whole" in err


@pytest.mark.parametrize(("table", "line", "words"), [
    ("[grid]\nset.tlb.l1d.entries = [64, 64.5]", "grid.set.tlb.l1d.entries",
     "tlb.l1d.entries takes a whole number of entries"),
    ("[[zip]]\nset.tlb.l1d.entries = [48, 64]\nseed = [1, 2]", "zip.set.tlb.l1d.entries",
     "tlb.l1d.entries must be tlb.l1d.ways (4) times a power of two"),
    ("[grid]\nparam.rounds = [2, 2.5]", "grid.param.rounds",
     "parameter rounds of workload ctxmix takes an integer, not '2.5'"),
    ("[grid]\nparam.nosuch = [1, 2]", "grid.param.nosuch",
     "workload ctxmix has no parameter 'nosuch'"),
    ("[grid]\ncpus = [2, 1000]", "grid.cpus", "1000 is out of range"),
    ("[grid]\nseed = [1, 2]\n[[zip]]\npti = [true, 1]\ncpus = [1, 2]", "zip.pti",
     "expected true or false, got 1"),
])
def test_sweep_spec_errors_give_the_full_key(tmp_path, capsys, table, line, words):
    spec = tmp_path / "s.toml"
    spec.write_text(f'[sweep]\nworkload = "ctxmix"\noutdir = "{tmp_path / "out"}"\n'
                    f"[fixed]\nparam.pages = 4\n{table}\n")
    code, _, err = run_cli("sweep", str(spec), "--dry-run", capsys=capsys)
    assert code == 2, err
    assert f"{spec}: {line}: " in err and words in err, err
    assert not (tmp_path / "out").exists()
