"""One run request for both hosts (percpu/run_request.py): the engine's and the gem5
host's entry points take the same flags with the same defaults, the same command line
is the same run on either host or one line (exit 2) saying why a flag does not apply
there, and sweeps use the same defaults and checks."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from percpu import run_request as rr
from percpu.cli import main, run_command
from percpu.errors import UsageError
from percpu.params import core, specs

ROOT = Path(__file__).resolve().parents[2]


def _help(argv: list[str], env: dict[str, str] | None = None) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120,
                         env={**os.environ, "COLUMNS": "100", **(env or {})})
    assert res.returncode == 0, res.stderr
    return res.stdout


def _options(help_text: str) -> str:
    return help_text[help_text.index("\nOptions:"):]


def test_both_entry_points_print_the_same_flags_and_defaults(tmp_path: Path) -> None:
    engine = _help([sys.executable, str(ROOT / "configs" / "percpu.py"), "--help"])
    # gem5.opt configs/percpu.py: a stand-in m5 module makes the script take its gem5
    # branch, which hands over to `percpu gem5 run --gem5 <this binary>`.
    (tmp_path / "m5").mkdir()
    (tmp_path / "m5" / "__init__.py").write_text("")
    gem5 = _help([sys.executable, str(ROOT / "configs" / "percpu.py"), "--help"],
                 env={"PYTHONPATH": str(tmp_path), "PERCPU_PYTHON": sys.executable})
    assert "gem5 full-system guest" in gem5 and "embedded engine" in engine
    assert _options(engine) == _options(gem5)
    cpus = specs()["machine.cpus"]
    flat = " ".join(_options(engine).split())
    for shown in (f"--cpus INTEGER number of CPUs, {cpus.min:g}..{cpus.max:g}",
                  f"[default: {cpus.default:g}]", f"[default: {rr.DEFAULT_SCHEMES}]",
                  f"[default: {rr.DEFAULT_WORKLOAD}]", "[default: m5out]"):
        assert shown in flat, shown


@pytest.fixture()
def gem5_files(stand_in_gem5: tuple[Path, Path]) -> dict[str, str]:
    gem5, kernel = stand_in_gem5
    return {"gem5_path": str(gem5), "kernel": str(kernel)}


def test_one_command_line_is_one_run_on_either_host(tmp_path: Path,
                                                    gem5_files: dict[str, str]) -> None:
    flags = {"workload": "ctxmix", "params": ("procs_per_cpu=6",), "pti": True,
             "outdir": str(tmp_path / "out"), "sets": ("cost.lazy_fault=700",)}
    engine = rr.RunRequest(**flags).validate("engine")
    gem5 = rr.RunRequest(**flags, **gem5_files).validate("gem5")
    for field in ("params", "schemes", "baseline", "outdir", "cpus", "seed"):
        assert getattr(engine, field) == getattr(gem5, field), field
    assert engine.workload.name == gem5.workload.name == "ctxmix"
    assert engine.schemes == ["shared", "percpu"] and engine.baseline == "shared"
    assert engine.cpus == specs()["machine.cpus"].default
    assert engine.overrides["cost.lazy_fault"] == gem5.overrides["cost.lazy_fault"] == 700
    assert engine.overrides["machine.pti"] == 1


def test_gem5_runs_every_scheme_of_the_registry(tmp_path: Path,
                                                gem5_files: dict[str, str]) -> None:
    names = [n for n, _ in core().scheme_names()]
    run = rr.RunRequest(scheme_text=",".join(names), outdir=str(tmp_path / "o"),
                        **gem5_files).validate("gem5")
    assert run.schemes == names and "percpu-eager" in names


@pytest.mark.parametrize("name", list(rr.GEM5_FLAG_NAMES))
def test_the_engine_refuses_a_gem5_flag_in_one_line(name: str, tmp_path: Path, capsys) -> None:
    flag = rr.GEM5_FLAG_NAMES[name]
    value = {"--cpu-type": "o3", "--caches": "ruby", "--mem": "1024", "--timeout": "60",
             "--max-sim-seconds": "5", "--kernel-kmap": "private",
             "--kernel-roots": "off"}.get(flag, str(tmp_path / "x"))
    args = [flag] if flag == "--kernel-time" else [flag, value]  # a switch
    with pytest.raises(SystemExit) as exit_:
        main([*args, "-o", str(tmp_path / "out")], prog_name="configs/percpu.py",
             command=run_command)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2
    assert len(err) == 1 and f"{flag} applies to the gem5 host only" in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("flags", "message"), [
    ({"paging": "5"}, "--paging 5 has no meaning on the gem5 host"),
    ({"sets": ("cache.l1d.ways=4",)}, "--set cache.l1d.ways has no meaning on the gem5 host"),
    ({"cpus": 17}, "--cpus 17 is out of range on the gem5 host: use 1..16"),
    ({"workload": "trace:x.trace"}, "--workload trace: replays on the engine only"),
])
def test_gem5_says_why_an_engine_flag_does_not_apply(flags: dict, message: str, tmp_path: Path,
                                                     gem5_files: dict[str, str]) -> None:
    out = str(tmp_path / "out")
    with pytest.raises(UsageError, match=re.escape(message)):
        rr.RunRequest(**flags, outdir=out, **gem5_files).validate("gem5")
    # --paging 4 is the guest's own: the same run, accepted.
    rr.RunRequest(paging="4", outdir=out, **gem5_files).validate("gem5")


def test_outdir_checks_say_the_same_on_both_hosts(tmp_path: Path,
                                                  gem5_files: dict[str, str]) -> None:
    (tmp_path / "out" / "shared").mkdir(parents=True)
    (tmp_path / "out" / "shared" / "notes.txt").write_text("mine")
    said = []
    for host, extra in (("engine", {}), ("gem5", gem5_files)):
        with pytest.raises(UsageError) as exc:
            rr.RunRequest(outdir=str(tmp_path / "out"), **extra).validate(host)
        said.append(str(exc.value))
        rr.RunRequest(outdir=str(tmp_path / "out"), force=True, **extra).validate(host)
    assert said[0] == said[1] and "is not a previous percpu run" in said[0]
    # A gem5 run's directory is a previous run: replaced without --force.
    (tmp_path / "out" / "shared" / "notes.txt").unlink()
    (tmp_path / "out" / "shared" / "percpu.json").write_text('{"host": "gem5"}')
    (tmp_path / "out" / "shared" / "console.log").write_text("")
    rr.RunRequest(outdir=str(tmp_path / "out"), **gem5_files).validate("gem5")


def test_a_sweep_point_has_a_single_runs_defaults(tmp_path: Path,
                                                  gem5_files: dict[str, str]) -> None:
    from percpu.sweep.spec import load_spec

    for host in ("engine", "gem5"):
        spec = tmp_path / f"{host}.toml"
        gem5 = f'\n[gem5]\npath = "{gem5_files["gem5_path"]}"\nkernel = "{gem5_files["kernel"]}"\n'
        spec.write_text(f'[sweep]\nhost = "{host}"\noutdir = "{tmp_path / host}"\n'
                        + (gem5 if host == "gem5" else ""))
        loaded = load_spec(spec)
        run = rr.RunRequest(outdir=str(tmp_path / "o")).validate("engine")
        assert loaded.schemes == run.schemes and loaded.baseline == run.baseline
        assert {(p.cpus, p.seed, p.paging) for p in loaded.points} == {
            (run.cpus, run.seed, int(specs()["machine.paging_levels"].default))}
        assert {p.workload for p in loaded.points} == {rr.DEFAULT_WORKLOAD}


def _import_graph() -> dict[str, set[str]]:
    """Every percpu module and the percpu modules it imports, at any depth of its code
    (an import inside a function is still a dependency)."""
    mods = {}
    for path in (ROOT / "percpu").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        mods[name] = path
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            hit = next((t for t in targets if t in mods and t != name), None)
            if hit:
                graph[name].add(hit)
    return graph


def test_percpu_has_no_import_cycle() -> None:
    graph = _import_graph()
    assert "percpu.run_request" in graph["percpu.cli"]
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles
