"""Sweep specs: expansion into points, stable names, and bad input refused before
anything starts (one line naming the key and the fix, exit code 2, nothing written)."""

from __future__ import annotations

import pytest

from percpu.errors import UsageError
from percpu.sweep.spec import load_spec
from tests.sweep.helpers import run_cli, write_spec


def test_grid_times_zip_times_schemes(tmp_path):
    spec = write_spec(tmp_path / "s.toml", tmp_path / "out", "[[zip]]\ncpus = [1, 2, 4]\n"
                      "param.rounds = [3, 2, 1]\n", grid="seed = [1, 2]",
                      fixed="param.pages = 4")
    s = load_spec(spec)
    assert len(s.points) == 2 * 3 * 2
    assert {(p.cpus, p.params["rounds"]) for p in s.points} == {(1, 3), (2, 2), (4, 1)}
    assert s.varying == ["seed", "cpus", "param.rounds"]
    assert len({p.id for p in s.points}) == len(s.points)


def test_point_ids_are_stable_and_names_readable(tmp_path):
    spec = write_spec(tmp_path / "s.toml", tmp_path / "out")
    a = load_spec(spec).points
    b = load_spec(spec).points
    assert [p.id for p in a] == [p.id for p in b]
    assert a[0].name.startswith("ctxmix-shared-procs_per_cpu2-seed1-")
    assert a[0].name.endswith(a[0].id)
    # A parameter that does not vary still enters the id.
    other = write_spec(tmp_path / "t.toml", tmp_path / "out", grid="param.procs_per_cpu = [2, 7]"
                       "\nseed = [1, 2]").read_text().replace("param.rounds = 5",
                                                               "param.rounds = 6")
    (tmp_path / "t.toml").write_text(other)
    c = load_spec(tmp_path / "t.toml").points
    assert [p.name.rsplit("-", 1)[0] for p in a] == [p.name.rsplit("-", 1)[0] for p in c]
    assert not {p.id for p in a} & {p.id for p in c}


BAD = [
    ("[sweep]\nbogus = 1\n", "sweep.bogus: unknown key"),
    ("[grid]\ncolour = [1]\n", "grid.colour: unknown key"),
    ("[grid]\nparam.nope = [1]\n", "has no parameter 'nope'"),
    ("[grid]\nset.cost.nope = [1]\n", "unknown parameter 'cost.nope'"),
    ("[grid]\nseed = []\n", "grid.seed: is empty"),
    ("[grid]\ncpus = [0, 2]\n", "cpus: 0 is out of range"),
    ("[grid]\nparam.procs_per_cpu = [65]\n", "out of range"),
    ("[grid]\nno_pcid = [1]\n", "no_pcid: expected true or false"),
    ("[[zip]]\nseed = [1, 2]\ncpus = [1]\n", "lists of different lengths"),
    ("[fixed]\nseed = [1, 2]\n", "fixed.seed: takes one value"),
]


@pytest.mark.parametrize(("extra", "message"), BAD)
def test_bad_specs_fail_in_one_line_with_exit_2_and_write_nothing(tmp_path, capsys, extra,
                                                                   message):
    spec = write_spec(tmp_path / "s.toml", tmp_path / "out", grid="",
                      fixed="param.rounds = 5")
    text = spec.read_text()
    # Merge the extra table into the spec (TOML forbids a table twice).
    for table in ("[sweep]", "[grid]", "[fixed]"):
        if extra.startswith(table) and table in text:
            text = text.replace(table + "\n", extra, 1)
            break
    else:
        text += extra
    spec.write_text(text)
    code, _, err = run_cli("sweep", str(spec), capsys=capsys)
    assert code == 2, err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_unknown_workload_and_scheme(tmp_path, capsys):
    spec = write_spec(tmp_path / "s.toml", tmp_path / "out")
    spec.write_text(spec.read_text().replace('workload = "ctxmix"', 'workload = "nosuch"'))
    code, _, err = run_cli("sweep", str(spec), capsys=capsys)
    assert code == 2 and "unknown workload 'nosuch'" in err
    spec = write_spec(tmp_path / "s.toml", tmp_path / "out", schemes='["shared", "magic"]')
    code, _, err = run_cli("sweep", str(spec), capsys=capsys)
    assert code == 2 and "unknown scheme 'magic'" in err
    spec = write_spec(tmp_path / "s.toml", tmp_path / "out", schemes='["percpu"]')
    spec.write_text(spec.read_text().replace("[sweep]\n", '[sweep]\nbaseline = "shared"\n'))
    code, _, err = run_cli("sweep", str(spec), capsys=capsys)
    assert code == 2 and "sweep.baseline" in err
    assert not (tmp_path / "out").exists()


def test_gem5_host_needs_an_executable_gem5(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PERCPU_GEM5", raising=False)
    spec = write_spec(tmp_path / "s.toml", tmp_path / "out", schemes='["shared"]')
    spec.write_text(spec.read_text().replace("[sweep]\n", '[sweep]\nhost = "gem5"\n'))
    code, _, err = run_cli("sweep", str(spec), capsys=capsys)
    assert code == 2 and "gem5.path: missing" in err
    spec.write_text(spec.read_text() + '\n[gem5]\npath = "/no/such/gem5.opt"\n')
    code, _, err = run_cli("sweep", str(spec), capsys=capsys)
    assert code == 2 and "gem5.path: /no/such/gem5.opt is not an executable file" in err
    assert not (tmp_path / "out").exists()


def test_gem5_points_run_percpu_gem5_run(tmp_path):
    from percpu.sweep.run import gem5_command

    gem5 = tmp_path / "gem5.opt"
    gem5.write_text("#!/bin/sh\n")
    gem5.chmod(0o755)
    spec = write_spec(tmp_path / "s.toml", tmp_path / "out", schemes='["shared"]',
                      grid="pti = [false, true]")
    spec.write_text(spec.read_text().replace("[sweep]\n", '[sweep]\nhost = "gem5"\n')
                    + f'\n[gem5]\npath = "{gem5}"\ncpu_type = "o3"\n')
    points = load_spec(spec).points
    assert len(points) == 2
    cmd = gem5_command(points[1], tmp_path / "o")
    assert cmd[1:7] == ["-m", "percpu", "gem5", "run", "--gem5", str(gem5)]
    assert "--pti" in cmd and ["--cpu-type", "o3"] == cmd[7:9]
    assert cmd[-4:] == ["-o", str(tmp_path / "o"), "-q", "--no-report"]
    # The root model's costs reach gem5; the engine's other parameters are refused.
    spec.write_text(spec.read_text().replace("pti = [false, true]",
                                             "set.cost.lazy_fault = [350, 1400]"))
    cmd = gem5_command(load_spec(spec).points[1], tmp_path / "o")
    assert cmd[cmd.index("--set") + 1] == "cost.lazy_fault=1400"
    spec.write_text(spec.read_text().replace("set.cost.lazy_fault = [350, 1400]",
                                             "set.cost.invlpg = [1]"))
    with pytest.raises(UsageError, match="no meaning on the gem5 host"):
        load_spec(spec)


def test_slurm_backend_without_sbatch(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    spec = write_spec(tmp_path / "s.toml", tmp_path / "out")
    code, _, err = run_cli("sweep", str(spec), "--backend", "slurm", capsys=capsys)
    assert code == 2 and "sbatch is not on PATH" in err
    assert not (tmp_path / "out").exists()


def test_dry_run_lists_points_and_writes_nothing(tmp_path, capsys):
    spec = write_spec(tmp_path / "s.toml", tmp_path / "out")
    code, out, err = run_cli("sweep", str(spec), "--dry-run", capsys=capsys)
    assert code == 0, err
    assert "8 points (2 schemes), 8 to run on local" in err
    assert out.count("ctxmix-") == 8
    assert not (tmp_path / "out").exists()
