"""The SConstruct wrapper (tools/gem5_build.py): patch and build a user's gem5 checkout in
one command. Tested on a small stand-in checkout: a git tree that says it is gem5
24.0.0.1, a two-patch series made against it, a `scons` on PATH that "builds" the
stand-in gem5 binary the orchestrator's tests use (it answers percpu gem5 check's
probe). CI never builds gem5."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import gem5_build

FAKE_GEM5 = REPO / "tests" / "gem5host" / "fake_gem5.py"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def _git(tree: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(tree), *args], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in gem5 checkout, a series against it (as src_patches/), a fake scons."""
    tree = tmp_path / "gem5"
    (tree / "src" / "base").mkdir(parents=True)
    (tree / "src" / "base" / "version.cc").write_text(
        'const char *gem5Version = "24.0.0.1";\n')
    (tree / "src" / "tlb.cc").write_text("int pcid;\n")
    _git(tree, "init", "-q")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "-m", "misc: v24.0.0.1")
    # The series: two commits, exported, then taken back out of the tree.
    (tree / "src" / "tlb.cc").write_text("int pcid;\nint tagged;\n")
    _git(tree, "commit", "-q", "-am", "arch-x86: Tag TLB entries with their PCID")
    (tree / "src" / "walker.cc").write_text("int hooks;\n")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "-m", "arch-x86: Add walker hooks")
    series = tmp_path / "src_patches"
    _git(tree, "format-patch", "-q", "-o", str(series), "HEAD~2")
    _git(tree, "reset", "-q", "--hard", "HEAD~2")
    (series / "percpu_gem5").mkdir()
    monkeypatch.setattr(gem5_build, "SERIES", series)
    monkeypatch.setattr(gem5_build, "EXTRAS", series / "percpu_gem5")
    # scons: record its arguments and "build" the stand-in gem5.opt.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scons = bin_dir / "scons"
    scons.write_text("#!/bin/sh\n"
                     f'echo "$@" >> "{tmp_path}/scons-calls"\n'
                     "mkdir -p build/X86\n"
                     f'printf "#!/bin/sh\\nexec {sys.executable} {FAKE_GEM5} \\"\\$@\\"\\n" '
                     "> build/X86/gem5.opt\n"
                     "chmod +x build/X86/gem5.opt\n")
    scons.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return tree


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    lines: list[str] = []
    rc = gem5_build.main(argv, echo=lines.append)
    return rc, "\n".join(lines), capsys.readouterr().err


def test_a_clean_checkout_is_patched_built_and_checked(standin: Path, capsys) -> None:
    rc, out, err = run(["--gem5", str(standin), "-j", "3"], capsys)
    assert rc == 0, err
    subjects = _git(standin, "log", "--format=%s").splitlines()
    assert subjects[:2] == ["arch-x86: Add walker hooks",
                            "arch-x86: Tag TLB entries with their PCID"]
    calls = (standin.parent / "scons-calls").read_text().splitlines()
    assert calls == [f"build/X86/gem5.opt -j3 EXTRAS={gem5_build.EXTRAS} --ignore-style"]
    assert "[2/4] patches: git am 2 of 2" in out
    assert f"export PERCPU_GEM5={standin / 'build/X86/gem5.opt'}" in out
    # Again: nothing to apply, an incremental build.
    rc, out, err = run(["--gem5", str(standin), "-j", "3"], capsys)
    assert rc == 0, err
    assert "[2/4] patches: all 2 already applied" in out
    assert len(_git(standin, "log", "--format=%s").splitlines()) == 3


def test_another_gem5_version_is_refused(standin: Path, capsys) -> None:
    (standin / "src/base/version.cc").write_text('const char *gem5Version = "23.1.0.0";\n')
    _git(standin, "commit", "-q", "-am", "misc: v23.1")
    rc, _, err = run(["--gem5", str(standin)], capsys)
    assert rc == 2
    assert err.strip() == (f"percpu: error: GEM5={standin} is gem5 23.1.0.0; percpu's patches "
                           "are for 24.0.0.1: check out v24.0.0.1 (git checkout v24.0.0.1)")
    assert not (standin.parent / "scons-calls").exists()


def test_a_checkout_with_local_changes_is_left_alone(standin: Path, capsys) -> None:
    (standin / "src/tlb.cc").write_text("int mine;\n")
    rc, _, err = run(["--gem5", str(standin)], capsys)
    assert rc == 2
    assert err.startswith(f"percpu: error: GEM5={standin} has local changes (M src/tlb.cc")
    assert "commit or stash them first" in err
    assert (standin / "src/tlb.cc").read_text() == "int mine;\n"
    assert len(_git(standin, "log", "--format=%s").splitlines()) == 1


def test_another_version_of_the_series_is_refused(standin: Path, capsys) -> None:
    """A commit with a patch's subject but another change (an earlier version of the
    series) is not taken for the patch: the checkout is refused, nothing applied."""
    (standin / "src" / "tlb.cc").write_text("int pcid;\nint tagged_otherwise;\n")
    _git(standin, "commit", "-q", "-am", "arch-x86: Tag TLB entries with their PCID")
    rc, _, err = run(["--gem5", str(standin)], capsys)
    assert rc == 2
    assert err.startswith(f"percpu: error: GEM5={standin} has another version of percpu's "
                          "0001-arch-x86-Tag-TLB-entries-with-their-PCID.patch (commit ")
    assert "start again from a clean v24.0.0.1 checkout" in err
    assert len(_git(standin, "log", "--format=%s").splitlines()) == 2
    assert not (standin.parent / "scons-calls").exists()


def test_not_a_gem5_tree_and_no_tree_at_all(tmp_path: Path, capsys,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    rc, _, err = run(["--gem5", str(tmp_path)], capsys)
    assert rc == 2 and "is not a gem5 checkout (no src/base/version.cc)" in err
    monkeypatch.delenv("GEM5", raising=False)
    rc, _, err = run([], capsys)
    assert rc == 2 and err.strip() == ("percpu: error: no gem5 checkout given: scons "
                                       "GEM5=/path/to/gem5 (a gem5 v24.0.0.1 git checkout)")


def test_a_failed_build_names_the_step(standin: Path, capsys) -> None:
    scons = Path(shutil.which("scons") or "")
    scons.write_text("#!/bin/sh\nexit 3\n")
    rc, _, err = run(["--gem5", str(standin)], capsys)
    assert rc == 1
    assert err.strip() == ("percpu: scons build/X86/gem5.opt failed with status 3 (its output "
                           "is above)")


def test_the_real_series_subjects_are_what_git_am_makes() -> None:
    """Every patch of src_patches/ has a subject the 'already applied' check can find."""
    names = [gem5_build.subject(p) for p in gem5_build.patches()]
    assert len(names) == len(set(names)) == len(gem5_build.patches())
    assert all(n.startswith("arch-x86: ") and "[PATCH" not in n for n in names)


def test_the_real_series_is_numbered_one_way() -> None:
    """git format-patch -n: every patch says [PATCH i/n], i and n of the whole series."""
    series = gem5_build.patches()
    n = len(series)
    width = len(str(n))
    found = [re.search(r"^Subject: \[PATCH ([^]]*)\]", p.read_text(), re.MULTILINE)
             for p in series]
    assert [m.group(1) if m else p.name for m, p in zip(found, series, strict=True)] == \
        [f"{i:0{width}d}/{n}" for i in range(1, n + 1)]
    assert [p.name[:4] for p in series] == [f"{i:04d}" for i in range(1, n + 1)]


def test_the_real_series_messages_follow_gem5s_format() -> None:
    """gem5's CONTRIBUTING.md: a header of at most 65 characters starting with a tag,
    then a blank line and a description whose lines are at most 72 characters."""
    for patch in gem5_build.patches():
        name = gem5_build.subject(patch)
        assert len(name) <= 65, patch.name
        rest = patch.read_text().partition("\n\n")[2]
        body = rest.split("\n---\n", 1)[0]
        assert body.strip(), f"{patch.name} has no description"
        long = [line for line in body.splitlines() if len(line) > 72]
        assert not long, f"{patch.name}: {long}"
