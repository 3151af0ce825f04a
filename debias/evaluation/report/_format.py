"""How the report writes a number (shared by its sections)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["fmt"]


def fmt(x: Any, digits: int = 3) -> str:
    """A number for people: '–' for missing, fixed decimals, thousands separators for counts."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x != 0 and abs(x) < 10 ** -digits:
            return f"{x:.1e}"
        return f"{x:.{digits}f}"
    return str(x)
