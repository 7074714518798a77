"""Builds the calibration programs with gcc into a temporary directory.

Static, like the guest programs (the same binaries then run in the gem5 guest); when
the C library has no static archive the build falls back to dynamic linking and says so.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from percpu.calibrate.sources import PROGRAMS, calib_dir, program_sources
from percpu.errors import UsageError

CFLAGS = ("-O2", "-Wall", "-Wextra", "-pthread")


@dataclass(frozen=True)
class Built:
    directory: Path
    static: bool
    compiler: str

    def path(self, program: str) -> Path:
        return self.directory / program


def _compile(cc: str, program: str, out: Path, static: bool) -> subprocess.CompletedProcess:
    cmd = [cc, *CFLAGS, *(["-static"] if static else []), "-o", str(out),
           *(str(p) for p in program_sources(program))]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def build_programs(directory: Path, programs: tuple[str, ...] = PROGRAMS, cc: str = "gcc") -> Built:
    """Compile programs into directory; UsageError (one line) when that is impossible."""
    compiler = shutil.which(cc)
    if compiler is None:
        raise UsageError(f"percpu calibrate needs a C compiler: '{cc}' is not on PATH "
                         "(install gcc, e.g. apt-get install gcc)")
    if not (calib_dir() / "calib.c").is_file():
        raise UsageError(f"calibration sources not found in {calib_dir()}: reinstall percpu")
    directory.mkdir(parents=True, exist_ok=True)
    static = True
    for program in programs:
        out = directory / program
        done = _compile(compiler, program, out, static)
        if done.returncode != 0 and static:
            # No static libc (libc6-dev without libc.a, musl-less systems): link dynamically.
            static = False
            done = _compile(compiler, program, out, static)
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["(no output)"])[0]
            raise UsageError(f"cannot build {program} with {cc}: {first}")
    return Built(directory, static, compiler)
