"""Hypothesis strategies shared by the tests: ternary matrices and int8 activations."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


@st.composite
def ternary_matrices(draw: st.DrawFn, max_rows: int = 24, max_cols: int = 150,
                     rows_multiple: int = 1) -> np.ndarray:
    """(out, in) int8 in {-1, 0, +1}; sometimes all zero, all +1 or all -1."""
    rows = rows_multiple * draw(st.integers(1, max(1, max_rows // rows_multiple)))
    cols = draw(st.integers(1, max_cols))
    fill = draw(st.sampled_from(["random", "zero", "plus", "minus"]))
    if fill == "zero":
        return np.zeros((rows, cols), np.int8)
    if fill == "plus":
        return np.ones((rows, cols), np.int8)
    if fill == "minus":
        return -np.ones((rows, cols), np.int8)
    return draw(hnp.arrays(np.int8, (rows, cols), elements=st.integers(-1, 1)))


def int8_arrays(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """int8 arrays of ``shape``, including -128 and constant arrays."""
    return st.one_of(
        hnp.arrays(np.int8, shape, elements=st.integers(-128, 127)),
        st.integers(-128, 127).map(lambda v: np.full(shape, v, np.int8)),
    )
