"""The gem5 plugin builds on core/root/ itself. Its root model (root_model.cc, what the
PercpuRootModel SimObject delegates to) is unit-tested without gem5 in
tests/cxx/root_model.test.cc, which gem5's GTest build compiles too."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "src_patches" / "percpu_gem5"


def test_plugin_links_core_root_rather_than_copying_it():
    link = PLUGIN / "core"
    assert link.is_symlink() and link.resolve() == (REPO / "core").resolve()
