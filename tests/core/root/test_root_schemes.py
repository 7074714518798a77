"""core/root/ on its own: the root schemes, and the gem5 plugin's root model that drives
them, compile with core/root/, core/common/, core/paging/pte.h and core/linux/asid.h alone
(no engine, no PhysMem: the gem5 plugin's view of them). Their behaviour is tested in
tests/cxx/ (root_schemes.test.cc, root_model.test.cc)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CORE = REPO / "core"
PLUGIN = REPO / "src_patches" / "percpu_gem5"
# Everything core/root/ and the plugin's model may use; anything else fails the build below.
ALLOWED = ("root", "common", "paging/pte.h", "linux/asid.h")


def test_root_schemes_and_the_root_model_compile_alone(tmp_path):
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    tree = tmp_path / "core"
    for part in ALLOWED:
        src, dst = CORE / part, tree / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy(src, dst)
    sources = [*sorted(str(p) for p in (tree / "root").rglob("*.cc")),
               str(PLUGIN / "root_model.cc"), str(PLUGIN / "cr3_write_classifier.cc")]
    for source in sources:
        build = subprocess.run(
            ["nice", "-n", "10", cxx, "-std=c++17", "-O0", "-Wall", "-Wextra", "-Werror",
             f"-I{tree}", f"-I{PLUGIN}", "-fsyntax-only", source],
            capture_output=True, text=True, check=False)
        assert build.returncode == 0, source + "\n" + build.stderr[-3000:]
