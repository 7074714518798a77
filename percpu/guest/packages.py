"""The Debian packages a guest build (and its QEMU check) needs, checked with dpkg-query."""

from __future__ import annotations

import shutil
import subprocess

from percpu.errors import UsageError

LINUX_SOURCE = "linux-source-6.1"
LINUX_TARBALL = "/usr/src/linux-source-6.1.tar.xz"
BUSYBOX = "busybox-static"
BUSYBOX_PATH = "/bin/busybox"

# What `make tinyconfig && make vmlinux bzImage modules` on Debian needs, plus the
# guest programs (static glibc: libc6-dev) and the initramfs contents.
BUILD_PACKAGES = (
    LINUX_SOURCE, BUSYBOX, "gcc", "libc6-dev", "binutils", "make", "bc", "flex", "bison",
    "libelf-dev", "cpio", "xz-utils",
)
QEMU_PACKAGES = ("qemu-system-x86",)
# The percpu kernel applies src_patches/linux-6.1/ with patch -p1.
PATCH_PACKAGES = ("patch",)


def installed_versions(packages: tuple[str, ...] | list[str]) -> dict[str, str | None]:
    """package -> installed version, None when it is not installed."""
    if shutil.which("dpkg-query") is None:
        raise UsageError("percpu guest needs a Debian system with dpkg-query "
                         f"(to install {' '.join(packages)})")
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Version}\n", *packages],
        capture_output=True, text=True, check=False)
    found: dict[str, str | None] = {p: None for p in packages}
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        name, status, version = parts
        name = name.split(":")[0]
        if name in found and status.startswith("ii") and version:
            found[name] = version
    return found


def require(packages: tuple[str, ...] | list[str], what: str = "percpu guest build"
            ) -> dict[str, str]:
    """Installed versions of all packages, or UsageError (one line) naming the missing ones."""
    versions = installed_versions(packages)
    missing = [p for p, v in versions.items() if v is None]
    if missing:
        raise UsageError(f"{what} needs the Debian package(s) {', '.join(missing)}: "
                         f"apt-get install {' '.join(missing)}")
    return {p: v for p, v in versions.items() if v is not None}
