"""bf16 master weights -> ternary weights: the layout of microsoft/bitnet-b1.58-2B-4T-bf16.

A master checkpoint holds every tensor of the packed layout (see :mod:`minibitnet.formats.checkpoint`)
except that each BitLinear weight is the latent float tensor itself and no ``weight_scale``
tensor exists::

    model.layers.N.self_attn.{q,k,v,o}_proj.weight     BF16 [out, in]   latent weights
    model.layers.N.mlp.{gate,up,down}_proj.weight      BF16 [out, in]

On load each one is ternarised as BitNet b1.58 does in training (paper section 2, transformers'
``integrations/bitnet.py: WeightQuant``): s = 1 / max(mean|W|, 1e-5) per tensor,
w_ternary = clip(round_half_even(W s), -1, 1), by :func:`minibitnet.core.quant.ternarize_weights`.
The result is the packed 2-bit tensor and the scale the packed checkpoint would hold.

Under ``quantization_mode`` "online" (the config.json of the -bf16 checkpoint, transformers'
``AutoBitLinear(online_quant=True)``, and 1bitLLM's BitLinear) the same codes are kept with the
float32 scale itself (:func:`ternarize_online`): those layers recompute it from the latents in
every forward and never round it to bf16. What they then compute in float,
``linear(x_q / s_x, w_ternary / s)``, is here the exact integer sum divided once by s_x s, which
differs from theirs only by float32 rounding.

Left out on purpose: per-channel or per-group scales (b1.58 has one scale per tensor) and
keeping the latents after load (the model needs only the codes and the scale).

Going back, from codes and a scale to bf16 latents that give exactly them again on load (what
writing a packed checkpoint as masters needs), is :func:`minibitnet.formats.latents.master_from_ternary`.
"""

from __future__ import annotations

import numpy as np

from ..core.packing import pack_ternary
from ..core.quant import ternarize_weights
from ..core.bfloat16 import bf16_to_float32, float32_to_bf16
from ..core.weights import TernaryWeight


def round_scale_to_bf16(scale: np.float32) -> np.float32:
    """``scale`` rounded to the nearest bfloat16 (ties to even), returned as float32."""
    return np.float32(bf16_to_float32(float32_to_bf16(np.array([scale], np.float32)))[0])


def ternarize_master(w: np.ndarray) -> TernaryWeight:
    """One latent BitLinear weight -> the packed ternary weight the model runs.

    w:       (out, in) float32 latent weights (out a multiple of 4)
    returns: TernaryWeight with packed (out/4, in) uint8 in the Hugging Face layout and
             weight_scale float32, w ≈ w_ternary / weight_scale

    subtle: the codes are taken with the float32 scale s, but the weight_scale returned is s
    rounded to bf16. The packed checkpoint stores weight_scale as BF16 [1], so this is the
    number a model loaded from the packed file made from these masters divides by; keeping the
    float32 s instead would move every logit in its last bits and the two formats would no
    longer agree bit for bit. The rounding changes the scale by at most 2^-9 relative.
    """
    w_ternary, scale = ternarize_weights(w)  # (out, in) int8, float32
    return TernaryWeight(packed=pack_ternary(w_ternary), weight_scale=round_scale_to_bf16(scale))


def ternarize_online(w: np.ndarray) -> TernaryWeight:
    """One latent weight -> packed codes and the unrounded float32 absmean scale.

    w:       (out, in) float32 latent weights (out a multiple of 4)
    returns: TernaryWeight with packed (out/4, in) uint8 and weight_scale float32
             s = 1 / max(mean|w|, 1e-5), w ≈ w_ternary / s
    """
    w_ternary, scale = ternarize_weights(w)  # (out, in) int8, float32
    return TernaryWeight(packed=pack_ternary(w_ternary), weight_scale=scale)
