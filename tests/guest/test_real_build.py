"""A real guest build and QEMU boot: runs where the Debian packages are installed
(linux-source-6.1, busybox-static, qemu-system-x86, ...), skipped elsewhere (CI does not
install them). Uses the normal cache ($PERCPU_GUEST_DIR or ~/.cache/percpu/guest), so
only the first run pays for the kernel build (minutes); later runs reuse it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from percpu.guest import cache as gcache
from percpu.guest import kconfig
from percpu.guest.packages import BUILD_PACKAGES, QEMU_PACKAGES, installed_versions
from tests.guest.helpers import GUEST


def _missing() -> list[str]:
    if shutil.which("dpkg-query") is None:
        return ["dpkg-query (not a Debian system)"]
    versions = installed_versions(list(BUILD_PACKAGES + QEMU_PACKAGES))
    return [p for p, v in versions.items() if v is None]


MISSING = _missing()
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"real guest build needs the Debian packages {', '.join(MISSING)} "
    f"(apt-get install {' '.join(MISSING)})")


@pytest.fixture(scope="module")
def built() -> gcache.GuestBuild:
    proc = subprocess.run([sys.executable, "-m", "percpu", "guest", "build", "--check"],
                          capture_output=True, text=True, timeout=3600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "percpu guest check: ok" in proc.stdout
    # The progress lines, one per step.
    for n in range(1, 9):
        assert f"[{n}/8] " in proc.stdout or "guest up to date" in proc.stdout
    return gcache.default_build()


def test_build_is_complete_and_current(built: gcache.GuestBuild) -> None:
    assert gcache.default_kernel() == built.vmlinux
    assert built.vmlinux.read_bytes()[:4] == b"\x7fELF"
    assert built.path.parent == gcache.cache_dir()
    manifest = json.loads((built.path / "manifest.json").read_text())
    assert manifest["key"] == built.path.name == gcache.current_inputs().key()
    assert manifest["kernel_args"] == gcache.KERNEL_ARGS
    assert manifest["kernel_release"].endswith("-percpu")
    assert set(manifest["programs"]) >= {"ctxmix", "pingpong", "forkexec", "threads_munmap",
                                         "kmap_io", "server", "hotplug"}
    for name in ("vmlinux", "bzImage"):
        assert manifest["files"][name]["size"] == (built.path / name).stat().st_size
    assert manifest["initramfs"]["compression"] == "none"
    assert (built.path / "build.log").is_file()


def test_every_fragment_option_is_in_the_built_config(built: gcache.GuestBuild) -> None:
    wanted = kconfig.parse_file(GUEST / "kernel" / "percpu.config", strict=True)
    config = kconfig.parse_file(built.path / ".config")
    assert kconfig.mismatches(wanted, config) == []
    assert config["CONFIG_INITRAMFS_SOURCE"].strip('"').endswith("initramfs.list")


def test_qemu_boot_runs_init_programs_and_selftest(built: gcache.GuestBuild) -> None:
    from percpu.guest.qemu import check

    result = check(built, timeout=120)
    assert result.ok, result.problems
    assert result.booted["kernel"] == built.manifest["kernel_release"]
    assert result.booted["cpus"] == "2"
    # Every program, and the lazy-fault bench (it needs 2 CPUs) under its own name.
    assert set(result.smoke) == set(built.manifest["programs"]) - {"m5"} | {"calib_fault_lazy"}
    # TCG's -cpu max has no PCID: the self-test says so instead of pretending.
    assert result.booted["pcid"] == "no"
    assert result.selftest_skipped == "skipped (no pcid)"
    assert result.boot_seconds is not None and result.boot_seconds < 30


def test_rebuild_is_a_no_op(built: gcache.GuestBuild) -> None:
    proc = subprocess.run([sys.executable, "-m", "percpu", "guest", "build"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"guest up to date: {built.path}" in proc.stdout


def test_an_option_that_does_not_take_stops_the_build_naming_it(built: gcache.GuestBuild,
                                                                tmp_path) -> None:
    """A fragment asking for a symbol Kconfig does not know and for an option whose
    dependency is off: step 3 fails and names both (kernel config only, ~15 s)."""
    from percpu.guest.build import Builder, BuildError

    guest = tmp_path / "guest"
    shutil.copytree(GUEST, guest, ignore=shutil.ignore_patterns("build"))
    fragment = guest / "kernel" / "percpu.config"
    text = fragment.read_text().replace("CONFIG_SMP=y\n", "# CONFIG_SMP is not set\n")
    fragment.write_text(text + "CONFIG_PERCPU_NO_SUCH_OPTION=y\n")
    cache = gcache.cache_dir()
    lines: list[str] = []
    builder = Builder(cache, echo=lines.append, guest=guest)
    with pytest.raises(BuildError) as info:
        builder.run()
    message = str(info.value)
    assert "step 3/8 failed: verifying the fragment" in message
    assert "CONFIG_PERCPU_NO_SUCH_OPTION wanted y, got absent" in message
    # SMP off takes, so HOTPLUG_CPU (depends on SMP) is what does not.
    assert "CONFIG_HOTPLUG_CPU wanted y" in message
    assert lines[-1].startswith("[3/8] configure")
    # No entry was installed; the partial build keeps its log. Clean up this test's tree.
    key = gcache.current_inputs(guest).key()
    assert not (cache / key).exists()
    assert (cache / f".partial-{key}" / "build.log").is_file()
    shutil.rmtree(cache / f".partial-{key}")
    kkey = gcache.current_inputs(guest).kernel_key()
    shutil.rmtree(cache / "work" / kkey)
    (cache / "work" / f"{kkey}.lock").unlink()
