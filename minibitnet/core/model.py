"""The BitNet b1.58 transformer: embedding, blocks, final norm, tied output head.

One block, as transformers' ``BitNetDecoderLayer`` (and ``LlamaDecoderLayer``: the families of
families.py differ only inside attention and feed_forward, by config fields)::

    h = h + attention(input_layernorm(h))
    h = h + feed_forward(post_attention_layernorm(h))

The model never reads files: :mod:`minibitnet.formats.checkpoint` builds a :class:`Weights` value
and ``Model`` takes it, with a kernel object that decides how the ternary products are computed
(a backend of :mod:`minibitnet.kernels`; every backend returns the same integers). The model
imports no kernel: ``minibitnet.load`` resolves a backend's name and hands the kernel over, and
without one the model multiplies with the NumPy reference of :mod:`minibitnet.core.bitlinear`.

``forward`` takes an optional ``timer`` and wraps each of its steps (:data:`STEPS`) in
``with timer(step):``, handing the same timer to every block and layer; a tool that times the
parts of a step (minibitnet.tools.step_timing) passes a clock there instead of copying the pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext

import numpy as np

from .attention import Attention
from .bitlinear import ReferenceKernel, StepTimer, TernaryKernel
from ..config import ModelConfig
from ..errors import ArgumentError, ContextLengthError, NumericalError
from .generate import stream_tokens
from .head import OutputHead, table_rows
from .kv_cache import KVCache
from .mlp import FeedForward
from .norm import rms_norm
from .rope import rope_tables
from .weights import LayerWeights, Weights

# Every step a forward pass wraps in ``with timer(step):``, in the order a token meets them.
# "rms norm" is every RMSNorm (block input and post-attention, the sub-norms, the BitLinear input
# norms, the final norm); what no step wraps (residual adds, reshapes, checks) is left untimed.
STEPS = ("embedding", "rope tables", "rms norm", "quantize", "ternary matmul", "rescale", "rope",
         "kv cache", "attention", "activation", "head")


class Block:
    """One transformer block: pre-norm attention and pre-norm feed-forward, each residual."""

    def __init__(self, config: ModelConfig, layer: LayerWeights, kernel: TernaryKernel) -> None:
        self.eps = config.rms_norm_eps
        self.input_layernorm = layer.input_layernorm  # (D,)
        self.attention = Attention(config, layer, kernel)
        self.post_attention_layernorm = layer.post_attention_layernorm  # (D,)
        self.feed_forward = FeedForward(config, layer, kernel)

    def __call__(self, h: np.ndarray, cos: np.ndarray, sin: np.ndarray,
                 cache: KVCache, layer_index: int, timer: StepTimer = nullcontext) -> np.ndarray:
        """h: (T, D) float32 residual stream -> (T, D) float32.

        timer: wraps the two norms as "rms norm", and is handed to attention and feed-forward
        """
        with timer("rms norm"):
            x = rms_norm(h, self.input_layernorm, self.eps)  # (T, D)
        h = h + self.attention(x, cos, sin, cache, layer_index, timer)  # (T, D)
        with timer("rms norm"):
            x = rms_norm(h, self.post_attention_layernorm, self.eps)  # (T, D)
        return h + self.feed_forward(x, timer)  # (T, D)


class Model:
    """A loaded model. Public contract: ``config``, ``backend``, ``logits``, ``generate``,
    ``stream``."""

    def __init__(self, config: ModelConfig, weights: Weights, kernel: TernaryKernel | None = None,
                 after_read: Callable[[np.ndarray], object] | None = None,
                 head_threads: int = 1) -> None:
        """
        kernel:       computes the ternary products (None: the NumPy reference); its ``name``
                      is the model's ``backend``
        after_read:   called with each memory-mapped array once the model holds what it needs
                      of it (the loader passes ``pages.release_pages``, so that a 2B4T model
                      does not keep its checkpoint resident beside the kernels' copies)
        head_threads: Python threads for the output head (head.py); the logits do not depend
                      on it
        """
        kernel = kernel if kernel is not None else ReferenceKernel()
        self.config = config
        self.kernel = kernel
        self.backend = kernel.name
        self.embed_tokens = weights.embed_tokens  # (V, D) bf16 bits (or float), memory-mapped
        self.blocks = []
        # subtle: a kernel that multiplies the packed bytes where they lie reads them on every
        # call; dropping their pages would fault the whole checkpoint back in on every token
        packed_read_once = not getattr(kernel, "reads_packed", False)
        for layer in weights.layers:
            self.blocks.append(Block(config, layer, kernel))
            if after_read is not None and packed_read_once:  # read once, just now
                for weight in layer.projections():
                    after_read(weight.packed)
        self.norm = weights.norm  # (D,)
        head_bits = weights.lm_head if weights.lm_head is not None else weights.embed_tokens
        self.head = OutputHead(head_bits, after_read=after_read, threads=head_threads)

    def new_cache(self) -> KVCache:
        c = self.config
        return KVCache(c.num_hidden_layers, c.num_key_value_heads, c.head_dim)

    def check_ids(self, ids: Sequence[int]) -> np.ndarray:
        """Token ids as a (T,) int64 array; ids outside the vocabulary raise ArgumentError."""
        vocab = self.config.vocab_size
        try:
            given = np.asarray(ids)
        except (TypeError, ValueError):  # a ragged nesting of lists
            raise ArgumentError(f"token ids are not a flat sequence of integers in [0, {vocab})"
                                ) from None
        if given.size and given.dtype.kind not in "iu":  # floats, strings, bools, huge ints
            raise ArgumentError(f"token ids have type {given.dtype}, expected integers in "
                                f"[0, {vocab})")
        if given.dtype.kind == "u" and given.size and given.max() >= vocab:
            raise ArgumentError(f"token id {int(given.max())} is outside the vocabulary "
                                f"[0, {vocab})")  # before int64 could wrap it to a negative
        array = given.astype(np.int64).reshape(-1)
        bad = array[(array < 0) | (array >= vocab)]
        if bad.size:
            raise ArgumentError(f"token id {int(bad[0])} is outside the vocabulary "
                                f"[0, {self.config.vocab_size})")
        return array

    def forward(self, ids: Sequence[int], cache: KVCache,
                timer: StepTimer = nullcontext) -> np.ndarray:
        """Run T new tokens after the ``cache.length`` positions already in ``cache``.

        ids:     (T,) token ids
        timer:   called as ``with timer(step):`` around each step, a name of STEPS; steps do not
                 nest. The default, nullcontext, times nothing; any timer leaves the logits as
                 they are, bit for bit
        returns: (T, V) float32 logits; the cache now holds T more positions
        """
        tokens = self.check_ids(ids)
        start = cache.length
        if start + tokens.size > self.config.max_position_embeddings:
            raise ContextLengthError(
                f"{start + tokens.size} positions exceed the context length of "
                f"{self.config.max_position_embeddings} (max_position_embeddings)")
        with timer("embedding"):
            h = table_rows(self.embed_tokens, tokens)  # (T, D) token embeddings
        positions = np.arange(start, start + tokens.size)  # (T,)
        with timer("rope tables"):
            cos, sin = rope_tables(positions, self.config.head_dim, self.config.rope_theta,
                                   self.config.rope_scaling)  # (T, Hd) each
        # overflow is caught below and reported with its layer; NumPy's own warnings would only
        # print lines of noise before that one-line error
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for index, block in enumerate(self.blocks):
                h = block(h, cos, sin, cache, index, timer)  # (T, D)
                if not np.isfinite(h).all():
                    raise NumericalError(f"layer {index}: NaN or infinity in the hidden states "
                                         "(corrupt weights or scales?)")
            with timer("rms norm"):
                h = rms_norm(h, self.norm, self.config.rms_norm_eps)  # (T, D) final norm
            with timer("head"):
                logits = self.head(h)  # (T, V)
        # bf16 tables are not scanned at load (656 MB for 2B4T); a NaN or infinity in a row of
        # the head shows up here, in the logits of that token
        if not np.isfinite(logits).all():
            raise NumericalError("output head: NaN or infinity in the logits (a corrupt row of "
                                 "the embedding or lm_head?)")
        cache.advance(tokens.size)
        return logits

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """Logits at every position of ``ids``, computed from scratch (no cache kept).

        returns: (len(ids), V) float32
        """
        if len(ids) == 0:
            raise ArgumentError("ids is empty; expected at least one token id")
        return self.forward(ids, self.new_cache())

    def stream(self, ids: Sequence[int], max_new_tokens: int, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
               stop_ids: Sequence[int] | None = None, cache: KVCache | None = None,
               suppressed: np.ndarray | None = None) -> Iterator[int]:
        """Like :meth:`generate`, but yields each new token id as soon as it is chosen."""
        return stream_tokens(self, ids, max_new_tokens, temperature, top_k, top_p, seed,
                             stop_ids, cache, suppressed)

    def generate(self, ids: Sequence[int], max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 stop_ids: Sequence[int] | None = None, cache: KVCache | None = None,
                 suppressed: np.ndarray | None = None) -> list[int]:
        """New token ids after ``ids``, using the KV cache.

        temperature=0.0 is greedy; stop_ids=None stops at the config's eos ids (the stop token is
        included in the result); seed makes sampling repeatable. suppressed: (V,) bool, ids
        never to sample; ``tokenizer.undecodable_ids(model.config.vocab_size)`` keeps out the
        padding rows of a vocabulary padded past its tokenizer, as ``minibitnet chat`` does.
        """
        return list(self.stream(ids, max_new_tokens, temperature, top_k, top_p, seed,
                                stop_ids, cache, suppressed))
