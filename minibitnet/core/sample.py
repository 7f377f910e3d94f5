"""Choosing the next token from logits: greedy, temperature, top-k and top-p, seeded.

The order of the filters is that of Hugging Face ``generate``: divide by the temperature, keep the
k most likely tokens, then keep the smallest set whose probability reaches p. A temperature of 0
means greedy (argmax, lowest id on ties), with no randomness at all. :func:`next_token_probs`
gives the same distribution as transformers' TemperatureLogitsWarper, TopKLogitsWarper and
TopPLogitsWarper (``generation/logits_process.py``), tests/core/test_sample_oracle.py checks it.

Ties, worked out: a token tied with the least likely one kept is kept too, by both filters.
transformers' top-k does this (it keeps every score >= the k-th); its top-p keeps a count of
tokens and picks among tied ones by the order ``torch.sort`` leaves them in, which is unspecified.
Here the choice never depends on the ids: probabilities (0.4, 0.3, 0.3) with p = 0.5 keep all
three (the nucleus, 0.4 + 0.3, ends inside the tie), where transformers on a CPU keeps tokens 0
and 2. Without a tie at the edge of the nucleus the two keep the same tokens.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import ArgumentError


def is_integer(value: object) -> bool:
    """An int or NumPy integer, but not a bool (``top_k=True`` is a mistake, not k=1)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """An int, float or NumPy number, but not a bool; callers may pass None or a string."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_sampling_args(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise ArgumentError for values outside the documented ranges."""
    if not is_real(temperature):
        raise ArgumentError(f"temperature is {temperature!r}, expected a finite number >= 0")
    if top_k is not None and not is_integer(top_k):
        raise ArgumentError(f"top_k is {top_k!r}, expected an integer >= 1")
    if top_p is not None and not is_real(top_p):
        raise ArgumentError(f"top_p is {top_p!r}, expected 0 < top_p <= 1")
    if not temperature >= 0.0 or not np.isfinite(temperature):
        raise ArgumentError(f"temperature is {temperature}, expected a finite number >= 0")
    if top_k is not None and top_k < 1:
        raise ArgumentError(f"top_k is {top_k}, expected an integer >= 1")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ArgumentError(f"top_p is {top_p}, expected 0 < top_p <= 1")


def next_token_probs(logits: np.ndarray, temperature: float, top_k: int | None,
                     top_p: float | None) -> np.ndarray:
    """The distribution sampling draws from.

    logits:  (V,) float32
    returns: (V,) float64 probabilities summing to 1, zero outside the top-k / top-p set
             (each set holds every token tied with the least likely one in it)
    """
    wide = logits.astype(np.float64)  # (V,)
    with np.errstate(over="ignore"):  # -inf is a probability of 0, as meant
        scaled = wide / temperature  # (V,)
        if not np.isfinite(scaled.max()):
            # a temperature so small (1e-320) that logits / t overflow: shift first, so the
            # largest logit scales to exactly 0 and the others to -inf at worst; greedy, in effect
            scaled = (wide - wide.max()) / temperature
    if top_k is not None and top_k < scaled.size:
        kth_largest = np.partition(scaled, -top_k)[-top_k]
        scaled = np.where(scaled >= kth_largest, scaled, -np.inf)
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-scaled, kind="stable")  # (V,) ids, most likely first
        sorted_probs = probs[order]  # (V,)
        # keep tokens until the mass *before* them reaches p: the top token is always kept
        in_nucleus = np.cumsum(sorted_probs) - sorted_probs < top_p  # (V,)
        # subtle: compare with the least likely kept *score* rather than keep a count of
        # tokens, so that all tokens tied with it stay; a count would pick among them by id.
        # Scores, not probabilities: 1e-45 and 0 are distinct scores (transformers keeps them
        # apart) whose exponentials round to one probability
        smallest_kept = scaled[order][in_nucleus].min()
        probs = np.where(scaled >= smallest_kept, probs, 0.0)
        probs /= probs.sum()
    filtered: np.ndarray = probs
    return filtered


def suppress_ids(logits: np.ndarray, suppressed: np.ndarray) -> np.ndarray:
    """``logits`` with the suppressed ids at -inf, so that no way of sampling can pick them
    (transformers' SuppressTokensLogitsProcessor does the same).

    logits:     (V,) float32
    suppressed: (V,) bool, True for an id never to sample (e.g. a padding row of the embedding)
    returns:    (V,) float32, a new array
    """
    masked: np.ndarray = np.where(suppressed, np.float32(-np.inf), logits).astype(logits.dtype)
    return masked


def sample_next_token(logits: np.ndarray, temperature: float, top_k: int | None,
                      top_p: float | None, rng: np.random.Generator) -> int:
    """One token id drawn from ``logits`` (V,) float32; greedy when temperature == 0."""
    if temperature == 0.0:
        return int(np.argmax(logits))
    probs = next_token_probs(logits, temperature, top_k, top_p)
    return int(rng.choice(probs.size, p=probs))
