"""Builders for the other checkpoint formats: bf16 master weights, written into tmp_path.

The latents are random N(0, 1/in) float32 rounded to bf16, as a training run would leave them;
norms and embedding as in minibitnet.tools.synthetic. Shapes come from builders.SHAPES, plus "i2s":
every projection input a multiple of 128, as I2_S (GGUF) needs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from minibitnet.formats.checkpoint import MASTERS, WEIGHTS_FILE, expected_tensors
from minibitnet.config import ModelConfig
from minibitnet.core.packing import pack_ternary
from minibitnet.core.quant import ternarize_weights
from minibitnet.formats.safetensors import TensorSpec, write_safetensors
from minibitnet.core.bfloat16 import bf16_to_float32, float32_to_bf16
from minibitnet.tools.synthetic import tiny_config
from minibitnet_testing.builders import SHAPES

FORMAT_SHAPES: dict[str, ModelConfig] = {
    **SHAPES,
    # hidden 128, head size 32, intermediate 256: every projection input is a multiple of 128
    "i2s": tiny_config(hidden_size=128, num_attention_heads=4, num_key_value_heads=2,
                       intermediate_size=256, num_hidden_layers=2),
    "i2s-untied": tiny_config(hidden_size=128, num_attention_heads=4, num_key_value_heads=1,
                              intermediate_size=128, num_hidden_layers=1,
                              tie_word_embeddings=False),
}


def random_masters(config: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Every tensor of a master checkpoint of ``config`` as bf16 bits (uint16), by name."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, (shape, _) in expected_tensors(config, layout=MASTERS).items():
        if len(shape) == 1:  # norms
            values = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name.endswith("_proj.weight"):  # latent BitLinear weights (out, in)
            values = rng.standard_normal(shape) / np.sqrt(shape[1])
        else:  # embedding, untied head
            values = rng.standard_normal(shape) / np.sqrt(config.hidden_size)
        tensors[name] = float32_to_bf16(values.astype(np.float32))
    return tensors


def write_folder(folder: Path, config: ModelConfig, tensors: dict[str, np.ndarray],
                 dtypes: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    specs = [TensorSpec(name, dtypes[name], tuple(value.shape)) for name, value in tensors.items()]
    write_safetensors(folder / WEIGHTS_FILE, specs, lambda spec: tensors[spec.name])
    (folder / "config.json").write_text(json.dumps(config.to_json_dict()))
    return folder


def build_master_checkpoint(folder: Path, shape: str = "tiny", seed: int = 0) -> Path:
    """A bf16 master checkpoint (no weight_scale, BF16 [out, in] projections) in ``folder``."""
    config = FORMAT_SHAPES[shape]
    tensors = random_masters(config, seed)
    return write_folder(folder, config, tensors, {name: "BF16" for name in tensors})


def build_packed_from_masters(folder: Path, shape: str = "tiny", seed: int = 0) -> Path:
    """The packed checkpoint made from the masters of :func:`build_master_checkpoint`, the way a
    training export makes it: absmean codes packed, the float32 scale stored as BF16 [1]."""
    config = FORMAT_SHAPES[shape]
    tensors, dtypes = {}, {}
    for name, bits in random_masters(config, seed).items():
        if not name.endswith("_proj.weight"):
            tensors[name], dtypes[name] = bits, "BF16"
            continue
        w_ternary, scale = ternarize_weights(bf16_to_float32(bits))
        tensors[name], dtypes[name] = pack_ternary(w_ternary), "U8"
        scale_name = name.removesuffix("weight") + "weight_scale"
        tensors[scale_name] = float32_to_bf16(np.array([scale], np.float32))
        dtypes[scale_name] = "BF16"
    return write_folder(folder, config, tensors, dtypes)


def build_i2s_packed(folder: Path, shape: str = "i2s", seed: int = 0) -> Path:
    """A packed checkpoint whose projection inputs are multiples of 128 (GGUF I2_S can hold it)."""
    return build_packed_from_masters(folder, shape, seed)
