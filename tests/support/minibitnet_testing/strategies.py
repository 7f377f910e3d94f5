"""Hypothesis strategies shared by the tests: ternary matrices, int8 activations, JSON values,
codes with zeros and float32 scales."""

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


@st.composite
def codes_with_zeros(draw: st.DrawFn) -> np.ndarray:
    """(out, in) int8 codes, out a multiple of 4, with at least one nonzero and three zeros:
    one nonzero, sparse, a third zero, dense, or all nonzero but three."""
    rows, cols = 4 * draw(st.integers(1, 75)), draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    fill = draw(st.sampled_from(["one", "sparse", "third", "dense", "three zeros"]))
    n = rows * cols
    nonzero_share = {"one": 0.0, "sparse": 0.02, "third": 2 / 3, "dense": 0.98, "three zeros": 1.0}
    signs = rng.choice(np.array([-1, 1], np.int8), n)  # (n,)
    w = np.where(rng.random(n) < nonzero_share[fill], signs, 0).astype(np.int8)  # (n,)
    zeros = rng.choice(n, 4, replace=False)
    w[zeros[:3]] = 0
    w[zeros[3]] = signs[0]  # at least one nonzero
    return w.reshape(rows, cols)


# float32 bit patterns from 1e-2 to 1e4: any float32 scale, not only bf16 values
float32_scales = st.integers(0x3C23D70A, 0x461C4000).map(
    lambda bits: np.array([bits], np.uint32).view(np.float32)[0])


# Integers at the edges that parsers get wrong: zero, negatives, powers of two, 32/64-bit limits,
# and one beyond what a NumPy int64 holds.
INTERESTING_INTS = [0, 1, -1, 2, 3, 4, 7, 8, 64, 255, 256, 2**31, 2**32, 2**53 + 1, 2**63 - 1,
                    2**63, 2**64, -2**63, 10**30]

# Any JSON value, with the awkward ones over-represented: NaN and infinities (Python's json reads
# them), huge integers, names of dtypes and model types that a mutated file might hold.
json_scalars = st.one_of(
    st.none(), st.booleans(), st.sampled_from(INTERESTING_INTS), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["BF16", "F32", "U8", "I64", "bitnet", "relu2", "BPE", ""]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)

