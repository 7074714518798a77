"""The C++ unit tests (tests/cxx/*.test.cc, GoogleTest): configure and build the CMake
target percpu_tests, run it, and name each failing test with its message. One build
directory (build/cxx-tests) is kept between runs, so only what changed recompiles.

GoogleTest is Debian's libgtest-dev (.ci/run installs it); without it, or without cmake
or a C++ compiler, the test is skipped with the reason. gem5's GTest build runs the
root-scheme, root-model and CR3-classifier tests from the same files
(src_patches/percpu_gem5/*.test.cc), checked below."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "cxx-tests"
PLUGIN = REPO / "src_patches" / "percpu_gem5"
NICE = ["nice", "-n", "10"]


def _build() -> Path:
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed: the C++ unit tests are built with CMake")
    if not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        pytest.skip("no C++ compiler")
    BUILD.mkdir(parents=True, exist_ok=True)
    configure = subprocess.run(
        [*NICE, "cmake", "-S", str(REPO), "-B", str(BUILD), "-DPERCPU_TESTS=ON",
         "-DCMAKE_BUILD_TYPE=Release"], capture_output=True, text=True, check=False)
    if configure.returncode != 0 and "GTest" in configure.stderr + configure.stdout:
        pytest.skip("GoogleTest is not installed (Debian: apt-get install libgtest-dev, "
                    "as .ci/run does): the C++ unit tests cannot be built")
    assert configure.returncode == 0, (configure.stdout + configure.stderr)[-3000:]
    build = subprocess.run([*NICE, "cmake", "--build", str(BUILD), "--target", "percpu_tests",
                            "-j2"], capture_output=True, text=True, check=False)
    assert build.returncode == 0, (build.stdout + build.stderr)[-5000:]
    return BUILD / "percpu_tests"


def test_cxx_unit_tests_pass(tmp_path):
    exe = _build()
    report = tmp_path / "gtest.xml"
    run = subprocess.run([*NICE, str(exe), f"--gtest_output=xml:{report}"],
                         capture_output=True, text=True, check=False, timeout=600)
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    cases = ET.parse(report).getroot().iter("testcase")
    failed = {}
    count = 0
    for case in cases:
        count += 1
        failures = case.findall("failure")
        if failures:
            failed[f"{case.get('classname')}.{case.get('name')}"] = "\n".join(
                f.get("message", "") for f in failures)
    assert count > 0, run.stdout[-3000:]
    assert not failed, f"{len(failed)} of {count} C++ tests failed:\n" + "\n".join(
        f"{name}:\n  {message.strip()}" for name, message in failed.items())
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


def test_gem5_builds_the_same_test_files():
    # Each gem5-side GTest file is the tests/cxx/ file of its name, and SConscript builds it.
    sconscript = (PLUGIN / "SConscript").read_text()
    wrappers = sorted(PLUGIN.glob("*.test.cc"))
    assert wrappers
    for wrapper in wrappers:
        includes = re.findall(r'#include "([^"]+)"', wrapper.read_text())
        assert includes == [f"../../tests/cxx/{wrapper.name}"], wrapper
        assert (REPO / "tests" / "cxx" / wrapper.name).exists()
        assert f"'{wrapper.name}'" in sconscript, wrapper.name
