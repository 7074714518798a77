"""The initramfs as a gen_init_cpio list."""

from __future__ import annotations

from pathlib import Path

import pytest

from percpu.guest.initramfs import Initramfs


def _image(tmp_path: Path) -> Initramfs:
    return Initramfs(init=tmp_path / "init", busybox=Path("/bin/busybox"),
                     applets=["sh", "mount", "busybox", "sh", "poweroff"],
                     programs={"ctxmix": tmp_path / "ctxmix", "m5": tmp_path / "m5"},
                     modules={"pcid_selftest.ko": tmp_path / "pcid_selftest.ko"})


def test_cpio_list_entries(tmp_path: Path) -> None:
    lines = _image(tmp_path).cpio_list().splitlines()
    assert lines[0].startswith("#")
    body = lines[1:]
    assert "nod /dev/console 0600 0 0 c 5 1" in body
    assert "dir /tmp 1777 0 0" in body
    assert f"file /init {tmp_path}/init 0755 0 0" in body
    assert "file /bin/busybox /bin/busybox 0755 0 0" in body
    assert f"file /sbin/ctxmix {tmp_path}/ctxmix 0755 0 0" in body
    assert f"file /sbin/m5 {tmp_path}/m5 0755 0 0" in body
    assert f"file /lib/modules/pcid_selftest.ko {tmp_path}/pcid_selftest.ko 0644 0 0" in body
    # One symlink per applet, none for busybox itself.
    slinks = [line for line in body if line.startswith("slink ")]
    assert slinks == ["slink /bin/mount busybox 0777 0 0", "slink /bin/poweroff busybox 0777 0 0",
                      "slink /bin/sh busybox 0777 0 0"]
    # Every entry is owned by root through the list: no fakeroot needed.
    for line in body:
        kind, *fields = line.split()
        assert kind in ("dir", "nod", "file", "slink")
        owner = fields[3:5] if kind in ("file", "slink") else fields[2:4]
        assert owner == ["0", "0"], line
    # Directories come before what they hold (gen_init_cpio writes in list order).
    assert body.index("dir /sbin 0755 0 0") < body.index(f"file /sbin/m5 {tmp_path}/m5 0755 0 0")


def test_guest_paths(tmp_path: Path) -> None:
    assert _image(tmp_path).guest_paths() == [
        "/init", "/bin/busybox", "/sbin/ctxmix", "/sbin/m5", "/lib/modules/pcid_selftest.ko"]


@pytest.mark.parametrize("bad", [Path("relative/init"), Path("/with space/init")])
def test_cpio_list_rejects_paths_gen_init_cpio_cannot_read(bad: Path) -> None:
    with pytest.raises(ValueError, match="absolute path without spaces"):
        Initramfs(init=bad, busybox=Path("/bin/busybox")).cpio_list()
