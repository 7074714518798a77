"""Workload definitions: every workload.toml is well formed, both templates render (jinja2,
StrictUndefined) into a valid op program and a guest script, and the two renderings agree
with the parameters (task counts, repeat counts, pinning, weighted op totals on the engine
side; the guest program's command-line flags on the gem5 side)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from wlrender import (
    GUEST,
    STYLES,
    check_program,
    defaults,
    flag_name,
    guest_command,
    memory_refs,
    op_name,
    outer_repeats,
    params_from_flags,
    parse,
    render,
    task,
    totals,
    workloads,
)

from percpu.workloads import Workload
from percpu.workloads.definition import cycles_per_us
from percpu.workloads.program import Program, ProgramError

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

DIRS = workloads()
IDS = [wl.name for wl in DIRS]


def test_all_workloads_present() -> None:
    assert EXPECTED_WORKLOADS <= set(IDS)


@pytest.mark.parametrize("wl", DIRS, ids=IDS)
def test_definition_well_formed(wl: Workload) -> None:
    assert wl.name == wl.path.name
    for key in ("summary", "exercises"):
        assert isinstance(getattr(wl, key), str) and getattr(wl, key).strip(), f"{key} missing"
    assert wl.main_param in wl.params, "main_param must name a parameter"
    engine_src = (wl.path / "engine.ops.j2").read_text()
    for name, spec in wl.params.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        assert spec.help, f"{name}: help missing"
        if spec.type == "int":
            assert isinstance(spec.default, int) and not isinstance(spec.default, bool)
            assert spec.min <= spec.default <= spec.max, f"{name}: default out of range"
        elif spec.type == "bool":
            assert isinstance(spec.default, bool), name
        else:
            pytest.fail(f"{name}: unknown type {spec.type!r}")
        assert re.search(rf"\b{name}\b", engine_src), f"engine.ops.j2 ignores {name}"
    assert wl.params[wl.main_param].type == "int", "main_param must be sweepable"


# ---------------------------------------------------------------- expected facts per workload
# Each function gives, from the parameters, what the op program must contain:
#   tasks: started tasks; pins: task -> cpus=; outer: task -> top-level repeat counts;
#   totals: weighted op totals over all task instances (see wlrender.totals).


def _pin(i: int, cpus: int, pinned: bool) -> str:
    return str(i % cpus) if pinned else "all"


def _ctxmix_outer(i: int, n: int, cpus: int, rounds: int) -> list[int]:
    # A ring's first process takes its first turn without a read (the token is there),
    # its last one its last turn without a write (no one would read it).
    first, last = i < cpus, i + cpus >= n
    middle = rounds - first - last
    return ([1] if first else []) + ([middle] if middle > 0 else []) + (
        [1] if last and (rounds > 1 or not first) else [])


def exp_ctxmix(p: dict[str, Any], cpus: int) -> dict[str, Any]:
    n = p["procs_per_cpu"] * cpus
    turns = n * p["rounds"]
    return {
        "tasks": n,
        "pins": {f"p{i}": _pin(i, cpus, p["pinned"]) for i in range(n)},
        "outer": {f"p{i}": _ctxmix_outer(i, n, cpus, p["rounds"]) for i in range(n)},
        "totals": {
            "load:heap": turns * p["pages"],
            # the token: a read (wait) and a write (signal) per turn, and each ring's
            # first token
            "wait": turns - min(cpus, n),
            "signal": turns - min(cpus, n),
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
            "sleep_cycles": round(cycles_per_us()) * (h * c * p["sleep_us"] + c * p["offline_us"]),
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


def extract(prog: Program, expected: dict[str, Any]) -> dict[str, Any]:
    """The same facts, read from the parsed op program."""
    t = totals(prog)
    started = [tk.name for tk in prog.tasks if tk.start]
    got: dict[str, Any] = {
        "tasks": len(started),
        "pins": {tk.name: tk.cpus_text for tk in prog.tasks},
        "outer": {name: outer_repeats(task(prog, name).ops) for name in started},
        "totals": {k: t.get(k, 0) for k in expected["totals"]},
    }
    ops = [op for tk in prog.tasks for op in tk.ops]
    if "mms" in expected:
        got["mms"] = len({task(prog, n).mm for n in started})
    if "mmap_sizes" in expected:
        mmaps = [op for op in ops if op_name(op) == "mmap"]
        got["mmap_sizes"] = {op[4] for op in mmaps}
        got["mmap_addrs"] = {"auto" if op[3] < 0 else op[3] for op in mmaps}
    if "migrate_to" in expected:
        got["migrate_to"] = {op[2] for op in ops if op_name(op) == "migrate"}
    return got


def variants(wl: Workload) -> list[dict[str, Any]]:
    """Defaults, each bool flipped, and the main parameter at its minimum and doubled."""
    base = defaults(wl)
    out = [base]
    for name, spec in wl.params.items():
        if spec.type == "bool":
            out.append(base | {name: not base[name]})
    main = wl.main_param
    spec = wl.params[main]
    out.append(base | {main: spec.min})
    out.append(base | {main: min(spec.max, max(2, 2 * base[main]))})
    # zero-valued optional work (pages=0, work_cycles=0, sleep_us=0) must still render
    out.append(base | {n: s.min for n, s in wl.params.items() if s.type == "int"})
    return out


CASES = [
    pytest.param(wl, cpus, i, id=f"{wl.name}-cpus{cpus}-v{i}")
    for wl in DIRS
    for cpus in CPU_COUNTS
    for i in range(len(variants(wl)))
]


@pytest.mark.parametrize(("wl", "cpus", "variant"), CASES)
def test_renderings_agree(wl: Workload, cpus: int, variant: int) -> None:
    params = variants(wl)[variant]

    progs = [parse(render(wl, "engine", params, cpus, style=s), cpus) for s in STYLES]
    prog = progs[0]
    check_program(prog, cpus)
    assert progs[1] == prog, "trim_blocks/lstrip_blocks must not change the op program"

    script = render(wl, "gem5", params, cpus, style="plain")
    trimmed = guest_command(render(wl, "gem5", params, cpus))
    assert trimmed.argv == guest_command(script).argv
    cmd = guest_command(script)
    assert cmd.argv[0] == f"/sbin/{cmd.binary}"
    assert cmd.binary == wl.name.replace("-", "_")
    assert (GUEST / f"{cmd.binary}.c").is_file(), f"no guest program {cmd.binary}.c"
    assert cmd.flags.get("--cpus") == str(cpus)
    assert cmd.flags.get("--roi") is True
    known = {flag_name(n) for n in wl.params} | GUEST_ONLY_FLAGS
    known |= {"--no-" + flag_name(n)[2:] for n, s in wl.params.items() if s.type == "bool"}
    assert set(cmd.flags) <= known, f"unknown flags {set(cmd.flags) - known}"
    from_flags = params_from_flags(wl, cmd.flags)
    assert from_flags == params

    name = wl.name
    expected_from_params = EXPECT[name](params, cpus)
    assert extract(prog, expected_from_params) == expected_from_params
    # and the guest script's own flags imply the same engine facts
    assert EXPECT[name](from_flags, int(cmd.flags["--cpus"])) == expected_from_params


@pytest.mark.parametrize("cpus", CPU_COUNTS)
@pytest.mark.parametrize("wl", DIRS, ids=IDS)
def test_default_run_is_small(wl: Workload, cpus: int) -> None:
    prog = parse(render(wl, "engine", defaults(wl), cpus), cpus)
    refs = memory_refs(prog)
    assert 0 < refs <= MAX_DEFAULT_REFS, f"{wl.name}: {refs} memory references by default"


@pytest.mark.parametrize("wl", DIRS, ids=IDS)
def test_guest_script_shape(wl: Workload) -> None:
    script = render(wl, "gem5", defaults(wl), 4, style="plain")
    assert script.startswith("#!/bin/sh\n")
    commands = [ln.strip() for ln in script.splitlines() if ln.strip() and ln[0] != "#"]
    assert commands[-1] == "m5 exit", "the script must end with the m5 exit fallback"
    assert "set -e" not in script, "a failing program must still reach m5 exit"
    if shutil.which("sh"):
        subprocess.run(["sh", "-n"], input=script, text=True, check=True)


def test_missing_parameter_is_an_error() -> None:
    import jinja2

    wl = next(w for w in DIRS if w.name == "ctxmix")
    params = defaults(wl)
    del params["rounds"]
    for style in STYLES:
        with pytest.raises(jinja2.UndefinedError):
            render(wl, "engine", params, 4, style=style)


def test_bad_programs_are_refused() -> None:
    with pytest.raises(ProgramError):
        parse("mm a\n", 2)
    with pytest.raises(ProgramError):
        parse("percpu-ops 1\nmm a\ntask t mm=a\nprogram t\n  repeat 3\n    yield\n", 2)
    with pytest.raises(ProgramError):
        parse("percpu-ops 1\nmm a\ntask t mm=a\nprogram t\n  frobnicate\n", 2)
    prog = parse(
        "percpu-ops 1\nmm a\n  vma x 0x1000 4K rw\ntask t mm=a cpus=3\nprogram t\n  load x\n", 2
    )
    with pytest.raises(AssertionError):
        check_program(prog, cpus=2)
