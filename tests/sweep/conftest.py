"""The real single-node Slurm the Slurm tests run against (tests/sweep/slurm_cluster.py):
started once per session, stopped by PID afterwards, skipped with the reason when
Slurm is missing and cannot be installed."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.sweep.slurm_cluster import SlurmCluster, find_or_install

MAX_ARRAY = 4  # small, so that the tests also split sweeps into several arrays


@pytest.fixture(scope="session")
def slurm_cluster():
    reason = find_or_install()
    if reason is not None:
        pytest.skip(f"Slurm tests skipped: {reason}")
    # munged wants every directory above its socket executable by all, which pytest's
    # 0700 temporary directories are not.
    base = Path(tempfile.mkdtemp(prefix="percpu-slurm-"))
    base.chmod(0o711)
    cluster = SlurmCluster(base, max_array=MAX_ARRAY)
    try:
        cluster.start()
    except Exception as exc:  # noqa: BLE001 - say why, do not fail every test
        cluster.stop()
        pytest.skip(f"Slurm tests skipped: the test cluster did not start: {exc}")
    yield cluster
    cluster.cancel_all()
    cluster.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def slurm(slurm_cluster):
    """The session's cluster, with a ready node and an empty queue for each test."""
    slurm_cluster.ensure_running()
    yield slurm_cluster
    slurm_cluster.cancel_all()
