"""BitLinear: int8 activations times ternary weights, summed exactly as integers, then rescaled.

The layer of BitNet b1.58 (transformers' ``integrations/bitnet.py: BitLinear``, offline mode)::

    x_q, act_scale = quantize_activations(x)        # (T, in) int8, (T, 1) float32
    acc = x_q @ w_ternary.T                         # (T, out) exact integers: only adds/subtracts
    y = acc / (act_scale * weight_scale)            # (T, out) float32

Each product x_q[t, c] * w[r, c] is +x, -x or 0, so the matrix product needs no multiplication at
all; the fast kernels in ``minibitnet.kernels.mypyc`` exploit exactly that. The integer sum is the contract
every kernel shares: :func:`ternary_matmul` here is the definition, the kernels must return the
same int32 array bit for bit, and the one float rescale happens afterwards, in this file.

With transformers' ``use_rms_norm`` (BitNetQuantConfig; Falcon-E) the layer first normalises its
own input, ``x = rms_norm(x, input_norm, eps)`` (a ``LlamaRMSNorm`` of width ``in`` inside
``BitLinear``), and then proceeds as above.

Every layer of the forward pass takes an optional ``timer`` (:data:`StepTimer`) and wraps each of
its steps in ``with timer(step):``; the default, ``contextlib.nullcontext``, times nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

import numpy as np

from .norm import rms_norm
from .packing import unpack_ternary
from .quant import quantize_activations
from .weights import TernaryWeight


# The forward pass's timing hook: each layer wraps its steps in ``with timer(step):``, the steps
# named as in model.STEPS. The default, nullcontext, does nothing (~0.25 us a step, ~0.2 ms of a
# 2B4T token of ~900 steps); a clock passed instead times the parts of this very forward.
StepTimer = Callable[[str], AbstractContextManager[object]]


def ternary_matmul(x_q: np.ndarray, w_ternary: np.ndarray) -> np.ndarray:
    """The exact integer product of int8 activations and ternary weights (the reference kernel).

    x_q:       (T, in) int8
    w_ternary: (out, in) int8 in {-1, 0, +1}
    returns:   (T, out) int32; exact, since |sum| <= 128 * in < 2^31 for in < 16M
    """
    return x_q.astype(np.int32) @ w_ternary.T.astype(np.int32)


class TernaryKernel(Protocol):
    """What a backend provides: a weight format prepared once, and the integer product.

    A kernel whose ``prepare`` returns the packed array itself, reading the checkpoint's bytes
    on every call, says so with a class attribute ``reads_packed = True``: the model then leaves
    those pages of the memory map resident (see ``Model``'s ``after_read``).
    """

    name: str

    def prepare(self, packed: np.ndarray) -> Any:
        """Convert one (out/4, in) uint8 Hugging Face packed weight to this kernel's format."""

    def matmul(self, prepared: Any, x_q: np.ndarray) -> np.ndarray:
        """(T, in) int8 activations -> (T, out) int32, equal to :func:`ternary_matmul`."""


class ReferenceKernel:
    """Unpack to int8 ternary weights once at load; multiply with NumPy integer matmul."""

    name = "reference"

    def prepare(self, packed: np.ndarray) -> np.ndarray:
        return unpack_ternary(packed)  # (out, in) int8

    def matmul(self, prepared: np.ndarray, x_q: np.ndarray) -> np.ndarray:
        return ternary_matmul(x_q, prepared)


class BitLinear:
    """A ternary linear layer: ``y = (x_q @ w_ternary.T) / (act_scale * weight_scale)``."""

    def __init__(self, weight: TernaryWeight, kernel: TernaryKernel,
                 norm_eps: float = 1e-6) -> None:
        self.in_features = weight.in_features
        self.out_features = weight.out_features
        self.weight_scale = np.float32(weight.weight_scale)  # w ≈ w_ternary / weight_scale
        self.input_norm = weight.input_norm  # (in,) float32 or None (no norm inside the layer)
        self.norm_eps = norm_eps
        self.kernel = kernel
        self.prepared = kernel.prepare(weight.packed)  # the kernel's own weight format

    def __call__(self, x: np.ndarray, timer: StepTimer = nullcontext) -> np.ndarray:
        """x: (T, in) float32 -> (T, out) float32.

        timer: wraps the steps "rms norm" (only with an input norm), "quantize",
               "ternary matmul" and "rescale"
        """
        if self.input_norm is not None:
            with timer("rms norm"):
                x = rms_norm(x, self.input_norm, self.norm_eps)  # (T, in)
        with timer("quantize"):
            x_q, act_scale = quantize_activations(x)  # (T, in) int8, (T, 1) float32
        with timer("ternary matmul"):
            acc = self.kernel.matmul(self.prepared, x_q)  # (T, out) int32, exact
        with timer("rescale"):
            # subtle: multiply the two scales first, then divide once, as transformers does;
            # dividing by each in turn rounds differently in the last bit.
            y = acc.astype(np.float32) / (act_scale * self.weight_scale)  # (T, out)
        return y
