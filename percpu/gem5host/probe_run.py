"""Run probe.py inside a gem5 binary and read its one JSON line."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from percpu.errors import UsageError

PROBE = Path(__file__).with_name("probe.py")


def probe(gem5: Path, timeout_s: float = 300) -> dict:
    if not gem5.is_file():
        raise UsageError(f"gem5 binary {gem5} not found: pass the path of build/X86/gem5.opt")
    with tempfile.TemporaryDirectory(prefix="percpu-probe-") as out:
        try:
            res = subprocess.run([str(gem5), "-d", out, "--listener-mode=off", str(PROBE)],
                                 check=False, capture_output=True, text=True, timeout=timeout_s)
        except OSError as exc:
            raise UsageError(f"cannot run {gem5}: {exc.strerror}") from None
    for line in res.stdout.splitlines():
        if line.startswith("percpu-probe: "):
            return json.loads(line.split(": ", 1)[1])
    last = (res.stderr.strip().splitlines() or ["no output"])[-1]
    raise UsageError(f"{gem5} did not run percpu's probe (exit {res.returncode}: {last}): is it a "
                     "gem5 binary?")


def lacks_plugin(gem5: Path | str, missing: list[str]) -> str:
    """What to say of a gem5 binary without (part of) percpu's plugin."""
    return (f"{gem5} lacks percpu's plugin ({', '.join(missing)}): apply src_patches/ and "
            "build gem5 with EXTRAS=.../src_patches/percpu_gem5 (docs/gem5.md)")
