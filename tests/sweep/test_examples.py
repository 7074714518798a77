"""The example specs in examples/ expand as the README says; the gem5 one needs a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from percpu.errors import UsageError
from percpu.sweep.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(("name", "points"), [("asid-cliff", 135), ("pcid", 72),
                                              ("cpu-scaling", 48)])
def test_engine_examples_expand(name, points):
    spec = load_spec(EXAMPLES / f"{name}.toml")
    assert len(spec.points) == points
    assert spec.baseline == "shared"


def test_gem5_example_asks_for_the_gem5_path(monkeypatch):
    monkeypatch.delenv("PERCPU_GEM5", raising=False)
    with pytest.raises(UsageError, match="gem5.path: .* is not an executable file"):
        load_spec(EXAMPLES / "gem5-pcid.toml")
