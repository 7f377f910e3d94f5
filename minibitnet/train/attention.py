"""Causal grouped-query attention over a batch, forward and backward, for training.

The same function as :func:`minibitnet.core.attention.grouped_query_attention` (no KV cache: a
training sequence is seen whole). H query heads share K key/value heads; query head h reads
key/value head h // (H/K), so the queries are viewed as (K, H/K) groups instead of repeating
keys and values::

    S = q k^T / sqrt(Hd) + causal mask      P = softmax(S)      out = P v

Backward, with G = dL/dout:  dP = G v^T;  dS = P * (dP - rowsum(dP * P));  dq = dS k / sqrt(Hd);
dk = sum over the group of dS^T q / sqrt(Hd);  dv = sum over the group of P^T G.
"""

from __future__ import annotations

import numpy as np

AttentionCache = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def attention_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray
                      ) -> tuple[np.ndarray, AttentionCache]:
    """q: (B, H, T, Hd); k, v: (B, K, T, Hd) rotated -> out (B, H, T, Hd), cache."""
    batch, num_heads, num_tokens, head_dim = q.shape
    num_kv_heads = k.shape[1]
    group = num_heads // num_kv_heads
    q_grouped = q.reshape(batch, num_kv_heads, group, num_tokens, head_dim)  # (B, K, H/K, T, Hd)
    scale = q.dtype.type(head_dim ** -0.5)
    scores = (q_grouped @ k[:, :, None].swapaxes(-1, -2)) * scale  # (B, K, H/K, T, T)
    # causal mask: -inf where the key comes after the query (added, which is faster than indexing)
    mask = np.triu(np.full((num_tokens, num_tokens), -np.inf, dtype=q.dtype), k=1)  # (T, T)
    scores += mask
    scores -= scores.max(axis=-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=-1, keepdims=True)  # (B, K, H/K, T, T), zero above the diagonal
    out = probs @ v[:, :, None]  # (B, K, H/K, T, Hd)
    out = out.reshape(batch, num_heads, num_tokens, head_dim)  # (B, H, T, Hd)
    return out, (q_grouped, k, v, probs)


def attention_backward(dout: np.ndarray, cache: AttentionCache
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout: (B, H, T, Hd) -> dq (B, H, T, Hd), dk (B, K, T, Hd), dv (B, K, T, Hd)."""
    q_grouped, k, v, probs = cache
    batch, num_kv_heads, group, num_tokens, head_dim = q_grouped.shape
    scale = q_grouped.dtype.type(head_dim ** -0.5)
    dout = dout.reshape(q_grouped.shape)  # (B, K, H/K, T, Hd)
    dv = (probs.swapaxes(-1, -2) @ dout).sum(axis=2)  # (B, K, T, Hd)
    dprobs = dout @ v[:, :, None].swapaxes(-1, -2)  # (B, K, H/K, T, T)
    # softmax backward; masked entries have probs == 0, so their gradient is 0 too
    dscores = probs * (dprobs - (dprobs * probs).sum(axis=-1, keepdims=True))
    dscores *= scale
    dq = dscores @ k[:, :, None]  # (B, K, H/K, T, Hd)
    dk = (dscores.swapaxes(-1, -2) @ q_grouped).sum(axis=2)  # (B, K, T, Hd)
    return dq.reshape(batch, num_kv_heads * group, num_tokens, head_dim), dk, dv
