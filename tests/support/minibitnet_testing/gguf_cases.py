"""Small checkpoints of every family whose shapes GGUF I2_S can hold, shared by the GGUF and
convert tests: every projection input is a multiple of 128 (whole I2_S blocks), which
family_builders' shapes are not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from minibitnet.cli import main
from minibitnet.config import ModelConfig
from minibitnet.formats.gguf.container import (
    ARRAY, BOOL, FLOAT32, FLOAT64, INT8, INT16, INT32, INT64, STRING, UINT8, UINT16, UINT32,
    UINT64, GGUFFile, TensorToWrite, write_gguf,
)
from minibitnet.families import LLAMA_BITNET, ONEBITLLM
from minibitnet.tokenizer.synthetic import synthetic_vocab, tokenizer_json
from minibitnet.tools.synthetic import tiny_config, write_checkpoint
from minibitnet_testing.family_builders import write_float_checkpoint

# D 128, F 256, Hd 64: every projection input is whole I2_S blocks
BASE = dict(vocab_size=300, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, head_dim=64)
LLAMA = dict(family=LLAMA_BITNET, hidden_act="silu", has_sub_norms=False)
# name -> (config, how the checkpoint is stored: "packed" codes + scales, or masters of a dtype)
CASES: dict[str, tuple[ModelConfig, str]] = {
    "bitnet-packed": (tiny_config(**BASE), "packed"),
    "bitnet-online": (tiny_config(**BASE, quantization_mode="online"), "BF16"),
    # Falcon3-like: GQA, tied; and untied with H * Hd = 4 * 64 = 256 != D
    "llama-tied": (tiny_config(**BASE, **LLAMA), "packed"),
    "llama-untied": (tiny_config(**{**BASE, "num_attention_heads": 4, "num_key_value_heads": 2},
                                 **LLAMA, tie_word_embeddings=False), "packed"),
    "llama-online": (tiny_config(**BASE, **LLAMA, quantization_mode="online",
                                 tie_word_embeddings=False), "BF16"),
    "1bitllm": (tiny_config(**BASE, family=ONEBITLLM, hidden_act="silu",
                            quantization_mode="online"), "F16"),
    # what writers.py makes of a packed 1bitLLM model: the bitnet family with a SiLU gate
    "bitnet-silu": (tiny_config(**BASE, hidden_act="silu"), "packed"),
}


def build_source(folder: Path, config: ModelConfig, stored: str, seed: int = 3) -> Path:
    if stored == "packed":
        return write_checkpoint(folder, config, seed=seed)
    return write_float_checkpoint(folder, config, stored, seed=seed)


def gguf_model_with_tokenizer(folder: Path, **changes: object) -> Path:
    """A packed bitnet-b1.58 model of GGUF-sized shapes (BASE) with a LLaMA-3-style tokenizer of
    300 tokens + 256 specials, which bitnet.cpp needs to load a file."""
    spec = tokenizer_json(synthetic_vocab(300))
    config = tiny_config(**{**BASE, "vocab_size": 556, **changes})
    write_checkpoint(folder, config, seed=5)
    (folder / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    return folder


# the GGUF value type of a numeric array, by the NumPy dtype the reader gives it
NUMPY_TYPES = {"|u1": UINT8, "|i1": INT8, "<u2": UINT16, "<i2": INT16, "<u4": UINT32,
               "<i4": INT32, "<f4": FLOAT32, "|b1": BOOL, "<u8": UINT64, "<i8": INT64,
               "<f8": FLOAT64}


def gguf_file_with_tokenizer(folder: Path) -> Path:
    """``folder``/ggml-model-i2_s.gguf: :func:`gguf_model_with_tokenizer` converted as
    ``minibitnet convert --to gguf-i2s`` writes it, its tokenizer in the metadata; BOS and EOS
    are the vocabulary's <|begin_of_text|> and <|end_of_text|>, so the tokenizer loads too."""
    source = gguf_model_with_tokenizer(folder.parent / f"{folder.name}-source",
                                       bos_token_id=300, eos_token_ids=(301,))
    if main(["convert", str(source), str(folder), "--to", "gguf-i2s"]) != 0:
        raise AssertionError("convert failed on the test model")
    return folder / "ggml-model-i2_s.gguf"


def read_metadata(path: Path) -> dict[str, tuple[int, Any]]:
    """The metadata of a GGUF file in the form write_gguf takes: key -> (value type, value),
    an ARRAY as (element type, list of elements). Arrays of arrays are not read back."""
    file = GGUFFile(path)
    metadata: dict[str, tuple[int, Any]] = {}
    for key, value in file.metadata.items():
        kind = file.value_types[key]
        if kind == ARRAY:
            element_type = STRING if isinstance(value, list) else NUMPY_TYPES[value.dtype.str]
            metadata[key] = (ARRAY, (element_type, [v if isinstance(v, str) else v.item()
                                                    for v in value]))
        else:
            metadata[key] = (kind, value)
    return metadata


def rewrite_gguf(source: Path, destination: Path,
                 metadata: dict[str, tuple[int, Any]]) -> Path:
    """``source`` with its metadata replaced by ``metadata`` (write_gguf's form); the tensors
    are copied byte for byte."""
    file = GGUFFile(source)
    tensors = [TensorToWrite(name, info.dims, info.ggml_type,
                             lambda name=name: np.array(file.raw(name)))
               for name, info in sorted(file.tensors.items(), key=lambda item: item[1].offset)]
    destination.parent.mkdir(parents=True, exist_ok=True)
    write_gguf(destination, metadata, tensors)
    return destination
