"""int8 activations times ternary weights packed four to a byte, exact, compiled by numba.

The weight is the Hugging Face packed layout as the checkpoint stores it (``core/packing.py``):
``packed`` (R, in) uint8 with R = out / 4, and byte (i, c) holds, two bits each from the low
end, the codes of rows i, i + R, i + 2R and i + 3R at column c, where code = w + 1 in {0, 1, 2}.
Since w = code - 1::

    sum_c w[r, c] * x[c] = sum_c code[r, c] * x[c]  -  sum_c x[c]

so the kernel multiplies by the codes as they are (a shift and a mask, no branch, no unpacked
copy of the weight) and subtracts the token's activation sum once per row. Worked example,
out = 4 (R = 1), one column c with x[c] = 10 and weights [+1, -1, 0, +1]::

    byte 0x92 = 0b10_01_00_10   ->  codes [2, 0, 1, 2]   (bits 1..0, 3..2, 5..4, 7..6)
    codes * x  = [20, 0, 10, 20],  minus sum(x) = 10  ->  [10, -10, 0, 10] = w * x

Exact in int32: a code is at most 2 and |x| at most 128, so a row's sum of code * x is at most
256 * in in magnitude, below 2^31 for in < 2^23 (:data:`MAX_IN_FEATURES`; real models have
in <= 2^15). The result then equals ``core.bitlinear.ternary_matmul`` bit for bit.

Speed comes from three choices, each measured on 2560 x 6912 and 6912 x 2560 (one AMD EPYC core
with AVX-512; ns per weight per token):

- the sums are kept in 32-bit lanes (see ``subtle:`` in :func:`multiply_one_token`):
  0.077 with numba's default 64-bit arithmetic, 0.034 in 32 bits;
- a prefill reads each weight byte once for four tokens (:func:`multiply_four_tokens`):
  0.020 for T = 64, where one token at a time stays at 0.034;
- ``prange`` hands blocks of rows to threads: rows are independent, so two cores halve the time.

What this module leaves out: any other layout, and any import of the rest of minibitnet (the
registry's :class:`~minibitnet.kernels.numba_kernel.NumbaKernel` adapts it). Thread counts are set
by the caller (``numba.set_num_threads``). ``NUMBA_DISABLE_JIT=1`` runs these functions as plain
Python, line by line in a debugger (slowly: small shapes only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit, prange

MAX_IN_FEATURES = 2**31 // 256 - 1  # 8388607: |sum of code * x| <= 256 * in stays below 2^31
TOKENS_PER_PASS = 4  # tokens that share each weight byte read in a prefill

# Why the kernels are not cached on disk, when they are not (the backend warns with it once).
cache_problem: str | None = None


def compile_kernel(parallel: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """``@njit(cache=True)``, or without the disk cache where numba finds no folder to write it.

    subtle: numba looks for a writable cache folder when the decorator runs (at import) and raises
    RuntimeError when there is none (a read-only install, an unwritable NUMBA_CACHE_DIR with no
    writable __pycache__ or home); the kernels then still run, compiled afresh in each process.
    """
    def decorate(function: Callable[..., Any]) -> Any:
        global cache_problem
        try:
            return njit(parallel=parallel, cache=True)(function)
        except RuntimeError as error:  # "cannot cache function ...: no locator available ..."
            cache_problem = (f"numba cannot cache its compiled kernels ({error}), so every "
                             "process compiles them again (seconds); set NUMBA_CACHE_DIR to a "
                             "writable folder")
            return njit(parallel=parallel)(function)
    return decorate


@compile_kernel()
def activation_sums(x_q: np.ndarray) -> np.ndarray:
    """x_q (T, in) int8 -> (T,) int32, each token's sum of activations (|sum| <= 128 * in)."""
    num_tokens, in_features = x_q.shape
    sums = np.zeros(num_tokens, dtype=np.int32)
    for t in range(num_tokens):
        for c in range(in_features):
            sums[t] += x_q[t, c]
    return sums


@compile_kernel()
def multiply_one_token(packed: np.ndarray, i: int, x_q: np.ndarray, t: int,
                       x_sums: np.ndarray, acc: np.ndarray) -> None:
    """Rows i, i + R, i + 2R, i + 3R of token t: acc[t, i + k R] = sum_c w[i + k R, c] x_q[t, c].

    packed: (R, in) uint8, the Hugging Face layout;  x_q: (T, in) int8;  x_sums: (T,) int32
    acc:    (T, 4R) int32, written at four places of row t (exact)
    """
    rows, in_features = packed.shape
    sum0 = np.int32(0)  # code * x sums of the four rows: |sum| <= 256 * in < 2^31
    sum1 = np.int32(0)
    sum2 = np.int32(0)
    sum3 = np.int32(0)
    for c in range(in_features):  # the loop LLVM vectorises: no branch, no Python object
        byte = packed[i, c]
        x = np.int32(x_q[t, c])
        # subtle: numba computes int32 + int32 in int64, half as many lanes per vector register
        # (8 of AVX-512's 16); wrapping each sum back to int32, which the bound above allows,
        # keeps the loop 32-bit, and LLVM then uses the CPU's int16 dot-product instructions
        # where it has them: measured 2.2x faster.
        sum0 = np.int32(sum0 + x * np.int32(byte & 3))
        sum1 = np.int32(sum1 + x * np.int32((byte >> 2) & 3))
        sum2 = np.int32(sum2 + x * np.int32((byte >> 4) & 3))
        sum3 = np.int32(sum3 + x * np.int32(byte >> 6))
    # sum of code * x = sum of w * x + sum of x (code = w + 1)
    acc[t, i] = sum0 - x_sums[t]
    acc[t, i + rows] = sum1 - x_sums[t]
    acc[t, i + 2 * rows] = sum2 - x_sums[t]
    acc[t, i + 3 * rows] = sum3 - x_sums[t]


@compile_kernel()
def multiply_four_tokens(packed: np.ndarray, i: int, x_q: np.ndarray, t: int,
                         x_sums: np.ndarray, acc: np.ndarray) -> None:
    """Rows i, i + R, i + 2R, i + 3R of tokens t .. t + 3, each weight byte read once for all four.

    The same sums as :func:`multiply_one_token` four times (same shapes and bounds), with the
    four codes of a byte unpacked once: sixteen sums, ``s<token><row>``, stay in registers.
    """
    rows, in_features = packed.shape
    s00 = s01 = s02 = s03 = np.int32(0)  # token t: |sum| <= 256 * in < 2^31, as above
    s10 = s11 = s12 = s13 = np.int32(0)  # token t + 1
    s20 = s21 = s22 = s23 = np.int32(0)  # token t + 2
    s30 = s31 = s32 = s33 = np.int32(0)  # token t + 3
    for c in range(in_features):
        byte = packed[i, c]
        code0 = np.int32(byte & 3)
        code1 = np.int32((byte >> 2) & 3)
        code2 = np.int32((byte >> 4) & 3)
        code3 = np.int32(byte >> 6)
        x0 = np.int32(x_q[t, c])
        x1 = np.int32(x_q[t + 1, c])
        x2 = np.int32(x_q[t + 2, c])
        x3 = np.int32(x_q[t + 3, c])
        # wrapped to int32 for the 32-bit lanes, as in multiply_one_token
        s00 = np.int32(s00 + x0 * code0)
        s01 = np.int32(s01 + x0 * code1)
        s02 = np.int32(s02 + x0 * code2)
        s03 = np.int32(s03 + x0 * code3)
        s10 = np.int32(s10 + x1 * code0)
        s11 = np.int32(s11 + x1 * code1)
        s12 = np.int32(s12 + x1 * code2)
        s13 = np.int32(s13 + x1 * code3)
        s20 = np.int32(s20 + x2 * code0)
        s21 = np.int32(s21 + x2 * code1)
        s22 = np.int32(s22 + x2 * code2)
        s23 = np.int32(s23 + x2 * code3)
        s30 = np.int32(s30 + x3 * code0)
        s31 = np.int32(s31 + x3 * code1)
        s32 = np.int32(s32 + x3 * code2)
        s33 = np.int32(s33 + x3 * code3)
    for token, sums in ((t, (s00, s01, s02, s03)), (t + 1, (s10, s11, s12, s13)),
                        (t + 2, (s20, s21, s22, s23)), (t + 3, (s30, s31, s32, s33))):
        for k in range(4):
            acc[token, i + k * rows] = sums[k] - x_sums[token]


@compile_kernel(parallel=True)
def ternary_matmul(x_q: np.ndarray, packed: np.ndarray) -> np.ndarray:
    """The exact integer product of T int8 vectors and a packed ternary matrix.

    x_q:     (T, in) int8, C-contiguous
    packed:  (R, in) uint8 in the Hugging Face layout (out = 4R), e.g. a read-only view of the
             memory-mapped checkpoint; in <= MAX_IN_FEATURES
    returns: (T, out) int32, sum_c w[r, c] * x_q[t, c], equal to core.bitlinear.ternary_matmul
    """
    if x_q.shape[1] != packed.shape[1]:  # compiled code checks no index: it would read past
        raise ValueError("x_q and packed differ in in_features")
    num_tokens = x_q.shape[0]
    rows = packed.shape[0]
    x_sums = activation_sums(x_q)  # (T,) int32
    acc = np.empty((num_tokens, 4 * rows), dtype=np.int32)  # (T, out)
    full = num_tokens - num_tokens % TOKENS_PER_PASS  # tokens that come in whole groups of four
    for i in prange(rows):  # rows are independent: each thread takes a block of them
        for t in range(0, full, TOKENS_PER_PASS):
            multiply_four_tokens(packed, i, x_q, t, x_sums, acc)
        for t in range(full, num_tokens):  # the last T % 4 tokens; decode (T = 1) only this
            multiply_one_token(packed, i, x_q, t, x_sums, acc)
    return acc
