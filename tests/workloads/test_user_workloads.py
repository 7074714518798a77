"""A user's own workloads, as docs/op-program.md tells them to run one: a workload
directory or an op-program file by path, on the command line and in a sweep spec; errors
in their files are bad input naming the file and the line; a malformed definition among
percpu's own breaks only itself."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from percpu.errors import UsageError
from percpu.workloads import definition
from percpu.workloads.definition import find_workload
from tests.sweep.helpers import run_cli

TOML = """name = "mywl"
summary = "P processes per CPU touching their heap"
main_param = "procs"

[params.procs]
type = "int"
default = 2
min = 1
max = 8
help = "processes per CPU"

[params.rounds]
type = "int"
default = 3
min = 1
max = 100
help = "turns each"
"""

TEMPLATE = """percpu-ops 1
{% for p in range(procs * cpus) %}
mm m{{ p }}
  vma heap auto 64K rw
task t{{ p }} mm=m{{ p }} cpus={{ p % cpus }}
program t{{ p }}
  repeat {{ rounds }}
    load heap count=16 stride=4096
    yield
  end
{% endfor %}
"""

OPS = """percpu-ops 1
mm a
  vma heap auto 64K rw
task t mm=a
program t
  repeat 4
    store heap count=8 stride=4096
  end
"""


def make_workload(root: Path, template: str = TEMPLATE, toml: str = TOML) -> Path:
    wl = root / "mywl"
    wl.mkdir()
    (wl / "workload.toml").write_text(toml)
    (wl / "engine.ops.j2").write_text(template)
    return wl


def test_a_workload_directory_runs_by_path_with_its_parameters(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_workload(tmp_path)
    code, out, err = run_cli("run", "-w", "./mywl", "-p", "procs=3", "--cpus", "2",
                             "-o", "out", "--no-report", capsys=capsys)
    assert code == 0, err
    assert "workload mywl (procs=3, rounds=3) on 2 CPUs" in out
    for scheme in ("shared", "percpu"):
        config = json.loads((tmp_path / "out" / scheme / "config.json").read_text())
        assert config["workload"] == "mywl" and config["params"] == {"procs": 3, "rounds": 3}
        program = (tmp_path / "out" / scheme / "program.ops").read_text()
        assert program.count("\ntask ") == 6  # 3 processes on each of 2 CPUs
    code, out, _ = run_cli("workloads", "show", "mywl", capsys=capsys)  # a bare name in cwd
    assert code == 0 and "main parameter: procs" in out and "[1..8]" in out


def test_an_op_program_file_runs_on_the_engine_only(tmp_path, capsys):
    ops = tmp_path / "my.ops"
    ops.write_text(OPS)
    code, out, err = run_cli("run", "-w", str(ops), "-s", "shared", "-o", str(tmp_path / "out"),
                             "--no-report", capsys=capsys)
    assert code == 0, err
    assert (tmp_path / "out" / "shared" / "program.ops").read_text() == OPS
    assert "workload my.ops on 4 CPUs" in out
    with pytest.raises(UsageError, match="runs on the engine only"):
        find_workload(str(ops)).render("gem5", {}, cpus=2)
    code, _, err = run_cli("run", "-w", f"ops:{ops}", "-o", str(tmp_path / "o2"), capsys=capsys)
    assert code == 2 and f"(--workload {ops})" in err


def test_an_op_program_template_sees_cpus(tmp_path):
    ops = tmp_path / "each-cpu.ops.j2"
    ops.write_text("percpu-ops 1\n{% for c in range(cpus) %}mm m{{ c }}\n"
                   "task t{{ c }} mm=m{{ c }} cpus={{ c }}\n{% endfor %}")
    wl = find_workload(str(ops))
    assert wl.render("engine", {}, cpus=3).count("task ") == 3


@pytest.mark.parametrize(("template", "line", "words"), [
    ("percpu-ops 1\n{% for p in range(cpus) %\n", 2, "template syntax error"),
    ("percpu-ops 1\n# fine\n{{ nosuch }}\n", 3, "'nosuch' is undefined"),
    ("percpu-ops 1\n\n\n{{ rounds // 0 }}\n", 4, "ZeroDivisionError"),
])
def test_template_errors_are_the_users_naming_file_and_line(tmp_path, capsys, template, line,
                                                            words):
    wl = make_workload(tmp_path, template)
    out = tmp_path / "out"
    code, _, err = run_cli("run", "-w", str(wl), "-o", str(out), capsys=capsys)
    assert code == 2, err
    assert f"{wl / 'engine.ops.j2'}:{line}: " in err and words in err
    assert "internal error" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_malformed_rendered_program_names_its_file(tmp_path, capsys):
    ops = tmp_path / "bad.ops"
    ops.write_text("percpu-ops 1\nmm a\ntask t mm=a\nprogram t\n  bogus 5\n")
    code, _, err = run_cli("run", "-w", str(ops), "-o", str(tmp_path / "out"), capsys=capsys)
    assert code == 2 and f"{ops}:5: unknown op 'bogus'" in err


@pytest.mark.parametrize(("toml", "words"), [
    ('name = "x"\n[params.n\ntype = "int"\n', "not valid TOML"),
    ('name = "x"\n[params.n]\ntype = "integer"\ndefault = 1\n',
     "workload.toml:3: params.n.type 'integer' is not a type"),
    ('name = "x"\n[params.n]\ntype = "int"\ndefault = 9\nmin = 1\nmax = 4\n',
     "workload.toml:4: params.n.default is invalid: parameter n=9 of workload x is out of range"),
    ('name = "x"\n[params.n]\ntype = "int"\ndefault = 1.5\n',
     "workload.toml:4: params.n.default 1.5 is not of type int"),
    ('name = "x"\nmain_param = "m"\n', "workload.toml:2: main_param 'm' is not one of its params"),
])
def test_a_malformed_definition_names_the_file_line_and_key(tmp_path, toml, words):
    wl = make_workload(tmp_path, toml=toml)
    with pytest.raises(UsageError) as info:
        find_workload(str(wl))
    assert words in str(info.value) and str(wl / "workload.toml") in str(info.value)


def test_one_malformed_definition_breaks_only_itself(tmp_path, capsys, monkeypatch):
    shipped = tmp_path / "workloads"
    shutil.copytree(definition.workloads_dir(), shipped,
                    ignore=shutil.ignore_patterns("guest", "traces"))
    (shipped / "broken").mkdir()
    (shipped / "broken" / "workload.toml").write_text('name = "broken"\n[params.x\n')
    monkeypatch.setattr(definition, "workloads_dir", lambda: shipped)
    definition._scan.cache_clear()
    try:
        code, out, err = run_cli("run", "-p", "rounds=2", "-o", str(tmp_path / "out"),
                                 "--no-report", capsys=capsys)
        assert code == 0, err
        code, out, _ = run_cli("workloads", "list", capsys=capsys)
        assert code == 0 and out.startswith("ctxmix") and "pingpong" in out
        assert "broken" in out and "unusable" in out and "not valid TOML" in out
        code, _, err = run_cli("run", "-w", "broken", "-o", str(tmp_path / "o2"), capsys=capsys)
        assert code == 2 and "broken/workload.toml: not valid TOML" in err
    finally:
        definition._scan.cache_clear()


def _spec(path: Path, workload: str, outdir: Path) -> Path:
    path.write_text(f'[sweep]\nworkload = "{workload}"\nschemes = ["shared"]\n'
                    f'outdir = "{outdir}"\nreport = false\n[fixed]\ncpus = 2\n'
                    "[grid]\nparam.rounds = [2, 4]\n")
    return path


def test_a_sweep_runs_a_workload_directory_and_an_edit_makes_new_points(tmp_path, capsys):
    wl = make_workload(tmp_path)
    out = tmp_path / "sweep"
    spec = _spec(tmp_path / "s.toml", str(wl), out)
    code, _, err = run_cli("sweep", str(spec), "-j", "1", "-q", capsys=capsys)
    assert code == 0, err
    names = sorted(p.name for p in (out / "points").iterdir())
    assert len(names) == 2 and all(n.startswith("mywl-shared-rounds") for n in names)
    config = json.loads((out / "points" / names[0] / "shared" / "config.json").read_text())
    assert config["workload"] == "mywl"
    # The same spec after an edit of the template: its points are new, not the old results.
    (wl / "engine.ops.j2").write_text(TEMPLATE.replace("count=16", "count=8"))
    code, _, err = run_cli("sweep", str(spec), "-j", "1", capsys=capsys)
    assert code == 0, err
    assert "ran 2 points" in err and " on 1 worker " in err  # '1 worker', not '1 workers'
    assert len(list((out / "points").iterdir())) == 4


def test_a_sweep_spec_names_the_key_of_a_bad_workload(tmp_path, capsys):
    spec = _spec(tmp_path / "s.toml", "./nothere", tmp_path / "out")
    code, _, err = run_cli("sweep", str(spec), "--dry-run", capsys=capsys)
    assert code == 2 and "s.toml: sweep.workload: workload ./nothere not found" in err


def test_a_sweep_refuses_a_workload_its_host_cannot_run_before_anything_runs(tmp_path,
                                                                            capsys):
    wl = make_workload(tmp_path)
    (wl / "engine.ops.j2").unlink()
    spec = _spec(tmp_path / "s.toml", str(wl), tmp_path / "out")
    code, _, err = run_cli("sweep", str(spec), capsys=capsys)
    assert code == 2 and f"sweep.workload: workload mywl has no engine template ({wl}" in err
    assert not (tmp_path / "out").exists()


def test_an_op_program_in_a_gem5_sweep_is_refused_naming_the_key(tmp_path, capsys):
    ops = tmp_path / "my.ops"
    ops.write_text(OPS)
    gem5 = tmp_path / "gem5.opt"
    gem5.write_text("#!/bin/sh\n")
    gem5.chmod(0o755)
    spec = tmp_path / "s.toml"
    spec.write_text(f'[sweep]\nhost = "gem5"\nworkload = "{ops}"\nschemes = ["shared"]\n'
                    f'outdir = "{tmp_path / "out"}"\n[gem5]\npath = "{gem5}"\n')
    code, _, err = run_cli("sweep", str(spec), "--dry-run", capsys=capsys)
    assert code == 2 and f"sweep.workload: {ops} is an op program, which runs on the engine " \
        "only" in err
