"""The gem5 guest: a small Linux 6.1 kernel with a built-in initramfs (busybox, /init,
the m5 helper, the guest programs and the ring-0 PCID self-test), built from Debian
packages by `percpu guest build` into a cache outside the repository (docs/guest.md).

What the gem5 config uses:
    from percpu.guest import default_kernel, default_manifest
    vmlinux = default_kernel()          # Path; UsageError if nothing is built
    args = default_manifest()["kernel_args"]
"""

from __future__ import annotations

from percpu.guest.cache import (
    GuestBuild,
    cache_dir,
    current_inputs,
    default_build,
    default_kernel,
    default_manifest,
)

__all__ = ["GuestBuild", "cache_dir", "current_inputs", "default_build", "default_kernel",
           "default_manifest"]
