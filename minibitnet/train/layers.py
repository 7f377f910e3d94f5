"""The layers of the BitNet b1.58 block in training form: each a forward and a hand-written backward.

Every ``*_forward`` returns its output and a cache (the values its backward needs); every
``*_backward`` takes the gradient of the loss with respect to that output and the cache, and
returns the gradients of the inputs and parameters. The formulas are those of the inference
modules (:mod:`minibitnet.core.norm`, :mod:`minibitnet.core.rope`, :mod:`minibitnet.core.quant`,
:mod:`minibitnet.core.mlp`); attention is in :mod:`minibitnet.train.attention`.

The functions keep the dtype they are given: float32 for training, float64 for the finite
difference checks in tests/train/test_train_layers.py.

Quantisation-aware training (BitNet b1.58, "The Era of 1-bit LLMs", section 2, and its "Training
Tips, Code and FAQ"): the forward pass uses the ternary weights and int8 activations the exported
model will use, while the optimiser updates latent float weights. round() and clip() have zero
gradient almost everywhere, so the backward pass uses the straight-through estimator: it treats
``w -> w_ternary / scale`` and ``x -> x_q / scale`` as the identity, as the PyTorch idiom
``x + (quantize(x) - x).detach()`` does. Activations are quantised by their absmax, so no value
is ever clipped and the identity holds for every entry.
"""

from __future__ import annotations

import numpy as np

from ..core.quant import INT8_MAX, INT8_MIN, MIN_ABS_MAX, MIN_MEAN_ABS

# ---- RMSNorm ----


def rms_norm_forward(x: np.ndarray, weight: np.ndarray, eps: float
                     ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """y = weight * x / sqrt(mean(x^2) + eps), over the last axis, as :func:`minibitnet.core.norm.rms_norm`.

    x: (N, C); weight: (C,) -> y (N, C), cache (x_hat, inv_rms, weight)
    """
    mean_square = np.mean(np.square(x), axis=-1, keepdims=True)  # (N, 1)
    inv_rms = (1.0 / np.sqrt(mean_square + x.dtype.type(eps))).astype(x.dtype)  # (N, 1)
    x_hat = x * inv_rms  # (N, C)
    return weight * x_hat, (x_hat, inv_rms, weight)


def rms_norm_backward(dy: np.ndarray, cache: tuple[np.ndarray, np.ndarray, np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """dy: (N, C) -> dx (N, C), dweight (C,).

    With g = dy * weight and x_hat = x * r: dx = r * (g - x_hat * mean(g * x_hat)), because r
    depends on every entry of its row through the mean square.
    """
    x_hat, inv_rms, weight = cache
    dweight = (dy * x_hat).sum(axis=0)  # (C,)
    g = dy * weight  # (N, C)
    dx = inv_rms * (g - x_hat * np.mean(g * x_hat, axis=-1, keepdims=True))  # (N, C)
    return dx, dweight


# ---- rotary position embeddings ----


def rope_forward(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """x: (..., T, Hd); cos, sin: (T, Hd) -> (..., T, Hd), as :func:`minibitnet.core.rope.apply_rope`."""
    half = x.shape[-1] // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)  # [x1, x2] -> [-x2, x1]
    return x * cos + rotated * sin


def rope_backward(dy: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """The transpose of the rotation: dx = dy * cos + rotate_half^T(dy * sin).

    rotate_half maps [x1, x2] to [-x2, x1]; its transpose maps [g1, g2] to [g2, -g1].
    """
    half = dy.shape[-1] // 2
    g = dy * sin
    return dy * cos + np.concatenate([g[..., half:], -g[..., :half]], axis=-1)


# ---- BitLinear with the straight-through estimator ----


def ternarize_latent(w: np.ndarray) -> tuple[np.ndarray, np.floating]:
    """Absmean ternary codes of a latent weight, as :func:`minibitnet.core.quant.ternarize_weights`.

    w:       (out, in) float
    returns: w_ternary (out, in) in {-1, 0, +1}, same float dtype (exact small integers)
             scale, a scalar of w's dtype, with w ≈ w_ternary / scale
    """
    mean_abs = max(float(np.abs(w).mean(dtype=np.float64)), MIN_MEAN_ABS)
    scale = w.dtype.type(1.0 / mean_abs)
    return np.clip(np.rint(w * scale), -1, 1), scale


def quantize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row absmax int8 codes, as :func:`minibitnet.core.quant.quantize_activations`.

    x:       (N, in) float
    returns: x_q (N, in) in [-128, 127], same float dtype (exact small integers)
             scale (N, 1) with x ≈ x_q / scale
    """
    dtype = x.dtype.type
    peak = np.maximum(np.abs(x).max(axis=-1, keepdims=True), dtype(MIN_ABS_MAX))  # (N, 1)
    scale = (dtype(INT8_MAX) / peak).astype(x.dtype)  # (N, 1)
    return np.clip(np.rint(x * scale), INT8_MIN, INT8_MAX), scale


def bitlinear_forward(x: np.ndarray, w: np.ndarray, quantize: bool
                      ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """y = x_q @ w_ternary.T / (act_scale * weight_scale), or x @ w.T with quantize=False.

    x: (N, in); w: (out, in) latent -> y (N, out), cache (the effective x and w of the product)

    The integer codes are held in floats: their products sum exactly (|sum| <= 127 * in < 2^24),
    so BLAS float matmul gives the same integers as the reference's int32 matmul, far faster.
    """
    if not quantize:
        return x @ w.T, (x, w)
    w_ternary, weight_scale = ternarize_latent(w)  # (out, in), scalar
    x_q, act_scale = quantize_rows(x)  # (N, in), (N, 1)
    acc = x_q @ w_ternary.T  # (N, out) exact integers
    y = acc / (act_scale * weight_scale)  # one rescale, multiplied scales first as the reference
    # straight-through: the backward sees the dequantised values as if they were x and w
    return y, (x_q / act_scale, w_ternary / weight_scale)


def bitlinear_backward(dy: np.ndarray, cache: tuple[np.ndarray, np.ndarray]
                       ) -> tuple[np.ndarray, np.ndarray]:
    """dy: (N, out) -> dx (N, in), dw (out, in), identity through round and clip (STE)."""
    x_eff, w_eff = cache
    return dy @ w_eff, dy.T @ x_eff


# ---- gated squared-ReLU ----


def gated_relu2_forward(gate: np.ndarray, up: np.ndarray
                        ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """h = max(gate, 0)^2 * up, as :class:`minibitnet.core.mlp.FeedForward` before its sub-norm.

    gate, up: (N, F) -> h (N, F), cache (gate, up)
    """
    positive = np.maximum(gate, 0)
    return positive * positive * up, (gate, up)


def gated_relu2_backward(dh: np.ndarray, cache: tuple[np.ndarray, np.ndarray]
                         ) -> tuple[np.ndarray, np.ndarray]:
    """dh: (N, F) -> dgate (N, F), dup (N, F); d/dg max(g, 0)^2 = 2 max(g, 0)."""
    gate, up = cache
    positive = np.maximum(gate, 0)
    return dh * up * 2 * positive, dh * positive * positive


# ---- cross-entropy over the vocabulary ----


def cross_entropy_forward(logits: np.ndarray, targets: np.ndarray
                          ) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood of the targets, in nats.

    logits: (N, V); targets: (N,) int -> loss (Python float), probs (N, V) for the backward
    """
    shifted = logits - logits.max(axis=-1, keepdims=True)  # (N, V), stable exp
    exps = np.exp(shifted)
    sums = exps.sum(axis=-1, keepdims=True)  # (N, 1)
    rows = np.arange(targets.size)
    loss = float(np.mean(np.log(sums[:, 0]) - shifted[rows, targets]))
    return loss, exps / sums


def cross_entropy_backward(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """dlogits (N, V) = (softmax - one_hot(targets)) / N for the mean loss."""
    dlogits = probs.copy()
    dlogits[np.arange(targets.size), targets] -= 1
    dlogits /= targets.size
    return dlogits
