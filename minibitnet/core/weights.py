"""The tensors of one model, as plain values: what the loader returns and the model takes.

Names follow the Hugging Face state dict (``model.layers.N.self_attn.q_proj.weight`` becomes
``weights.layers[N].q_proj``), so :mod:`minibitnet.formats.checkpoint` is a lookup table. Large arrays
are read-only views into the memory-mapped checkpoint; nothing here is copied at load time
except the small float32 norm vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TernaryWeight:
    """One BitLinear weight as stored: packed ternary codes and the tensor's scale.

    packed:       (out/4, in) uint8 in the Hugging Face 2-bit layout (see packing.py)
    weight_scale: float32 scalar with w ≈ w_ternary / weight_scale (the layer divides by it)
    input_norm:   (in,) float32 weight of an RMSNorm applied to the layer's input before it is
                  quantised (transformers' ``use_rms_norm``, Falcon-E), or None (2B4T)
    """

    packed: np.ndarray
    weight_scale: np.float32
    input_norm: np.ndarray | None = None

    @property
    def out_features(self) -> int:
        return 4 * int(self.packed.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.packed.shape[1])


@dataclass(frozen=True)
class LayerWeights:
    """The tensors of one transformer block (shapes use D, F, H*Hd, K*Hd)."""

    input_layernorm: np.ndarray  # (D,) float32, RMSNorm before attention
    q_proj: TernaryWeight  # (H*Hd, D)
    k_proj: TernaryWeight  # (K*Hd, D)
    v_proj: TernaryWeight  # (K*Hd, D)
    attn_sub_norm: np.ndarray | None  # (H*Hd,) float32, RMSNorm before o_proj; None: no sub-norms
    o_proj: TernaryWeight  # (D, H*Hd)
    post_attention_layernorm: np.ndarray  # (D,) float32, RMSNorm before the feed-forward
    gate_proj: TernaryWeight  # (F, D)
    up_proj: TernaryWeight  # (F, D)
    ffn_sub_norm: np.ndarray | None  # (F,) float32, RMSNorm before down_proj; None: no sub-norms
    down_proj: TernaryWeight  # (D, F)

    def projections(self) -> tuple[TernaryWeight, ...]:
        """The seven BitLinear weights in the order the block uses them: q, k, v, o, gate, up,
        down."""
        return (self.q_proj, self.k_proj, self.v_proj, self.o_proj, self.gate_proj,
                self.up_proj, self.down_proj)


@dataclass(frozen=True)
class Weights:
    """All tensors of a model. bf16 tensors stay as raw uint16 bits until used; an F16 or F32
    embedding or head (LLaMA families) stays in its own dtype (see head.table_rows)."""

    embed_tokens: np.ndarray  # (V, D) uint16 bf16 bits (or float16/float32), memory-mapped
    layers: list[LayerWeights]
    norm: np.ndarray  # (D,) float32, the final RMSNorm
    lm_head: np.ndarray | None  # (V, D) like embed_tokens, or None when tied to embed_tokens

