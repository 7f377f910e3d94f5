"""GGUF model metadata <-> :class:`ModelConfig`: the keys llama.cpp reads for each architecture.

Metadata (prefix: the architecture, e.g. ``llama.``): embedding_length (D), block_count,
feed_forward_length (F), attention.head_count (H), attention.head_count_kv (K, default H),
attention.layer_norm_rms_epsilon, rope.freq_base (default 10000, as llama.cpp),
context_length, rope.dimension_count (Hd: the whole head rotates), attention.key_length and
value_length (Hd; written only when it is not D / H, its default); ``bitnet`` also carries
rope.scaling.type "linear" with factor 1.0, as bitnet.cpp's converter writes it.
``tokenizer.ggml.bos_token_id`` / ``eos_token_id`` / ``eot_token_id`` when present (the stop
ids are EOS then EOT, so config.json's eos_token_id keeps at most two). V is the embedding's
row count. Names as gguf-py's key tables and bitnet.cpp's
``utils/convert-hf-to-gguf-bitnet.py``.

``general.architecture`` gives the family (gguf_architectures.py); the config.json keys that
name it (families.family_of reads them) are added, and the config goes through config.json's
checks (config.py). The config read is always ``quantization_mode`` "offline": an I2_S tensor
holds ternary codes and a stored scale, whatever its family (a 1bitLLM config.json is "online"
because that checkpoint holds fp16 latents; its GGUF holds none).

Written as bitnet.cpp's tools write them, and not read: ``general.name`` (its converter
``utils/convert-hf-to-gguf-bitnet.py`` names the model after its folder, ``dir_model.name``;
see :func:`model_name`), ``general.file_type`` 40 (``LLAMA_FTYPE_MOSTLY_I2_S`` in the
``enum llama_ftype`` of bitnet.cpp's llama.cpp, ``include/llama.h``; without the key llama.cpp
guesses the type from the tensors and prints "(guessed)"), and ``general.quantization_version``
2 (``GGML_QNT_VERSION``, which its ``llama-quantize`` writes beside the file type).

Refused on read, with a CheckpointError naming the file: an architecture other than the three
of gguf_architectures.py; any RoPE scaling but none (or bitnet.cpp's linear 1.0), and
llama.cpp's ``rope_freqs.weight``, the per-frequency factors of Llama 3.1 RoPE scaling, which
this package's RoPE does not take (refused on write too); a key_length, value_length or
rope.dimension_count other than the head size.

The rest of the tokenizer metadata (``tokenizer.ggml.*``: tokens, merges, token types) is
gguf_tokenizer.py's; the tensors are gguf_checkpoint.py's.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ...config import ModelConfig, check_float_range, config_from_dict
from ...families import FAMILIES, LLAMA_BITNET, ONEBITLLM
from .container import (
    FLOAT32, FLOAT_TYPES, INTEGER_TYPES, STRING, UINT32, VALUE_TYPE_NAMES, GGUFFile,
)
from .architectures import ARCHITECTURES, Architecture, writable_architecture

FILE_TYPE_MOSTLY_I2_S = 40  # general.file_type: LLAMA_FTYPE_MOSTLY_I2_S, bitnet.cpp's llama.h
QUANTIZATION_VERSION = 2  # general.quantization_version: GGML_QNT_VERSION, bitnet.cpp's ggml.h
HUB_SNAPSHOTS = "snapshots"  # the Hugging Face cache: models--ORG--NAME/snapshots/<commit>/


# ---- metadata -> ModelConfig ----


def _number(file: GGUFFile, key: str, kinds: tuple[int, ...], default: Any = None) -> Any:
    """The value of ``key`` if its type is one of ``kinds``; ``default`` when absent."""
    if key not in file.metadata:
        if default is None:
            raise file.error(f"missing metadata '{key}'")
        return default
    value_type = file.value_types[key]
    if value_type not in kinds:
        expected = "an integer" if kinds == INTEGER_TYPES else "a float"
        raise file.error(f"metadata '{key}' has type {VALUE_TYPE_NAMES[value_type]}, "
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
        raise file.error(f"metadata '{key}' has type {VALUE_TYPE_NAMES[file.value_types[key]]}, "
                         "expected a string")
    value: str = file.metadata[key]
    return value


def architecture_of_file(file: GGUFFile) -> Architecture:
    """The architecture ``general.architecture`` names; CheckpointError for any other."""
    name = _string(file, "general.architecture", "")
    if name not in ARCHITECTURES:
        *others, last = (f"'{a}'" for a in ARCHITECTURES)
        raise file.error(f"general.architecture is {name[:40]!r}, expected "
                         f"{', '.join(others)} or {last}")
    return ARCHITECTURES[name]


def _check_rope(file: GGUFFile, arch: Architecture) -> None:
    """Plain RoPE only: no scaling type but none or linear 1.0 (bitnet.cpp's identity), and no
    per-frequency factors (llama.cpp's form of Llama 3.1 scaling)."""
    scaling = _string(file, f"{arch.name}.rope.scaling.type", "none")
    factor = _number(file, f"{arch.name}.rope.scaling.factor", FLOAT_TYPES, 1.0)
    if scaling not in ("none", "linear") or (scaling == "linear" and factor != 1.0):
        raise file.error(f"RoPE scaling {scaling[:40]!r} (factor {factor!r}) is not supported, "
                         "expected none")
    if "rope_freqs.weight" in file:
        raise file.error("holds 'rope_freqs.weight', per-frequency RoPE factors (llama.cpp's "
                         "form of Llama 3.1 rope scaling), which are not supported; expected "
                         "plain RoPE")


def _float_in_range(file: GGUFFile, key: str, config_key: str, default: Any = None) -> float:
    """A FLOAT32/FLOAT64 value of ``key`` in the range the maths needs for ``config_key``
    (config.FLOAT_RANGES, the range config.json's value has too); the error names ``key``."""
    value = float(_number(file, key, FLOAT_TYPES, default))
    return check_float_range(config_key, value, f"{file.path} (metadata '{key}')")


def _family_keys(arch: Architecture) -> dict[str, Any]:
    """The config.json keys that name the family of ``arch`` (families.family_of reads them)."""
    family = FAMILIES[arch.family]
    keys: dict[str, Any] = {"model_type": family.model_type,
                            "architectures": [family.architecture],
                            "hidden_act": family.hidden_act}
    if arch.family == LLAMA_BITNET:  # packed codes with their scale: BitLinear, offline
        keys["quantization_config"] = {"quant_method": "bitnet"}
    if arch.family == ONEBITLLM:  # its ternary weights and int8 activations
        keys.update(weight_bits=1, input_bits=8)
    return keys


def _check_head_size(file: GGUFFile, arch: Architecture, config: ModelConfig) -> None:
    """key_length, value_length and rope.dimension_count, where present, are the head size."""
    for key in ("attention.key_length", "attention.value_length", "rope.dimension_count"):
        value = _number(file, f"{arch.name}.{key}", INTEGER_TYPES, config.head_dim)
        if value != config.head_dim:
            raise file.error(f"metadata '{arch.name}.{key}' is {value}, expected the head size "
                             f"{config.head_dim} (RoPE over whole heads, keys and values "
                             "of one size)")


def config_from_gguf(file: GGUFFile) -> ModelConfig:
    """Check the architecture and read the config from the metadata (and the embedding shape)."""
    arch = architecture_of_file(file)
    _check_rope(file, arch)
    embedding = file.tensors.get("token_embd.weight")
    if embedding is None or len(embedding.dims) != 2:
        raise file.error("missing tensor 'token_embd.weight' (expected 2 dimensions [D, V])")
    p = arch.name + "."
    heads = _number(file, p + "attention.head_count", INTEGER_TYPES)
    raw: dict[str, Any] = {
        **_family_keys(arch),
        "vocab_size": embedding.dims[1],
        "hidden_size": _number(file, p + "embedding_length", INTEGER_TYPES),
        "intermediate_size": _number(file, p + "feed_forward_length", INTEGER_TYPES),
        "num_hidden_layers": _number(file, p + "block_count", INTEGER_TYPES),
        "num_attention_heads": heads,
        "num_key_value_heads": _number(file, p + "attention.head_count_kv", INTEGER_TYPES, heads),
        "rms_norm_eps": _float_in_range(file, p + "attention.layer_norm_rms_epsilon",
                                        "rms_norm_eps"),
        "rope_theta": _float_in_range(file, p + "rope.freq_base", "rope_theta", 10000.0),
        "max_position_embeddings": _number(file, p + "context_length", INTEGER_TYPES),
        # an output.weight under an architecture without one is refused with the tensors
        "tie_word_embeddings": not (arch.has_output and "output.weight" in file),
    }
    if p + "attention.key_length" in file.metadata:  # Hd when it is not D / H
        raw["head_dim"] = _number(file, p + "attention.key_length", INTEGER_TYPES)
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
    config = config_from_dict(raw, f"{file.path} (metadata)")
    _check_head_size(file, arch, config)
    # config_from_dict makes 1bitLLM "online" (its checkpoint holds latents); every I2_S
    # tensor holds codes with a stored scale, so the weights are quantised offline
    return replace(config, quantization_mode="offline")


# ---- ModelConfig -> metadata ----


def model_name(folder: str | Path, source: GGUFFile | None = None) -> str:
    """The ``general.name`` of a model read from ``folder``.

    source: the GGUF file the model was read from, if it was: the name it carries is kept.
    Otherwise the folder's name, as bitnet.cpp's converter names it (``dir_model.name``), but
    for a snapshot of the Hugging Face cache, ``models--ORG--NAME/snapshots/<commit>``, NAME
    (the folder's own name is a commit hash).
    """
    if source is not None and source.value_types.get("general.name") == STRING:
        name: str = source.metadata["general.name"]
        return name
    # abspath, not resolve: "." gets a name, and a symlinked folder keeps the name it was given
    absolute = Path(os.path.abspath(folder))
    repo = absolute.parent.parent.name
    if absolute.parent.name == HUB_SNAPSHOTS and repo.startswith("models--"):
        return repo.split("--", 2)[-1]  # a repo name cannot hold "--" (huggingface_hub)
    return absolute.name


def gguf_metadata(config: ModelConfig, name: str) -> dict[str, tuple[int, Any]]:
    """The metadata written for ``config``: key -> (value type, value).

    name: general.name (see :func:`model_name`)
    """
    arch = writable_architecture(config, "GGUF")
    p = arch.name + "."
    metadata: dict[str, tuple[int, Any]] = {
        "general.architecture": (STRING, arch.name),
        "general.name": (STRING, name),
        "general.file_type": (UINT32, FILE_TYPE_MOSTLY_I2_S),
        "general.quantization_version": (UINT32, QUANTIZATION_VERSION),
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
    if config.q_size != config.hidden_size:  # llama.cpp takes Hd = D / H unless told
        metadata[p + "attention.key_length"] = (UINT32, config.head_dim)
        metadata[p + "attention.value_length"] = (UINT32, config.head_dim)
    if arch.linear_rope_key:
        metadata[p + "rope.scaling.type"] = (STRING, "linear")
        metadata[p + "rope.scaling.factor"] = (FLOAT32, 1.0)
    if config.bos_token_id is not None:
        metadata["tokenizer.ggml.bos_token_id"] = (UINT32, config.bos_token_id)
    # GGUF names one EOS and one EOT token: a third stop id has no key and is not written
    for key, token_id in zip(("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"),
                             config.eos_token_ids):
        metadata[key] = (UINT32, token_id)
    return metadata
