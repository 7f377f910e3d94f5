"""The sampling loop: prefill the prompt, then one token at a time through the KV cache.

    logits = forward(prompt, cache)          # every prompt position at once (prefill)
    repeat:
        token = sample(logits[-1])           # greedy / temperature / top-k / top-p
        yield token; stop at a stop id or max_new_tokens
        logits = forward([token], cache)     # one new position, the rest read from the cache

Generation stops early, without error, when the sequence reaches the model's
``max_position_embeddings`` (RoPE and the training context end there); callers can compare
``cache.length`` with the limit to say so.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np

from ..config import ModelConfig
from ..errors import ArgumentError, ContextLengthError
from .kv_cache import KVCache
from .sample import check_sampling_args, is_integer, sample_next_token, suppress_ids


class Forward(Protocol):
    """What the loop needs of a model (:class:`minibitnet.core.model.Model` is one)."""

    @property
    def config(self) -> ModelConfig: ...

    def new_cache(self) -> KVCache: ...

    def forward(self, ids: Sequence[int], cache: KVCache) -> np.ndarray: ...


def stream_tokens(
    model: Forward,
    ids: Sequence[int],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop_ids: Sequence[int] | None = None,
    cache: KVCache | None = None,
    suppressed: np.ndarray | None = None,
) -> Iterator[int]:
    """Yield new token ids one at a time.

    ids:        the prompt; with a ``cache``, the tokens that follow what the cache already holds
    stop_ids:   None means the config's eos ids; a stop token is yielded, then generation ends
    cache:      reuse one across calls to continue a conversation; a fresh one when None
    suppressed: (V,) bool, True for ids never to sample (their logits become -inf), e.g. the
                padding rows of a vocabulary larger than the tokenizer's; None samples any id
    """
    if not is_integer(max_new_tokens) or max_new_tokens < 0:
        raise ArgumentError(f"max_new_tokens is {max_new_tokens!r}, expected an integer >= 0")
    if seed is not None and (not is_integer(seed) or seed < 0):
        raise ArgumentError(f"seed is {seed!r}, expected an integer >= 0 or None")
    check_sampling_args(temperature, top_k, top_p)
    limit = model.config.max_position_embeddings
    cache = cache if cache is not None else model.new_cache()
    if cache.length + len(ids) > limit:
        raise ContextLengthError(
            f"prompt of {len(ids)} tokens (after {cache.length} cached) exceeds the context "
            f"length of {limit} tokens (max_position_embeddings)")
    if max_new_tokens == 0:
        return
    if not ids:
        raise ArgumentError("prompt is empty; expected at least one token id")
    vocab_size = model.config.vocab_size
    suppressed = None if suppressed is None else np.asarray(suppressed, dtype=bool)  # (V,)
    if suppressed is not None and (suppressed.shape != (vocab_size,) or suppressed.all()):
        raise ArgumentError(f"suppressed has shape {suppressed.shape} with "
                            f"{int(suppressed.sum())} ids set, expected ({vocab_size},) with at "
                            "least one id left to sample")
    stops = set(model.config.eos_token_ids if stop_ids is None else stop_ids)
    rng = np.random.default_rng(seed)
    logits = model.forward(ids, cache)[-1]  # (V,) prefill
    for produced in range(max_new_tokens):
        if suppressed is not None:
            logits = suppress_ids(logits, suppressed)  # (V,)
        token = sample_next_token(logits, temperature, top_k, top_p, rng)
        yield token
        if token in stops or produced + 1 == max_new_tokens or cache.length >= limit:
            return
        logits = model.forward([token], cache)[-1]  # (V,) one decode step
