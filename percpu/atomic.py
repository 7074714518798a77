"""Atomic file writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write data to a temporary file beside path, then rename it over path.

    The file gets the usual 0666 & ~umask mode (mkstemp's 0600 would make reports and
    stats unreadable to colleagues on a shared cluster).
    """
    p = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A temporary directory with the usual 0777 & ~umask mode (mkdtemp gives 0700)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def replace_dir(new: Path, final: Path) -> None:
    """Put the complete directory new at final, replacing what was there: the old one is
    renamed aside first, so final is at every moment either the old run or the new one."""
    if final.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.old.", dir=final.parent))
        os.replace(final, trash / "old")
        os.replace(new, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(new, final)
