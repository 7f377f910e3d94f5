"""Checkpoint builders for tests: models in the exact published layout, written to tmp_path."""

from __future__ import annotations

from pathlib import Path

from minibitnet.config import ModelConfig
from minibitnet.tools.synthetic import tiny_config, write_checkpoint

# Awkward shapes on purpose: hidden not a multiple of 64, 3 query heads per KV head,
# intermediate not a multiple of 32, a head size that is not a power of two.
SHAPES: dict[str, ModelConfig] = {
    "tiny": tiny_config(),
    "awkward": tiny_config(vocab_size=300, hidden_size=72, num_attention_heads=6,
                           num_key_value_heads=2, intermediate_size=100, num_hidden_layers=2),
    "mha": tiny_config(hidden_size=48, num_attention_heads=3, num_key_value_heads=3,
                       intermediate_size=68, num_hidden_layers=3),
}


def build_checkpoint(folder: Path, shape: str = "tiny", seed: int = 0, **overrides: object) -> Path:
    """Write a random model of SHAPES[shape] (fields replaced by ``overrides``) into ``folder``."""
    config = SHAPES[shape]
    if overrides:
        fields = {**config.__dict__, **overrides}
        fields.pop("extra", None)
        config = ModelConfig(**fields)
    return write_checkpoint(folder, config, seed=seed)
