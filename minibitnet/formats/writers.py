"""A loaded :class:`Weights` -> a model folder in the packed or the bf16-master layout.

Both layouts are tabled in :mod:`minibitnet.formats.checkpoint`. The writer is lossless wherever the
layout allows it: a norm or a scale that a bf16 number holds exactly is written as BF16, any
other as F32 (both layouts accept F32 there), so converting a checkpoint to another format and
back gives the same bytes. Projections go through :func:`minibitnet.core.packing.pack_ternary`
(packed) or :func:`minibitnet.formats.latents.master_from_ternary` (masters), one tensor in memory at a
time; files are written atomically, model.safetensors before config.json.

Every family writes both layouts under its own tensor names (the sub-norms are
``inner_attn_ln`` / ``ffn_layernorm`` for 1bitLLM), except that a packed 1bitLLM model
becomes the bitnet family (:func:`config_for_layout` says why). Embedding and head keep the
dtype they are held in (BF16, or F16 / F32 for the LLaMA families).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from .checkpoint import MASTERS, PACKED, WEIGHTS_FILE, expected_tensors
from ..config import ModelConfig
from ..errors import CheckpointError
from ..families import BITNET, FAMILIES, ONEBITLLM
from ..files import atomic_write_text, naming_os_errors
from .latents import master_from_ternary
from ..core.packing import unpack_ternary
from .safetensors import TensorSpec, write_safetensors
from ..core.bfloat16 import bf16_to_float32, float32_to_bf16
from ..core.weights import TernaryWeight, Weights

# the sub-norm of every family by its tensor name (families.py: attn_sub_norm, inner_attn_ln
# ...) -> the LayerWeights field it is held in (attn_sub_norm, ffn_sub_norm)
SUB_NORM_FIELDS = {name.split(".")[-1]: field
                   for family in FAMILIES.values()
                   for name, field in zip(family.sub_norms or (),
                                          ("attn_sub_norm", "ffn_sub_norm"))}
TABLES = ("model.embed_tokens.weight", "lm_head.weight")  # written in the dtype they are held in
# the safetensors dtype of an embedding or head table, by the dtype it is held in
TABLE_DTYPES = {np.dtype(np.uint16): "BF16", np.dtype(np.float16): "F16",
                np.dtype(np.float32): "F32"}


def is_bf16_exact(values: np.ndarray) -> bool:
    """True if every float32 value is a bfloat16 value (so BF16 stores it without loss)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    return bool(np.array_equal(bf16_to_float32(float32_to_bf16(values)), values))


def named_tensor(weights: Weights, name: str) -> np.ndarray | TernaryWeight:
    """The value behind a Hugging Face tensor name: bf16 bits (embedding, head), a float32
    norm (a BitLinear input norm ``..._proj.rms_norm.weight`` too), or the TernaryWeight of
    ``...{q,k,v,o,gate,up,down}_proj`` (name without .weight)."""
    if name == "model.embed_tokens.weight":
        return weights.embed_tokens
    if name == "lm_head.weight":
        assert weights.lm_head is not None
        return weights.lm_head
    if name == "model.norm.weight":
        return weights.norm
    if name.endswith(".rms_norm.weight"):  # ...<proj>.rms_norm.weight: a BitLinear input norm
        _, _, n, _, projection, _, _ = name.split(".")
        weight = getattr(weights.layers[int(n)], projection)
        assert isinstance(weight, TernaryWeight) and weight.input_norm is not None
        return weight.input_norm
    _, _, n, *_, field, _ = name.split(".")  # model.layers.N.<self_attn|mlp>.field.weight
    value: np.ndarray | TernaryWeight = getattr(weights.layers[int(n)],
                                                SUB_NORM_FIELDS.get(field, field))
    return value


def _float_spec(name: str, value: np.ndarray) -> TensorSpec:
    dtype = "BF16" if is_bf16_exact(value) else "F32"
    return TensorSpec(name, dtype, tuple(value.shape))


def tensor_specs(config: ModelConfig, weights: Weights, layout: str) -> list[TensorSpec]:
    """The tensors of the folder, in file order, with the dtype each will be written in."""
    specs = []
    for name, (shape, dtypes) in expected_tensors(config, weights.lm_head is not None,
                                                  layout).items():
        if name.endswith(".weight_scale"):
            weight = named_tensor(weights, name.removesuffix("_scale"))
            assert isinstance(weight, TernaryWeight)
            specs.append(_float_spec(name, np.array([weight.weight_scale], np.float32)))
        elif len(shape) == 1:  # a norm
            value = named_tensor(weights, name)
            assert isinstance(value, np.ndarray)
            specs.append(_float_spec(name, value))
        elif name in TABLES:
            table = named_tensor(weights, name)
            assert isinstance(table, np.ndarray)
            specs.append(TensorSpec(name, TABLE_DTYPES[table.dtype], shape))  # kept as held
        else:  # projections: U8 packed or BF16 masters
            specs.append(TensorSpec(name, dtypes[0], shape))
    return specs


def _master(weight: TernaryWeight, name: str, path: Path) -> np.ndarray:
    """(out, in) bf16 latents of one projection; CheckpointError naming it if none exist."""
    w_ternary = unpack_ternary(np.asarray(weight.packed))  # (out, in) int8
    try:
        return master_from_ternary(w_ternary, weight.weight_scale)
    except ValueError as error:
        raise CheckpointError(f"{path}: cannot write tensor '{name}' as bf16 latents: "
                              f"{error}") from None


def _produce(weights: Weights, path: Path) -> Callable[[TensorSpec], np.ndarray]:
    def produce(spec: TensorSpec) -> np.ndarray:
        if spec.name.endswith(".weight_scale"):
            weight = named_tensor(weights, spec.name.removesuffix("_scale"))
            assert isinstance(weight, TernaryWeight)
            value = np.array([weight.weight_scale], np.float32)  # (1,)
        else:
            found = named_tensor(weights, spec.name)
            if isinstance(found, TernaryWeight):
                if spec.dtype == "U8":
                    return np.asarray(found.packed)  # (out/4, in) uint8
                return _master(found, spec.name, path)  # (out, in) bf16
            if spec.name in TABLES:
                return np.asarray(found)  # bf16 bits, float16 or float32: kept as they are
            value = found  # a norm, float32
        return float32_to_bf16(value) if spec.dtype == "BF16" else value.astype(np.float32)
    return produce


def config_for_layout(config: ModelConfig, layout: str) -> ModelConfig:
    """The config a folder of ``layout`` is written with: the same model, in the form under
    which that layout loads.

    PACKED:  quantization_mode "offline" (packed weights carry their scale; the float32 scale
             of online masters is kept exactly, as F32 where bf16 cannot hold it). 1bitLLM has
             no packed layout of its own, and its model is exactly a BitNet b1.58 one with a
             SiLU gate (same sub-norms, quantisers and RoPE; families.py): it is written as the
             bitnet family, which transformers' BitNetForCausalLM loads.
    MASTERS: quantization_mode "online" (as microsoft/bitnet-b1.58-2B-4T-bf16 and transformers'
             AutoBitLinear): the loader keeps the float32 absmean scale of the latents, which
             master_from_ternary makes equal to every weight_scale, bf16 or not.
    """
    if layout == PACKED:
        family = BITNET if config.family == ONEBITLLM else config.family
        return replace(config, family=family, quantization_mode="offline")
    return replace(config, quantization_mode="online")


def write_safetensors_model(out_dir: str | Path, config: ModelConfig, weights: Weights,
                            layout: str = PACKED,
                            on_bytes: Callable[[int], None] | None = None) -> Path:
    """Write config.json and model.safetensors (layout PACKED or MASTERS) for ``weights``.

    on_bytes: called after each tensor is written, with its size in bytes (for a progress bar)
    returns:  the model folder
    raises:   OSError naming the file being written (model.safetensors or config.json) when
              a write fails, the disk being full say
    """
    if layout not in (PACKED, MASTERS):
        raise ValueError(f"layout {layout!r}: expected {PACKED!r} or {MASTERS!r}")
    config = config_for_layout(config, layout)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with naming_os_errors(out_dir / WEIGHTS_FILE):  # a full disk names the file it filled
        write_safetensors(out_dir / WEIGHTS_FILE, tensor_specs(config, weights, layout),
                          _produce(weights, out_dir / WEIGHTS_FILE), on_bytes=on_bytes)
    with naming_os_errors(out_dir / "config.json"):
        atomic_write_text(out_dir / "config.json",
                          json.dumps(config.to_json_dict(), indent=2) + "\n")
    return out_dir


def safetensors_bytes(config: ModelConfig, weights: Weights, layout: str = PACKED) -> int:
    """Size of the data section :func:`write_safetensors_model` writes (for a progress bar)."""
    return sum(spec.num_bytes for spec in tensor_specs(config, weights, layout))
