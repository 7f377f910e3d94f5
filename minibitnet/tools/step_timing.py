"""Where the time of one forward step goes: ternary matmuls, quantisation, attention, norms, head.

:func:`timed_forward` runs exactly the computation of :meth:`Model.forward` (model.py, with
attention.py, mlp.py and BitLinear of bitlinear.py spelled out) on the model's own objects, with
a clock around each part. Nothing is patched: the kernels (compiled ones included) are called as
the model calls them, so the parts are timed on real inputs. Its logits equal ``Model.forward``'s
bit for bit; tests/tools/test_step_timing.py pins that, so the two cannot drift apart silently.

The parts::

    ternary matmuls  kernel.matmul: int8 activations x packed ternary weights -> int32
    quantisation     absmax int8 activations before, and the float rescale after, each matmul
    attention        RoPE, the KV cache, scores, softmax and the weighted sum of values
    norms            every RMSNorm (input, post-attention, the two sub-norms, the final norm)
    head             the output head's float matmul over the vocabulary
    other            embedding lookup, squared ReLU and gating, residual adds, checks

Each clock read costs ~0.1 us; a 2B4T step reads ~1000 of them, well under 0.1 % of the step.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ..core.attention import Attention, grouped_query_attention
from ..core.bitlinear import BitLinear
from ..errors import NumericalError
from ..core.kv_cache import KVCache
from ..core.head import table_rows
from ..core.mlp import FeedForward
from ..core.model import Model
from ..core.norm import rms_norm
from ..core.quant import quantize_activations
from ..core.rope import apply_rope, rope_tables

PARTS = ("ternary matmuls", "quantisation", "attention", "norms", "head", "other")


class _Clock:
    """Adds the time since the previous ``charge`` to the part named in the next one."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PARTS, 0.0)
        self.last = time.perf_counter()

    def charge(self, part: str) -> None:
        now = time.perf_counter()
        self.seconds[part] += now - self.last
        self.last = now


def _bitlinear(layer: BitLinear, x: np.ndarray, clock: _Clock) -> np.ndarray:
    """BitLinear.__call__, timed: (T, in) float32 -> (T, out) float32."""
    if layer.input_norm is not None:
        x = rms_norm(x, layer.input_norm, layer.norm_eps)  # (T, in)
        clock.charge("norms")
    x_q, act_scale = quantize_activations(x)  # (T, in) int8, (T, 1)
    clock.charge("quantisation")
    acc = layer.kernel.matmul(layer.prepared, x_q)  # (T, out) int32
    clock.charge("ternary matmuls")
    y = acc.astype(np.float32) / (act_scale * layer.weight_scale)  # (T, out)
    clock.charge("quantisation")
    return y


def _attention(attn: Attention, x: np.ndarray, cos: np.ndarray, sin: np.ndarray,
               cache: KVCache, layer_index: int, clock: _Clock) -> np.ndarray:
    """Attention.__call__, timed: (T, D) -> (T, D)."""
    c = attn.config
    num_tokens = x.shape[0]
    q = _bitlinear(attn.q_proj, x, clock).reshape(num_tokens, c.num_attention_heads, c.head_dim)
    k = _bitlinear(attn.k_proj, x, clock).reshape(num_tokens, c.num_key_value_heads, c.head_dim)
    v = _bitlinear(attn.v_proj, x, clock).reshape(num_tokens, c.num_key_value_heads, c.head_dim)
    q = apply_rope(q.transpose(1, 0, 2), cos, sin)  # (H, T, Hd)
    k = apply_rope(k.transpose(1, 0, 2), cos, sin)  # (K, T, Hd)
    start = cache.length
    keys, values = cache.append(layer_index, k, v.transpose(1, 0, 2))  # (K, S, Hd) each
    out = grouped_query_attention(q, keys, values, start)  # (T, H*Hd)
    clock.charge("attention")
    if attn.attn_sub_norm is not None:
        out = rms_norm(out, attn.attn_sub_norm, c.rms_norm_eps)  # (T, H*Hd)
    clock.charge("norms")
    return _bitlinear(attn.o_proj, out, clock)  # (T, D)


def _feed_forward(ffn: FeedForward, x: np.ndarray, clock: _Clock) -> np.ndarray:
    """FeedForward.__call__, timed: (T, D) -> (T, D)."""
    gate = _bitlinear(ffn.gate_proj, x, clock)  # (T, F)
    up = _bitlinear(ffn.up_proj, x, clock)  # (T, F)
    hidden = ffn.activation(gate) * up  # (T, F)
    clock.charge("other")
    if ffn.ffn_sub_norm is not None:
        hidden = rms_norm(hidden, ffn.ffn_sub_norm, ffn.eps)  # (T, F)
    clock.charge("norms")
    return _bitlinear(ffn.down_proj, hidden, clock)  # (T, D)


def timed_forward(model: Model, ids: Sequence[int], cache: KVCache
                  ) -> tuple[np.ndarray, dict[str, float]]:
    """Model.forward with the time of each part.

    ids:     (T,) token ids after the ``cache.length`` cached positions
    returns: (T, V) float32 logits, equal to model.forward's, and seconds by part (PARTS)
    """
    clock = _Clock()
    tokens = model.check_ids(ids)
    start = cache.length
    h = table_rows(model.embed_tokens, tokens)  # (T, D)
    positions = np.arange(start, start + tokens.size)  # (T,)
    cos, sin = rope_tables(positions, model.config.head_dim, model.config.rope_theta,
                           model.config.rope_scaling)  # (T, Hd) each
    clock.charge("other")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for index, block in enumerate(model.blocks):
            x = rms_norm(h, block.input_layernorm, block.eps)  # (T, D)
            clock.charge("norms")
            h = h + _attention(block.attention, x, cos, sin, cache, index, clock)
            clock.charge("other")
            x = rms_norm(h, block.post_attention_layernorm, block.eps)  # (T, D)
            clock.charge("norms")
            h = h + _feed_forward(block.feed_forward, x, clock)  # (T, D)
            if not np.isfinite(h).all():
                raise NumericalError(f"layer {index}: NaN or infinity in the hidden states")
            clock.charge("other")
    cache.advance(tokens.size)
    h = rms_norm(h, model.norm, model.config.rms_norm_eps)  # (T, D)
    clock.charge("norms")
    logits = model.head(h)  # (T, V)
    clock.charge("head")
    return logits, clock.seconds
