import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minibitnet.core.quant import quantize_activations, ternarize_weights

finite_floats = st.floats(-1e4, 1e4, width=32, allow_nan=False)


def test_ternarize_worked_example():
    w = np.array([[0.3, -0.05, -0.4, 0.1]], np.float32)
    w_ternary, scale = ternarize_weights(w)
    assert np.array_equal(w_ternary, [[1, 0, -1, 0]])
    assert np.isclose(scale, 1 / 0.2125, rtol=1e-6)


@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=20),
                  elements=finite_floats))
def test_ternary_codes_and_scale(w):
    w_ternary, scale = ternarize_weights(w)
    assert w_ternary.dtype == np.int8 and set(np.unique(w_ternary)) <= {-1, 0, 1}
    assert scale > 0 and np.isfinite(scale)


@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40),
                  elements=finite_floats))
def test_activation_error_is_at_most_half_a_step(x):
    x_q, scale = quantize_activations(x)
    assert x_q.dtype == np.int8 and scale.shape == (x.shape[0], 1)
    # |x - x_q / scale| <= 0.5 / scale, up to float32 rounding of x * scale
    error = np.abs(x.astype(np.float64) - x_q / scale.astype(np.float64))
    step = 1.0 / scale.astype(np.float64)
    assert np.all(error <= 0.5 * step * (1 + 1e-5) + 1e-6 * np.abs(x))
    # the largest magnitude in each row maps to +-127 unless the row is ~0
    peak = np.abs(x).max(axis=1)
    big = peak > 1e-4
    assert np.all(np.abs(x_q[big].astype(int)).max(axis=1) == 127)


def test_round_half_to_even():
    # scale = 127 / 127 = 1: values land exactly on .5 ties
    x = np.array([[127.0, 0.5, 1.5, 2.5, -0.5, -1.5]], np.float32)
    x_q, _ = quantize_activations(x)
    assert x_q.tolist() == [[127, 0, 2, 2, 0, -2]]
