"""RMSNorm, used before attention, before the feed-forward, at the end of the stack, and as the
two BitNet sub-norms (``attn_sub_norm`` before o_proj, ``ffn_sub_norm`` before down_proj; 1bitLLM
calls them ``inner_attn_ln`` and ``ffn_layernorm``); with transformers' ``use_rms_norm`` also on
the input of every BitLinear.

Agrees with transformers' ``BitNetRMSNorm``: the mean square is taken in float32 and the learned
weight multiplies the normalised values (there is no bias and no mean subtraction).
"""

from __future__ import annotations

import numpy as np


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """Normalise each row to unit root-mean-square, then scale by ``weight``.

    x:       (T, N) float32
    weight:  (N,) float32
    returns: (T, N) float32 = weight * x / sqrt(mean(x^2) + eps)
    """
    mean_square = np.mean(np.square(x), axis=-1, keepdims=True)  # (T, 1)
    inv_rms = (np.float32(1.0) / np.sqrt(mean_square + np.float32(eps))).astype(np.float32)  # (T,1)
    return weight * (x * inv_rms)  # (T, N)
