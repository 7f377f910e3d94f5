"""Gradient checks for the training layers: central finite differences in float64.

Each layer's backward is checked against (f(x + e) - f(x - e)) / 2e of the scalar
L = sum(dy * f(x)) for a random dy, for every input entry (shapes are tiny). With quantisation
off every function is smooth, and in float64 the two agree to ~1e-9 relative; the test allows
1e-5, plus a floor for entries whose gradient is nearly zero (where the difference quotient's
rounding error dominates).
"""

import numpy as np
import pytest

from minibitnet.core.rope import rope_tables
from minibitnet.tools.synthetic import tiny_config
from minibitnet.train.attention import attention_backward, attention_forward
from minibitnet.train.layers import (bitlinear_backward, bitlinear_forward,
                                     cross_entropy_backward, cross_entropy_forward,
                                     gated_relu2_backward, gated_relu2_forward,
                                     rms_norm_backward, rms_norm_forward, rope_backward,
                                     rope_forward)
from minibitnet.train.model import init_params, loss_and_grads

STEP = 1e-6
RTOL = 1e-5
ATOL = 1e-9


def numeric_grad(scalar_of, x):
    """d scalar_of() / dx by central differences, perturbing x in place."""
    grad = np.zeros_like(x)
    flat, flat_grad = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + STEP
        plus = scalar_of()
        flat[i] = old - STEP
        minus = scalar_of()
        flat[i] = old
        flat_grad[i] = (plus - minus) / (2 * STEP)
    return grad


def assert_grads_close(analytic, numeric):
    assert analytic.shape == numeric.shape
    error = np.abs(analytic - numeric)
    bound = RTOL * np.maximum(np.abs(analytic), np.abs(numeric)) + ATOL
    worst = float((error / bound).max())
    assert worst <= 1.0, f"gradient mismatch: worst error / bound = {worst:.3g}"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_rms_norm_gradients(rng):
    x, weight = rng.normal(size=(3, 6)), rng.normal(1.0, 0.3, size=6)
    dy = rng.normal(size=(3, 6))
    _, cache = rms_norm_forward(x, weight, 1e-5)
    dx, dweight = rms_norm_backward(dy, cache)
    scalar = lambda: float((dy * rms_norm_forward(x, weight, 1e-5)[0]).sum())  # noqa: E731
    assert_grads_close(dx, numeric_grad(scalar, x))
    assert_grads_close(dweight, numeric_grad(scalar, weight))


def test_rope_gradients(rng):
    cos, sin = (t.astype(np.float64) for t in rope_tables(np.arange(5), 8, 10000.0))
    x, dy = rng.normal(size=(2, 5, 8)), rng.normal(size=(2, 5, 8))
    scalar = lambda: float((dy * rope_forward(x, cos, sin)).sum())  # noqa: E731
    assert_grads_close(rope_backward(dy, cos, sin), numeric_grad(scalar, x))


def test_linear_gradients_without_quantization(rng):
    x, w, dy = rng.normal(size=(4, 6)), rng.normal(size=(8, 6)), rng.normal(size=(4, 8))
    _, cache = bitlinear_forward(x, w, quantize=False)
    dx, dw = bitlinear_backward(dy, cache)
    scalar = lambda: float((dy * bitlinear_forward(x, w, quantize=False)[0]).sum())  # noqa: E731
    assert_grads_close(dx, numeric_grad(scalar, x))
    assert_grads_close(dw, numeric_grad(scalar, w))


def test_gated_relu2_gradients(rng):
    # keep gate values away from the kink at 0, where the derivative jumps
    gate = rng.choice([-1.0, 1.0], size=(3, 5)) * rng.uniform(0.1, 2.0, size=(3, 5))
    up, dh = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    _, cache = gated_relu2_forward(gate, up)
    dgate, dup = gated_relu2_backward(dh, cache)
    scalar = lambda: float((dh * gated_relu2_forward(gate, up)[0]).sum())  # noqa: E731
    assert_grads_close(dgate, numeric_grad(scalar, gate))
    assert_grads_close(dup, numeric_grad(scalar, up))


@pytest.mark.parametrize("heads,kv_heads", [(4, 2), (3, 3), (4, 1)])
def test_attention_gradients(rng, heads, kv_heads):
    q = rng.normal(size=(2, heads, 5, 4))
    k, v = rng.normal(size=(2, kv_heads, 5, 4)), rng.normal(size=(2, kv_heads, 5, 4))
    dout = rng.normal(size=(2, heads, 5, 4))
    _, cache = attention_forward(q, k, v)
    dq, dk, dv = attention_backward(dout, cache)
    scalar = lambda: float((dout * attention_forward(q, k, v)[0]).sum())  # noqa: E731
    assert_grads_close(dq, numeric_grad(scalar, q))
    assert_grads_close(dk, numeric_grad(scalar, k))
    assert_grads_close(dv, numeric_grad(scalar, v))


def test_attention_is_causal(rng):
    """Changing a later token's key or value leaves earlier outputs unchanged."""
    q, k, v = rng.normal(size=(1, 2, 6, 4)), rng.normal(size=(1, 1, 6, 4)), rng.normal(size=(1, 1, 6, 4))
    before, _ = attention_forward(q, k, v)
    k[..., 4:, :] += 1.0
    v[..., 4:, :] -= 1.0
    after, _ = attention_forward(q, k, v)
    np.testing.assert_array_equal(before[..., :4, :], after[..., :4, :])


def test_cross_entropy_gradients(rng):
    logits, targets = rng.normal(size=(4, 7)), rng.integers(0, 7, size=4)
    loss, probs = cross_entropy_forward(logits, targets)
    expected = -np.mean(np.log(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
                        [np.arange(4), targets])
    assert loss == pytest.approx(expected, rel=1e-12)
    scalar = lambda: cross_entropy_forward(logits, targets)[0]  # noqa: E731
    assert_grads_close(cross_entropy_backward(probs, targets), numeric_grad(scalar, logits))


def test_whole_model_gradients(rng):
    """Every parameter of a 2-layer GQA model, through the loss (a sample of entries each)."""
    config = tiny_config(vocab_size=23, hidden_size=16, intermediate_size=12, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    params = init_params(config, seed=0, dtype=np.float64)
    for name, p in params.items():  # move away from the symmetric initial point
        p += rng.normal(0.0, 0.3 if p.ndim == 1 else 0.05, p.shape)
    ids, targets = rng.integers(0, 23, size=(2, 5)), rng.integers(0, 23, size=(2, 5))
    _, grads = loss_and_grads(params, config, ids, targets, quantize=False)
    assert grads.keys() == params.keys()
    for name, p in params.items():
        flat = p.reshape(-1)
        for i in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + STEP
            plus, _ = loss_and_grads(params, config, ids, targets, quantize=False)
            flat[i] = old - STEP
            minus, _ = loss_and_grads(params, config, ids, targets, quantize=False)
            flat[i] = old
            assert_grads_close(grads[name].reshape(-1)[i:i + 1],
                               np.array([(plus - minus) / (2 * STEP)]))
