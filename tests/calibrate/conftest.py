"""The calibration programs, built once per test session."""

import shutil

import pytest

from percpu.calibrate.build import build_programs


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    return build_programs(tmp_path_factory.mktemp("calib-bin"))
