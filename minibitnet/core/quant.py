"""The two quantisers of BitNet b1.58: absmean ternary weights and absmax int8 activations.

Paper: "The Era of 1-bit LLMs" (Ma et al., 2024), section 2; code: transformers'
``integrations/bitnet.py`` (``WeightQuant``, ``BitLinear.activation_quant``).

Both return a value in an integer domain plus a float32 scale in the direction
``x ≈ x_q / scale`` (the scale multiplies the float to reach the integer), which is how the
published checkpoints store ``weight_scale``: the layer divides by it.

Worked example (weights): w = [0.3, -0.05, -0.4, 0.1]; mean |w| = 0.2125, scale = 1/0.2125 = 4.71;
w * scale = [1.41, -0.24, -1.88, 0.47] -> round, clip to [-1, 1] -> [1, 0, -1, 0].
"""

from __future__ import annotations

import numpy as np

# Floors on the denominators, as in the reference code: an all-zero tensor or token gets a huge
# but finite scale instead of a division by zero.
MIN_MEAN_ABS = 1e-5
MIN_ABS_MAX = 1e-5
INT8_MIN, INT8_MAX = -128, 127


def ternarize_weights(w: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """Absmean ternarisation with one scale per tensor.

    w:       (out, in) float32 latent weights
    returns: w_ternary (out, in) int8 in {-1, 0, +1}
             scale float32 scalar = 1 / mean|w|, so that w ≈ w_ternary / scale
    """
    w = np.asarray(w, dtype=np.float32)
    mean_abs = max(float(np.abs(w).mean(dtype=np.float64)), MIN_MEAN_ABS)
    scale = np.float32(1.0 / mean_abs)
    w_ternary = np.clip(np.rint(w * scale), -1, 1).astype(np.int8)  # (out, in)
    return w_ternary, scale


def quantize_activations(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absmax int8 quantisation with one scale per token.

    x:       (T, D) float32
    returns: x_q (T, D) int8 in [-128, 127]
             scale (T, 1) float32 = 127 / max|x_t|, so that x ≈ x_q / scale

    Rounding is half to even (np.rint), as torch.round does. subtle: the product x * scale is
    taken in float32, like the reference; in float64 a value near a .5 tie could round the other
    way and the integer sums would no longer match transformers.
    """
    x = np.asarray(x, dtype=np.float32)
    peak = np.maximum(np.abs(x).max(axis=-1, keepdims=True), np.float32(MIN_ABS_MAX))  # (T, 1)
    scale = (np.float32(INT8_MAX) / peak).astype(np.float32)  # (T, 1)
    x_q = np.clip(np.rint(x * scale), INT8_MIN, INT8_MAX).astype(np.int8)  # (T, D)
    return x_q, scale
