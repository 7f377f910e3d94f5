"""Perplexity and bits per character of a model on a text, with a sliding window.

A text longer than the context is scored in windows of ``window`` tokens that overlap by
``window - stride``: every token is scored once, by the first window that holds it together with
at least ``window - stride`` tokens before it (all earlier tokens, near the start)::

    tokens:   <bos> t1 t2 ... t9          window 4, stride 2
    window 1: <bos> t1 t2 t3        scores t1 t2 t3
    window 2:       t2 t3 t4 t5     scores t4 t5      (t3 and t2 as context)
    window 3:             t4 t5 t6 t7  scores t6 t7 ...

The text is encoded after a ``<|begin_of_text|>`` token, which is context, not scored.
bits per character = (sum of -ln p(token)) / ln 2 / characters of the text: unlike perplexity it
does not depend on the tokenizer, so models with different vocabularies compare on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ArgumentError


@dataclass(frozen=True)
class Score:
    nats: float  # sum of -ln p over the scored tokens
    tokens: int  # tokens scored
    characters: int  # characters of the text

    @property
    def bits_per_char(self) -> float:
        return self.nats / math.log(2) / self.characters

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats / self.tokens)


def sliding_window_nats(logits_of: Callable[[Sequence[int]], np.ndarray], ids: Sequence[int],
                        window: int, stride: int,
                        on_tokens: Callable[[int], None] | None = None) -> tuple[float, int]:
    """Sum of -ln p(ids[j] | ids[..j]) for j = 1 .. len(ids)-1, and how many were scored.

    logits_of: ids (L,) -> (L, V) float logits, L <= window
    on_tokens: called after each window with the number of tokens it scored (for a progress
               bar); the calls add up to len(ids) - 1
    """
    if not 0 < stride <= window - 1:
        raise ArgumentError(f"--stride is {stride}, expected 1 .. window - 1 = {window - 1}")
    if len(ids) < 2:
        raise ArgumentError("the text has no token to score (it encodes to nothing)")
    ids_array = np.asarray(ids, dtype=np.int64)
    total, begin, scored = 0.0, 0, 1
    while scored < ids_array.size:
        end = min(begin + window, ids_array.size)
        logits = np.asarray(logits_of(ids_array[begin:end].tolist()), dtype=np.float64)  # (L, V)
        targets = np.arange(scored, end)  # tokens this window scores
        rows = logits[targets - 1 - begin]  # logits at position j-1 predict token j
        rows = rows - rows.max(axis=-1, keepdims=True)
        log_probs = rows - np.log(np.exp(rows).sum(axis=-1, keepdims=True))
        total -= float(log_probs[np.arange(targets.size), ids_array[targets]].sum())
        scored = end
        begin = end - (window - stride)  # keep window - stride tokens of context
        if on_tokens is not None:
            on_tokens(targets.size)
    return total, ids_array.size - 1


def score_text(logits_of: Callable[[Sequence[int]], np.ndarray], ids: Sequence[int],
               characters: int, window: int, stride: int,
               on_tokens: Callable[[int], None] | None = None) -> Score:
    """The :class:`Score` of ``ids`` (bos first), for a text of ``characters`` characters."""
    nats, tokens = sliding_window_nats(logits_of, ids, window, stride, on_tokens)
    return Score(nats, tokens, characters)
