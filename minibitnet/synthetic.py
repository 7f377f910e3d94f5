"""Random BitNet checkpoints in the exact published layout, for tests and benchmarks.

No model hub is reachable from tests, so they build their own models: random latent weights,
ternarised with the absmean quantiser exactly as BitNet training does at the end, packed into the
Hugging Face 2-bit layout, and written with the safetensors writer (one tensor in memory at a time).
The result loads in transformers' ``BitNetForCausalLM`` as well as in :func:`minibitnet.load`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .checkpoint import WEIGHTS_FILE, expected_tensors
from .config import ModelConfig
from .files import atomic_write_text
from .packing import pack_ternary
from .quant import ternarize_weights
from .safetensors import TensorSpec, float32_to_bf16, write_safetensors

LATENT_STD = 0.02  # std of the random latent weights before ternarisation
NORM_JITTER = 0.1  # norm weights are 1 + N(0, NORM_JITTER^2), so they are not all equal


def tiny_config(**overrides: object) -> ModelConfig:
    """A small config for tests; keyword arguments replace fields."""
    fields: dict[str, object] = dict(
        vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5,
        rope_theta=10000.0, max_position_embeddings=128, tie_word_embeddings=True,
        bos_token_id=1, eos_token_ids=(2,),
    )
    fields.update(overrides)
    if "head_dim" not in overrides:
        fields["head_dim"] = int(fields["hidden_size"]) // int(fields["num_attention_heads"])  # type: ignore[call-overload]
    return ModelConfig(**fields)  # type: ignore[arg-type]


class _RandomTensors:
    """Produces each tensor's data in file order; a weight_scale follows its packed weight."""

    def __init__(self, config: ModelConfig, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.table_std = 1.0 / np.sqrt(config.hidden_size)  # logits of order 1 through the head
        self.last_scale = np.float32(1.0)

    def __call__(self, spec: TensorSpec) -> np.ndarray:
        if spec.dtype == "U8":  # packed ternary weight (out/4, in)
            shape = (4 * spec.shape[0], spec.shape[1])  # (out, in)
            latent = self.rng.normal(0.0, LATENT_STD, shape).astype(np.float32)
            w_ternary, self.last_scale = ternarize_weights(latent)
            return pack_ternary(w_ternary)
        if spec.name.endswith(".weight_scale"):  # the scale its weight was ternarised with
            return float32_to_bf16(np.array([self.last_scale], np.float32))
        if len(spec.shape) == 1:  # RMSNorm weights
            values = 1.0 + NORM_JITTER * self.rng.standard_normal(spec.shape)
            return float32_to_bf16(values.astype(np.float32))
        values = self.rng.normal(0.0, self.table_std, spec.shape)  # embedding / untied head
        return float32_to_bf16(values.astype(np.float32))


def write_checkpoint(
    out_dir: str | Path,
    config: ModelConfig,
    seed: int = 0,
    progress: Callable[[TensorSpec], None] | None = None,
) -> Path:
    """Write config.json and model.safetensors for ``config`` with random ternary weights.

    returns: the model folder
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = [TensorSpec(name, dtypes[0], shape)
             for name, (shape, dtypes) in expected_tensors(config).items()]
    write_safetensors(out_dir / WEIGHTS_FILE, specs, _RandomTensors(config, seed),
                      progress=progress)
    atomic_write_text(out_dir / "config.json", json.dumps(config.to_json_dict(), indent=2) + "\n")
    return out_dir
