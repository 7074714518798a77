"""Checks on output paths made before any work starts, so that bad input costs nothing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from percpu.errors import UsageError


def check_writable_dir(out: Path, flag: str) -> None:
    """UsageError unless the directory out exists writable or could be created: a probe
    directory is made and removed in its nearest existing ancestor (os.access says yes to
    root everywhere, /proc, /sys and read-only mounts included). Creates nothing."""
    probe = Path(os.path.abspath(out))
    while not probe.exists() and not probe.is_symlink():
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{flag} {out}: {probe} is not a directory; choose another with {flag}")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".percpu-probe.", dir=probe))
    except OSError as exc:
        raise UsageError(f"{flag} {out}: cannot write in {probe} ({exc.strerror}); "
                         f"choose another with {flag}") from None
