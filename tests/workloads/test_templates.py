"""Workload definitions: every workload.toml is well formed, both templates render (jinja2,
StrictUndefined) into a valid op program and a guest script, and the two renderings agree
with the parameters (task counts, repeat counts, pinning, weighted op totals on the engine
side; the guest program's command-line flags on the gem5 side)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from wlrender import (
    GUEST,
    STYLES,
    OpProgram,
    check_program,
    defaults,
    flag_name,
    guest_command,
    load_def,
    memory_refs,
    outer_repeats,
    params_from_flags,
    parse_ops,
    render,
    totals,
    workload_dirs,
)

EXPECTED_WORKLOADS = {
    "ctxmix",
    "pingpong",
    "forkexec",
    "threads-munmap",
    "kmap-io",
    "server",
    "hotplug",
}
CPU_COUNTS = (1, 4)
# Default runs must stay small for the engine: a second or two each.
MAX_DEFAULT_REFS = 3_000_000
GUEST_ONLY_FLAGS = {"--cpus", "--roi", "--dir"}

DIRS = workload_dirs()
IDS = [d.name for d in DIRS]


def test_all_workloads_present() -> None:
    assert EXPECTED_WORKLOADS <= set(IDS)


@pytest.mark.parametrize("wdir", DIRS, ids=IDS)
def test_definition_well_formed(wdir: Path) -> None:
    defn = load_def(wdir)
    assert defn["name"] == wdir.name
    for key in ("summary", "exercises"):
        assert isinstance(defn.get(key), str) and defn[key].strip(), f"{key} missing"
    assert defn.get("main_param") in defn["params"], "main_param must name a parameter"
    engine_src = (wdir / "engine.ops.j2").read_text()
    for name, spec in defn["params"].items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        assert spec.get("help"), f"{name}: help missing"
        if spec["type"] == "int":
            assert isinstance(spec["default"], int) and not isinstance(spec["default"], bool)
            assert spec["min"] <= spec["default"] <= spec["max"], f"{name}: default out of range"
        elif spec["type"] == "bool":
            assert isinstance(spec["default"], bool), name
        else:
            pytest.fail(f"{name}: unknown type {spec['type']!r}")
        assert re.search(rf"\b{name}\b", engine_src), f"engine.ops.j2 ignores {name}"
    assert defn["params"][defn["main_param"]]["type"] == "int", "main_param must be sweepable"


# ---------------------------------------------------------------- expected facts per workload
# Each function gives, from the parameters, what the op program must contain:
#   tasks: started tasks; pins: task -> cpus=; outer: task -> top-level repeat counts;
#   totals: weighted op totals over all task instances (see wlrender.totals).


def _pin(i: int, cpus: int, pinned: bool) -> str:
    return str(i % cpus) if pinned else "all"


def exp_ctxmix(p: dict[str, Any], cpus: int) -> dict[str, Any]:
    n = p["procs_per_cpu"] * cpus
    turns = n * p["rounds"]
    return {
        "tasks": n,
        "pins": {f"p{i}": _pin(i, cpus, p["pinned"]) for i in range(n)},
        "outer": {f"p{i}": [p["rounds"]] for i in range(n)},
        "totals": {
            "load:heap": turns * p["pages"],
            "yield": turns,
            "compute_cycles": turns * p["work_cycles"],
        },
    }


def exp_pingpong(p: dict[str, Any], cpus: int) -> dict[str, Any]:
    pins = {}
    for i in range(p["pairs"]):
        a = i % cpus if p["same_cpu"] else (2 * i) % cpus
        b = a if p["same_cpu"] else (2 * i + 1) % cpus
        pins[f"ping{i}"], pins[f"pong{i}"] = str(a), str(b)
    trips = p["pairs"] * p["iterations"]
    return {
        "tasks": 2 * p["pairs"],
        "pins": pins,
        "outer": {t: [p["iterations"]] for t in pins},
        "totals": {"signal": 2 * trips, "wait": 2 * trips, "load:heap": 2 * trips * p["pages"]},
    }


def exp_forkexec(p: dict[str, Any], cpus: int) -> dict[str, Any]:
    n = p["forkers_per_cpu"] * cpus
    forks = n * p["forks"]
    pins = {}
    for f in range(n):
        pins[f"forker{f}"] = pins[f"child{f}"] = _pin(f, cpus, p["pinned"])
    return {
        "tasks": n,
        "pins": pins,
        "outer": {f"forker{f}": [p["forks"]] for f in range(n)},
        "totals": {
            "fork": forks,
            "exec": forks if p["exec"] else 0,
            "store:heap": n * p["pages"] + (0 if p["exec"] else forks * p["pages"]),
            "signal": forks,
        },
    }


def exp_threads_munmap(p: dict[str, Any], cpus: int) -> dict[str, Any]:
    n, maps = p["threads"], p["threads"] * p["iterations"]
    return {
        "tasks": n,
        "pins": {f"t{t}": _pin(t, cpus, p["pinned"]) for t in range(n)},
        "outer": {f"t{t}": [p["iterations"]] for t in range(n)},
        "totals": {"mmap": maps, "munmap": maps, "store": maps * p["map_pages"]},
        "mms": 1,
        "mmap_sizes": {p["map_pages"] * 4096},
        "mmap_addrs": ({(32 + t) << 39 for t in range(n)} if p["fresh_slot"] else {"auto"}),
    }


def exp_kmap_io(p: dict[str, Any], cpus: int) -> dict[str, Any]:
    n = p["procs_per_cpu"] * cpus
    pages = -(-p["io_kib"] // 4)
    copied = n * p["iterations"] * 4 * pages  # four copies per round
    return {
        "tasks": n,
        "pins": {f"io{i}": _pin(i, cpus, p["pinned"]) for i in range(n)},
        "outer": {f"io{i}": [p["iterations"]] for i in range(n)},
        "totals": {"kmap_local": copied, "kunmap_local": copied, "kcopy_bytes": copied * 4096},
    }


def exp_server(p: dict[str, Any], cpus: int) -> dict[str, Any]:
    w, r = p["workers"], p["requests"]
    pins = {"dispatcher": "all"} | {f"worker{i}": _pin(i, cpus, p["pinned"]) for i in range(w)}
    return {
        "tasks": w + 1,
        "pins": pins,
        "outer": {t: [r] for t in pins},
        "totals": {
            "signal": 2 * w * r,
            "wait": 2 * w * r,
            "load:heap": w * r * p["pages"],
            "compute_cycles": w * r * p["work_cycles"],
        },
    }


def exp_hotplug(p: dict[str, Any], cpus: int) -> dict[str, Any]:
    h, c = p["holders"], p["cycles"]
    pins = {"ctl": "0"} | {f"holder{i}": "all" for i in range(h)}
    hot = c if cpus > 1 else 0
    return {
        "tasks": h + 1,
        "pins": pins,
        "outer": {t: [c] for t in pins},
        "totals": {
            "cpu_offline": hot,
            "cpu_online": hot,
            "kmap_local": h * c * p["maps"],
            "kunmap_local": h * c * p["maps"],
            "migrate": h * c,
            "sleep_cycles": 3000 * (h * c * p["sleep_us"] + c * p["offline_us"]),
        },
        "migrate_to": {cpus - 1},
    }


EXPECT: dict[str, Callable[[dict[str, Any], int], dict[str, Any]]] = {
    "ctxmix": exp_ctxmix,
    "pingpong": exp_pingpong,
    "forkexec": exp_forkexec,
    "threads-munmap": exp_threads_munmap,
    "kmap-io": exp_kmap_io,
    "server": exp_server,
    "hotplug": exp_hotplug,
}


def extract(prog: OpProgram, expected: dict[str, Any]) -> dict[str, Any]:
    """The same facts, read from the op program."""
    t = totals(prog)
    started = [name for name, task in prog.tasks.items() if task.start]
    got: dict[str, Any] = {
        "tasks": len(started),
        "pins": {name: task.cpus for name, task in prog.tasks.items()},
        "outer": {name: outer_repeats(prog.programs[name]) for name in started},
        "totals": {k: t.get(k, 0) for k in expected["totals"]},
    }
    ops = [(op, name) for name, body in prog.programs.items() for op in _flat(body)]
    if "mms" in expected:
        got["mms"] = len({prog.tasks[n].mm for n in started})
    if "mmap_sizes" in expected:
        from wlrender import parse_num, parse_size

        mmaps = [op for op, _ in ops if op.name == "mmap"]
        got["mmap_sizes"] = {parse_size(op.args[2]) for op in mmaps}
        got["mmap_addrs"] = {
            op.args[1] if op.args[1] == "auto" else parse_num(op.args[1]) for op in mmaps
        }
    if "migrate_to" in expected:
        got["migrate_to"] = {int(op.args[0]) for op, _ in ops if op.name == "migrate"}
    return got


def _flat(ops):
    for op in ops:
        yield op
        yield from _flat(op.body)


def variants(defn: dict[str, Any]) -> list[dict[str, Any]]:
    """Defaults, each bool flipped, and the main parameter at its minimum and doubled."""
    base = defaults(defn)
    out = [base]
    for name, spec in defn["params"].items():
        if spec["type"] == "bool":
            out.append(base | {name: not base[name]})
    main = defn["main_param"]
    spec = defn["params"][main]
    out.append(base | {main: spec["min"]})
    out.append(base | {main: min(spec["max"], max(2, 2 * base[main]))})
    # zero-valued optional work (pages=0, work_cycles=0, sleep_us=0) must still render
    out.append(base | {n: s["min"] for n, s in defn["params"].items() if s["type"] == "int"})
    return out


CASES = [
    pytest.param(wdir, cpus, i, id=f"{wdir.name}-cpus{cpus}-v{i}")
    for wdir in DIRS
    for cpus in CPU_COUNTS
    for i in range(len(variants(load_def(wdir))))
]


@pytest.mark.parametrize(("wdir", "cpus", "variant"), CASES)
def test_renderings_agree(wdir: Path, cpus: int, variant: int) -> None:
    defn = load_def(wdir)
    params = variants(defn)[variant]

    progs = [parse_ops(render(wdir, "engine.ops.j2", params, cpus, style=s)) for s in STYLES]
    prog = progs[0]
    check_program(prog, cpus)
    assert progs[1] == prog, "trim_blocks/lstrip_blocks must not change the op program"

    script = render(wdir, "gem5.sh.j2", params, cpus)
    trimmed = guest_command(render(wdir, "gem5.sh.j2", params, cpus, style="trim"))
    assert trimmed.argv == guest_command(script).argv
    cmd = guest_command(script)
    assert cmd.argv[0] == f"/sbin/{cmd.binary}"
    assert cmd.binary == wdir.name.replace("-", "_")
    assert (GUEST / f"{cmd.binary}.c").is_file(), f"no guest program {cmd.binary}.c"
    assert cmd.flags.get("--cpus") == str(cpus)
    assert cmd.flags.get("--roi") is True
    known = {flag_name(n) for n in defn["params"]} | GUEST_ONLY_FLAGS
    known |= {"--no-" + flag_name(n)[2:] for n, s in defn["params"].items() if s["type"] == "bool"}
    assert set(cmd.flags) <= known, f"unknown flags {set(cmd.flags) - known}"
    from_flags = params_from_flags(defn, cmd.flags)
    assert from_flags == params

    name = defn["name"]
    expected_from_params = EXPECT[name](params, cpus)
    assert extract(prog, expected_from_params) == expected_from_params
    # and the guest script's own flags imply the same engine facts
    assert EXPECT[name](from_flags, int(cmd.flags["--cpus"])) == expected_from_params


@pytest.mark.parametrize("cpus", CPU_COUNTS)
@pytest.mark.parametrize("wdir", DIRS, ids=IDS)
def test_default_run_is_small(wdir: Path, cpus: int) -> None:
    prog = parse_ops(render(wdir, "engine.ops.j2", defaults(load_def(wdir)), cpus))
    refs = memory_refs(prog)
    assert 0 < refs <= MAX_DEFAULT_REFS, f"{wdir.name}: {refs} memory references by default"


@pytest.mark.parametrize("wdir", DIRS, ids=IDS)
def test_guest_script_shape(wdir: Path) -> None:
    script = render(wdir, "gem5.sh.j2", defaults(load_def(wdir)), 4)
    assert script.startswith("#!/bin/sh\n")
    commands = [ln.strip() for ln in script.splitlines() if ln.strip() and ln[0] != "#"]
    assert commands[-1] == "m5 exit", "the script must end with the m5 exit fallback"
    assert "set -e" not in script, "a failing program must still reach m5 exit"
    if shutil.which("sh"):
        subprocess.run(["sh", "-n"], input=script, text=True, check=True)


def test_missing_parameter_is_an_error() -> None:
    import jinja2

    wdir = next(d for d in DIRS if d.name == "ctxmix")
    params = defaults(load_def(wdir))
    del params["rounds"]
    with pytest.raises(jinja2.UndefinedError):
        render(wdir, "engine.ops.j2", params, 4)


def test_parser_rejects_bad_programs() -> None:
    with pytest.raises(ValueError):
        parse_ops("mm a\n")
    with pytest.raises(ValueError):
        parse_ops("percpu-ops 1\ntask t mm=a\nprogram t\n  repeat 3\n    yield\n")
    with pytest.raises(ValueError):
        parse_ops("percpu-ops 1\ntask t mm=a\nprogram t\n  frobnicate\n")
    prog = parse_ops(
        "percpu-ops 1\nmm a\n  vma x 0x1000 4K rw\ntask t mm=a cpus=3\nprogram t\n  load x\n"
    )
    with pytest.raises(AssertionError):
        check_program(prog, cpus=2)


@pytest.mark.parametrize("cpus", CPU_COUNTS)
@pytest.mark.parametrize("wdir", DIRS, ids=IDS)
def test_percpu_parser_accepts(wdir: Path, cpus: int) -> None:
    """Cross-check with the engine's own parser (percpu.workloads.program), when importable."""
    program = pytest.importorskip("percpu.workloads.program")
    for params in variants(load_def(wdir)):
        text = render(wdir, "engine.ops.j2", params, cpus, style="trim")
        parsed = program.parse_program(text, cpus, source=f"{wdir.name}/engine.ops.j2")
        mine = parse_ops(text)
        assert len(parsed.started_tasks()) == sum(t.start for t in mine.tasks.values())
        assert {t.name: t.cpus_text for t in parsed.tasks} == {
            n: t.cpus for n, t in mine.tasks.items()
        }
