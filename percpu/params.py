"""The model's parameters (costs, geometry, machine) as the C++ core declares them.

The table lives once, in core/config/params.cc; this module reads it from the extension,
validates --set overrides and TOML files against it, and renders docs/parameters.md.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from percpu.errors import UsageError

# Units of the parameters the engine reads as integers (Params::get_int, get_bool, the
# Cycles of the cost table, the seed): a fraction would be truncated, so it is refused.
# The others (MHz, us, Hz, fraction) take any number. tests/cli/test_set_values.py checks
# this against every key core/ reads as an integer.
INTEGER_UNITS = frozenset({"", "bool", "cpus", "levels", "entries", "ways", "cycles", "KiB"})
# The kernels whose TLB rules the engine models (machine.linux; core/config/params.cc).
LINUX_VERSIONS = (6.1, 6.15)


@dataclass(frozen=True)
class ParamSpec:
    key: str
    default: float
    min: float
    max: float
    unit: str
    help: str
    source: str

    @property
    def integer(self) -> bool:
        return self.unit in INTEGER_UNITS


def core():
    try:
        from percpu import _core
    except ImportError as exc:  # pragma: no cover - only on a broken install
        raise UsageError(f"the percpu C++ extension is not built ({exc}): run 'pip install .'") from None
    return _core


def specs() -> dict[str, ParamSpec]:
    return {row[0]: ParamSpec(*row) for row in core().param_specs()}


def parse_value(key: str, text: str, where: str | None = None) -> float:
    """The value of parameter key from text; where names its origin in errors (a TOML
    file's path:line), else it came from --set."""
    spec = specs().get(key)
    if spec is None:
        if where is None:
            raise UsageError(f"unknown parameter '{key}' in --set: run 'percpu params' for the "
                             "list of keys")
        leaf = key.rsplit(".", 1)[-1]
        near = [k for k in specs() if k.rsplit(".", 1)[-1] == leaf]
        hint = (f"did you mean {' or '.join(near)} (e.g. [{near[0].rsplit('.', 1)[0]}] "
                f"{leaf} = ...)?" if near else "run 'percpu params' for the list of keys")
        raise UsageError(f"{where}: unknown parameter '{key}': {hint}")
    what = f"--set {key}={text}" if where is None else f"{where}: {key} = {text}"
    low = str(text).strip().lower()
    if spec.unit == "bool" and low in ("true", "yes", "on", "false", "no", "off"):
        value = 1.0 if low in ("true", "yes", "on") else 0.0
    else:
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"{what}: the value must be a number "
                             f"({spec.unit or 'unitless'})") from None
    if key == "machine.linux" and value not in LINUX_VERSIONS:
        raise UsageError(f"{what}: machine.linux takes 6.1 (Linux 6.1's rules, the default) or "
                         f"6.15 (the 2025 rules, docs/linux-2025.md), not {text}")
    if not spec.min <= value <= spec.max:
        raise UsageError(f"{what} is out of range: use {spec.min:g}..{spec.max:g}")
    if spec.integer and not value.is_integer():
        kind = "0 or 1" if spec.unit == "bool" else f"a whole number of {spec.unit or 'units'}"
        raise UsageError(f"{what}: {key} takes {kind}, not {text}")
    return value


# The TLBs' and caches' geometry keys: core/tlb/tlb.cc and core/cache/cache.cc refuse a
# geometry without whole power-of-two sets (TLBs) or whole sets of 64-byte lines (caches).
TLBS = ("tlb.l1d", "tlb.l1i", "tlb.stlb")
CACHES = ("cache.l1d", "cache.l2", "cache.llc")
LINE_BYTES = 64


def check_geometry(overrides: dict[str, float], where=None) -> None:
    """UsageError naming the key if the overrides (over the defaults) make a TLB or cache
    the engine cannot build; where(key) names the key's origin (a spec's place), else the
    message starts with the key."""
    values = {s.key: s.default for s in specs().values()}
    values.update(overrides)

    def fail(key: str, message: str) -> None:
        prefix = f"{where(key)}: " if where else ""
        raise UsageError(f"{prefix}{key}={values[key]:g}: {message}")

    def pow2(n: int) -> bool:
        return n > 0 and not n & (n - 1)

    for tlb in TLBS:
        e_key, w_key = f"{tlb}.entries", f"{tlb}.ways"
        entries, ways = int(values[e_key]), int(values[w_key])
        if entries % ways == 0 and pow2(entries // ways):
            continue
        if e_key in overrides or w_key not in overrides:
            low = ways * (1 << max((entries // ways).bit_length() - 1, 0))
            fail(e_key, f"{e_key} must be {w_key} ({ways}) times a power of two (its sets): "
                 f"use e.g. {max(low, ways)} or {max(low, ways) * 2}")
        fits = [w for w in range(1, entries + 1) if entries % w == 0 and pow2(entries // w)]
        near = sorted(fits, key=lambda w: abs(w - ways))[:2]
        fail(w_key, f"{w_key} must divide {e_key} ({entries}) into a power-of-two number of "
             f"sets: use e.g. {' or '.join(map(str, sorted(near)))}")
    for cache in CACHES:
        s_key, w_key = f"{cache}.size_kib", f"{cache}.ways"
        lines, ways = int(values[s_key]) * 1024 // LINE_BYTES, int(values[w_key])
        if lines % ways:
            blame = s_key if s_key in overrides or w_key not in overrides else w_key
            fail(blame, f"{s_key} ({values[s_key]:g} KiB, {lines} lines of 64 bytes) must be "
                 f"a whole number of sets of {w_key} ({ways}) lines: change one of them")


def parse_set_options(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set takes key=value, got '{item}' (e.g. --set cost.invlpg=300)")
        key, text = item.split("=", 1)
        out[key.strip()] = parse_value(key.strip(), text)
    return out


def toml_key_lines(text: str) -> dict[str, int]:
    """Line number of each key=value line in TOML text, by its full dotted key (tables
    from [headers]); enough to point at the line of an override, not a TOML parser."""
    import re

    lines: dict[str, int] = {}
    table = ""
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        header = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?$", line)
        if header:
            table = header.group(1).replace('"', "").replace(" ", "")
            continue
        m = re.match(r'^([A-Za-z0-9_."\- ]+?)\s*=', line)
        if m:
            key = m.group(1).replace('"', "").replace(" ", "")
            lines.setdefault(f"{table}.{key}" if table else key, n)
    return lines


def load_toml(path: Path) -> dict[str, float]:
    """A TOML file of overrides: flat keys or tables ([cost] invlpg = 300). A top-level
    [profile] table is metadata (a `percpu calibrate` profile's machine, date and raw
    measurements) and sets nothing. Errors name the file, the line and the key."""
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except OSError as exc:
        raise UsageError(f"cannot read --config {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--config {path} is not UTF-8 text: expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config {path} is not valid TOML: {exc}") from None

    flat: dict[str, str] = {}

    def walk(prefix: str, node: dict) -> None:
        for key, value in node.items():
            full = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                walk(full, value)
            else:
                flat[full] = str(value).lower() if isinstance(value, bool) else str(value)

    data.pop("profile", None)
    walk("", data)
    lines = toml_key_lines(text)

    def where(key: str) -> str:
        line = lines.get(key)
        return f"--config {path}:{line}" if line else f"--config {path}"

    return {key: parse_value(key, value, where(key)) for key, value in flat.items()}


def markdown_table() -> str:
    lines = [
        "# Parameters",
        "",
        "Every number the model uses, with its default and where the default comes from.",
        "Override any of them with `--set key=value` or a TOML file (`--config FILE`).",
        "Parameters in cycles, entries, ways, KiB, CPUs or levels, the bools and the unitless",
        "ones take whole numbers (the engine reads them as integers); the others any number.",
        "Generated by `percpu params --markdown` from core/config/params.cc.",
        "",
        "| key | default | range | unit | meaning | source |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in specs().values():
        lines.append(f"| `{s.key}` | {s.default:g} | {s.min:g}..{s.max:g} | {s.unit} | {s.help} | "
                     f"{s.source} |")
    return "\n".join(lines) + "\n"
