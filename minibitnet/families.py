"""The families of 1.58-bit checkpoints this package reads, and how a config.json names its family.

All three are LLaMA-shaped decoders whose seven projections are BitLinear layers (absmean ternary
weights, one scale per tensor; absmax int8 activations, one scale per token). They differ in a
few places, each of which becomes a :class:`~minibitnet.config.ModelConfig` field:

    family        recognised by                       gate    sub-norms          weights
    bitnet        model_type "bitnet"                 relu2   attn_sub_norm,     packed + scale,
                  (microsoft/bitnet-b1.58-2B-4T,                ffn_sub_norm       or bf16 masters
                  transformers' BitNetForCausalLM)
    llama-bitnet  model_type "llama" and              silu    none               packed + scale
                  quantization_config.quant_method
                  "bitnet" (tiiuae/Falcon3-*-1.58bit,
                  HF1BitLLM/Llama3-8B-1.58-100B-tokens,
                  transformers' LlamaForCausalLM)
    1bitllm       model_type "llama" with             silu    inner_attn_ln,     fp16 latents,
                  "weight_bits" / "input_bits" or              ffn_layernorm      ternarised at
                  architectures ["BitnetForCausalLM"]                             load (online)
                  (1bitLLM/bitnet_b1_58-large, -3B; their own remote code)

The output head is never ternary: transformers leaves the output embedding out of the
conversion when ``modules_to_not_convert`` is null (``get_keys_to_not_convert``), and config.py
refuses a list naming anything but ``lm_head``. Whether the head is tied to the embedding is
``tie_word_embeddings``, as for every family.

The sub-norms sit at the same places in both families that have them (before o_proj and before
down_proj) and differ only in their tensor names, which :mod:`minibitnet.formats.checkpoint` looks up here.
Left out: every other ``model_type`` (a plain LLaMA has no ternary weights to run).

The first two families are defined by transformers (models/bitnet, models/llama and
integrations/bitnet.py), and tests/formats/test_families.py compares logits with it. The 1bitLLM
checkpoints run only under their own remote code (``modeling_bitnet.py`` and ``utils_quant.py``
beside the weights), which transformers will not load without ``trust_remote_code`` and the
network, so these details are reconstructed, from public ports of that code and the b1.58
paper, not read off a running reference:

- ``weight_quant``: s = 1 / max(mean|W|, 1e-5) over the whole tensor in float32, codes
  clip(round(W s), -1, 1) (torch.round: half to even), dequantised W' = codes / s; recomputed
  from the fp16 latents in every forward, so its s is never rounded to bf16 (master.py,
  ``ternarize_online``);
- ``activation_quant``: per token s_x = 127 / max(max|x|, 1e-5), clip(round(x s_x), -128, 127),
  dequantised x / s_x: the same quantiser as quant.py;
- BitLinear is ``linear(x', W')`` with no norm inside it; the sub-norms are separate RMSNorms
  (eps = rms_norm_eps): ``inner_attn_ln`` (width hidden_size) on the attention output before
  o_proj, ``ffn_layernorm`` (width F) on silu(gate) * up before down_proj;
- everything else is LLaMA's (RoPE rotate-half with rope_theta, pre-norm blocks, final norm,
  lm_head not quantised).

How it is checked: tests/formats/test_families.py builds a 1bitLLM-layout checkpoint and compares our
logits with an independent PyTorch model, transformers' ``LlamaForCausalLM`` whose projections
are replaced by straight-through layers written in the test (``x + (q(x) - x).detach()`` for
activations and weights, the sub-norm in front of o_proj and down_proj): worst difference
about 1e-6 in float32. Not reproduced: their fp16 inference rounds W' and x' to fp16
(``result.type(dtype)``); we compute in float32 as the test does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BITNET, LLAMA_BITNET, ONEBITLLM = "bitnet", "llama-bitnet", "1bitllm"


@dataclass(frozen=True)
class Family:
    """What one family fixes: names, the gate activation, the sub-norms, the weight layout."""

    name: str
    description: str  # one line for `minibitnet info`
    model_type: str  # config.json "model_type"
    architecture: str  # config.json "architectures"[0]
    hidden_act: str  # the gate activation when config.json names none
    sub_norms: tuple[str, str] | None  # tensor names of the (attention, feed-forward) sub-norms


FAMILIES: dict[str, Family] = {
    BITNET: Family(BITNET, "BitNet b1.58 (BitNetForCausalLM: squared-ReLU gate, sub-norms)",
                   "bitnet", "BitNetForCausalLM", "relu2",
                   ("self_attn.attn_sub_norm", "mlp.ffn_sub_norm")),
    LLAMA_BITNET: Family(LLAMA_BITNET, "LLaMA with transformers' bitnet quantisation "
                                       "(Falcon3 1.58-bit, Llama3-8B-1.58: SiLU gate, no sub-norms)",
                         "llama", "LlamaForCausalLM", "silu", None),
    ONEBITLLM: Family(ONEBITLLM, "1bitLLM bitnet_b1_58 (LLaMA with sub-norms, fp16 latents "
                                 "ternarised on load)",
                      "llama", "BitnetForCausalLM", "silu",
                      ("self_attn.inner_attn_ln", "mlp.ffn_layernorm")),
}


def family_of(raw: dict[str, Any]) -> str | None:
    """The family of a parsed config.json, or None when it is none of the three.

    subtle: a 1bitLLM config carries model_type "llama" like the llama-bitnet family; what marks
    it is its remote-code architecture or its weight_bits / input_bits keys, and it has no
    quantization_config (its code quantises inside every forward).
    """
    model_type = raw.get("model_type")
    if model_type not in ("bitnet", "llama"):
        return None
    architectures = raw.get("architectures")
    if ("weight_bits" in raw or "input_bits" in raw
            or (isinstance(architectures, list) and "BitnetForCausalLM" in architectures)):
        return ONEBITLLM  # subtle: transformers' own class is spelt BitNetForCausalLM
    if model_type == "bitnet":
        return BITNET
    quant = raw.get("quantization_config")
    if isinstance(quant, dict) and quant.get("quant_method") == "bitnet":
        return LLAMA_BITNET
    return None
