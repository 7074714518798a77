"""Where the calibration microbenchmarks' C sources live, and which programs they make."""

from __future__ import annotations

from pathlib import Path

from percpu.workloads import workloads_dir

# Each program is one C file in workloads/guest/calib/ linked with the files below.
PROGRAMS = ("calib_clock", "calib_syscall", "calib_fault", "calib_sched", "calib_proc",
            "calib_shootdown", "calib_chase")
# calib.c is the harness; common.c and m5op.c are the guest programs' own helpers.
SHARED_SOURCES = ("calib.c", "../common.c", "../m5op.c")
HEADERS = ("calib.h", "../common.h", "../m5op.h")


def calib_dir() -> Path:
    """workloads/guest/calib/ (in the checkout or the installed copy)."""
    return workloads_dir() / "guest" / "calib"


def program_sources(program: str) -> list[Path]:
    """The .c files that make one program, its own first."""
    base = calib_dir()
    return [base / f"{program}.c", *(base / s for s in SHARED_SOURCES)]
