"""Small helpers for text a user reads: counts with their nouns, and natural order."""

from __future__ import annotations

import re


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 process', '2 processes': the count and its noun (many: an irregular plural)."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {many or (word + 'es' if word.endswith(('s', 'sh', 'ch', 'x')) else word + 's')}"


def natural_key(text: str) -> list[int | str]:
    """Sort key that orders the numbers inside text by value: procs_per_cpu=2 before
    procs_per_cpu=10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]
