"""minibitnet.core.sample.next_token_probs against transformers' logits warpers (the oracle).

transformers' ``generate(do_sample=True)`` applies TemperatureLogitsWarper, TopKLogitsWarper and
TopPLogitsWarper in that order (``_get_logits_processor`` in generation/utils.py) and draws from
the softmax of what they leave. These tests compare that distribution with next_token_probs:
the kept tokens exactly, their probabilities to a relative 1e-12. Nothing is sampled.

Tolerance: both sides work in float64. The logits are float32, as the model gives them, widened
once, so the temperature division rounds the same in NumPy and torch and the kept sets must be
identical. The probabilities come from two softmax implementations (their exp and summation
order differ by a few ulps per term, < 1e-13 relative for these V <= 64), hence rtol = 1e-12.
A top-p edge within 1e-9 of p is left out of the random cases: there the two summation orders
(transformers adds from the least likely token, minibitnet from the most likely) decide, not the
semantics; hand-made ties with exact sums test the edge itself.

Ties: top-k keeps every token tied with the k-th in both. At the edge of the top-p set,
transformers keeps a count of tokens and picks among tied ones by torch.sort's (unspecified)
order; minibitnet keeps every token tied with the least likely one kept (minibitnet/core/sample.py
says why). The expected set is transformers' set closed under that rule, and each test checks
that the closure adds only tokens tied with transformers' least likely one.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minibitnet.core.sample import next_token_probs

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from transformers.generation.logits_process import (  # noqa: E402
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

pytestmark = pytest.mark.oracle

RTOL = 1e-12
EDGE_MARGIN = 1e-9


def transformers_scores(logits: np.ndarray, temperature: float, top_k: int | None,
                        top_p: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The scores as generate's warpers leave them, under generate's own conditions.

    logits:  (V,) float32
    returns: before top-p (V,) float64 and after every warper (V,) float64, -inf where removed
    """
    input_ids = torch.zeros((1, 0), dtype=torch.long)  # the warpers used here ignore it
    scores = torch.from_numpy(logits.astype(np.float64))[None]  # (1, V)
    if temperature != 1.0:
        scores = TemperatureLogitsWarper(temperature)(input_ids, scores)
    if top_k is not None:
        scores = TopKLogitsWarper(top_k)(input_ids, scores)
    before_top_p = scores
    if top_p is not None and top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(input_ids, scores)
    return before_top_p[0].numpy(), scores[0].numpy()


def softmax(scores: np.ndarray) -> np.ndarray:
    """(V,) float64 with -inf where removed -> (V,) float64 probabilities, by torch."""
    return torch.softmax(torch.from_numpy(scores), dim=-1).numpy()


def top_p_edge_margin(before_top_p: np.ndarray, top_p: float | None) -> float:
    """How far p is from the mass before any group of equal scores: where the set can change."""
    if top_p is None or top_p >= 1.0:
        return np.inf
    probs = softmax(before_top_p)
    kept = before_top_p[np.isfinite(before_top_p)]
    return min(abs(probs[before_top_p > score].sum() - top_p) for score in np.unique(kept))


def check_against_transformers(logits: np.ndarray, temperature: float, top_k: int | None,
                               top_p: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Assert next_token_probs == transformers' distribution with ties at the top-p edge kept.

    returns: (transformers' kept tokens, minibitnet's kept tokens), (V,) bool each
    """
    before_top_p, after = transformers_scores(logits, temperature, top_k, top_p)
    theirs = np.isfinite(after)
    edge = before_top_p[theirs].min()  # the least likely score transformers keeps
    expected = before_top_p >= edge    # ... and every token tied with it
    assert np.all(before_top_p[expected & ~theirs] == edge), "only ties may be added"
    ours = next_token_probs(logits, temperature, top_k, top_p)
    np.testing.assert_array_equal(ours > 0, expected)
    np.testing.assert_allclose(ours, softmax(np.where(expected, before_top_p, -np.inf)),
                               rtol=RTOL, atol=0)
    return theirs, ours > 0


temperatures = st.sampled_from([1.0, 0.7, 2.0]) | st.floats(0.1, 5.0)
top_ps = st.none() | st.just(1.0) | st.floats(0.0, 1.0, exclude_min=True)


@st.composite
def settings_for(draw: st.DrawFn, size: int) -> tuple[float, int | None, float | None]:
    """(temperature, top_k, top_p) with k from 1 to past the vocabulary."""
    top_k = draw(st.none() | st.integers(1, size + 2))
    return draw(temperatures), top_k, draw(top_ps)


# logits in [-20, 20] and temperature >= 0.1: exp never underflows, so a kept token has p > 0
random_logits = arrays(np.float32, st.integers(1, 64),
                       elements=st.floats(-20.0, 20.0, width=32))
# a few values only: ties everywhere, at the k-th token and at the top-p edge
tied_logits = arrays(np.float32, st.integers(1, 40),
                     elements=st.sampled_from([-1.0, 0.0, 0.0, 1.0, 1.0, 2.5]))


@given(logits=random_logits, data=st.data())
def test_random_logits_match(logits: np.ndarray, data: st.DataObject) -> None:
    temperature, top_k, top_p = data.draw(settings_for(logits.size))
    before_top_p, _ = transformers_scores(logits, temperature, top_k, top_p)
    assume(top_p_edge_margin(before_top_p, top_p) > EDGE_MARGIN)
    check_against_transformers(logits, temperature, top_k, top_p)


@given(logits=tied_logits, data=st.data())
def test_tie_heavy_logits_match(logits: np.ndarray, data: st.DataObject) -> None:
    temperature, top_k, top_p = data.draw(settings_for(logits.size))
    before_top_p, _ = transformers_scores(logits, temperature, top_k, top_p)
    assume(top_p_edge_margin(before_top_p, top_p) > EDGE_MARGIN)
    check_against_transformers(logits, temperature, top_k, top_p)


@pytest.mark.parametrize("logits, temperature, top_k, top_p, kept, transformers_count", [
    # top-k: every token tied with the k-th, in both (4 tokens for k = 2)
    ([3, 2, 2, 2, 1], 1.0, 2, None, [0, 1, 2, 3], 4),
    # top-p edge inside a tie: probabilities 1/4 each, p = 1/2 (exact sums); transformers 2 of 4
    ([0, 0, 0, 0], 1.0, None, 0.5, [0, 1, 2, 3], 2),
    # the docstring's example: (0.4, 0.3, 0.3), p = 0.5
    (np.log([0.4, 0.3, 0.3]), 1.0, None, 0.5, [0, 1, 2], 2),
    # the top token tied: the always-kept top token brings its tie along
    ([5, 5, 0], 1.0, None, 0.01, [0, 1], 1),
    # all three: temperature, then k = 3 (ties at the k-th), then p inside the tie of 1/3 each
    ([0, 1, 1, 1, 0], 0.5, 3, 0.6, [1, 2, 3], 2),
    # no tie at the edge: the same set as transformers
    ([2, 1, 0, -1], 1.0, None, 0.7, [0, 1], 2),
])
def test_ties_by_hand(logits: list[float], temperature: float, top_k: int | None,
                      top_p: float | None, kept: list[int], transformers_count: int) -> None:
    logits_f32 = np.asarray(logits, dtype=np.float32)
    theirs, ours = check_against_transformers(logits_f32, temperature, top_k, top_p)
    assert np.flatnonzero(ours).tolist() == kept
    assert int(theirs.sum()) == transformers_count
