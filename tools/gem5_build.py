"""Patch and build a user's gem5 checkout with percpu's series and plugin, in one step.

The top-level SConstruct runs this (`scons GEM5=/path/to/gem5 [-j N] [TARGET]`); it also
runs alone (`python tools/gem5_build.py --gem5 /path/to/gem5 [-j N] [TARGET]`). Steps:
  1. the tree is gem5 v24.0.0.1 (src/base/version.cc), a git checkout;
  2. src_patches/*.patch are applied with `git am` unless they already are (a commit of
     the checkout has each one's subject and change, by git patch-id); a tree with other
     local changes, or with another version of the series, is refused, so percpu never
     mixes its patches into someone's work;
  3. scons TARGET -jN EXTRAS=src_patches/percpu_gem5 --ignore-style in the checkout
     (90 to 140 minutes the first time on 2 cores; minutes afterwards);
  4. `percpu gem5 check --gem5 <the binary>`: the binary has the patches and the plugin.
Bad input is one line and exit 2; a failed step names the step and exits 1. gem5's
source and binaries stay in the user's checkout: nothing lands in this repository.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERIES = REPO / "src_patches"
EXTRAS = SERIES / "percpu_gem5"
VERSION = "24.0.0.1"
TARGET = "build/X86/gem5.opt"
_VERSION_RE = re.compile(r'gem5Version\s*=\s*"([^"]+)"')


class BadInput(Exception):
    """The user's to fix: one line, exit 2."""


class StepFailed(Exception):
    """A step that ran and failed: exit 1."""


def patches() -> list[Path]:
    found = sorted(SERIES.glob("[0-9][0-9][0-9][0-9]-*.patch"))
    if not found:
        raise BadInput(f"no patches in {SERIES}: restore src_patches/ from the repository")
    return found


def subject(patch: Path) -> str:
    """The commit subject git am will give the patch (folded header lines joined, the
    [PATCH n/m] prefix dropped)."""
    head = patch.read_text(errors="replace").split("\n\n", 1)[0]
    m = re.search(r"^Subject: (.*(?:\n .*)*)", head, re.MULTILINE)
    if not m:
        raise BadInput(f"{patch.name} has no Subject: line: restore src_patches/")
    text = re.sub(r"\n ", " ", m.group(1))
    return re.sub(r"^\[[^]]*\]\s*", "", text).strip()


def _git(gem5: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(gem5), *args], capture_output=True, text=True,
                          check=False)


def check_tree(gem5: Path) -> None:
    version_cc = gem5 / "src" / "base" / "version.cc"
    if not version_cc.is_file():
        raise BadInput(f"GEM5={gem5} is not a gem5 checkout (no src/base/version.cc): "
                       "point GEM5 at a gem5 v24.0.0.1 tree")
    m = _VERSION_RE.search(version_cc.read_text(errors="replace"))
    found = m.group(1) if m else "unknown"
    if found != VERSION:
        raise BadInput(f"GEM5={gem5} is gem5 {found}; percpu's patches are for {VERSION}: "
                       f"check out v{VERSION} (git checkout v{VERSION})")
    if _git(gem5, "rev-parse", "--git-dir").returncode != 0:
        raise BadInput(f"GEM5={gem5} is not a git checkout: the patches go in with git am "
                       "(git init && git add -A && git commit there first)")


def _patch_id(gem5: Path, diff: str) -> str:
    """git patch-id --stable of a diff (a patch file, or `git show` of a commit): the same
    change gives the same id whatever its commit, date or message."""
    proc = subprocess.run(["git", "-C", str(gem5), "patch-id", "--stable"], input=diff,
                          capture_output=True, text=True, check=False)
    return proc.stdout.split(" ", 1)[0]


def applied(gem5: Path) -> list[bool]:
    """For each patch, whether the checkout already has it: a commit among the last 200
    with its subject and the same change (git patch-id). A commit with the subject but
    another change is an earlier version of the series: refused, one line."""
    log = _git(gem5, "log", "--format=%H %s", "-n", "200")
    by_subject: dict[str, list[str]] = {}
    for line in log.stdout.splitlines():
        sha, _, subj = line.partition(" ")
        by_subject.setdefault(subj, []).append(sha)
    state = []
    for patch in patches():
        commits = by_subject.get(subject(patch), [])
        if not commits:
            state.append(False)
            continue
        want = _patch_id(gem5, patch.read_text(errors="replace"))
        have = {_patch_id(gem5, _git(gem5, "show", "--format=", c).stdout) for c in commits}
        if want not in have:
            raise BadInput(f"GEM5={gem5} has another version of percpu's {patch.name} "
                           f"(commit {commits[0][:12]}, same subject, other change): "
                           "start again from a clean v24.0.0.1 checkout")
        state.append(True)
    return state


def apply_series(gem5: Path, echo=print) -> None:
    state = applied(gem5)
    if all(state):
        echo(f"[2/4] patches: all {len(state)} already applied in {gem5}")
        return
    if any(state):
        first = state.index(False)
        if any(state[first:]):
            raise BadInput(f"GEM5={gem5} has some of percpu's patches but not in order "
                           f"({patches()[first].name} is missing before later ones): "
                           "start again from a clean v24.0.0.1 checkout")
    dirty = _git(gem5, "status", "--porcelain", "--untracked-files=no").stdout.strip()
    if dirty:
        raise BadInput(f"GEM5={gem5} has local changes ({dirty.splitlines()[0].strip()} ...): "
                       "commit or stash them first; percpu applies its patches to a clean tree")
    todo = [p for p, done in zip(patches(), state, strict=True) if not done]
    echo(f"[2/4] patches: git am {len(todo)} of {len(state)} from {SERIES} ...")
    proc = subprocess.run(["git", "-C", str(gem5), "-c", "user.name=percpu",
                           "-c", "user.email=percpu@localhost", "am", "--quiet",
                           *map(str, todo)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        _git(gem5, "am", "--abort")
        why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no message"
        raise StepFailed(f"git am failed ({why}); the checkout was left as it was")


def build(gem5: Path, target: str, jobs: int, echo=print) -> Path:
    echo(f"[3/4] scons {target} -j{jobs} EXTRAS={EXTRAS} in {gem5} "
         "(90 to 140 minutes the first time on 2 cores) ...")
    proc = subprocess.run(["scons", target, f"-j{jobs}", f"EXTRAS={EXTRAS}", "--ignore-style"],
                          cwd=gem5, check=False)
    if proc.returncode != 0:
        raise StepFailed(f"scons {target} failed with status {proc.returncode} (its output "
                         "is above)")
    binary = gem5 / target
    if not binary.is_file():
        raise StepFailed(f"scons succeeded but {binary} is missing")
    return binary


def check_binary(binary: Path, echo=print) -> None:
    echo(f"[4/4] percpu gem5 check --gem5 {binary}")
    # The percpu on PATH: scons runs this under its own Python, which may not have it.
    percpu = shutil.which("percpu")
    cmd = [percpu] if percpu else [sys.executable, "-m", "percpu"]
    proc = subprocess.run([*cmd, "gem5", "check", "--gem5", str(binary)], check=False)
    if proc.returncode != 0:
        raise StepFailed(f"percpu gem5 check says {binary} is not usable (above)")


def main(argv: list[str] | None = None, echo=print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gem5", default=os.environ.get("GEM5"),
                        help="the gem5 checkout (default $GEM5)")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("target", nargs="?", default=TARGET)
    args = parser.parse_args(argv)
    try:
        if not args.gem5:
            raise BadInput("no gem5 checkout given: scons GEM5=/path/to/gem5 "
                           "(a gem5 v24.0.0.1 git checkout)")
        if args.jobs < 1:
            raise BadInput(f"-j {args.jobs}: give at least 1 job")
        gem5 = Path(args.gem5).expanduser().resolve()
        echo(f"[1/4] checking {gem5}: gem5 {VERSION}, a git checkout")
        check_tree(gem5)
        apply_series(gem5, echo)
        binary = build(gem5, args.target, args.jobs, echo)
        check_binary(binary, echo)
    except BadInput as exc:
        print(f"percpu: error: {exc}", file=sys.stderr)
        return 2
    except StepFailed as exc:
        print(f"percpu: {exc}", file=sys.stderr)
        return 1
    echo(f"gem5 built with percpu's patches and plugin: {binary}\n"
         f"  export PERCPU_GEM5={binary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
