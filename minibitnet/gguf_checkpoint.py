"""bitnet.cpp's ``ggml-model-i2_s.gguf`` <-> (:class:`ModelConfig`, :class:`Weights`): name tables.

A GGUF model folder holds one ``.gguf`` file (config.json is not needed: the metadata carries
the config). Architecture ``bitnet-b1.58``; tensors, NumPy shapes (the file stores dims
reversed, e.g. [D, V] for the embedding)::

    token_embd.weight                   [V, D]      BF16 (F16, F32 read too)
    blk.N.attn_norm.weight              [D]         F32 (F16, BF16)   input_layernorm
    blk.N.attn_{q,k,v,output}.weight    [out, in]   I2_S              q/k/v/o_proj
    blk.N.attn_sub_norm.weight          [H*Hd]      F32
    blk.N.ffn_norm.weight               [D]         F32               post_attention_layernorm
    blk.N.ffn_{gate,up,down}.weight     [out, in]   I2_S              gate/up/down_proj
    blk.N.ffn_sub_norm.weight           [F]         F32
    output_norm.weight                  [D]         F32               model.norm
    output.weight                       [V, D]      BF16              lm_head, only when untied

Metadata (prefix ``bitnet-b1.58.``): embedding_length (D), block_count, feed_forward_length (F),
attention.head_count (H), attention.head_count_kv (K, default H),
attention.layer_norm_rms_epsilon, rope.freq_base (default 10000, as llama.cpp),
context_length; ``tokenizer.ggml.bos_token_id`` / ``eos_token_id`` / ``eot_token_id`` when
present (the stop ids are EOS then EOT, so config.json's eos_token_id keeps at most two). V is the
embedding's row count. Names as gguf-py's ``MODEL_ARCH.BITNET`` tensor table and bitnet.cpp's
``utils/convert-hf-to-gguf-bitnet.py``.

I2_S tensors are unpacked to ternary codes and repacked in the Hugging Face layout at load (the
kernels read that one layout), so a GGUF model is held in memory, not memory-mapped, except
for the embedding when it is BF16. The I2_S scale is 1 / weight_scale (see i2s.py).

subtle: the model divides by weight_scale, so a loaded I2_S scale is inverted, and the inverse
of a float32 does not round-trip: float32(1 / float32(1 / s)) differs from s for about one
bf16 value in six. The loaded weight_scale is therefore 1 / scale rounded to bf16, which gives
back exactly the bf16 weight_scale that every published BitNet b1.58 checkpoint stores (and
that the GGUF of such a checkpoint was made from), so a GGUF and the packed checkpoint it
converts to or from give bit-identical logits. A scale that was not the inverse of a bf16
number moves by at most 2^-9 relative, as it would on conversion to the packed layout.
Likewise an F16 or F32 embedding is rounded to bf16, the model's table type.

The tokenizer metadata (``tokenizer.ggml.*``) is gguf_tokenizer.py's. Left out on purpose: the
TL1/TL2 layouts of bitnet.cpp.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .config import ModelConfig, config_from_dict
from .errors import CheckpointError
from .gguf import (
    BF16, F16, F32, FLOAT32, FLOAT_TYPES, I2_S, INTEGER_TYPES, STRING, TENSOR_TYPE_NAMES, UINT32,
    VALUE_TYPE_NAMES, GGUFFile, TensorToWrite, write_gguf,
)
from .i2s import BLOCK_WEIGHTS, INVALID_CODE, pack_i2s, unpack_i2s, unpack_i2s_codes
from .master import round_scale_to_bf16
from .packing import pack_ternary, unpack_ternary
from .safetensors import bf16_to_float32, float32_to_bf16
from .weights import LayerWeights, TernaryWeight, Weights

GGUF_FILE = "ggml-model-i2_s.gguf"
ARCHITECTURE = "bitnet-b1.58"
FLOAT_TENSOR_TYPES = (F32, F16, BF16)
_TABLE_ROWS = 4096  # embedding rows rounded to bf16 at a time (40 MB of float32 at D = 2560)

# LayerWeights field -> the GGUF tensor name within blk.N
LAYER_TENSORS = {
    "input_layernorm": "attn_norm", "q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v",
    "attn_sub_norm": "attn_sub_norm", "o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm", "gate_proj": "ffn_gate", "up_proj": "ffn_up",
    "ffn_sub_norm": "ffn_sub_norm", "down_proj": "ffn_down",
}
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


# ---- metadata -> ModelConfig ----


def _fail(file: GGUFFile, message: str) -> CheckpointError:
    return CheckpointError(f"{file.path}: {message}")


def _number(file: GGUFFile, key: str, kinds: tuple[int, ...], default: Any = None) -> Any:
    """The value of ``key`` if its type is one of ``kinds``; ``default`` when absent."""
    if key not in file.metadata:
        if default is None:
            raise _fail(file, f"missing metadata '{key}'")
        return default
    value_type = file.value_types[key]
    if value_type not in kinds:
        expected = "an integer" if kinds == INTEGER_TYPES else "a float"
        raise _fail(file, f"metadata '{key}' has type {VALUE_TYPE_NAMES[value_type]}, "
                          f"expected {expected}")
    if value_type == FLOAT32:
        # the shortest decimal that reads back as this float32 (1e-05, not 9.99999974e-06), as
        # config.json gives it: converting to config.json and back keeps the text
        return float(str(np.float32(file.metadata[key])))
    return file.metadata[key]


def _string(file: GGUFFile, key: str, default: str) -> str:
    """The value of a STRING key; ``default`` when absent."""
    if key not in file.metadata:
        return default
    if file.value_types[key] != STRING:
        raise _fail(file, f"metadata '{key}' has type {VALUE_TYPE_NAMES[file.value_types[key]]}, "
                          "expected a string")
    value: str = file.metadata[key]
    return value


def config_from_gguf(file: GGUFFile) -> ModelConfig:
    """Check the architecture and read the config from the metadata (and the embedding shape)."""
    arch = _string(file, "general.architecture", "")
    if arch != ARCHITECTURE:
        raise _fail(file, f"general.architecture is {arch[:40]!r}, expected '{ARCHITECTURE}'")
    scaling = _string(file, f"{ARCHITECTURE}.rope.scaling.type", "none")
    factor = _number(file, f"{ARCHITECTURE}.rope.scaling.factor", FLOAT_TYPES, 1.0)
    if scaling not in ("none", "linear") or (scaling == "linear" and factor != 1.0):
        raise _fail(file, f"RoPE scaling {scaling[:40]!r} (factor {factor!r}) is not supported, "
                          "expected none")
    embedding = file.tensors.get("token_embd.weight")
    if embedding is None or len(embedding.dims) != 2:
        raise _fail(file, "missing tensor 'token_embd.weight' (expected 2 dimensions [D, V])")
    p = ARCHITECTURE + "."
    heads = _number(file, p + "attention.head_count", INTEGER_TYPES)
    raw: dict[str, Any] = {
        "model_type": "bitnet",
        "vocab_size": embedding.dims[1],
        "hidden_size": _number(file, p + "embedding_length", INTEGER_TYPES),
        "intermediate_size": _number(file, p + "feed_forward_length", INTEGER_TYPES),
        "num_hidden_layers": _number(file, p + "block_count", INTEGER_TYPES),
        "num_attention_heads": heads,
        "num_key_value_heads": _number(file, p + "attention.head_count_kv", INTEGER_TYPES, heads),
        "rms_norm_eps": float(_number(file, p + "attention.layer_norm_rms_epsilon", FLOAT_TYPES)),
        "rope_theta": float(_number(file, p + "rope.freq_base", FLOAT_TYPES, 10000.0)),
        "max_position_embeddings": _number(file, p + "context_length", INTEGER_TYPES),
        "tie_word_embeddings": "output.weight" not in file,
    }
    if "tokenizer.ggml.bos_token_id" in file.metadata:
        raw["bos_token_id"] = _number(file, "tokenizer.ggml.bos_token_id", INTEGER_TYPES)
    # generation stops at EOS and, when the file names one, at EOT (LLaMA-3's <|eot_id|>)
    eos = [_number(file, key, INTEGER_TYPES) for key in ("tokenizer.ggml.eos_token_id",
                                                         "tokenizer.ggml.eot_token_id")
           if key in file.metadata]
    if eos:
        raw["eos_token_id"] = [int(i) for i in dict.fromkeys(eos)]
    # the config checks (heads dividing, sizes multiples of 4, ids in the vocabulary) apply
    # as for config.json; numbers are plain ints there, not NumPy scalars
    raw = {k: (int(v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v)
           for k, v in raw.items()}
    return config_from_dict(raw, f"{file.path} (metadata)")


# ---- tensors -> Weights ----


def expected_gguf_tensors(config: ModelConfig, has_output: bool
                          ) -> Iterator[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    """(name, NumPy shape, allowed tensor types) of every tensor, lazily (a config claiming a
    billion blocks fails at the first missing tensor)."""
    c = config
    d, f, q, kv = c.hidden_size, c.intermediate_size, c.q_size, c.kv_size
    yield "token_embd.weight", (c.vocab_size, d), FLOAT_TENSOR_TYPES
    shapes = {
        "input_layernorm": (d,), "q_proj": (q, d), "k_proj": (kv, d), "v_proj": (kv, d),
        "attn_sub_norm": (q,), "o_proj": (d, q), "post_attention_layernorm": (d,),
        "gate_proj": (f, d), "up_proj": (f, d), "ffn_sub_norm": (f,), "down_proj": (d, f),
    }
    for n in range(c.num_hidden_layers):
        for field, gguf_name in LAYER_TENSORS.items():
            kinds = (I2_S,) if field in PROJECTIONS else FLOAT_TENSOR_TYPES
            yield f"blk.{n}.{gguf_name}.weight", shapes[field], kinds
    yield "output_norm.weight", (d,), FLOAT_TENSOR_TYPES
    if has_output:
        yield "output.weight", (c.vocab_size, d), FLOAT_TENSOR_TYPES


def _check_tensors(file: GGUFFile, config: ModelConfig) -> None:
    for name, shape, kinds in expected_gguf_tensors(config, "output.weight" in file):
        info = file.tensors.get(name)
        if info is None:
            raise _fail(file, f"missing tensor '{name}' (expected by the metadata)")
        if info.shape != shape:
            raise _fail(file, f"tensor '{name}' has dims {list(info.dims)}, expected "
                              f"{list(reversed(shape))} (ggml order)")
        if info.ggml_type not in kinds:
            names = " or ".join(TENSOR_TYPE_NAMES[k] for k in kinds)
            raise _fail(file, f"tensor '{name}' has type {info.type_name}, expected {names}")


def _float32(file: GGUFFile, name: str) -> np.ndarray:
    info = file.tensors[name]
    values = file.array(name)
    widened = bf16_to_float32(values) if info.ggml_type == BF16 else values.astype(np.float32)
    if not np.isfinite(widened).all():
        raise _fail(file, f"tensor '{name}' holds NaN or infinity")
    return widened


def _bf16_table(file: GGUFFile, name: str) -> np.ndarray:
    """(V, D) bf16 bits: a view when the file holds BF16, else rounded from F16 / F32 (ties
    to even), a few rows at a time so that no float32 copy of the whole table is made."""
    values = file.array(name)  # (V, D)
    if file.tensors[name].ggml_type == BF16:
        return values
    table = np.empty(values.shape, np.uint16)  # (V, D) bf16 bits
    for start in range(0, values.shape[0], _TABLE_ROWS):
        rows = values[start:start + _TABLE_ROWS].astype(np.float32)  # (chunk, D)
        if not np.isfinite(rows).all():
            raise _fail(file, f"tensor '{name}' holds NaN or infinity")
        table[start:start + _TABLE_ROWS] = float32_to_bf16(rows)
    return table


def _load_projection(file: GGUFFile, name: str) -> TernaryWeight:
    out_features, in_features = file.tensors[name].shape
    data = file.raw(name)  # (out * in / 4 + 32,) uint8
    if np.any(unpack_i2s_codes(data, out_features, in_features) == INVALID_CODE):
        raise _fail(file, f"tensor '{name}' holds the invalid code 3 (expected 2-bit codes "
                          "0, 1, 2 for -1, 0, +1)")
    w_ternary, scale = unpack_i2s(data, out_features, in_features)  # (out, in) int8, float32
    if not np.isfinite(scale) or scale <= 0:
        raise _fail(file, f"tensor '{name}' has I2_S scale {scale}, expected a finite "
                          "positive number")
    # subtle: rounded to bf16, see the module docstring
    weight_scale = round_scale_to_bf16(np.float32(1.0 / float(scale)))
    if not np.isfinite(weight_scale) or weight_scale <= 0:
        raise _fail(file, f"tensor '{name}' has I2_S scale {scale}, whose inverse is not a "
                          "finite bf16 number")
    return TernaryWeight(packed=pack_ternary(w_ternary), weight_scale=weight_scale)


def _load_layer(file: GGUFFile, n: int) -> LayerWeights:
    fields: dict[str, Any] = {}
    for field, gguf_name in LAYER_TENSORS.items():
        name = f"blk.{n}.{gguf_name}.weight"
        fields[field] = _load_projection(file, name) if field in PROJECTIONS \
            else _float32(file, name)
    return LayerWeights(**fields)


def load_gguf(path: str | Path) -> tuple[ModelConfig, Weights]:
    """Open a GGUF file, check every tensor against its metadata and return the model."""
    file = GGUFFile(path)
    config = config_from_gguf(file)
    _check_tensors(file, config)
    weights = Weights(
        embed_tokens=_bf16_table(file, "token_embd.weight"),
        layers=[_load_layer(file, n) for n in range(config.num_hidden_layers)],
        norm=_float32(file, "output_norm.weight"),
        lm_head=_bf16_table(file, "output.weight") if "output.weight" in file else None,
    )
    return config, weights


# ---- (ModelConfig, Weights) -> GGUF ----


def gguf_metadata(config: ModelConfig) -> dict[str, tuple[int, Any]]:
    """The metadata written for ``config``: key -> (value type, value)."""
    p = ARCHITECTURE + "."
    metadata: dict[str, tuple[int, Any]] = {
        "general.architecture": (STRING, ARCHITECTURE),
        "general.alignment": (UINT32, 32),
        p + "vocab_size": (UINT32, config.vocab_size),
        p + "context_length": (UINT32, config.max_position_embeddings),
        p + "embedding_length": (UINT32, config.hidden_size),
        p + "block_count": (UINT32, config.num_hidden_layers),
        p + "feed_forward_length": (UINT32, config.intermediate_size),
        p + "attention.head_count": (UINT32, config.num_attention_heads),
        p + "attention.head_count_kv": (UINT32, config.num_key_value_heads),
        p + "attention.layer_norm_rms_epsilon": (FLOAT32, config.rms_norm_eps),
        p + "rope.freq_base": (FLOAT32, config.rope_theta),
        p + "rope.dimension_count": (UINT32, config.head_dim),
    }
    if config.bos_token_id is not None:
        metadata["tokenizer.ggml.bos_token_id"] = (UINT32, config.bos_token_id)
    # GGUF names one EOS and one EOT token: a third stop id has no key and is not written
    for key, token_id in zip(("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"),
                             config.eos_token_ids):
        metadata[key] = (UINT32, token_id)
    return metadata


def _i2s_producer(weight: TernaryWeight) -> Callable[[], np.ndarray]:
    def produce() -> np.ndarray:
        scale = np.float32(1.0 / float(weight.weight_scale))  # w ≈ w_ternary * scale
        return pack_i2s(unpack_ternary(np.asarray(weight.packed)), scale)
    return produce


def _constant(value: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: value


def gguf_tensors(config: ModelConfig, weights: Weights) -> list[TensorToWrite]:
    """Every tensor to write, in file order, each made only when written.

    Projections become I2_S (call :func:`check_i2s_shapes` first), norms F32 (exact for any
    float32), embedding and head BF16 (their bits unchanged).
    """
    tensors = [TensorToWrite("token_embd.weight", (config.hidden_size, config.vocab_size), BF16,
                             _constant(np.asarray(weights.embed_tokens)))]
    for n, layer in enumerate(weights.layers):
        for field, gguf_name in LAYER_TENSORS.items():
            value = getattr(layer, field)
            name = f"blk.{n}.{gguf_name}.weight"
            if isinstance(value, TernaryWeight):
                dims = (value.in_features, value.out_features)
                tensors.append(TensorToWrite(name, dims, I2_S, _i2s_producer(value)))
            else:
                tensors.append(TensorToWrite(name, (value.shape[0],), F32,
                                             _constant(value.astype("<f4"))))
    tensors.append(TensorToWrite("output_norm.weight", (config.hidden_size,), F32,
                                 _constant(weights.norm.astype("<f4"))))
    if weights.lm_head is not None:
        tensors.append(TensorToWrite("output.weight", (config.hidden_size, config.vocab_size),
                                     BF16, _constant(np.asarray(weights.lm_head))))
    return tensors


def check_i2s_shapes(config: ModelConfig, destination: str | Path) -> None:
    """CheckpointError naming ``destination`` unless every projection input is a multiple of 128."""
    for name, size in (("hidden_size", config.hidden_size),
                       ("intermediate_size", config.intermediate_size),
                       ("num_attention_heads * head_dim", config.q_size)):
        if size % BLOCK_WEIGHTS:
            raise CheckpointError(f"{destination}: cannot write I2_S, {name} is {size}, expected "
                                  f"a multiple of {BLOCK_WEIGHTS} (I2_S packs each row in "
                                  f"blocks of {BLOCK_WEIGHTS} weights)")


def write_gguf_model(path: str | Path, config: ModelConfig, weights: Weights,
                     on_bytes: Callable[[int], None] | None = None,
                     extra_metadata: dict[str, tuple[int, Any]] | None = None) -> Path:
    """Write ``weights`` as a bitnet.cpp I2_S GGUF file (atomically); returns the path.

    extra_metadata: more key -> (value type, value), e.g. the tokenizer (gguf_tokenizer.py)
    """
    check_i2s_shapes(config, path)
    metadata = {**gguf_metadata(config), **(extra_metadata or {})}
    write_gguf(path, metadata, gguf_tensors(config, weights), on_bytes)
    return Path(path)


def gguf_bytes(config: ModelConfig, weights: Weights) -> int:
    """Tensor bytes :func:`write_gguf_model` writes (for a progress bar)."""
    return sum(t.num_bytes for t in gguf_tensors(config, weights))
