"""RoPE: rotations keep lengths, and the q.k score depends only on the distance between positions.

A hand-derived case beside the properties: at position 1 with Hd = 2 the single pair is rotated
by exactly 1 radian, so (1, 0) becomes (cos 1, sin 1).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minibitnet.core.rope import apply_rope, rope_tables

HEAD_DIMS = st.sampled_from([2, 4, 8, 64, 128])
VALUES = st.floats(-4, 4, width=32)


def rotated(vector: np.ndarray, position: int, theta: float = 10000.0) -> np.ndarray:
    """(Hd,) float32 -> (Hd,) float32: ``vector`` rotated as a head at ``position``."""
    cos, sin = rope_tables(np.array([position]), vector.shape[0], theta)  # (1, Hd) each
    return apply_rope(vector[None, None, :], cos, sin)[0, 0]


def test_one_pair_at_position_one_turns_by_one_radian():
    np.testing.assert_allclose(rotated(np.array([1.0, 0.0], np.float32), 1),
                               [np.cos(1.0), np.sin(1.0)], rtol=1e-6)


@given(head_dim=HEAD_DIMS, data=st.data())
def test_rotation_keeps_the_length(head_dim, data):
    vector = data.draw(hnp.arrays(np.float32, head_dim, elements=VALUES))
    position = data.draw(st.integers(0, 4096))
    np.testing.assert_allclose(np.linalg.norm(rotated(vector, position)), np.linalg.norm(vector),
                               rtol=1e-4, atol=1e-4)


@given(head_dim=HEAD_DIMS, data=st.data())
def test_the_score_depends_only_on_the_distance(head_dim, data):
    q = data.draw(hnp.arrays(np.float32, head_dim, elements=VALUES))
    k = data.draw(hnp.arrays(np.float32, head_dim, elements=VALUES))
    m, n, shift = (data.draw(st.integers(0, 1024)) for _ in range(3))
    score = float(rotated(q, m) @ rotated(k, n))
    shifted = float(rotated(q, m + shift) @ rotated(k, n + shift))
    # float32 angles of positions up to 2048: the rounding of position * inv_freq moves a
    # 4-unit-wide vector's score by far less than this
    assert abs(score - shifted) <= 2e-2 * (1 + np.linalg.norm(q) * np.linalg.norm(k))
