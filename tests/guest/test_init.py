"""workloads/guest/init.sh: valid shell, and the lines of the init protocol."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.guest.helpers import GUEST

INIT = GUEST / "init.sh"


@pytest.mark.parametrize("shell", ["sh", "busybox"])
def test_init_parses(shell: str) -> None:
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} not installed")
    argv = [exe, "sh", "-n", str(INIT)] if shell == "busybox" else [exe, "-n", str(INIT)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_init_protocol_lines_and_order() -> None:
    text = INIT.read_text()
    order = [
        "mount -t proc proc /proc", "mount -t sysfs sysfs /sys",
        "mount -t devtmpfs devtmpfs /dev", "mount -t tmpfs tmpfs /tmp",
        'echo "percpu-guest: booted kernel=$release cpus=$cpus pcid=$pcid invpcid=$invpcid"',
        '"pti=${meltdown// /_} ptiflag=$ptiflag"',
        "has_arg percpu.selftest=1", "insmod /lib/modules/pcid_selftest.ko",
        "has_arg percpu.host=qemu", "has_arg percpu.smoke=1",
        'echo "percpu-guest: qemu check done"', "poweroff -f",
        'echo "percpu-guest: ready"', "/sbin/m5 exit", "/sbin/m5 readfile >/tmp/script",
        'echo "percpu-guest: running script ($(wc -c </tmp/script) bytes)"', "sh /tmp/script",
        'echo "percpu-guest: script exited with status $?"', "/sbin/m5 exit", "poweroff -f",
    ]
    pos = 0
    for needle in order:
        found = text.find(needle, pos)
        assert found >= 0, f"{needle!r} missing or out of order"
        pos = found + len(needle)
    assert "export PATH=/sbin:/bin" in text


def test_smoke_runs_every_guest_program() -> None:
    from percpu.guest.build import programs_of

    text = INIT.read_text()
    for name in programs_of(GUEST) + programs_of(GUEST / "calib"):
        if name != "m5":
            assert f'"{name} ' in text, name
