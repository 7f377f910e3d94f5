"""The one place that picks the ternary kernels: a registry of named backends.

``minibitnet.load(path, backend=NAME)`` looks NAME up here. A backend is a
:class:`~minibitnet.core.bitlinear.TernaryKernel`: it prepares each packed weight once at load and
computes the exact int32 product per call. Every backend returns the same integers, so the logits
of every backend are bit-identical; they differ only in speed and memory.

This is also the only module that imports ``minibitnet.kernels.mypyc`` (the mypyc-compiled kernels).
Asking for a backend that runs them while they are interpreted, though nobody asked for that
with ``MINIBITNET_INTERPRETED=1``, prints one warning per process saying why and what to do;
``MINIBITNET_REQUIRE_COMPILED=1`` (set by CI) makes it an :class:`InstallationError` instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from librt.vecs import vec
from mypy_extensions import i64

from . import mypyc as fast
from ..core.bitlinear import ReferenceKernel, TernaryKernel
from ..errors import ArgumentError, InstallationError, warn_once
from ..core.packing import (
    base3_words_per_row,
    bitplane_words_per_row,
    pack_base3_groups,
    pack_bitplanes,
    unpack_ternary,
)
from ..pages import release_pages


@dataclass(frozen=True)
class BackendInfo:
    name: str
    description: str
    factory: Callable[[], TernaryKernel]


_REGISTRY: dict[str, BackendInfo] = {}
# the backends that run minibitnet.kernels.mypyc's kernels ("fast:dense" is NumPy alone)
MYPYC_BACKENDS = ("fast", "fast:lut", "fast:bitplane")
REQUIRE_COMPILED_ENV = "MINIBITNET_REQUIRE_COMPILED"


def register_backend(name: str, description: str, factory: Callable[[], TernaryKernel]) -> None:
    """Add a backend under ``name`` (e.g. "fast:lut"); the factory builds a fresh kernel."""
    _REGISTRY[name] = BackendInfo(name, description, factory)


def available_backends() -> list[BackendInfo]:
    """Every registered backend, in registration order."""
    return list(_REGISTRY.values())


def check_compiled() -> None:
    """Warn once, or raise InstallationError under MINIBITNET_REQUIRE_COMPILED=1, when the
    kernels of minibitnet.kernels.mypyc run interpreted without MINIBITNET_INTERPRETED=1."""
    reason = fast.interpreted_reason()
    if reason is None:
        return
    if os.environ.get(REQUIRE_COMPILED_ENV) == "1":
        raise InstallationError(f"{REQUIRE_COMPILED_ENV}=1, but {reason}")
    warn_once(reason)


def get_backend(name: str) -> TernaryKernel:
    """A new kernel for ``name``; an unknown name lists the valid ones."""
    info = _REGISTRY.get(name)
    if info is None:
        valid = ", ".join(_REGISTRY)
        raise ArgumentError(f"unknown backend {name!r}; expected one of: {valid}")
    if name in MYPYC_BACKENDS:
        check_compiled()
    return info.factory()


register_backend(
    "reference",
    "NumPy: weights unpacked to int8 once, exact int32 matmul (the definition; slow)",
    ReferenceKernel,
)


# ---- the fast path: NumPy arrays <-> the plain buffers of minibitnet.kernels.mypyc ----

# A float32 dot product of int8 activations and ternary weights is exact while every partial sum
# is an integer below 2^24 (float32's 24-bit significand): |sum| <= 128 * in < 2^24.
DENSE_MAX_IN_FEATURES = 2**24 // 128 - 1  # 131071
# "fast" multiplies T >= this many tokens densely with NumPy (prefill) and fewer with the
# lookup-table kernel (decode). Measured with `minibitnet bench --kernel-tokens T` on 2560x6912
# and 6912x2560: the dense kernel unpacks the weight on every call (about 2-3 ns/weight), which
# only pays off once spread over some 16 tokens (docs/benchmarks.md).
DENSE_MIN_TOKENS = 16


def _to_words(words: np.ndarray) -> vec[i64]:
    """(rows, words) 64-bit array -> one flat vec[i64], copied once at load time."""
    return vec[i64](np.ascontiguousarray(words).view("<i8").reshape(-1))


def _multiply(matmul: Callable[[bytes, int, Any], Any], prepared: Any, x_q: np.ndarray) -> np.ndarray:
    """Call a fast kernel's ternary_matmul: (T, in) int8 -> (T, out) int32."""
    num_tokens = x_q.shape[0]
    x_bytes = np.ascontiguousarray(x_q, dtype=np.int8).tobytes()  # (T, in) row-major
    acc = matmul(x_bytes, num_tokens, prepared)  # vec[i32] of T * out
    return np.frombuffer(acc, dtype=np.int32).reshape(num_tokens, prepared.out_features)


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
    """minibitnet.kernels.mypyc.lut: base-3 codes, five weights per byte, table of partial sums."""

    name = "fast:lut"

    def __init__(self, module: ModuleType | None = None) -> None:
        self.module = module if module is not None else fast.lut

    def prepare(self, packed: np.ndarray) -> Any:
        w_ternary = unpack_ternary(packed)  # (out, in) int8
        out_features, in_features = w_ternary.shape
        codes = pack_base3_groups(w_ternary)  # (out, 8 * words) uint8
        return self.module.LutMatrix(out_features, in_features,
                                     base3_words_per_row(in_features), _to_words(codes))

    def matmul(self, prepared: Any, x_q: np.ndarray) -> np.ndarray:
        return _multiply(self.module.ternary_matmul, prepared, x_q)


class DenseKernel:
    """Keep the packed weight; per call unpack it to float32 and use NumPy matmul."""

    name = "fast:dense"

    def prepare(self, packed: np.ndarray) -> np.ndarray:
        return packed  # (out/4, in) uint8, usually a read-only view of the checkpoint

    def matmul(self, prepared: np.ndarray, x_q: np.ndarray) -> np.ndarray:
        return dense_ternary_matmul(x_q, prepared)


class FastKernel:
    """The default fast backend: the LUT kernel for a few tokens, dense NumPy for many."""

    name = "fast"

    def __init__(self, lut_module: ModuleType | None = None) -> None:
        self.lut = LutKernel(lut_module)

    def prepare(self, packed: np.ndarray) -> tuple[Any, np.ndarray]:
        return self.lut.prepare(packed), packed

    def matmul(self, prepared: tuple[Any, np.ndarray], x_q: np.ndarray) -> np.ndarray:
        lut_matrix, packed = prepared
        if x_q.shape[0] >= DENSE_MIN_TOKENS and packed.shape[1] <= DENSE_MAX_IN_FEATURES:
            return dense_ternary_matmul(x_q, packed)
        return self.lut.matmul(lut_matrix, x_q)


def _kernel_form() -> str:
    """How the mypyc kernels run, for the backend descriptions `minibitnet info` prints."""
    if fast.is_compiled():
        return "compiled"
    if fast.INTERPRETED_REQUESTED:
        return f"interpreted: {fast.INTERPRETED_ENV}=1"
    if fast.compiled_install() is not None:
        return "interpreted: slow, the source tree shadows the compiled install"
    return "interpreted: slow, installed without compiling; reinstall with pip"


_COMPILED_NOTE = _kernel_form()
register_backend(
    "fast",
    f"LUT kernel for decode, dense NumPy float32 for {DENSE_MIN_TOKENS}+ tokens "
    f"({_COMPILED_NOTE})",
    FastKernel,
)
register_backend("fast:lut", f"base-3 groups, table of partial sums per vector ({_COMPILED_NOTE})",
                 LutKernel)
register_backend("fast:bitplane", f"plus/minus bit planes, SWAR popcount ({_COMPILED_NOTE})",
                 BitplaneKernel)
register_backend("fast:dense", "unpack to float32 per call, NumPy matmul (exact below 2^24)",
                 DenseKernel)
