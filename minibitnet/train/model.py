"""The BitNet b1.58 transformer in training form: latent weights, loss, and every gradient.

Parameters live in one dict keyed by the Hugging Face tensor names (``model.layers.0.self_attn.
q_proj.weight`` ...), so export is a table. The forward pass is the function of
:class:`minibitnet.core.model.Model` (pre-norm blocks, attention and FFN sub-norms, rotate-half RoPE,
grouped-query attention, gated squared ReLU, final norm, head tied to the embedding) computed on
a batch of whole sequences; with ``quantize=True`` each projection runs through the ternary
weights and int8 activations of the exported model (:func:`layers.bitlinear_forward`).

Left out on purpose: dropout, an untied head, KV caching (training sees whole sequences), and
mixed precision (everything is float32; tests run the same code in float64).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import ModelConfig
from ..core.rope import rope_tables
from .attention import attention_backward, attention_forward
from .layers import (bitlinear_backward, bitlinear_forward, cross_entropy_backward,
                     cross_entropy_forward, gated_relu2_backward, gated_relu2_forward,
                     rms_norm_backward, rms_norm_forward, rope_backward, rope_forward)

Params = dict[str, np.ndarray]

EMBED = "model.embed_tokens.weight"
FINAL_NORM = "model.norm.weight"
PROJECTIONS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
NORMS = ("input_layernorm", "post_attention_layernorm", "self_attn.attn_sub_norm",
         "mlp.ffn_sub_norm")
INIT_STD = 0.02  # latent weight and embedding std at initialisation, as GPT-2 and LLaMA


def param_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every trainable tensor name -> shape, in checkpoint order (embedding first)."""
    c = config
    d, f, q, kv = c.hidden_size, c.intermediate_size, c.q_size, c.kv_size
    shapes: dict[str, tuple[int, ...]] = {EMBED: (c.vocab_size, d)}
    projection_shapes = {"self_attn.q_proj": (q, d), "self_attn.k_proj": (kv, d),
                         "self_attn.v_proj": (kv, d), "self_attn.o_proj": (d, q),
                         "mlp.gate_proj": (f, d), "mlp.up_proj": (f, d), "mlp.down_proj": (d, f)}
    norm_sizes = {"input_layernorm": d, "post_attention_layernorm": d,
                  "self_attn.attn_sub_norm": q, "mlp.ffn_sub_norm": f}
    for n in range(c.num_hidden_layers):
        for name, size in norm_sizes.items():
            shapes[f"model.layers.{n}.{name}.weight"] = (size,)
        for name, shape in projection_shapes.items():
            shapes[f"model.layers.{n}.{name}.weight"] = shape
    shapes[FINAL_NORM] = (d,)
    return shapes


def init_params(config: ModelConfig, seed: int, dtype: type = np.float32) -> Params:
    """Random latent weights: N(0, 0.02^2) matrices, o_proj and down_proj scaled by
    1/sqrt(2 * layers) as in GPT-2 (they add into the residual stream), norms all ones."""
    rng = np.random.default_rng(seed)
    residual_std = INIT_STD / np.sqrt(2 * config.num_hidden_layers)
    params: Params = {}
    for name, shape in param_shapes(config).items():
        if len(shape) == 1:
            params[name] = np.ones(shape, dtype=dtype)
        else:
            std = residual_std if name.endswith(("o_proj.weight", "down_proj.weight")) else INIT_STD
            params[name] = rng.normal(0.0, std, shape).astype(dtype)
    return params


def is_matrix(name: str) -> bool:
    """Weight decay applies to the matrices (projections and embedding), not to norm weights."""
    return not name.endswith(("norm.weight", "layernorm.weight"))


# ---- forward ----


def _block_forward(p: Params, n: int, h: np.ndarray, config: ModelConfig, cos: np.ndarray,
                   sin: np.ndarray, batch: int, quantize: bool, keep: bool
                   ) -> tuple[np.ndarray, dict[str, Any]]:
    """One block on h: (B*T, D) -> (B*T, D); the cache holds what the backward needs."""
    c = config
    eps = c.rms_norm_eps
    pre = f"model.layers.{n}."
    tokens = h.shape[0] // batch
    heads, kv_heads, hd = c.num_attention_heads, c.num_key_value_heads, c.head_dim
    cache: dict[str, Any] = {}
    # attention half: norm, projections, RoPE, attention, sub-norm, o_proj, residual
    x, cache["ln1"] = rms_norm_forward(h, p[pre + "input_layernorm.weight"], eps)
    q, cache["q"] = bitlinear_forward(x, p[pre + "self_attn.q_proj.weight"], quantize)
    k, cache["k"] = bitlinear_forward(x, p[pre + "self_attn.k_proj.weight"], quantize)
    v, cache["v"] = bitlinear_forward(x, p[pre + "self_attn.v_proj.weight"], quantize)
    q = q.reshape(batch, tokens, heads, hd).transpose(0, 2, 1, 3)  # (B, H, T, Hd)
    k = k.reshape(batch, tokens, kv_heads, hd).transpose(0, 2, 1, 3)  # (B, K, T, Hd)
    v = v.reshape(batch, tokens, kv_heads, hd).transpose(0, 2, 1, 3)  # (B, K, T, Hd)
    q, k = rope_forward(q, cos, sin), rope_forward(k, cos, sin)
    attended, cache["attn"] = attention_forward(q, k, v)  # (B, H, T, Hd)
    attended = attended.transpose(0, 2, 1, 3).reshape(batch * tokens, heads * hd)  # (B*T, H*Hd)
    attended, cache["attn_sub"] = rms_norm_forward(
        attended, p[pre + "self_attn.attn_sub_norm.weight"], eps)
    out, cache["o"] = bitlinear_forward(attended, p[pre + "self_attn.o_proj.weight"], quantize)
    h = h + out
    # feed-forward half: norm, gate and up, squared ReLU, sub-norm, down_proj, residual
    x, cache["ln2"] = rms_norm_forward(h, p[pre + "post_attention_layernorm.weight"], eps)
    gate, cache["gate"] = bitlinear_forward(x, p[pre + "mlp.gate_proj.weight"], quantize)
    up, cache["up"] = bitlinear_forward(x, p[pre + "mlp.up_proj.weight"], quantize)
    hidden, cache["relu2"] = gated_relu2_forward(gate, up)  # (B*T, F)
    hidden, cache["ffn_sub"] = rms_norm_forward(hidden, p[pre + "mlp.ffn_sub_norm.weight"], eps)
    out, cache["down"] = bitlinear_forward(hidden, p[pre + "mlp.down_proj.weight"], quantize)
    return h + out, (cache if keep else {})


def _forward(p: Params, config: ModelConfig, ids: np.ndarray, quantize: bool, keep: bool
             ) -> tuple[np.ndarray, dict[str, Any]]:
    """ids: (B, T) -> logits (B*T, V), cache."""
    batch, tokens = ids.shape
    dtype = p[EMBED].dtype
    cos, sin = rope_tables(np.arange(tokens), config.head_dim, config.rope_theta)  # (T, Hd)
    cos, sin = cos.astype(dtype), sin.astype(dtype)
    flat_ids = ids.reshape(-1)  # (B*T,)
    h = p[EMBED][flat_ids]  # (B*T, D)
    blocks = []
    for n in range(config.num_hidden_layers):
        h, block_cache = _block_forward(p, n, h, config, cos, sin, batch, quantize, keep)
        blocks.append(block_cache)
    final, final_cache = rms_norm_forward(h, p[FINAL_NORM], config.rms_norm_eps)  # (B*T, D)
    logits = final @ p[EMBED].T  # (B*T, V), head tied to the embedding
    cache = {"ids": flat_ids, "blocks": blocks, "final_norm": final_cache, "final": final,
             "cos": cos, "sin": sin, "batch": batch}
    return logits, cache


def forward_logits(p: Params, config: ModelConfig, ids: np.ndarray, quantize: bool) -> np.ndarray:
    """Evaluation forward: ids (B, T) int -> logits (B, T, V), keeping no caches."""
    logits, _ = _forward(p, config, ids, quantize, keep=False)
    return logits.reshape(ids.shape[0], ids.shape[1], -1)


# ---- backward ----


def _block_backward(p: Params, n: int, dh: np.ndarray, cache: dict[str, Any],
                    config: ModelConfig, cos: np.ndarray, sin: np.ndarray, batch: int,
                    grads: Params) -> np.ndarray:
    """dL/d(block output) (B*T, D) -> dL/d(block input) (B*T, D); parameter grads into ``grads``."""
    c = config
    pre = f"model.layers.{n}."
    tokens = dh.shape[0] // batch
    heads, kv_heads, hd = c.num_attention_heads, c.num_key_value_heads, c.head_dim
    # feed-forward half, in reverse
    dhidden, grads[pre + "mlp.down_proj.weight"] = bitlinear_backward(dh, cache["down"])
    dhidden, grads[pre + "mlp.ffn_sub_norm.weight"] = rms_norm_backward(dhidden, cache["ffn_sub"])
    dgate, dup = gated_relu2_backward(dhidden, cache["relu2"])
    dx_gate, grads[pre + "mlp.gate_proj.weight"] = bitlinear_backward(dgate, cache["gate"])
    dx_up, grads[pre + "mlp.up_proj.weight"] = bitlinear_backward(dup, cache["up"])
    dx, grads[pre + "post_attention_layernorm.weight"] = rms_norm_backward(dx_gate + dx_up,
                                                                           cache["ln2"])
    dh = dh + dx
    # attention half, in reverse
    dattended, grads[pre + "self_attn.o_proj.weight"] = bitlinear_backward(dh, cache["o"])
    dattended, grads[pre + "self_attn.attn_sub_norm.weight"] = rms_norm_backward(
        dattended, cache["attn_sub"])
    dattended = dattended.reshape(batch, tokens, heads, hd).transpose(0, 2, 1, 3)  # (B, H, T, Hd)
    dq, dk, dv = attention_backward(dattended, cache["attn"])
    dq, dk = rope_backward(dq, cos, sin), rope_backward(dk, cos, sin)
    dq = dq.transpose(0, 2, 1, 3).reshape(batch * tokens, heads * hd)  # (B*T, H*Hd)
    dk = dk.transpose(0, 2, 1, 3).reshape(batch * tokens, kv_heads * hd)  # (B*T, K*Hd)
    dv = dv.transpose(0, 2, 1, 3).reshape(batch * tokens, kv_heads * hd)  # (B*T, K*Hd)
    dx_q, grads[pre + "self_attn.q_proj.weight"] = bitlinear_backward(dq, cache["q"])
    dx_k, grads[pre + "self_attn.k_proj.weight"] = bitlinear_backward(dk, cache["k"])
    dx_v, grads[pre + "self_attn.v_proj.weight"] = bitlinear_backward(dv, cache["v"])
    dx, grads[pre + "input_layernorm.weight"] = rms_norm_backward(dx_q + dx_k + dx_v, cache["ln1"])
    return dh + dx


def loss_and_grads(p: Params, config: ModelConfig, ids: np.ndarray, targets: np.ndarray,
                   quantize: bool) -> tuple[float, Params]:
    """Mean next-token cross-entropy (nats) of a batch and its gradient for every parameter.

    ids, targets: (B, T) int, targets[b, t] the token after ids[b, t]
    returns:      loss (float), grads with the keys and shapes of ``p``
    """
    logits, cache = _forward(p, config, ids, quantize, keep=True)
    flat_targets = targets.reshape(-1)
    loss, probs = cross_entropy_forward(logits, flat_targets)
    del logits
    dlogits = cross_entropy_backward(probs, flat_targets)  # (B*T, V)
    del probs
    grads: Params = {}
    # tied head: the embedding gets a gradient from the output side and from the input side
    grads[EMBED] = dlogits.T @ cache["final"]  # (V, D)
    dh = dlogits @ p[EMBED]  # (B*T, D)
    dh, grads[FINAL_NORM] = rms_norm_backward(dh, cache["final_norm"])
    for n in reversed(range(config.num_hidden_layers)):
        dh = _block_backward(p, n, dh, cache["blocks"][n], config, cache["cos"], cache["sin"],
                             cache["batch"], grads)
        cache["blocks"][n] = None  # free this block's activations early
    np.add.at(grads[EMBED], cache["ids"], dh)  # input side: scatter-add into the used rows
    return loss, grads
