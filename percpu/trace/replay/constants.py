"""The replay's constants (page and line sizes, time thresholds, the default engine clock) and
small helpers on addresses and protections."""

from __future__ import annotations

from percpu.params import specs

PAGE = 4096
LINE = 64
SYNTH_BLOCK = 2 << 20
USER_TOP = 1 << 47
# The engine's default clock (machine.freq_mhz in core/config/params.cc), in MHz: a replay
# converts measured ns to cycles at the run's machine.freq_mhz, this when none is given.
DEFAULT_FREQ_MHZ = float(specs()["machine.freq_mhz"].default)
SLEEP_MIN_NS = 1_000
COMPUTE_MIN_NS = 50
COMPUTE_SPLIT_NS = 20_000
DEFAULT_MAX_OPS = 100_000
END = -1  # slot index of a run's end
ACCESS_WORD = {"r": "load", "w": "store", "x": "fetch", "I": "fetch", "L": "load", "S": "store"}
KIND_OF = {"I": "x", "L": "r", "S": "w", "r": "r", "w": "w", "x": "x"}


def _page_up(x: int) -> int:
    return (x + PAGE - 1) & ~(PAGE - 1)


def _page_down(x: int) -> int:
    return x & ~(PAGE - 1)


def _engine_prot(bits: int) -> str:
    w, x = bits & 2, bits & 4
    return "rwx" if w and x else "rw" if w else "rx" if x else "r"


def _perm_bits(perms: str) -> int:
    bits = 0
    if perms[:1] == "r":
        bits |= 1
    if perms[1:2] == "w":
        bits |= 2
    if perms[2:3] == "x":
        bits |= 4
    return bits
