"""One check that two loaded models hold the same weights, bit for bit (used by the format and
conversion tests, which promise the model survives a change of format exactly)."""

from __future__ import annotations

import numpy as np

from minibitnet.core.weights import TernaryWeight, Weights


def same_bits(a: np.float32, b: np.float32) -> bool:
    """True if two float32 scalars have the same bits (so -0.0 != 0.0, and NaN == the same NaN)."""
    return np.float32(a).tobytes() == np.float32(b).tobytes()


def assert_same_weights(got: Weights, expected: Weights) -> None:
    """Codes, bit-equal scales, BitLinear input norms, norms, and the embedding and head with
    their dtype, tensor by tensor; the assertion names the layer and field that differ."""
    for name in ("embed_tokens", "lm_head"):
        mine, theirs = getattr(got, name), getattr(expected, name)
        assert (mine is None) == (theirs is None), name
        if theirs is not None:
            assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs), name
    assert np.array_equal(got.norm, expected.norm)
    assert len(got.layers) == len(expected.layers)
    for n, (mine_layer, their_layer) in enumerate(zip(got.layers, expected.layers)):
        for field in vars(their_layer):
            a, b = getattr(mine_layer, field), getattr(their_layer, field)
            where = f"layer {n} {field}"
            if isinstance(b, TernaryWeight):
                assert isinstance(a, TernaryWeight), where
                assert np.array_equal(np.asarray(a.packed), np.asarray(b.packed)), where
                assert same_bits(a.weight_scale, b.weight_scale), where
                assert (a.input_norm is None) == (b.input_norm is None), where
                assert b.input_norm is None or np.array_equal(a.input_norm, b.input_norm), where
            else:
                assert (a is None) == (b is None), where
                assert b is None or np.array_equal(a, b), where
