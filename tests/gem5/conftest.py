"""Real gem5 runs: they need gem5.opt built with src_patches/ (PERCPU_GEM5=path) and a
guest from `percpu guest build`. Without them every test here is skipped with the
reason, which pytest's -ra summary prints (CI has no gem5)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

GEM5_ENV = "PERCPU_GEM5"


@pytest.fixture(scope="session")
def gem5() -> Path:
    path = os.environ.get(GEM5_ENV)
    if not path:
        pytest.skip(f"{GEM5_ENV} is not set: these tests need gem5.opt built with src_patches/ "
                    "(docs/gem5.md)")
    if not Path(path).is_file():
        pytest.skip(f"{GEM5_ENV}={path} is not a file")
    return Path(path)


@pytest.fixture(scope="session")
def kernel(gem5: Path) -> Path:
    from percpu.errors import UsageError
    from percpu.guest import default_kernel

    try:
        return Path(default_kernel())
    except UsageError as exc:
        pytest.skip(f"no guest kernel ({exc})")


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoints shared by the session's runs (PERCPU_GEM5_CHECKPOINTS keeps them across
    sessions: a boot takes minutes)."""
    keep = os.environ.get("PERCPU_GEM5_CHECKPOINTS")
    return Path(keep) if keep else tmp_path_factory.mktemp("checkpoints")
