"""How the report writes numbers and counts."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from percpu.analysis.report.context import _fmt_dim
from percpu.text import plural

# ---------------------------------------------------------------------------
# Formatting


def _num(x: Any) -> str:
    """Counts exactly (with separators), fractions to 3 significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return "—"
    v = float(x)
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if abs(v) >= 1000 or v.is_integer():
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _si(x: float, signed: bool = False) -> str:
    if x is None or math.isnan(x):
        return "—"
    sign = "+" if signed and x > 0 else ""
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{sign}{x / factor:.3g} {suffix}"
    return f"{sign}{x:.3g}" if not float(x).is_integer() else f"{sign}{x:.0f}"


def _pct(x: float, signed: bool = True) -> str:
    if x is None or math.isnan(x):
        return "—"
    return f"{x:+.2f} %" if signed else f"{x:.2f} %"


_plural = plural


def _one(vals: list[Any]) -> str:
    return _fmt_dim(vals[0]) if vals else "?"
