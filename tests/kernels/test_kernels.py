"""Every kernel returns exactly the int64 product W @ x of ternary weights and int8 activations.

Parametrised over every implementation (minibitnet_testing.kernel_cases): the reference, the fast backends as
installed, and their interpreted .py sources when the installed ones are compiled (fewer and
smaller examples there, since pure Python is slow).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibitnet.kernels import mypyc as fast
from minibitnet.kernels.registry import DENSE_MIN_TOKENS
from minibitnet.core.packing import pack_ternary
from minibitnet_testing.kernel_cases import ALL_KERNELS, COMPILED_OR_NUMPY, INTERPRETED, KernelCase, kernel_name
from minibitnet_testing.strategies import int8_arrays, ternary_matrices


def expected_product(w_ternary: np.ndarray, x_q: np.ndarray) -> np.ndarray:
    """(out, in) ternary, (T, in) int8 -> (T, out) int64: the definition, in int64."""
    return x_q.astype(np.int64) @ w_ternary.astype(np.int64).T


def run_kernel(case: KernelCase, w_ternary: np.ndarray, x_q: np.ndarray) -> np.ndarray:
    prepared = case.kernel.prepare(pack_ternary(w_ternary))
    acc = case.kernel.matmul(prepared, x_q)
    assert acc.dtype == np.int32 and acc.shape == (x_q.shape[0], w_ternary.shape[0])
    return acc


def check_exact(case: KernelCase, w_ternary: np.ndarray, x_q: np.ndarray) -> None:
    acc = run_kernel(case, w_ternary, x_q)
    np.testing.assert_array_equal(acc.astype(np.int64), expected_product(w_ternary, x_q))


@pytest.mark.parametrize("case", COMPILED_OR_NUMPY, ids=kernel_name)
@given(w=ternary_matrices(max_rows=24, max_cols=200, rows_multiple=4), data=st.data())
def test_kernel_equals_int64_product(case, w, data):
    num_tokens = data.draw(st.integers(1, 4), label="T")
    x_q = data.draw(int8_arrays((num_tokens, w.shape[1])), label="x_q")
    check_exact(case, w, x_q)


@pytest.mark.parametrize("case", INTERPRETED, ids=kernel_name)
@settings(max_examples=20)
@given(w=ternary_matrices(max_rows=12, max_cols=90, rows_multiple=4), data=st.data())
def test_interpreted_kernel_equals_int64_product(case, w, data):
    num_tokens = data.draw(st.integers(1, 2), label="T")
    x_q = data.draw(int8_arrays((num_tokens, w.shape[1])), label="x_q")
    check_exact(case, w, x_q)


# Widths around the word sizes of the layouts (64 bits, 40 = 8 groups of 5, 5 per group), with
# the extreme activations: every bit of a word set, sign bits, the -128 that has no positive twin.
EDGE_WIDTHS = [1, 4, 5, 6, 39, 40, 41, 63, 64, 65, 127, 128, 129]


@pytest.mark.parametrize("case", ALL_KERNELS, ids=kernel_name)
@pytest.mark.parametrize("fill", [1, -1, 0])
def test_word_edges_with_extreme_activations(case, fill):
    for width in EDGE_WIDTHS:
        w = np.full((4, width), fill, dtype=np.int8)
        w[1, ::3] = -fill  # a second pattern with both signs
        x_q = np.stack([np.full(width, -128, np.int8), np.full(width, 127, np.int8),
                        np.full(width, -1, np.int8), np.arange(width).astype(np.int8)])
        check_exact(case, w, x_q)


@pytest.mark.parametrize("case", ALL_KERNELS, ids=kernel_name)
def test_hand_worked_example(case):
    # rows of 5: the bytes and words worked out in packing.py's docstrings
    w = np.array([[1, 0, -1, -1, 1], [1, -1, 0, 0, 1], [0, 0, 0, 0, 0], [-1, -1, -1, -1, -1]],
                 dtype=np.int8)
    x_q = np.array([[10, -20, 30, -128, 127]], dtype=np.int8)
    # row 0: 10 - 30 + 128 + 127 = 235; row 1: 10 + 20 + 127 = 157; row 3: -(10-20+30-128+127)
    np.testing.assert_array_equal(run_kernel(case, w, x_q), [[235, 157, 0, -19]])


@pytest.mark.parametrize("name", fast.KERNEL_MODULES)
def test_same_function_names_in_both_forms(name):
    """The kernel modules, compiled or not, offer ternary_matvec with the same meaning."""
    from minibitnet.kernels.registry import BitplaneKernel, LutKernel

    modules = {getattr(fast, name), fast.interpreted_module(name)}
    rng = np.random.default_rng(5)
    w = rng.integers(-1, 2, (8, 77)).astype(np.int8)
    x_q = rng.integers(-128, 128, 77).astype(np.int8)
    for module in modules:
        kernel = (LutKernel if name == "lut" else BitplaneKernel)(module)
        matrix = kernel.prepare(pack_ternary(w))
        acc = np.frombuffer(module.ternary_matvec(x_q.tobytes(), matrix), dtype=np.int32)
        np.testing.assert_array_equal(acc, w.astype(np.int64) @ x_q.astype(np.int64))


def test_kernels_reject_wrong_activation_length():
    from minibitnet.kernels.registry import LutKernel

    kernel = LutKernel()
    matrix = kernel.prepare(pack_ternary(np.ones((4, 10), np.int8)))
    with pytest.raises(ValueError, match="expected 1 \\* 10"):
        fast.lut.ternary_matvec(bytes(9), matrix)


@pytest.mark.parametrize("num_tokens", [1, DENSE_MIN_TOKENS - 1, DENSE_MIN_TOKENS, 40])
def test_fast_is_exact_on_both_sides_of_the_dense_threshold(num_tokens):
    rng = np.random.default_rng(num_tokens)
    w = rng.integers(-1, 2, (12, 203)).astype(np.int8)
    x_q = rng.integers(-128, 128, (num_tokens, 203)).astype(np.int8)
    check_exact(next(case for case in ALL_KERNELS if case.name == "fast"), w, x_q)
