"""Shared test settings: hypothesis profiles (CI runs the same examples every time)."""

import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The calibration programs (workloads/guest/calib/), built once per test session:
    tests/calibrate runs them here, tests/gem5host runs the guest script on them."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    from percpu.calibrate.build import build_programs

    return build_programs(tmp_path_factory.mktemp("calib-bin"))


@pytest.fixture()
def stand_in_gem5(tmp_path, monkeypatch):
    """(gem5.opt, vmlinux): an executable and a kernel file that pass the gem5 host's
    checks of its options, with the cache (checkpoints, the placeholder disk) in tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    gem5 = tmp_path / "gem5.opt"
    gem5.write_text("#!/bin/sh\n")
    gem5.chmod(0o755)
    kernel = tmp_path / "vmlinux"
    kernel.write_bytes(b"\x7fELF kernel")
    return gem5, kernel
