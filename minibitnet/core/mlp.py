"""The feed-forward half of a block: a gated activation, then the ffn sub-norm when the family
has one.

Agrees with transformers' ``BitNetMLP`` (``hidden_act`` = "relu2")::

    down_proj(ffn_sub_norm(relu(gate_proj(x))^2 * up_proj(x)))

and with ``LlamaMLP`` (``hidden_act`` = "silu", no sub-norm: Falcon3 1.58-bit, Llama3-8B-1.58)::

    down_proj(silu(gate_proj(x)) * up_proj(x))

1bitLLM's ``BitnetMLP`` is the second with the sub-norm of the first (its ``ffn_layernorm``).
Squared ReLU keeps activations sparse (about half are exactly zero), which suits the int8
quantisation that follows in down_proj.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from .bitlinear import BitLinear, StepTimer, TernaryKernel
from ..config import ModelConfig
from .norm import rms_norm
from .weights import LayerWeights


def relu_squared(x: np.ndarray) -> np.ndarray:
    """(...) float32 -> (...) float32: max(x, 0)^2."""
    positive = np.maximum(x, np.float32(0.0))
    return positive * positive


def silu(x: np.ndarray) -> np.ndarray:
    """(...) float32 -> (...) float32: x * sigmoid(x) = x / (1 + exp(-x)).

    exp(-x) overflows to inf for x < -88 and the quotient is then -0.0, the limit, so the
    overflow is harmless (the model computes under np.errstate(over="ignore")).
    """
    return x / (np.float32(1.0) + np.exp(-x))


ACTIVATIONS = {"relu2": relu_squared, "silu": silu}  # config.json hidden_act -> function


class FeedForward:
    def __init__(self, config: ModelConfig, layer: LayerWeights, kernel: TernaryKernel) -> None:
        self.eps = config.rms_norm_eps
        self.activation = ACTIVATIONS[config.hidden_act]
        eps = config.quant_rms_norm_eps  # of the input norms inside BitLinear, if any
        self.gate_proj = BitLinear(layer.gate_proj, kernel, eps)  # D -> F
        self.up_proj = BitLinear(layer.up_proj, kernel, eps)  # D -> F
        self.ffn_sub_norm = layer.ffn_sub_norm  # (F,) or None
        self.down_proj = BitLinear(layer.down_proj, kernel, eps)  # F -> D

    def __call__(self, x: np.ndarray, timer: StepTimer = nullcontext) -> np.ndarray:
        """x: (T, D) float32 normalised input -> (T, D) float32.

        timer: wraps the steps "activation" (the gate times up) and "rms norm" (the sub-norm),
               and is handed to the three projections
        """
        gate = self.gate_proj(x, timer)  # (T, F)
        up = self.up_proj(x, timer)  # (T, F)
        with timer("activation"):
            hidden = self.activation(gate) * up  # (T, F)
        if self.ffn_sub_norm is not None:
            with timer("rms norm"):
                hidden = rms_norm(hidden, self.ffn_sub_norm, self.eps)  # (T, F)
        return self.down_proj(hidden, timer)  # (T, D)
