"""The backends that run the mypyc kernels: NumPy arrays <-> the plain buffers of
:mod:`minibitnet.kernels.mypyc`.

Each adapter converts a packed weight once, at load, into its kernel's own layout (bit planes or
base-3 groups, see ``core/packing.py``) held in a ``vec[i64]``, and per call hands the int8
activations over as ``bytes`` and reads the ``vec[i32]`` result back as a (T, out) int32 array.
The kernels run on the calling thread (compiled mypyc code holds the GIL).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
from librt.vecs import vec
from mypy_extensions import i64

from . import mypyc as fast
from ..core.packing import (
    base3_words_per_row,
    bitplane_words_per_row,
    pack_base3_groups,
    pack_bitplanes,
    unpack_ternary,
)


def _to_words(words: np.ndarray) -> vec[i64]:
    """(rows, words) 64-bit array -> one flat vec[i64], copied once at load time."""
    return vec[i64](np.ascontiguousarray(words).view("<i8").reshape(-1))


def _multiply(matmul: Callable[[bytes, int, Any], Any], prepared: Any, x_q: np.ndarray) -> np.ndarray:
    """Call a fast kernel's ternary_matmul: (T, in) int8 -> (T, out) int32."""
    num_tokens = x_q.shape[0]
    x_bytes = np.ascontiguousarray(x_q, dtype=np.int8).tobytes()  # (T, in) row-major
    acc = matmul(x_bytes, num_tokens, prepared)  # vec[i32] of T * out
    return np.frombuffer(acc, dtype=np.int32).reshape(num_tokens, prepared.out_features)


class BitplaneKernel:
    """minibitnet.kernels.mypyc.bitplane: plus / minus bit planes, popcount per activation bit plane."""

    name = "fast:bitplane"

    def __init__(self, module: ModuleType | None = None) -> None:
        self.module = module if module is not None else fast.bitplane

    def prepare(self, packed: np.ndarray) -> Any:
        w_ternary = unpack_ternary(packed)  # (out, in) int8
        out_features, in_features = w_ternary.shape
        plus, minus = pack_bitplanes(w_ternary)  # (out, words) uint64 each
        return self.module.BitplaneMatrix(out_features, in_features,
                                          bitplane_words_per_row(in_features),
                                          _to_words(plus), _to_words(minus))

    def matmul(self, prepared: Any, x_q: np.ndarray) -> np.ndarray:
        return _multiply(self.module.ternary_matmul, prepared, x_q)


class LutKernel:
    """minibitnet.kernels.mypyc.lut: base-3 codes, five weights per byte, table of partial sums.

    The matrices of one input width share one table (``lut.LutTable``), which remembers the
    vector it holds: in a decode step q, k and v fill it once, gate and up once.
    """

    name = "fast:lut"

    def __init__(self, module: ModuleType | None = None) -> None:
        self.module = module if module is not None else fast.lut
        self.tables: dict[int, Any] = {}  # words per row -> the LutTable of that width

    def prepare(self, packed: np.ndarray) -> Any:
        w_ternary = unpack_ternary(packed)  # (out, in) int8
        out_features, in_features = w_ternary.shape
        codes = pack_base3_groups(w_ternary)  # (out, 8 * words) uint8
        words_per_row = base3_words_per_row(in_features)
        table = self.tables.get(words_per_row)
        if table is None:
            table = self.tables[words_per_row] = self.module.LutTable(words_per_row)
        return self.module.LutMatrix(out_features, in_features, words_per_row,
                                     _to_words(codes), table)

    def matmul(self, prepared: Any, x_q: np.ndarray) -> np.ndarray:
        return _multiply(self.module.ternary_matmul, prepared, x_q)
