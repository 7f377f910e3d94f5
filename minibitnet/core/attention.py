"""Grouped-query self-attention with the BitNet attention sub-norm.

Agrees with transformers' ``BitNetAttention`` with eager attention::

    q, k, v = q_proj(x), k_proj(x), v_proj(x)       # ternary BitLinear projections
    q, k = rope(q), rope(k)                          # rotate-half RoPE
    k, v = cache.append(k, v)                        # all positions so far
    p = softmax(q k^T / sqrt(Hd) + causal mask)      # float32
    out = o_proj(attn_sub_norm(p v))                 # the sub-norm is BitNet's addition to LLaMA

LLaMA-architecture 1.58-bit checkpoints (families.py: llama-bitnet) have no sub-norm there:
``attn_sub_norm`` is then None and ``p v`` goes straight to o_proj, as in ``LlamaAttention``.

Grouped-query: H query heads share K key/value heads; query head h reads key/value head
h // (H/K), the order of transformers' ``repeat_kv``. Instead of repeating k and v, the query heads
are reshaped into (K, H/K) groups, which computes the same numbers without the copies.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from .bitlinear import BitLinear, StepTimer, TernaryKernel
from ..config import ModelConfig
from .kv_cache import KVCache
from .norm import rms_norm
from .rope import apply_rope
from .weights import LayerWeights


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, float32, stable against large scores."""
    shifted = scores - scores.max(axis=-1, keepdims=True)
    exps = np.exp(shifted)
    return exps / exps.sum(axis=-1, keepdims=True)


def grouped_query_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, start: int) -> np.ndarray:
    """Causal attention of T new queries over S = start + T cached keys.

    q:       (H, T, Hd) float32, rotated queries of positions start .. start+T-1
    k, v:    (K, S, Hd) float32, rotated keys and values of positions 0 .. S-1
    returns: (T, H*Hd) float32, heads concatenated in head order
    """
    num_heads, num_tokens, head_dim = q.shape
    num_kv_heads, num_positions, _ = k.shape
    group = num_heads // num_kv_heads
    q_grouped = q.reshape(num_kv_heads, group, num_tokens, head_dim)  # (K, H/K, T, Hd)
    scale = np.float32(head_dim ** -0.5)
    scores = (q_grouped @ k[:, None].swapaxes(-1, -2)) * scale  # (K, H/K, T, S)
    # causal mask: query t (position start + t) sees keys at positions <= start + t
    query_pos = start + np.arange(num_tokens)[:, None]  # (T, 1)
    key_pos = np.arange(num_positions)[None, :]  # (1, S)
    scores = np.where(key_pos <= query_pos, scores, np.float32(-np.inf))  # (K, H/K, T, S)
    probs = softmax(scores)  # (K, H/K, T, S)
    out = probs @ v[:, None]  # (K, H/K, T, Hd)
    out = out.reshape(num_heads, num_tokens, head_dim)  # (H, T, Hd), head h = kv * H/K + g
    return out.transpose(1, 0, 2).reshape(num_tokens, num_heads * head_dim)  # (T, H*Hd)


class Attention:
    """The attention half of a block: projections, RoPE, cache, attention, sub-norm, o_proj."""

    def __init__(self, config: ModelConfig, layer: LayerWeights, kernel: TernaryKernel) -> None:
        self.config = config
        eps = config.quant_rms_norm_eps  # of the input norms inside BitLinear, if any
        self.q_proj = BitLinear(layer.q_proj, kernel, eps)  # D -> H*Hd
        self.k_proj = BitLinear(layer.k_proj, kernel, eps)  # D -> K*Hd
        self.v_proj = BitLinear(layer.v_proj, kernel, eps)  # D -> K*Hd
        self.attn_sub_norm = layer.attn_sub_norm  # (H*Hd,) or None
        self.o_proj = BitLinear(layer.o_proj, kernel, eps)  # H*Hd -> D

    def __call__(self, x: np.ndarray, cos: np.ndarray, sin: np.ndarray,
                 cache: KVCache, layer_index: int, timer: StepTimer = nullcontext) -> np.ndarray:
        """x: (T, D) float32 normalised input -> (T, D) float32, the attention output.

        cos, sin: (T, Hd) RoPE tables of the T new positions; the cache holds the earlier ones.
        timer:    wraps the steps "rope", "kv cache", "attention" and "rms norm" (the sub-norm),
                  and is handed to the four projections
        """
        c = self.config
        num_tokens, head_dim = x.shape[0], c.head_dim
        q = self.q_proj(x, timer).reshape(num_tokens, c.num_attention_heads, head_dim)  # (T, H, Hd)
        k = self.k_proj(x, timer).reshape(num_tokens, c.num_key_value_heads, head_dim)  # (T, K, Hd)
        v = self.v_proj(x, timer).reshape(num_tokens, c.num_key_value_heads, head_dim)  # (T, K, Hd)
        with timer("rope"):
            q = apply_rope(q.transpose(1, 0, 2), cos, sin)  # (H, T, Hd)
            k = apply_rope(k.transpose(1, 0, 2), cos, sin)  # (K, T, Hd)
        start = cache.length
        with timer("kv cache"):
            keys, values = cache.append(layer_index, k, v.transpose(1, 0, 2))  # (K, S, Hd) each
        with timer("attention"):
            out = grouped_query_attention(q, keys, values, start)  # (T, H*Hd)
        # attention sub-norm (when the family has one), then output projection
        if self.attn_sub_norm is not None:
            with timer("rms norm"):
                out = rms_norm(out, self.attn_sub_norm, c.rms_norm_eps)  # (T, H*Hd)
        return self.o_proj(out, timer)  # (T, D)
