"""Rotary position embeddings in the rotate-half convention of the Hugging Face checkpoints.

Each head vector of width Hd is split into halves (x1, x2); pair i (x1[i], x2[i]) is rotated by
the angle ``position * theta^(-2i/Hd)``. Agrees with transformers' ``BitNetRotaryEmbedding`` and
``apply_rotary_pos_emb`` (default rope type): frequencies and angles in float32.

Because q and k are rotated by angles proportional to their positions, their dot product depends
only on the distance between them: that relative-position property is what tests/test_rope.py checks.
"""

from __future__ import annotations

import numpy as np


def rope_tables(positions: np.ndarray, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """Cosines and sines for the given positions.

    positions: (T,) integer positions
    returns:   cos, sin, each (T, Hd) float32, the Hd/2 angles repeated for both halves
    """
    exponents = np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)  # (Hd/2,)
    inv_freq = (np.float32(1.0) / (np.float32(theta) ** exponents)).astype(np.float32)  # (Hd/2,)
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
