"""The LUT kernel's table of partial sums, shared by the matrices of one input width.

The table is filled from a vector and remembers it; a product whose vector is the same reads it
as it is (k and v after q, up after gate), any other vector fills it again. The products must
stay exact whatever order the matrices and vectors come in, and the fill must happen once per
distinct vector, which the interpreted module shows by counting its calls of ``fill_table``.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibitnet.core.bitlinear import ternary_matmul as reference_matmul
from minibitnet.core.packing import pack_ternary
from minibitnet.kernels import mypyc as fast
from minibitnet.kernels.mypyc_kernels import LutKernel

MODULES = {"installed": fast.lut, "interpreted": fast.interpreted_module("lut")}


def random_ternary(rng: np.random.Generator, out_features: int, in_features: int) -> np.ndarray:
    return rng.integers(-1, 2, (out_features, in_features)).astype(np.int8)


@pytest.mark.parametrize("form", list(MODULES))
@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1),
       calls=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=12))
def test_products_through_a_shared_table_are_exact_in_any_order(
        form: str, seed: int, calls: list[tuple[int, int]]) -> None:
    """Three matrices of one width (one shared table), three vectors, called in any order:
    every product equals the definition, whether the table was refilled or reused."""
    rng = np.random.default_rng(seed)
    kernel = LutKernel(MODULES[form])
    weights = [random_ternary(rng, rows, 90) for rows in (8, 4, 12)]
    prepared = [kernel.prepare(pack_ternary(w)) for w in weights]
    assert len({id(p.table) for p in prepared}) == 1  # one width, one table
    vectors = [rng.integers(-128, 128, (1, 90), dtype=np.int8) for _ in range(3)]
    vectors[2] = vectors[0].copy()  # an equal vector in another array: equal bytes, same table
    for matrix, vector in calls:
        got = kernel.matmul(prepared[matrix], vectors[vector])
        np.testing.assert_array_equal(got, reference_matmul(vectors[vector], weights[matrix]))


def counting_fills(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the interpreted module's calls of fill_table (compiled calls cannot be seen)."""
    fills: list[int] = []
    original = module.fill_table

    def fill_table(*args: object) -> None:
        fills.append(1)
        original(*args)

    monkeypatch.setattr(module, "fill_table", fill_table)
    return fills


def test_q_k_v_fill_one_table_once_per_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    module = MODULES["interpreted"]
    fills = counting_fills(module, monkeypatch)
    rng = np.random.default_rng(0)
    kernel = LutKernel(module)
    q, k, v = (kernel.prepare(pack_ternary(random_ternary(rng, rows, 80))) for rows in (8, 4, 4))
    down = kernel.prepare(pack_ternary(random_ternary(rng, 8, 160)))  # another width
    x = rng.integers(-128, 128, (1, 80), dtype=np.int8)
    for matrix in (q, k, v):
        kernel.matmul(matrix, x)
    assert len(fills) == 1
    kernel.matmul(down, rng.integers(-128, 128, (1, 160), dtype=np.int8))  # its own table
    assert len(fills) == 2
    kernel.matmul(q, rng.integers(-128, 128, (1, 80), dtype=np.int8))  # the next token
    kernel.matmul(k, x)  # the old vector again: the table now holds another, so it refills
    assert len(fills) == 4


def test_each_token_of_a_prompt_fills_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """T tokens in one call: the table holds one vector at a time, so T fills, and a repeated
    token in a row reuses it."""
    module = MODULES["interpreted"]
    fills = counting_fills(module, monkeypatch)
    rng = np.random.default_rng(1)
    kernel = LutKernel(module)
    w = random_ternary(rng, 8, 80)
    matrix = kernel.prepare(pack_ternary(w))
    x = rng.integers(-128, 128, (4, 80), dtype=np.int8)
    x[2] = x[1]
    np.testing.assert_array_equal(kernel.matmul(matrix, x), reference_matmul(x, w))
    assert len(fills) == 3


@pytest.mark.parametrize("form", list(MODULES))
def test_a_table_of_another_width_is_refused(form: str) -> None:
    module = MODULES[form]
    words = LutKernel(module).prepare(pack_ternary(np.zeros((4, 80), np.int8))).words
    table = module.LutTable(1)  # room for one word (40 columns) per row, not two
    with pytest.raises(ValueError, match=r"the table has 1944 entries, expected 2 \* 8 \* 243"):
        module.LutMatrix(4, 80, 2, words, table)
