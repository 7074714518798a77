"""`percpu guest kselftest`: the runner it ships to the guest and how results compare
(the real run needs both guests and QEMU: docs/kernel.md lists what it found)."""

from __future__ import annotations

from percpu.guest import kselftest
from percpu.guest.qemu import qemu_command


def test_results_differ_where_a_status_differs_or_a_test_is_missing() -> None:
    stock = {"x86/sigreturn_64": 0, "vm/mremap_test": 0, "vm/userfaultfd": 1}
    assert kselftest.compare(stock, dict(stock)) == []
    percpu = {**stock, "vm/mremap_test": 139}
    del percpu["vm/userfaultfd"]
    assert kselftest.compare(stock, percpu) == ["vm/mremap_test", "vm/userfaultfd"]


def test_status_lines_are_what_the_runner_prints() -> None:
    m = kselftest.RESULT.search("percpu-guest: kselftest vm/mremap_test status=0")
    assert m and m.groups() == ("vm/mremap_test", "0")


def test_the_tests_travel_in_a_second_initramfs() -> None:
    from pathlib import Path

    cmd = qemu_command(Path("/c/bzImage"), initrd=Path("/c/initrd.cpio"),
                       extra_args="percpu.kselftests=1")
    assert cmd[cmd.index("-initrd") + 1] == "/c/initrd.cpio"
    assert cmd[cmd.index("-append") + 1].endswith("percpu.kselftests=1")
    assert "-initrd" not in qemu_command(Path("/c/bzImage"))


def test_only_trouble_the_stock_kernel_did_not_show_counts_against_the_series() -> None:
    from collections import Counter

    from percpu.guest.qemu import kernel_trouble

    # sysret_ss_attrs_64 oopses both kernels under QEMU's TCG (docs/kernel.md).
    stock = Counter({"BUG:": 1, "Oops": 1})
    assert kselftest.extra_trouble(stock, Counter(stock)) == Counter()
    assert kselftest.extra_trouble(stock, stock + Counter({"WARNING:": 1})) == \
        Counter({"WARNING:": 1})
    # A user program's fault the kernel logs is not trouble of the kernel's.
    assert kernel_trouble("traps: fsgsbase_64[49] general protection fault ip:4021ac") is None
    assert kernel_trouble("Oops: 0001 [#1] SMP NOPTI") == "Oops"
