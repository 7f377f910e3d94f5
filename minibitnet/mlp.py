"""The feed-forward half of a BitNet block: gated squared ReLU with the ffn sub-norm.

Agrees with transformers' ``BitNetMLP`` (``hidden_act`` = "relu2")::

    down_proj(ffn_sub_norm(relu(gate_proj(x))^2 * up_proj(x)))

Squared ReLU keeps activations sparse (about half are exactly zero), which suits the int8
quantisation that follows in down_proj.
"""

from __future__ import annotations

import numpy as np

from .bitlinear import BitLinear, TernaryKernel
from .config import ModelConfig
from .norm import rms_norm
from .weights import LayerWeights


def relu_squared(x: np.ndarray) -> np.ndarray:
    """(...) float32 -> (...) float32: max(x, 0)^2."""
    positive = np.maximum(x, np.float32(0.0))
    return positive * positive


class FeedForward:
    def __init__(self, config: ModelConfig, layer: LayerWeights, kernel: TernaryKernel) -> None:
        self.eps = config.rms_norm_eps
        self.gate_proj = BitLinear(layer.gate_proj, kernel)  # D -> F
        self.up_proj = BitLinear(layer.up_proj, kernel)  # D -> F
        self.ffn_sub_norm = layer.ffn_sub_norm  # (F,)
        self.down_proj = BitLinear(layer.down_proj, kernel)  # F -> D

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: (T, D) float32 normalised input -> (T, D) float32."""
        hidden = relu_squared(self.gate_proj(x)) * self.up_proj(x)  # (T, F)
        hidden = rms_norm(hidden, self.ffn_sub_norm, self.eps)  # (T, F)
        return self.down_proj(hidden)  # (T, D)
