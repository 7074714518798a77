"""The percpu kernel (src_patches/linux-6.1/, docs/kernel.md) built and booted for real:
runs where the Debian packages are installed (linux-source-6.1, busybox-static, patch,
qemu-system-x86, ...), skipped elsewhere with the packages it lacks (CI does not install
them). Uses the normal cache, so only the first run pays for the kernel build."""

from __future__ import annotations

import subprocess
import sys

import pytest

from percpu.guest import cache as gcache
from percpu.guest.packages import PATCH_PACKAGES, installed_versions
from tests.guest.test_real_build import _missing


def _missing_here() -> list[str]:
    missing = _missing()  # the stock guest's packages and QEMU's
    if missing:
        return missing
    return [p for p, v in installed_versions(list(PATCH_PACKAGES)).items() if v is None]


MISSING = _missing_here()
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"the percpu kernel needs the Debian packages {', '.join(MISSING)} "
    f"(apt-get install {' '.join(MISSING)})")


def _percpu(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "percpu", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def built() -> gcache.GuestBuild:
    proc = _percpu("guest", "build", "--kernel", "percpu")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return gcache.default_build(kernel="percpu")


def test_the_percpu_guest_is_its_own_build(built: gcache.GuestBuild) -> None:
    assert built.manifest["kernel"] == "percpu"
    assert built.manifest["patches"] == [p.name for p in gcache.series_patches()]
    assert built.manifest["kernel_release"].endswith("-percpu-roots")
    config = (built.path / ".config").read_text()
    assert "CONFIG_X86_PERCPU_ROOTS=y" in config and "CONFIG_DEBUG_PERCPU_ROOTS=y" in config
    assert _percpu("guest", "path", "--kernel", "percpu").stdout.strip() == str(built.vmlinux)


@pytest.mark.parametrize("cpus", [2, 4])
def test_roots_run_checked_under_stress_with_and_without_pti(built: gcache.GuestBuild,
                                                             cpus: int) -> None:
    """The programs, pti=on, percpu_roots=off and 10 s of roots_stress (with CPU 1
    offlined and onlined meanwhile) without and with PTI: no checker violation, no kernel
    warning, no data error, the pool within its bound (percpu guest check checks each)."""
    proc = _percpu("guest", "check", "--kernel", "percpu", "--cpus", str(cpus), "--stress",
                   "10", "--no-pcid", "--no-gem5-path")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "percpu guest check: ok" in proc.stdout
    log = (built.path / "qemu-check-stress_pti.log").read_text()
    roots = dict(line.split()[-2:] for line in log.splitlines()
                 if line.startswith("percpu-guest: roots "))
    # TCG has no PCID: every root is a no-PCID one, and the stress frees tables all along.
    assert int(roots["rootAllocs::noPcid"]) == int(roots["rootAllocs::total"]) > 1000
    assert int(roots["rootEntriesDropped"]) > 0 and int(roots["checkerViolations"]) == 0
    assert int(roots["rootCopyBytes"]) == 4096 * int(roots["rootAllocs::total"])  # PTI pairs
    # The smoke run's guest programs print the kernel's counters over their ROI.
    smoke = (built.path / "qemu-check-max.log").read_text()
    roi = dict(line.split()[-2:] for line in smoke.splitlines()
               if line.startswith("percpu-guest: ctxmix: percpu-roots: "))
    assert 0 < int(roi["rootAllocs::noPcid"]) == int(roi["rootAllocs::total"])
    assert int(roi["checkerViolations"]) == 0


def test_kernel_selftests_end_the_same_on_both_kernels(built: gcache.GuestBuild) -> None:
    """The kernel's x86 and vm selftests (static, from Debian's tree) on the stock and the
    percpu guest: every test ends with the same status (percpu guest kselftest)."""
    stock = _percpu("guest", "build")
    assert stock.returncode == 0, stock.stderr[-2000:]
    proc = _percpu("guest", "kselftest", "--cpus", "2")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "percpu guest kselftest: ok" in proc.stdout
    assert " 0 differ from the stock kernel" in proc.stdout
