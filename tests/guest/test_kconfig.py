"""The kernel config fragment: strict parsing, and verification of a merged .config."""

from __future__ import annotations

from pathlib import Path

import pytest

from percpu.guest import kconfig

FRAGMENT = Path(__file__).resolve().parents[2] / "workloads/guest/kernel/percpu.config"

SAMPLE_CONFIG = """\
#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_64BIT=y
CONFIG_SMP=y
CONFIG_NR_CPUS=64
# CONFIG_RANDOMIZE_BASE is not set
CONFIG_INITRAMFS_SOURCE="/x/initramfs.list"
"""


def test_parse_reads_values_and_not_set_lines() -> None:
    got = kconfig.parse(SAMPLE_CONFIG)
    assert got == {"CONFIG_64BIT": "y", "CONFIG_SMP": "y", "CONFIG_NR_CPUS": "64",
                   "CONFIG_RANDOMIZE_BASE": "n",
                   "CONFIG_INITRAMFS_SOURCE": '"/x/initramfs.list"'}


def test_mismatches_name_each_option_that_did_not_take() -> None:
    wanted = {"CONFIG_SMP": "y", "CONFIG_NR_CPUS": "16", "CONFIG_PCI": "y",
              "CONFIG_RANDOMIZE_BASE": "n", "CONFIG_X86_5LEVEL": "n"}
    problems = kconfig.mismatches(wanted, kconfig.parse(SAMPLE_CONFIG))
    # Absent counts as off: X86_5LEVEL=n is satisfied, PCI=y is not.
    assert problems == [("CONFIG_NR_CPUS", "16", "64"), ("CONFIG_PCI", "y", "absent")]
    text = kconfig.describe(problems)
    assert "CONFIG_NR_CPUS wanted 16, got 64" in text
    assert "CONFIG_PCI wanted y, got absent" in text


def test_verify_raises_with_the_option_names(tmp_path: Path) -> None:
    config = tmp_path / ".config"
    config.write_text(SAMPLE_CONFIG)
    kconfig.verify({"CONFIG_SMP": "y", "CONFIG_RANDOMIZE_BASE": "n"}, config, "f.config")
    with pytest.raises(kconfig.FragmentError, match="CONFIG_PAGE_TABLE_ISOLATION wanted y"):
        kconfig.verify({"CONFIG_PAGE_TABLE_ISOLATION": "y"}, config, "f.config")


@pytest.mark.parametrize("line", [
    "# CONFIG_FOO is not here: a comment merge_config.sh would half-read",
    "CONFIG_FOO y",
    "#CONFIG_FOO=y",
    "FOO=y",
])
def test_strict_parse_rejects_lines_merge_config_would_misread(line: str) -> None:
    with pytest.raises(kconfig.FragmentError, match=":2: "):
        kconfig.parse("CONFIG_A=y\n" + line + "\n", strict=True, where="frag")


def test_strict_parse_rejects_an_option_set_twice_differently() -> None:
    with pytest.raises(kconfig.FragmentError, match="CONFIG_A is set twice"):
        kconfig.parse("CONFIG_A=y\n# CONFIG_A is not set\n", strict=True)


def test_the_repository_fragment_has_what_the_guest_needs() -> None:
    frag = kconfig.parse_file(FRAGMENT, strict=True)
    for name in ("64BIT", "SMP", "PRINTK", "EARLY_PRINTK", "TTY", "SERIAL_8250",
                 "SERIAL_8250_CONSOLE", "BLK_DEV_INITRD", "BINFMT_ELF", "BINFMT_SCRIPT",
                 "DEVTMPFS", "DEVTMPFS_MOUNT", "PROC_FS", "SYSFS", "DEVMEM", "X86_LOCAL_APIC",
                 "X86_IO_APIC", "X86_MPPARSE", "PCI", "FUTEX", "SHMEM", "TMPFS", "HZ_1000",
                 "PAGE_TABLE_ISOLATION", "HOTPLUG_CPU", "MODULES", "POSIX_TIMERS",
                 "MULTIUSER", "INITRAMFS_COMPRESSION_NONE"):
        assert frag.get(f"CONFIG_{name}") == "y", name
    for name in ("RELOCATABLE", "RANDOMIZE_BASE", "X86_5LEVEL", "STRICT_DEVMEM", "RD_GZIP"):
        assert frag.get(f"CONFIG_{name}") == "n", name
    assert int(frag["CONFIG_NR_CPUS"]) >= 16
    # The builder sets the initramfs source itself.
    assert "CONFIG_INITRAMFS_SOURCE" not in frag
