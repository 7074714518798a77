"""The kernel series (src_patches/linux-6.1/, docs/kernel.md) is a `git format-patch`
series in the kernel's style, and applies to Debian's linux-source-6.1 where that is
installed (the real build, tests/guest/test_real_build.py, builds and boots it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from percpu.guest import cache as gcache

SERIES = gcache.linux_series_dir()
PATCHES = gcache.series_patches(SERIES)
SUBJECT = re.compile(r"^Subject: \[RFC PATCH (\d+)/(\d+)\] (x86/[\w/]+: .+)$", re.MULTILINE)


def headers(patch: Path) -> tuple[int, int, str]:
    text = patch.read_text()
    # git format-patch folds a long subject onto continuation lines.
    unfolded = re.sub(r"\n (?=\S)", " ", text.split("\n\n", 1)[0])
    m = SUBJECT.search(unfolded)
    assert m, f"{patch.name}: no '[RFC PATCH n/N] x86/...: ...' subject"
    return int(m.group(1)), int(m.group(2)), m.group(3)


def test_patches_are_numbered_in_order_with_kernel_subjects() -> None:
    numbers = [headers(p)[:2] for p in PATCHES]
    assert numbers == [(i, len(PATCHES)) for i in range(1, len(PATCHES) + 1)]
    for patch in PATCHES:
        assert patch.name.startswith(f"{headers(patch)[0]:04d}-")


# The series stays in arch/x86 but for the boot parameter's documentation and, for
# kmap_local (patches 10-11), the generic kmap_local code, its Kconfig symbol and the
# x86-64 memory map that names the slot the roots use.
OUTSIDE_ARCH_X86 = {"Documentation/admin-guide/kernel-parameters.txt",
                    "Documentation/x86/x86_64/mm.rst", "include/linux/highmem-internal.h",
                    "mm/Kconfig", "mm/highmem.c"}


def test_each_patch_says_why_is_signed_off_and_stays_in_arch_x86() -> None:
    for patch in PATCHES:
        text = patch.read_text()
        body = text.split("\n\n", 1)[1].split("\n---\n", 1)[0]
        assert len([ln for ln in body.splitlines() if ln.strip()]) >= 6, patch.name
        assert re.search(r"^Signed-off-by: .+ <.+@.+>$", body, re.MULTILINE), patch.name
        touched = re.findall(r"^diff --git a/(\S+) b/", text, re.MULTILINE)
        assert touched and all(p.startswith("arch/x86/") or p in OUTSIDE_ARCH_X86
                               for p in touched), patch.name


def test_the_cover_letter_lists_every_patch_and_how_it_was_tested() -> None:
    cover = (SERIES / "0000-cover-letter.patch").read_text()
    assert "*** SUBJECT HERE ***" not in cover and "*** BLURB HERE ***" not in cover
    unfolded = re.sub(r"\n +", " ", cover)
    for patch in PATCHES:
        assert headers(patch)[2] in unfolded, f"cover letter lacks {patch.name}"
    for must in ("How it was tested", "CR3", "poking_mm", "efi_mm", "percpu_roots=off",
                 "/proc/percpu_roots"):
        assert must in cover


SOURCE = gcache.extracted_source(gcache.cache_dir())


@pytest.mark.skipif(SOURCE is None or shutil.which("patch") is None,
                    reason="needs Debian's linux-source-6.1 extracted by 'percpu guest build' "
                    "and patch(1)")
def test_the_series_applies_to_debian_linux_6_1(tmp_path: Path) -> None:
    assert SOURCE is not None
    tree = tmp_path / "linux"
    for sub in ("arch/x86", *sorted({str(Path(p).parent) for p in OUTSIDE_ARCH_X86})):
        shutil.copytree(SOURCE / sub, tree / sub, symlinks=True)
    for patch in PATCHES:
        proc = subprocess.run(["patch", "-p1", "--forward", "--batch", "-i", str(patch)],
                              cwd=tree, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{patch.name}:\n{proc.stdout}{proc.stderr}"
        assert "offset" not in proc.stdout and "fuzz" not in proc.stdout, proc.stdout


@pytest.mark.skipif(SOURCE is None, reason="needs Debian's linux-source-6.1 (its "
                    "scripts/checkpatch.pl) extracted by 'percpu guest build'")
def test_checkpatch_finds_nothing_in_the_series() -> None:
    """The kernel's own style checker, run as a reviewer would on the tracked patches (from
    the repository, where checkpatch checks a git-tracked file as a file)."""
    assert SOURCE is not None
    for patch in PATCHES:
        proc = subprocess.run(["perl", str(SOURCE / "scripts" / "checkpatch.pl"), "--no-tree",
                               str(patch.relative_to(SERIES.parents[1]))],
                              cwd=SERIES.parents[1], capture_output=True, text=True,
                              check=False)
        assert "total: 0 errors, 0 warnings" in proc.stdout, f"{patch.name}:\n{proc.stdout}"
