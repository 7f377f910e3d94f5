"""Rotary position embeddings in the rotate-half convention of the Hugging Face checkpoints.

Each head vector of width Hd is split into halves (x1, x2); pair i (x1[i], x2[i]) is rotated by
the angle ``position * theta^(-2i/Hd)``. Agrees with transformers' ``BitNetRotaryEmbedding`` and
``apply_rotary_pos_emb`` (default rope type): frequencies and angles in float32.

Llama 3.1 configs may rescale the frequencies (``rope_scaling`` with ``rope_type`` "llama3",
transformers' ``modeling_rope_utils._compute_llama3_parameters``): with wavelength
λ_i = 2π / inv_freq_i and L = original_max_position_embeddings, frequencies of λ_i < L /
high_freq_factor stay, those of λ_i > L / low_freq_factor are divided by ``factor``, and those in
between are blended with s = (L/λ_i - low_freq_factor) / (high_freq_factor - low_freq_factor):
inv_freq_i ((1 - s) / factor + s). Other scaling types are refused by config.py.

Because q and k are rotated by angles proportional to their positions, their dot product depends
only on the distance between them: that relative-position property is what tests/core/test_rope.py checks.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import Llama3Scaling


def inverse_frequencies(head_dim: int, theta: float,
                        scaling: Llama3Scaling | None = None) -> np.ndarray:
    """theta^(-2i/Hd) for i < Hd/2, rescaled by ``scaling`` when given.

    returns: (Hd/2,) float32, computed in float32 as transformers does
    """
    exponents = np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)  # (Hd/2,)
    if scaling is None:
        return (np.float32(1.0) / (np.float32(theta) ** exponents)).astype(np.float32)  # (Hd/2,)
    # subtle: the powers are taken in float64 and rounded once, as torch's float32 pow of a
    # Python float comes out (NumPy's float32 pow is off by an ulp in about a fifth of the
    # entries). The blend below amplifies such an ulp, and a shifted angle can flip a .5 tie
    # in a later int8 quantisation, moving logits by 1e-2. The unscaled tables keep float32
    # pow: the 2B4T results are pinned to them.
    powers = np.power(np.float64(theta), exponents.astype(np.float64)).astype(np.float32)
    inv_freq = (np.float32(1.0) / powers).astype(np.float32)  # (Hd/2,)
    old_context = np.float32(scaling.original_max_position_embeddings)
    factor = np.float32(scaling.factor)
    low, high = np.float32(scaling.low_freq_factor), np.float32(scaling.high_freq_factor)
    # subtle: a number divided by a tensor is, in torch, the tensor's reciprocal times the
    # number; dividing directly rounds differently in a few entries
    wavelength = (np.float32(1.0) / inv_freq) * np.float32(2 * math.pi)  # (Hd/2,)
    stretched = np.where(wavelength > old_context / low, inv_freq / factor, inv_freq)  # (Hd/2,)
    smooth = ((np.float32(1.0) / wavelength) * old_context - low) / (high - low)  # (Hd/2,)
    blended = (np.float32(1.0) - smooth) * stretched / factor + smooth * stretched  # (Hd/2,)
    # subtle: "medium" is neither below the high-frequency nor above the low-frequency
    # wavelength, so both boundary wavelengths themselves are blended (as transformers does)
    medium = ~(wavelength < old_context / high) & ~(wavelength > old_context / low)
    return np.where(medium, blended, stretched).astype(np.float32)


def rope_tables(positions: np.ndarray, head_dim: int, theta: float,
                scaling: Llama3Scaling | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cosines and sines for the given positions.

    positions: (T,) integer positions
    scaling:   Llama 3.1 frequency scaling, or None for plain RoPE
    returns:   cos, sin, each (T, Hd) float32, the Hd/2 angles repeated for both halves
    """
    inv_freq = inverse_frequencies(head_dim, theta, scaling)  # (Hd/2,)
    angles = positions.astype(np.float32)[:, None] * inv_freq[None, :]  # (T, Hd/2)
    angles = np.concatenate([angles, angles], axis=-1)  # (T, Hd)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def rotate_half(x: np.ndarray) -> np.ndarray:
    """(..., Hd) -> (..., Hd): [x1, x2] becomes [-x2, x1]."""
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate every head of x by its token's angles.

    x:        (heads, T, Hd) float32
    cos, sin: (T, Hd) float32 from :func:`rope_tables`
    returns:  (heads, T, Hd) float32
    """
    return x * cos + rotate_half(x) * sin  # cos, sin broadcast over heads
