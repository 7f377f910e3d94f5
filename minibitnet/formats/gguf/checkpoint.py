"""bitnet.cpp's ``ggml-model-i2_s.gguf`` <-> (:class:`ModelConfig`, :class:`Weights`), both ways.

A GGUF model folder holds one ``.gguf`` file (config.json is not needed: the metadata carries
the config). The file's ``general.architecture`` gives the family of the model
(gguf_architectures.py: ``bitnet-b1.58`` is the bitnet family, ``bitnet`` 1bitllm, ``llama``
llama-bitnet with q/k rows in llama.cpp's RoPE order) and the table of its tensors; the config
comes from and goes to the metadata in gguf_config.py, and the I2_S scales become weight_scales
in gguf_scales.py. This module moves the tensors.

On load every tensor is checked against the table of its architecture (name, shape, type) and
any tensor the architecture lacks is refused (llama.cpp refuses such a file), with a
CheckpointError naming the file. On write, :func:`check_gguf_writable` refuses what no GGUF
holds before anything is written.

Tables keep their type: an embedding or head held as bf16 bits, float16 (1bitLLM) or float32 is
written as BF16, F16 or F32, and read back as it is stored (a memory-mapped view; F16 and F32
are checked for NaN), never rounded: the model widens any of them to float32 (head.py).

I2_S tensors are unpacked to ternary codes and repacked in the Hugging Face layout at load (the
kernels read that one layout), so a GGUF model is held in memory, not memory-mapped, except
for its tables. The I2_S scale is 1 / weight_scale (see i2s.py, and gguf_scales.py for why a
loaded one is rounded to bf16 unless ``minibitnet.weight_scales`` gives it exactly).

The tokenizer metadata (``tokenizer.ggml.*``) is gguf_tokenizer.py's. Left out on purpose: the
TL1/TL2 layouts of bitnet.cpp.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ...config import ModelConfig
from ...errors import CheckpointError
from .container import BF16, F16, F32, I2_S, TENSOR_TYPE_NAMES, GGUFFile, TensorToWrite, write_gguf
from .architectures import (
    PROJECTIONS, SUB_NORMS, Architecture, check_gguf_writable, expected_gguf_tensors,
    layer_entries, layer_tensors, permute_rope_rows, rope_heads, unpermute_rope_rows,
    writable_architecture,
)
from .config import architecture_of_file, config_from_gguf, gguf_metadata, model_name
from .scales import i2s_scale, read_exact_scales, weight_scale_from_i2s, weight_scale_metadata
from .i2s import INVALID_CODE, pack_i2s, unpack_i2s, unpack_i2s_codes
from ...core.packing import pack_ternary, unpack_ternary
from ...core.bfloat16 import bf16_to_float32
from ...core.weights import LayerWeights, TernaryWeight, Weights

GGUF_FILE = "ggml-model-i2_s.gguf"
# the tensor type of an embedding or head table, by the dtype it is held in
TABLE_TYPES = {np.dtype(np.uint16): BF16, np.dtype(np.float16): F16, np.dtype(np.float32): F32}
_TABLE_ROWS = 4096  # table rows checked for NaN at a time (40 MB of float32 at D = 2560)


# ---- GGUF -> (ModelConfig, Weights) ----


def _check_tensors(file: GGUFFile, config: ModelConfig, arch: Architecture) -> None:
    expected: set[str] = set()
    for name, shape, kinds in expected_gguf_tensors(config, arch, not config.tie_word_embeddings):
        info = file.tensors.get(name)
        if info is None:
            raise file.error(f"missing tensor '{name}' (expected by the metadata)")
        if info.shape != shape:
            raise file.error(f"tensor '{name}' has dims {list(info.dims)}, expected "
                             f"{list(reversed(shape))} (ggml order)")
        if info.ggml_type not in kinds:
            names = " or ".join(TENSOR_TYPE_NAMES[k] for k in kinds)
            raise file.error(f"tensor '{name}' has type {info.type_name}, expected {names}")
        expected.add(name)
    for name in file.tensors:  # every tensor the file holds is expected: the loop is bounded
        if name not in expected:
            why = " (llama.cpp's graph uses token_embd as the head)" \
                if name == "output.weight" else ""
            raise file.error(f"tensor '{name[:60]}' is not part of architecture "
                             f"'{arch.name}'{why}, expected none")


def _float32(file: GGUFFile, name: str) -> np.ndarray:
    info = file.tensors[name]
    values = file.array(name)
    widened = bf16_to_float32(values) if info.ggml_type == BF16 else values.astype(np.float32)
    if not np.isfinite(widened).all():
        raise file.error(f"tensor '{name}' holds NaN or infinity")
    return widened


def _table(file: GGUFFile, name: str) -> np.ndarray:
    """(V, D) as stored, a view of the map: bf16 bits (uint16), float16 or float32. F16 and F32
    are checked for NaN a few rows at a time, so that no copy of the whole table is made."""
    table = file.array(name)  # (V, D)
    if file.tensors[name].ggml_type != BF16:
        for start in range(0, table.shape[0], _TABLE_ROWS):
            if not np.isfinite(table[start:start + _TABLE_ROWS]).all():
                raise file.error(f"tensor '{name}' holds NaN or infinity")
    return table


def _load_projection(file: GGUFFile, name: str, heads: int | None,
                     exact: dict[str, np.float32] | None) -> TernaryWeight:
    """One I2_S tensor as a packed TernaryWeight; ``heads``: undo the RoPE row permutation."""
    out_features, in_features = file.tensors[name].shape
    data = file.raw(name)  # (out * in / 4 + 32,) uint8
    if np.any(unpack_i2s_codes(data, out_features, in_features) == INVALID_CODE):
        raise file.error(f"tensor '{name}' holds the invalid code 3 (expected 2-bit codes "
                         "0, 1, 2 for -1, 0, +1)")
    w_ternary, scale = unpack_i2s(data, out_features, in_features)  # (out, in) int8, float32
    if not np.isfinite(scale) or scale <= 0:
        raise file.error(f"tensor '{name}' has I2_S scale {scale}, expected a finite "
                         "positive number")
    weight_scale = weight_scale_from_i2s(file, name, scale, exact)
    if heads is not None:
        w_ternary = unpermute_rope_rows(w_ternary, heads)  # (out, in) in Hugging Face order
    return TernaryWeight(packed=pack_ternary(w_ternary), weight_scale=weight_scale)


def _load_layer(file: GGUFFile, n: int, config: ModelConfig, arch: Architecture,
                exact: dict[str, np.float32] | None) -> LayerWeights:
    fields: dict[str, Any] = dict.fromkeys(SUB_NORMS)  # None unless the architecture has them
    for field, gguf_name in layer_tensors(arch).items():
        name = f"blk.{n}.{gguf_name}.weight"
        if field in PROJECTIONS:
            fields[field] = _load_projection(file, name, rope_heads(arch, config, field), exact)
        else:
            fields[field] = _float32(file, name)
    return LayerWeights(**fields)


def load_gguf(path: str | Path) -> tuple[ModelConfig, Weights]:
    """Open a GGUF file, check every tensor against its metadata and return the model."""
    file = GGUFFile(path)
    config = config_from_gguf(file)
    arch = architecture_of_file(file)
    _check_tensors(file, config, arch)
    exact = read_exact_scales(file)
    weights = Weights(
        embed_tokens=_table(file, "token_embd.weight"),
        layers=[_load_layer(file, n, config, arch, exact)
                for n in range(config.num_hidden_layers)],
        norm=_float32(file, "output_norm.weight"),
        lm_head=_table(file, "output.weight") if "output.weight" in file else None,
    )
    return config, weights


# ---- (ModelConfig, Weights) -> GGUF ----


def _i2s_producer(weight: TernaryWeight, heads: int | None) -> Callable[[], np.ndarray]:
    def produce() -> np.ndarray:
        w_ternary = unpack_ternary(np.asarray(weight.packed))  # (out, in) int8
        if heads is not None:
            w_ternary = permute_rope_rows(w_ternary, heads)  # (out, in) in llama.cpp's order
        return pack_i2s(w_ternary, i2s_scale(weight))
    return produce


def _constant(value: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: value


def _table_tensor(name: str, config: ModelConfig, table: np.ndarray) -> TensorToWrite:
    """An embedding or head in the type it is held in (BF16 bits, F16 or F32)."""
    table = np.asarray(table)  # (V, D)
    kind = TABLE_TYPES.get(table.dtype)
    if kind is None:
        raise CheckpointError(f"GGUF: cannot write tensor '{name}' of dtype {table.dtype}, "
                              "expected bf16 bits (uint16), float16 or float32")
    return TensorToWrite(name, (config.hidden_size, config.vocab_size), kind, _constant(table))


def gguf_tensors(config: ModelConfig, weights: Weights) -> list[TensorToWrite]:
    """Every tensor to write, in file order, each made only when written.

    Projections become I2_S (call :func:`check_gguf_writable` first; q/k rows permuted for
    ``llama``), norms F32 (exact for any float32), embedding and head in their own type.
    """
    arch = writable_architecture(config, "GGUF")
    tensors = [_table_tensor("token_embd.weight", config, weights.embed_tokens)]
    for name, field, value in layer_entries(config, weights):
        if isinstance(value, TernaryWeight):
            dims = (value.in_features, value.out_features)
            heads = rope_heads(arch, config, field)
            tensors.append(TensorToWrite(name, dims, I2_S, _i2s_producer(value, heads)))
        else:
            tensors.append(TensorToWrite(name, (value.shape[0],), F32,
                                         _constant(value.astype("<f4"))))
    tensors.append(TensorToWrite("output_norm.weight", (config.hidden_size,), F32,
                                 _constant(weights.norm.astype("<f4"))))
    if weights.lm_head is not None:
        tensors.append(_table_tensor("output.weight", config, weights.lm_head))
    return tensors


def write_gguf_model(path: str | Path, config: ModelConfig, weights: Weights,
                     on_bytes: Callable[[int], None] | None = None,
                     extra_metadata: dict[str, tuple[int, Any]] | None = None,
                     name: str | None = None) -> Path:
    """Write ``weights`` as a bitnet.cpp I2_S GGUF file (atomically); returns the path.

    extra_metadata: more key -> (value type, value), e.g. the tokenizer (gguf_tokenizer.py)
    name:           general.name; None: the name of the folder the file is written into, as
                    bitnet.cpp writes ggml-model-i2_s.gguf into the model's own folder
    """
    check_gguf_writable(config, path)
    name = model_name(Path(path).parent) if name is None else name
    metadata = {**gguf_metadata(config, name), **weight_scale_metadata(config, weights),
                **(extra_metadata or {})}
    write_gguf(path, metadata, gguf_tensors(config, weights), on_bytes)
    return Path(path)


def gguf_bytes(config: ModelConfig, weights: Weights) -> int:
    """Tensor bytes :func:`write_gguf_model` writes (for a progress bar)."""
    return sum(t.num_bytes for t in gguf_tensors(config, weights))
