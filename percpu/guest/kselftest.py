"""`percpu guest kselftest`: the kernel's own selftests that build from Debian's tree
(tools/testing/selftests/x86 and vm), built static, run in the stock and the percpu
guest under QEMU; both kernels must give every test the same result (docs/kernel.md).

The tests do not go into the guest's built-in initramfs (gem5 would pay for unpacking
them at every boot): they travel in a second initramfs that QEMU passes with -initrd,
which the kernel unpacks over the built-in one, and /init runs their script when the
command line says percpu.kselftests=1.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from percpu.errors import UsageError
from percpu.guest import cache as gcache

# Suites under tools/testing/selftests/ and the extra make variables that link them
# static (x86's Makefile links with EXTRA_CFLAGS; vm's lib.mk with LDFLAGS).
SUITES = {"x86": ["EXTRA_CFLAGS=-static"], "vm": ["EXTRA_CFLAGS=-static", "LDFLAGS=-static"]}
# Tests that never end on their own get arguments that make them end.
ARGS = {"vm/transhuge-stress": "-h", "vm/userfaultfd": "anon 8 4"}
# Seconds each test may take under TCG before /init stops it (a test stopped on both
# kernels has the same result: 124).
TEST_TIMEOUT = 60
RESULT = re.compile(r"percpu-guest: kselftest (\S+) status=(\d+)")
RUNNER = "/selftests/run.sh"


@dataclass(frozen=True)
class Selftests:
    """The built tests: their initramfs and names (suite/binary)."""

    initrd: Path
    names: list[str]


def _source_tree(cache: Path) -> Path:
    tree = gcache.extracted_source(cache)
    if tree is None:
        raise UsageError("no extracted linux-source-6.1 in the guest cache: run "
                         "'percpu guest build' first")
    return tree


def build(cache: Path, jobs: int = 2, echo=print) -> Selftests:
    """Build the suites once per source tree into cache/kselftests/<tree>/ and pack them
    with their runner into initrd.cpio (newc, what the kernel unpacks)."""
    src = _source_tree(cache)
    # One build per source tree and runner recipe (suites, arguments, timeout).
    recipe = json.dumps([SUITES, ARGS, TEST_TIMEOUT], sort_keys=True).encode()
    out = cache / "kselftests" / f"{src.parent.name}-{hashlib.sha256(recipe).hexdigest()[:8]}"
    initrd = out / "initrd.cpio"
    names_file = out / "tests.json"
    if initrd.is_file() and names_file.is_file():
        return Selftests(initrd, json.loads(names_file.read_text()))
    stage = out / "stage"
    shutil.rmtree(out, ignore_errors=True)
    log = out / "build.log"
    (stage / "selftests").mkdir(parents=True)
    names: list[str] = []
    for suite, extra in SUITES.items():
        dest = stage / "selftests" / suite
        dest.mkdir()
        echo(f"kselftests: make -C tools/testing/selftests/{suite} (static) ...")
        with open(log, "a") as handle:
            # -k: a test whose headers Debian's base system lacks (libcap, libnuma) is
            # left out; the others build.
            subprocess.run(["make", "-k", "-C", str(src / "tools/testing/selftests" / suite),
                            f"OUTPUT={dest}", f"-j{jobs}", *extra], stdout=handle,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
        for path in sorted(dest.iterdir()):
            if path.is_file() and os.access(path, os.X_OK) and path.read_bytes()[:4] == \
                    b"\x7fELF":
                names.append(f"{suite}/{path.name}")
            else:
                path.unlink() if path.is_file() else shutil.rmtree(path)
    if not names:
        raise UsageError(f"no selftest built from {src}: see {log}")
    lines = ["#!/bin/sh", "# Written by percpu guest kselftest: each test, its exit status.",
             "cd /selftests"]
    for name in names:
        args = ARGS.get(name, "")
        lines.append(f"timeout {TEST_TIMEOUT} ./{name} {args} >/tmp/kselftest.out 2>&1; "
                     f'echo "percpu-guest: kselftest {name} status=$?"')
    (stage / "selftests" / "run.sh").write_text("\n".join(lines) + "\n")
    files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*"))
    with open(initrd, "wb") as handle:
        subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=stage,
                       input="\n".join(files).encode(), stdout=handle, check=True)
    names_file.write_text(json.dumps(names, indent=1) + "\n")
    return Selftests(initrd, names)


@dataclass
class Outcome:
    """One kernel's run: each test's exit status, the kinds of kernel trouble its
    console showed (WARNING, BUG, Oops, ...: some selftests make even the stock kernel
    oops under TCG), and what else went wrong (no boot, tests that did not report)."""

    statuses: dict[str, int]
    trouble: Counter[str]
    problems: list[str]


def run(build_: gcache.GuestBuild, tests: Selftests, *, cpus: int, extra_args: str,
        timeout: float) -> Outcome:
    """Boot build_ with the tests and collect what they did."""
    from percpu.guest.qemu import TROUBLE_PREFIX, check, kernel_trouble

    name = f"kselftest-{cpus}cpu" + ("-pti" if "pti=on" in extra_args else "")
    result = check(build_, timeout=timeout, cpus=cpus, smoke=False, selftest=False,
                   extra_args=" ".join(filter(None, ["percpu.kselftests=1", extra_args])),
                   initrd=tests.initrd, log=build_.path / f"{name}.log")
    statuses = {m.group(1): int(m.group(2)) for line in result.lines
                if (m := RESULT.search(line))}
    trouble = Counter(kind for line in result.lines if (kind := kernel_trouble(line)))
    problems = [p for p in result.problems if not p.startswith(TROUBLE_PREFIX)]
    missing = [t for t in tests.names if t not in statuses]
    if missing:
        problems.append(f"{len(missing)} test(s) did not report: {', '.join(missing[:5])}")
    return Outcome(statuses, trouble, problems)


def compare(stock: dict[str, int], percpu: dict[str, int]) -> list[str]:
    """The tests whose exit status differs between the kernels."""
    return sorted(t for t in stock.keys() | percpu.keys() if stock.get(t) != percpu.get(t))


def extra_trouble(stock: Counter[str], percpu: Counter[str]) -> Counter[str]:
    """Kernel trouble the percpu kernel showed beyond what the stock kernel showed on the
    same tests."""
    return percpu - stock
