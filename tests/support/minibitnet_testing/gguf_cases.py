"""Small checkpoints of every family whose shapes GGUF I2_S can hold, shared by the GGUF and
convert tests: every projection input is a multiple of 128 (whole I2_S blocks), which
family_builders' shapes are not.
"""

from __future__ import annotations

import json
from pathlib import Path

from minibitnet.config import ModelConfig
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
