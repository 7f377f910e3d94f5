"""How counts and durations read in the commands' output: ``1 file``, ``3 files``, ``0.042 ms``.

One place for the two things a report gets wrong most easily: a plural after the number one, and a
duration rounded to nothing (a tiny model's memory-bandwidth bound printed as ``0 ms``).
"""

from __future__ import annotations

import math


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``count`` and ``noun``, the noun plural unless ``count`` is 1.

    plural(1, "file") -> '1 file';  plural(3, "file") -> '3 files';
    plural(2048, "token") -> '2,048 tokens';  plural(2, "entry", "entries") -> '2 entries'
    """
    word = noun if count == 1 else (plural_noun if plural_noun is not None else noun + "s")
    return f"{count:,} {word}"


def significant(value: float, digits: int = 3) -> str:
    """``value`` rounded to ``digits`` significant digits, whole numbers never cut short.

    significant(1234.5) -> '1234';  significant(12.345) -> '12.3';
    significant(0.04567) -> '0.0457';  significant(0) -> '0'
    """
    if value == 0 or not math.isfinite(value):
        return f"{value:.0f}"
    # subtle: the decade after rounding, so that 0.99996 gives '1.00' and not '1.000'
    rounded = float(f"{value:.{digits - 1}e}")
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
    return f"{value:.{decimals}f}"


def milliseconds(ms: float) -> str:
    """A duration in milliseconds to three significant digits: '145 ms', '0.0423 ms'."""
    return f"{significant(ms)} ms"
