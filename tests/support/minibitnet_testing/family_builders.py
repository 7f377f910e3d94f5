"""Builders for the checkpoint families of minibitnet/families.py, written into tmp_path.

Each shape is small (2 layers, widths under 100) and chosen to exercise what sets its family
apart: an online-quantised bitnet config over bf16 masters, and a bitnet config with the RMSNorm
inside every BitLinear (``use_rms_norm``); LLaMA-architecture configs with transformers' bitnet
quantisation (SiLU gate, no sub-norms): packed, packed with ``use_rms_norm``, packed with Llama
3.1 RoPE scaling and a head size whose product with the head count is not the hidden size, and
bf16 masters under online quantisation with and without ``use_rms_norm``; and 1bitLLM's layout
(fp16 latents, sub-norms named inner_attn_ln / ffn_layernorm, fp16 embedding and head).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from minibitnet.formats.checkpoint import MASTERS, WEIGHTS_FILE, expected_tensors
from minibitnet.config import Llama3Scaling, ModelConfig
from minibitnet.families import LLAMA_BITNET, ONEBITLLM
from minibitnet.formats.safetensors import TensorSpec, write_safetensors
from minibitnet.core.bfloat16 import float32_to_bf16
from minibitnet.tools.synthetic import tiny_config, write_checkpoint

LLAMA = dict(family=LLAMA_BITNET, hidden_act="silu", has_sub_norms=False)
FAMILY_SHAPES: dict[str, ModelConfig] = {
    "bitnet-online": tiny_config(quantization_mode="online"),
    # Falcon3-1.58bit: untied bf16 head, packed projections, plain RoPE
    "falcon3": tiny_config(**LLAMA, tie_word_embeddings=False, num_key_value_heads=1),
    # Falcon-E: an RMSNorm (eps from quantization_config) on the input of every BitLinear
    "falcon-e": tiny_config(**LLAMA, use_rms_norm=True, quant_rms_norm_eps=1e-5),
    # Llama3-8B-1.58 with Llama 3.1 RoPE scaling; H * Hd = 4 * 24 = 96 != D = 64. With
    # theta 10000, Hd 24 and L 48 the 12 wavelengths (6.3 ... 13000) fall in all three bands
    "llama3": tiny_config(**LLAMA, tie_word_embeddings=False, head_dim=24,
                          rope_scaling=Llama3Scaling(8.0, 1.0, 4.0, 48)),
    # the same LLaMA with bf16 masters under AutoBitLinear's online mode, with and without
    # the BitLinear input norm; and the bitnet family with that norm
    "llama-online": tiny_config(**LLAMA, quantization_mode="online"),
    "falcon-e-online": tiny_config(**LLAMA, quantization_mode="online", use_rms_norm=True),
    "bitnet-rms-norm": tiny_config(use_rms_norm=True, quant_rms_norm_eps=1e-5),
    # 1bitLLM bitnet_b1_58: sub-norms under their own names, fp16 latents quantised on load
    "1bitllm": tiny_config(family=ONEBITLLM, hidden_act="silu", quantization_mode="online",
                           tie_word_embeddings=False, num_key_value_heads=4),
    "1bitllm-tied": tiny_config(family=ONEBITLLM, hidden_act="silu",
                                quantization_mode="online"),
}


def _random_float_tensors(config: ModelConfig, layout: str, seed: int) -> dict[str, np.ndarray]:
    """Every tensor of ``config`` in ``layout`` as float32 values: norms 1 + N(0, 0.1^2),
    projections N(0, 1/in), tables N(0, 1/D)."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, (shape, _) in expected_tensors(config, layout=layout).items():
        if len(shape) == 1:
            values = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name.endswith("_proj.weight"):
            values = rng.standard_normal(shape) / np.sqrt(shape[1])
        else:
            values = rng.standard_normal(shape) / np.sqrt(config.hidden_size)
        tensors[name] = values.astype(np.float32)
    return tensors


def write_float_checkpoint(folder: Path, config: ModelConfig, dtype: str, seed: int = 0) -> Path:
    """A master checkpoint: every tensor random, stored as ``dtype`` ("BF16" or "F16")."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = _random_float_tensors(config, MASTERS, seed)
    stored = {name: float32_to_bf16(v) if dtype == "BF16" else v.astype(np.float16)
              for name, v in tensors.items()}
    specs = [TensorSpec(name, dtype, value.shape) for name, value in stored.items()]
    write_safetensors(folder / WEIGHTS_FILE, specs, lambda spec: stored[spec.name])
    (folder / "config.json").write_text(json.dumps(config.to_json_dict(), indent=2))
    return folder


def build_family_checkpoint(folder: Path, shape: str, seed: int = 0) -> Path:
    """Write FAMILY_SHAPES[shape] into ``folder`` in its family's published layout (packed
    shapes as synthetic.py writes them: random codes with their scales)."""
    config = FAMILY_SHAPES[shape]
    if config.family == ONEBITLLM:
        return write_float_checkpoint(folder, config, "F16", seed)
    if config.quantization_mode == "online":
        return write_float_checkpoint(folder, config, "BF16", seed)
    return write_checkpoint(folder, config, seed=seed)
