"""Kconfig fragments: parse `CONFIG_X=value` / `# CONFIG_X is not set` lines and check
that every option a fragment asks for is what the merged .config ended up with."""

from __future__ import annotations

import re
from pathlib import Path

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
# What merge_config.sh also reads as an option (so a comment must not look like it).
_LOOKS_LIKE_OPTION = re.compile(r"^#?\s*CONFIG_[A-Za-z0-9_]+")


class FragmentError(ValueError):
    """A malformed fragment line, or options that did not take."""


def parse(text: str, *, strict: bool = False, where: str = "config") -> dict[str, str]:
    """Options of a .config or fragment: name -> value, 'n' for `# CONFIG_X is not set`.

    Strict mode (fragments) rejects a line that merge_config.sh would half-read: a
    comment starting with CONFIG_ but not of the `is not set` form, or a bad assignment.
    """
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        match = _SET.match(line) or _UNSET.match(line)
        if match:
            name = match.group(1)
            value = match.group(2) if match.re is _SET else "n"
            if strict and name in out and out[name] != value:
                raise FragmentError(f"{where}:{number}: {name} is set twice, differently")
            out[name] = value
            continue
        if strict and (not line.startswith("#") or _LOOKS_LIKE_OPTION.match(line)):
            raise FragmentError(f"{where}:{number}: not an option or a plain comment: {raw!r}")
    return out


def parse_file(path: Path, *, strict: bool = False) -> dict[str, str]:
    return parse(path.read_text(), strict=strict, where=str(path))


def mismatches(wanted: dict[str, str], config: dict[str, str]) -> list[tuple[str, str, str]]:
    """(option, wanted, got) for every wanted option the config does not have.

    An option absent from the config counts as 'n' (Kconfig omits options whose
    dependencies are off), so wanting it off is satisfied and wanting it on is not.
    """
    out = []
    for name, value in wanted.items():
        got = config.get(name, "n")
        if got != value:
            out.append((name, value, "absent" if name not in config else got))
    return out


def describe(problems: list[tuple[str, str, str]]) -> str:
    def show(v: str) -> str:
        return "not set" if v == "n" else v

    return "; ".join(f"{name} wanted {show(want)}, got {show(got)}"
                     for name, want, got in problems)


def verify(wanted: dict[str, str], config_path: Path, fragment: str) -> None:
    """Raise FragmentError naming every option of `fragment` that did not take."""
    problems = mismatches(wanted, parse_file(config_path))
    if problems:
        raise FragmentError(
            f"{len(problems)} option(s) of {fragment} did not take in {config_path} "
            f"(a dependency is off or the symbol does not exist): {describe(problems)}")
