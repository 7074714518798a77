"""One set of names (docs/names.md): the root stats, causes, bits and bounds are written
once, in core/root/names.h and the headers it includes; the engine, the gem5 plugin and
the percpu kernel's /proc/percpu_roots use those names; and every stat name and every
flag of a percpu command that the docs mention exists."""

from __future__ import annotations

import functools
import importlib.util
import re
import shlex
from pathlib import Path

import click

from percpu.analysis.tidy import normalise_name
from percpu.params import core

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "src_patches" / "percpu_gem5"
KERNEL_COUNTERS = ROOT / "src_patches" / "linux-6.1"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


# --- the names themselves ---------------------------------------------------------------


def _kernel_patch_text() -> str:
    (patch,) = KERNEL_COUNTERS.glob("0007-*.patch")
    return patch.read_text()


def _patch_names(number: str, printed: str, kinds: str, counters: tuple[str, ...],
                 prefix: str, table: str) -> set[str]:
    """The names patch `number` prints (seq_printf lines matching `printed`), and each of
    `counters` per kind its `table` names (C initialisers matching `kinds`)."""
    (patch,) = KERNEL_COUNTERS.glob(f"{number}-*.patch")
    text = patch.read_text()
    names = set(re.findall(rf'seq_printf\(m, "({printed}) ', text))
    found = re.findall(rf'\[{kinds}\w+\]\s*= "(\w+)"', text)
    assert found, f"the patch's {table} moved: update this test"
    return names | {f"{prefix}{n}::{k}" for n in counters for k in found}


def kernel_timing_names() -> set[str]:
    """What percpu_roots=time adds (0009): the kernel's own TSC counts of its paths,
    measurements of the kernel, not counts the models keep, so not in the header."""
    return _patch_names("0009", r"\w+", "PERCPU_SWITCH_", ("timedSwitches", "switchCycles"),
                        "", "switch_kind_names")


def kernel_kmap_names() -> set[str]:
    """What kmap_local in the roots adds (0011): where the kernel's kmap_local mappings
    went and what switch-in rewrote, under the engine's kmap.* names, not root stats."""
    return _patch_names("0011", r"kmap\.\w+", "PERCPU_KMAP_", ("localMaps", "restores"),
                        "kmap.", "kmap_path_names")


def kernel_proc_names() -> set[str]:
    """The names /proc/percpu_roots prints (src_patches/linux-6.1/0007), causes expanded."""
    text = _kernel_patch_text()
    names = set(re.findall(r'seq_printf\(m, "(\w+) ', text))
    causes = re.findall(r'\[PERCPU_ROOT_\w+\]\s*= "(\w+)"', text)
    assert causes, "the patch's cause_names moved: update this test"
    names |= {f"rootAllocs::{c}" for c in causes}
    names |= set(re.findall(r'seq_printf\(m, "(rootAllocs::\w+) ', text))
    return names


def header_names() -> set[str]:
    """Every name a host may print: the header's, with rootAllocs by cause."""
    c = core()
    names = set(c.ROOT_STAT_NAMES) - {"rootAllocs"}
    return names | {f"rootAllocs::{x}" for x in (*c.ROOT_ALLOC_CAUSES, "total")}


def test_the_kernel_prints_the_headers_names():
    kernel = kernel_proc_names() - {"enabled"}
    assert kernel <= header_names(), kernel - header_names()
    causes = re.findall(r'\[PERCPU_ROOT_\w+\]\s*= "(\w+)"', _kernel_patch_text())
    assert tuple(causes) == core().ROOT_ALLOC_CAUSES
    # Only the cycles, which a kernel does not count, are the models' alone.
    assert header_names() - kernel == {"rootCopyCycles"}


@functools.cache
def engine_stats() -> dict[str, float]:
    from percpu.runner import run_engine
    from percpu.workloads import find_workload

    wl = find_workload("ctxmix")
    params = wl.resolve({"rounds": "2"})
    result, _, _ = run_engine(wl, params, "percpu", {"machine.cpus": 2, "noise.enabled": 0})
    return result.stats


def test_the_engine_prints_every_root_stat_under_the_group():
    group = core().ROOT_STAT_GROUP
    leaves = {n.split(f".{group}.", 1)[1] for n in engine_stats() if f".{group}." in n}
    assert header_names() <= leaves, header_names() - leaves


def _plugin_sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(PLUGIN.glob("*"))
            if p.suffix in (".cc", ".hh") and ".test." not in p.name}


def plugin_stat_names() -> dict[str, set[str]]:
    """The plugin's stats by SimObject source: ADD_STAT's (named by the member) and the
    header's (percpu::stat::kName)."""
    out = {}
    for name, text in _plugin_sources().items():
        own = set(re.findall(r"ADD_STAT\((\w+)", text))
        shared = {n[0].lower() + n[1:] for n in re.findall(r"percpu::stat::k(\w+)", text)}
        if own or shared:
            out[name] = own | shared
    return out


def test_the_plugin_takes_root_stat_names_and_rules_from_core():
    sources = _plugin_sources()
    names = set(core().ROOT_STAT_NAMES)
    for name, text in sources.items():
        text = re.sub(r"//.*", "", text)  # the code, not what its comments explain
        own = set(re.findall(r"ADD_STAT\((\w+)", text))
        assert not own & names, f"{name} names {own & names} itself: use percpu::stat::k..."
        # No cause list, CR3 bit, ASID slot count or bound of its own (core/root/names.h).
        for pattern, what in ((r"enum class \w*Cause", "a cause list"),
                              (r'"(firstUse|evicted|flushedInactive|noPcid)"', "a cause name"),
                              (r"<<\s*(63|12|11)\b", "a CR3 or PCID bit"),
                              (r"\b256\b", "the lazy-fault bound"),
                              (r"0x7ff|0x800\b", "the PTI PCID bit"),
                              (r"kern\s*-\s*1|asid\s*\+\s*1", "kern_pcid")):
            assert not re.search(pattern, text), f"{name} restates {what}"
    shared_names = set().union(*plugin_stat_names().values())
    assert names - {"lazyFaultBound"} <= shared_names


# --- the names the docs mention ---------------------------------------------------------


@functools.cache
def known_stats() -> frozenset[tuple[str, str, str]]:
    """(component, stat, bucket) of every stat either host prints, as the analysis reads
    both (percpu.analysis.tidy.normalise_name)."""
    known = set()
    for name in engine_stats():
        p = normalise_name(name)
        known.add((p.component, p.stat, p.bucket))
    causes = (*core().ROOT_ALLOC_CAUSES, "total")
    invpcid = ("individualAddress", "singleContext", "allContextsGlobal", "allContexts")
    for stat in set().union(*plugin_stat_names().values()):
        known.add(("percpu", stat, ""))
        for bucket in causes if stat == "rootAllocs" else invpcid if stat == "invpcid" else ():
            known.add(("percpu", stat, bucket))
    # The percpu kernel's own timing, in a gem5 run's stats.txt (gem5host/kernel_stats.py).
    for name in kernel_timing_names():
        stat, _, bucket = name.partition("::")
        known.add(("percpu.kernel", stat, bucket))
    return frozenset(known)


def _spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def _stat_token(token: str) -> bool:
    if "..." in token:
        return False  # gem5's raw names, shown in part
    token = token.rstrip(",;:.)")
    if "..." in token or "=" in token or "(" in token or "/" in token:
        return False  # gem5's raw names shown in part, kernel arguments, calls, paths
    parts = token.split(".")
    if parts[0] in ("system", "board"):
        return len(parts) >= 3
    if parts[0] != "percpu" or len(parts) < 2 or parts[-1] in ("json", "config"):
        return False
    module = parts[1].split("::")[0]
    return not module.startswith("_") and importlib.util.find_spec(f"percpu.{module}") is None


def _exists(token: str) -> bool:
    token = re.sub(r"\b(cpu|cores)N\b", r"\g<1>0", token.rstrip(",;:.)"))
    head, _, bucket = token.partition("::")
    p = normalise_name(head)
    known = known_stats()
    if p.stat == "*":
        return any(c == p.component for c, _, _ in known)
    if not bucket or bucket == "*" or bucket.startswith("<"):
        return any((c, s) == (p.component, p.stat) for c, s, _ in known)
    return all((p.component, p.stat, b) in known for b in bucket.split("|"))


def test_every_stat_name_the_docs_mention_exists():
    missing = []
    for doc in DOCS:
        for span in _spans(doc.read_text()):
            for token in span.split():
                if _stat_token(token) and not _exists(token):
                    missing.append(f"{doc.name}: {token}")
    assert not missing, missing


def test_the_names_tables_list_the_kernels_names():
    """docs/kernel.md's /proc/percpu_roots table and docs/names.md's kernel column name
    what the kernel prints, and nothing else."""
    kernel = kernel_proc_names()
    timing = kernel_timing_names()
    kmap = kernel_kmap_names()
    text = (ROOT / "docs" / "kernel.md").read_text()
    table = text[text.index("## /proc/percpu_roots"):].split("\n## ", 1)[0]
    shown = set()
    for row in re.findall(r"^\| (.+?) \|", table, flags=re.MULTILINE)[2:]:
        for token in _spans(row):
            if token.startswith("::"):
                token = f"rootAllocs{token}"
            elif token.endswith("::K"):  # timedSwitches::K: each switch kind
                shown |= {n for n in timing if n.startswith(token[:-1])}
                continue
            shown.add(token)
    assert shown == kernel | timing | kmap, shown ^ (kernel | timing | kmap)
    names_doc = (ROOT / "docs" / "names.md").read_text()
    rows = re.findall(r"^\| `(\w+)(?:::<cause>`, `::total)?` \|.*?\| ([^|]+) \|[^|]+\|$",
                      names_doc, flags=re.MULTILINE)
    assert {r[0] for r in rows} == set(core().ROOT_STAT_NAMES)


# --- the flags the docs give a percpu command -------------------------------------------

COMMAND_STARTS = (("percpu",), ("python", "-m", "percpu"), ("python", "configs/percpu.py"),
                  ("gem5.opt", "configs/percpu.py"))


def _command_for(words: list[str]) -> tuple[click.Command, list[str]] | None:
    """The percpu command a command line runs, and the words after the command's path."""
    from percpu.cli import main_group, run_command
    from percpu.gem5host.cli import gem5_run_command

    words = [w for w in words if not re.fullmatch(r"[A-Z_]+=\S*", w)]  # VAR=value prefixes
    words = [Path(w).name if w.endswith("gem5.opt") else w for w in words]
    words = ["configs/percpu.py" if w.endswith("configs/percpu.py") else w for w in words]
    for start in COMMAND_STARTS:
        if tuple(words[:len(start)]) != start:
            continue
        rest = words[len(start):]
        if start[-1] == "configs/percpu.py":
            return (gem5_run_command if start[0] == "gem5.opt" else run_command), rest
        command: click.Command = main_group
        ctx = click.Context(main_group)
        while rest and isinstance(command, click.Group):
            sub = command.get_command(ctx, rest[0])
            if sub is None:
                break
            command, rest = sub, rest[1:]
        return command, rest
    return None


def _command_lines(text: str) -> list[str]:
    lines = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        lines += [ln.removeprefix("$ ").strip() for ln in block.splitlines()]
    lines += _spans(text)
    return [ln for ln in lines if ln]


def _words(line: str) -> list[str]:
    line = re.split(r"\s(?:\||&&|;|>|#)\s?", line, maxsplit=1)[0]
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


def test_every_flag_the_docs_give_a_percpu_command_exists():
    checked = 0
    missing = []
    for doc in DOCS:
        for line in _command_lines(doc.read_text()):
            found = _command_for(_words(line))
            if found is None:
                continue
            command, rest = found
            opts = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
            opts |= {"--help", "-h"}
            for word in rest:
                if word.startswith("-") and not re.fullmatch(r"-?\d[\d.]*", word):
                    flag = word.split("=", 1)[0].rstrip(",.;)")
                    checked += 1
                    if flag not in opts and flag != "--":
                        missing.append(f"{doc.name}: {line!r}: {flag}")
    assert checked > 50  # the docs give many command lines: the parsing found them
    assert not missing, missing


# Flags of other programs that the docs name: (flag, the program).
OTHER_PROGRAMS_FLAGS = {"--array": "sbatch", "--debug-flags": "gem5.opt",
                        "--switch-events": "perf record"}


@functools.cache
def known_flags() -> frozenset[str]:
    """Every flag of a percpu command, of the guest programs (workloads/guest/) and of
    the example scripts (examples/)."""
    from percpu.cli import main_group

    def flags(command: click.Command, ctx: click.Context) -> set[str]:
        out = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                out |= flags(command.get_command(ctx, name), ctx)
        return out

    known = flags(main_group, click.Context(main_group)) | {"--help", "--version"}
    for src in sorted((ROOT / "workloads" / "guest").glob("*.[ch]")):
        text = src.read_text()
        for name, kind in re.findall(r'\{"([a-z0-9-]+)", OPT_(INT|BOOL|STR)', text):
            known |= {f"--{name}", f"--no-{name}"} if kind == "BOOL" else {f"--{name}"}
        known |= set(re.findall(r'"(--[a-z][a-z0-9-]*)"', text))
    for src in sorted((ROOT / "examples").rglob("*.py")):
        known |= set(re.findall(r'add_argument\("(--[a-z][a-z0-9-]*)"', src.read_text()))
    return frozenset(known | set(OTHER_PROGRAMS_FLAGS))


def test_every_flag_the_docs_name_exists():
    """A flag named on its own (`--no-pcid`) is a flag of some percpu command, guest
    program or example (or of the other program OTHER_PROGRAMS_FLAGS names)."""
    named = {m for doc in DOCS for m in re.findall(r"`(--[a-z][a-z0-9-]*)[ =`]", doc.read_text())}
    assert len(named) > 30
    assert not named - known_flags(), sorted(named - known_flags())


def test_every_stat_name_the_python_reads_exists():
    """The analysis, the comparison tables and the gem5 host's figures read stats by name:
    each name a string of percpu/ spells (percpu.lazyFaults, system.percpu.rootPoolPeakBytes)
    is one that a host prints."""
    import ast

    read = []
    for path in sorted((ROOT / "percpu").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(
                    r"(system\.)?percpu\.[a-z][A-Za-z]+(::[A-Za-z]+)?", node.value):
                read.append((path.name, node.value))
    assert len(read) > 10
    missing = [f"{name}: {value}" for name, value in read
               if _stat_token(value) and not _exists(value)]
    assert not missing, missing
