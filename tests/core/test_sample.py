"""minibitnet.core.sample without an oracle: the filtered distribution never depends on token ids.

tests/core/test_sample_oracle.py compares with transformers; this property holds with NumPy alone.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minibitnet.core.sample import next_token_probs, sample_next_token

# a few values only, so that ties sit at the k-th token and at the top-p edge
tied_logits = arrays(np.float32, st.integers(1, 40),
                     elements=st.sampled_from([-1.0, 0.0, 0.0, 1.0, 1.0, 2.5]))


def top_p_edge_margin(probs: np.ndarray, top_p: float | None) -> float:
    """How far p is from the mass before any group of equal probabilities."""
    if top_p is None or top_p >= 1.0:
        return np.inf
    return min(abs(probs[probs > value].sum() - top_p) for value in np.unique(probs))


@given(logits=tied_logits, data=st.data())
def test_renumbering_tokens_renumbers_the_distribution(logits: np.ndarray,
                                                       data: st.DataObject) -> None:
    """Tied tokens at the edge of top-k or top-p are kept or dropped together, whatever the ids."""
    order = np.array(data.draw(st.permutations(range(logits.size))))
    temperature = data.draw(st.floats(0.1, 5.0))
    top_k = data.draw(st.none() | st.integers(1, logits.size + 1))
    top_p = data.draw(st.none() | st.floats(0.0, 1.0, exclude_min=True))
    # within 1e-9 of an edge the summation order of the two runs, not the ids, decides
    assume(top_p_edge_margin(next_token_probs(logits, temperature, top_k, None), top_p) > 1e-9)
    probs = next_token_probs(logits, temperature, top_k, top_p)
    renumbered = next_token_probs(logits[order], temperature, top_k, top_p)
    np.testing.assert_array_equal(renumbered > 0, probs[order] > 0)
    np.testing.assert_allclose(renumbered, probs[order], rtol=1e-12, atol=0)


def test_top_p_keeps_a_tie_at_its_edge_whole() -> None:
    """(0.5, 0.25, 0.25) with p = 0.6: the nucleus ends inside the tie, so both tied tokens stay."""
    logits = np.log(np.array([0.5, 0.25, 0.25, 0.0001], dtype=np.float32))
    probs = next_token_probs(logits, 1.0, None, 0.6)
    assert (probs > 0).tolist() == [True, True, True, False]
    np.testing.assert_allclose(probs[:3], [0.5, 0.25, 0.25], rtol=1e-6)  # float32 logits
    # sampling draws from that distribution: both tied tokens come up, the dropped one never
    draws = [sample_next_token(logits, 1.0, None, 0.6, np.random.default_rng(seed))
             for seed in range(200)]
    assert set(draws) == {0, 1, 2}


@given(arrays(np.float32, st.integers(2, 50), elements=st.floats(-30, 30, width=32)),
       st.sampled_from([1e-320, 5e-324, 1e-300, 1e-60]))
def test_a_vanishing_temperature_is_greedy_without_overflow(logits: np.ndarray,
                                                            temperature: float) -> None:
    """logits / 1e-320 overflow float64; the distribution must still be the greedy limit (all
    the mass on the largest logits), never NaN, and warn about nothing.

    Every temperature here is vanishing next to any gap between two float32 logits (the
    smallest, 1.4e-45, over 1e-60 is 1e15): 1e-40 is not, since logits 6.6e-42 and 0 differ by
    0.066 of it, a fair coin rather than greedy."""
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is a 0
        probs = next_token_probs(logits, temperature, top_k=None, top_p=None)
    largest = logits == logits.max()
    assert np.isfinite(probs).all()
    assert probs[~largest].sum() == 0.0
    assert abs(probs.sum() - 1.0) < 1e-12
