"""The dense kernel: unpack a packed weight to float32 on every call and let NumPy's BLAS multiply.

Exact although it is floating point: a float32 dot product of int8 activations and ternary
weights is exact while every partial sum is an integer below 2^24 (float32's 24-bit
significand), and |sum| <= 128 * in < 2^24 for in <= :data:`DENSE_MAX_IN_FEATURES`. The unpack
costs about 2-3 ns per weight per call, so it pays off only when spread over many tokens (the
mypyc ``fast`` backend uses it for a prefill of :data:`DENSE_MIN_TOKENS` or more). It uses as
many threads as NumPy's BLAS does (``OPENBLAS_NUM_THREADS`` and the like, read when NumPy starts).
"""

from __future__ import annotations

import numpy as np

from ..core.packing import unpack_ternary
from ..errors import ArgumentError
from ..pages import release_pages

DENSE_MAX_IN_FEATURES = 2**24 // 128 - 1  # 131071
# The mypyc "fast" backend multiplies T >= this many tokens densely with NumPy (prefill) and
# fewer with the lookup-table kernel (decode). Measured with `minibitnet bench --kernel-tokens T`
# on 2560x6912 and 6912x2560: the dense kernel unpacks the weight on every call, which only pays
# off once spread over some 16 tokens (docs/benchmarks.md).
DENSE_MIN_TOKENS = 16


def dense_ternary_matmul(x_q: np.ndarray, packed: np.ndarray) -> np.ndarray:
    """Unpack one weight to float32 and let NumPy's BLAS multiply (exact, see above).

    x_q:     (T, in) int8
    packed:  (out/4, in) uint8 in the Hugging Face layout
    returns: (T, out) int32, equal to bitlinear.ternary_matmul
    """
    if packed.shape[1] > DENSE_MAX_IN_FEATURES:
        raise ArgumentError(f"dense kernel: in_features {packed.shape[1]} is above "
                            f"{DENSE_MAX_IN_FEATURES}, where float32 sums stop being exact")
    w = unpack_ternary(packed).astype(np.float32)  # (out, in)
    release_pages(packed)  # read on every call: keep the mapped checkpoint out of RSS (pages.py)
    return (x_q.astype(np.float32) @ w.T).astype(np.int32)  # (T, out), exact integers


class DenseKernel:
    """Keep the packed weight; per call unpack it to float32 and use NumPy matmul."""

    name = "fast:dense"

    def prepare(self, packed: np.ndarray) -> np.ndarray:
        return packed  # (out/4, in) uint8, usually a read-only view of the checkpoint

    def matmul(self, prepared: np.ndarray, x_q: np.ndarray) -> np.ndarray:
        return dense_ternary_matmul(x_q, prepared)
