"""Hugging Face BitNet checkpoint -> :class:`Weights`: a lookup table from names to tensors.

A model folder holds ``config.json`` and ``model.safetensors`` (the 2B4T layout; a large
checkpoint may instead be split into shards named by ``model.safetensors.index.json``, read as
one file by :mod:`minibitnet.formats.shards`)::

    model.embed_tokens.weight                          BF16 [V, D]
    model.layers.N.input_layernorm.weight              BF16 [D]
    model.layers.N.self_attn.{q,k,v,o}_proj.weight     U8   [out/4, in]   packed ternary
    model.layers.N.self_attn.{q,k,v,o}_proj.weight_scale  BF16 [1]
    model.layers.N.self_attn.attn_sub_norm.weight      BF16 [H*Hd]
    model.layers.N.post_attention_layernorm.weight     BF16 [D]
    model.layers.N.mlp.{gate,up,down}_proj.weight      U8   [out/4, in]
    model.layers.N.mlp.{gate,up,down}_proj.weight_scale   BF16 [1]
    model.layers.N.mlp.ffn_sub_norm.weight             BF16 [F]
    model.norm.weight                                  BF16 [D]
    lm_head.weight                                     BF16 [V, D]   only when not tied

Every tensor is checked against the config (present, shape, dtype), packed bytes are scanned for
the invalid code 3, scales must be finite and positive and norms finite. Large tensors stay
memory-mapped; only norms and scales are copied.

The same file may instead hold bf16 master weights (microsoft/bitnet-b1.58-2B-4T-bf16): each
``*_proj.weight`` is BF16 [out, in] and no ``weight_scale`` exists. Which of the two layouts a
file has is read off the dtype of ``model.layers.0.self_attn.q_proj.weight`` (U8: packed; a
float dtype: masters), and masters are ternarised on load by :mod:`minibitnet.formats.master`.

The other families (:mod:`minibitnet.families`) change three rows of the table: the sub-norms
are absent (llama-bitnet) or named ``self_attn.inner_attn_ln`` / ``mlp.ffn_layernorm``
(1bitllm); with ``use_rms_norm`` each projection carries ``*_proj.rms_norm.weight`` [in], the
RMSNorm inside transformers' BitLinear. In every family the embedding and head may be BF16,
F16 or F32 (1bitLLM ships fp16) and are kept in that dtype. A config with
``quantization_mode`` "online" needs masters: its scale is recomputed from them in float32
(master.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..config import ModelConfig, load_config
from ..errors import CheckpointError
from ..families import FAMILIES
from .master import ternarize_master, ternarize_online
from ..core.packing import has_invalid_codes
from ..pages import release_pages
from .safetensors import SafetensorsFile, TensorInfo
from .shards import ShardedSafetensors, open_tensors
from ..core.weights import LayerWeights, TernaryWeight, Weights

WEIGHTS_FILE = "model.safetensors"
TensorFile = SafetensorsFile | ShardedSafetensors  # one file, or the shards of an index
FLOAT_DTYPES = ("BF16", "F16", "F32")
# the two layouts a model.safetensors may have, as `minibitnet info` names them
PACKED, MASTERS = "packed", "bf16-masters"
FIRST_PROJECTION = "model.layers.0.self_attn.q_proj.weight"

# scanning packed bytes for code 3 in slices keeps the temporary arrays small
_SCAN_ROWS = 256


def expected_tensors(config: ModelConfig, has_lm_head: bool = False, layout: str = PACKED
                     ) -> dict[str, tuple[tuple[int, ...], tuple[str, ...]]]:
    """Every tensor name a checkpoint of this config holds -> (shape, allowed dtypes).

    lm_head.weight is required when the head is not tied, and checked whenever it is present.
    layout: PACKED (U8 [out/4, in] projections with weight_scale) or MASTERS (float [out, in]).
    """
    return dict(_expected_items(config, has_lm_head, layout))


def _expected_items(config: ModelConfig, has_lm_head: bool, layout: str = PACKED
                    ) -> Iterator[tuple[str, tuple[tuple[int, ...], tuple[str, ...]]]]:
    """The entries of :func:`expected_tensors`, lazily: a config claiming a billion layers is
    rejected at the first missing tensor instead of after building a billion-entry table."""
    c = config
    d, f, q, kv = c.hidden_size, c.intermediate_size, c.q_size, c.kv_size
    # embedding and head: any float, kept as stored (2B4T ships BF16, 1bitLLM fp16, and a
    # 1bitLLM model written packed is a bitnet-family file with fp16 tables, see writers.py)
    yield "model.embed_tokens.weight", ((c.vocab_size, d), FLOAT_DTYPES)
    yield "model.norm.weight", ((d,), FLOAT_DTYPES)
    projections = {
        "self_attn.q_proj": (q, d), "self_attn.k_proj": (kv, d), "self_attn.v_proj": (kv, d),
        "self_attn.o_proj": (d, q), "mlp.gate_proj": (f, d), "mlp.up_proj": (f, d),
        "mlp.down_proj": (d, f),
    }
    norms = {"input_layernorm": d, "post_attention_layernorm": d}
    attn_sub_norm, ffn_sub_norm = sub_norm_names(c)
    if attn_sub_norm is not None and ffn_sub_norm is not None:
        norms.update({attn_sub_norm: q, ffn_sub_norm: f})
    for n in range(c.num_hidden_layers):
        prefix = f"model.layers.{n}."
        for name, size in norms.items():
            yield f"{prefix}{name}.weight", ((size,), FLOAT_DTYPES)
        for name, (out_features, in_features) in projections.items():
            if c.use_rms_norm:  # the RMSNorm inside transformers' BitLinear, on its input
                yield f"{prefix}{name}.rms_norm.weight", ((in_features,), FLOAT_DTYPES)
            if layout == MASTERS:
                yield f"{prefix}{name}.weight", ((out_features, in_features), FLOAT_DTYPES)
                continue
            yield f"{prefix}{name}.weight", ((out_features // 4, in_features), ("U8",))
            yield f"{prefix}{name}.weight_scale", ((1,), FLOAT_DTYPES)
    if has_lm_head or not c.tie_word_embeddings:
        yield "lm_head.weight", ((c.vocab_size, d), FLOAT_DTYPES)


def sub_norm_names(config: ModelConfig) -> tuple[str | None, str | None]:
    """Tensor names (without "model.layers.N." and ".weight") of the attention and feed-forward
    sub-norms of this config's family; (None, None) when it has none."""
    names = FAMILIES[config.family].sub_norms
    if not config.has_sub_norms or names is None:
        return None, None
    return names


def layout_of(tensors: Mapping[str, TensorInfo]) -> str:
    """PACKED or MASTERS, from the dtype of the first projection (PACKED when it is absent, so
    that the packed checks name what is missing). tensors: a safetensors header, by name."""
    info = tensors.get(FIRST_PROJECTION)
    return MASTERS if info is not None and info.dtype in FLOAT_DTYPES else PACKED


def _check_tensors(file: TensorFile, config: ModelConfig, layout: str) -> None:
    for name, (shape, dtypes) in _expected_items(config, "lm_head.weight" in file, layout):
        info = file.tensors.get(name)
        if info is None:
            raise CheckpointError(f"{file.path}: missing tensor '{name}' (expected by "
                                  "config.json)")
        if info.shape != shape:
            raise CheckpointError(f"{file.path}: tensor '{name}' has shape {list(info.shape)}, "
                                  f"expected {list(shape)}")
        if info.dtype not in dtypes:
            raise CheckpointError(f"{file.path}: tensor '{name}' has dtype {info.dtype}, "
                                  f"expected {' or '.join(dtypes)}")


def _check_no_unapplied_norms(file: TensorFile, config: ModelConfig) -> None:
    """A norm the config does not apply would be skipped silently and every logit would be
    wrong (a 2B4T file whose model_type says "llama", a Falcon-E file without use_rms_norm):
    refuse it instead."""
    input_norm = "model.layers.0.self_attn.q_proj.rms_norm.weight"
    if not config.use_rms_norm and input_norm in file:
        raise CheckpointError(f"{file.path}: holds '{input_norm}', an RMSNorm inside BitLinear, "
                              "but config.json's quantization_config lacks use_rms_norm: true")
    expected = sub_norm_names(config)
    for family in FAMILIES.values():
        for name in family.sub_norms or ():
            tensor = f"model.layers.0.{name}.weight"
            if name not in expected and tensor in file:
                raise CheckpointError(
                    f"{file.path}: holds '{tensor}', a sub-norm of the {family.name} family, "
                    f"but config.json describes the {config.family} family "
                    f"({'no sub-norms' if expected[0] is None else ', '.join(map(str, expected))})")


def _load_norm(file: TensorFile, name: str) -> np.ndarray:
    values = file.float32(name)
    if not np.isfinite(values).all():
        raise CheckpointError(f"{file.path}: tensor '{name}' holds NaN or infinity")
    return values


def _load_ternary(file: TensorFile, prefix: str) -> TernaryWeight:
    packed = file.array(prefix + ".weight")  # (out/4, in) uint8, memory-mapped
    for row in range(0, packed.shape[0], _SCAN_ROWS):
        if has_invalid_codes(packed[row:row + _SCAN_ROWS]):
            raise CheckpointError(f"{file.path}: tensor '{prefix}.weight' holds the invalid "
                                  "code 3 (expected 2-bit codes 0, 1, 2 for -1, 0, +1)")
    release_pages(packed)  # scanned: its pages need not stay resident until the kernel reads it
    scale = float(file.float32(prefix + ".weight_scale")[0])
    if not np.isfinite(scale) or scale <= 0:
        raise CheckpointError(f"{file.path}: tensor '{prefix}.weight_scale' is {scale}, "
                              "expected a finite positive number")
    return TernaryWeight(packed=packed, weight_scale=np.float32(scale))


def _load_master(file: TensorFile, prefix: str, online: bool = False) -> TernaryWeight:
    w = file.float32(prefix + ".weight")  # (out, in) float32 latent weights, a copy
    if not np.isfinite(w).all():
        raise CheckpointError(f"{file.path}: tensor '{prefix}.weight' holds NaN or infinity")
    return ternarize_online(w) if online else ternarize_master(w)


def _load_projection(file: TensorFile, prefix: str, config: ModelConfig,
                     layout: str) -> TernaryWeight:
    if layout == MASTERS:
        weight = _load_master(file, prefix, online=config.quantization_mode == "online")
    else:
        weight = _load_ternary(file, prefix)
    if not config.use_rms_norm:
        return weight
    return replace(weight, input_norm=_load_norm(file, prefix + ".rms_norm.weight"))


def _load_layer(file: TensorFile, n: int, config: ModelConfig,
                layout: str = PACKED) -> LayerWeights:
    p = f"model.layers.{n}."
    attn_sub_norm, ffn_sub_norm = sub_norm_names(config)

    def projection(name: str) -> TernaryWeight:
        return _load_projection(file, p + name, config, layout)

    def sub_norm(name: str | None) -> np.ndarray | None:
        return None if name is None else _load_norm(file, f"{p}{name}.weight")

    return LayerWeights(
        input_layernorm=_load_norm(file, p + "input_layernorm.weight"),
        q_proj=projection("self_attn.q_proj"),
        k_proj=projection("self_attn.k_proj"),
        v_proj=projection("self_attn.v_proj"),
        attn_sub_norm=sub_norm(attn_sub_norm),
        o_proj=projection("self_attn.o_proj"),
        post_attention_layernorm=_load_norm(file, p + "post_attention_layernorm.weight"),
        gate_proj=projection("mlp.gate_proj"),
        up_proj=projection("mlp.up_proj"),
        ffn_sub_norm=sub_norm(ffn_sub_norm),
        down_proj=projection("mlp.down_proj"),
    )


def _load_table(file: TensorFile, name: str) -> np.ndarray:
    """The embedding or head: bf16 bits (uint16) as stored, or an F16/F32 table as stored."""
    table = file.array(name)  # (V, D), memory-mapped
    if table.dtype != np.uint16:
        for row in range(0, table.shape[0], _SCAN_ROWS):  # no NaN may reach the logits
            if not np.isfinite(table[row:row + _SCAN_ROWS]).all():
                raise CheckpointError(f"{file.path}: tensor '{name}' holds NaN or infinity")
    return table


def load_weights(model_dir: str | Path, config: ModelConfig | None = None) -> Weights:
    """Open ``model_dir/model.safetensors`` (memory-mapped; or the shards its index names, see
    shards.py) and check it against the config."""
    model_dir = Path(model_dir)
    config = config or load_config(model_dir)
    file = open_tensors(model_dir, WEIGHTS_FILE)
    layout = layout_of(file.tensors)
    if config.quantization_mode == "online" and FIRST_PROJECTION in file and layout != MASTERS:
        raise CheckpointError(f"{file.path}: tensor '{FIRST_PROJECTION}' is packed, but "
                              "config.json says quantization_mode 'online', which expects "
                              "float master weights")
    _check_tensors(file, config, layout)
    _check_no_unapplied_norms(file, config)
    return Weights(
        embed_tokens=_load_table(file, "model.embed_tokens.weight"),
        layers=[_load_layer(file, n, config, layout) for n in range(config.num_hidden_layers)],
        norm=_load_norm(file, "model.norm.weight"),
        # the head is tied to the embedding unless the file carries its own lm_head.weight
        lm_head=_load_table(file, "lm_head.weight") if "lm_head.weight" in file else None,
    )
