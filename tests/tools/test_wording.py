"""minibitnet.tools.wording: plurals after a count, and figures rounded to significant digits."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibitnet.tools.wording import milliseconds, plural, significant


@pytest.mark.parametrize("count, expected", [
    (0, "0 files"), (1, "1 file"), (2, "2 files"), (2048, "2,048 files"), (-1, "-1 files"),
])
def test_plural(count: int, expected: str) -> None:
    assert plural(count, "file") == expected


def test_plural_with_an_irregular_noun() -> None:
    assert plural(1, "entry", "entries") == "1 entry"
    assert plural(3, "entry", "entries") == "3 entries"


@pytest.mark.parametrize("value, expected", [
    (0.0, "0"), (1234.5, "1234"), (145.2, "145"), (12.345, "12.3"), (1.0, "1.00"),
    (0.04567, "0.0457"), (0.00012345, "0.000123"), (0.99996, "1.00"), (99.96, "100"),
    (-2.5, "-2.50"),
])
def test_significant(value: float, expected: str) -> None:
    assert significant(value) == expected


@given(st.floats(1e-9, 1e9))
def test_significant_keeps_three_digits_and_never_rounds_to_zero(value: float) -> None:
    text = significant(value)
    assert float(text) > 0
    digits = text.replace(".", "").lstrip("0")
    assert len(digits) >= 3
    assert math.isclose(float(text), value, rel_tol=5e-3)


def test_milliseconds_under_one_keeps_its_digits() -> None:
    assert milliseconds(0.0423) == "0.0423 ms"
    assert milliseconds(145.2) == "145 ms"
