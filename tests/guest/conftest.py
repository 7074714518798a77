"""Helpers for the guest tests: a private copy of workloads/guest and a cache dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.guest.helpers import GUEST


@pytest.fixture
def guest_copy(tmp_path: Path) -> Path:
    """workloads/guest without build outputs, safe to edit."""
    dest = tmp_path / "guest"
    shutil.copytree(GUEST, dest, ignore=shutil.ignore_patterns("build", "*.o", "*.ko"))
    return dest


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "cache"
    monkeypatch.setenv("PERCPU_GUEST_DIR", str(where))
    return where
