"""Choosing the next token from logits: greedy, temperature, top-k and top-p, seeded.

The order of the filters is that of Hugging Face ``generate``: divide by the temperature, keep the
k most likely tokens, then keep the smallest set whose probability reaches p. A temperature of 0
means greedy (argmax, lowest id on ties), with no randomness at all.
"""

from __future__ import annotations

import numbers

import numpy as np

from .errors import ArgumentError


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
    """
    scaled = logits.astype(np.float64) / temperature  # (V,)
    if top_k is not None and top_k < scaled.size:
        kth_largest = np.partition(scaled, -top_k)[-top_k]
        scaled = np.where(scaled >= kth_largest, scaled, -np.inf)
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-probs, kind="stable")  # most likely first
        cumulative = np.cumsum(probs[order])
        # keep tokens until the mass *before* them reaches p: the top token is always kept
        keep = cumulative - probs[order] < top_p
        mask = np.zeros_like(probs, dtype=bool)
        mask[order[keep]] = True
        probs = np.where(mask, probs, 0.0)
        probs /= probs.sum()
    return probs


def sample_next_token(logits: np.ndarray, temperature: float, top_k: int | None,
                      top_p: float | None, rng: np.random.Generator) -> int:
    """One token id drawn from ``logits`` (V,) float32; greedy when temperature == 0."""
    if temperature == 0.0:
        return int(np.argmax(logits))
    probs = next_token_probs(logits, temperature, top_k, top_p)
    return int(rng.choice(probs.size, p=probs))
