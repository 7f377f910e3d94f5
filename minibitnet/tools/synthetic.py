"""Random BitNet checkpoints in the exact published layout, for tests and benchmarks.

No model hub is reachable from tests, so they build their own models: random latent weights,
ternarised with the absmean quantiser as BitNet training does at the end, packed into the
Hugging Face 2-bit layout, and streamed to disk a few megabytes at a time (a 13 B-parameter
checkpoint is written without holding any tensor whole). The result loads in transformers'
``BitNetForCausalLM`` as well as in :func:`minibitnet.load`.

How a ternary weight is made. The latent tensor is w ~ N(0, σ²); absmean ternarisation
(:func:`minibitnet.core.quant.ternarize_weights`) takes s = 1 / mean|w| and codes clip(rint(w s), -1, 1),
stored with ``weight_scale`` = s. Two shortcuts make this cost about a nanosecond per weight:

- s is the absmean of the distribution, E|w| = σ √(2/π), not of the sample; for tensors of a
  million weights they differ by well under 0.1 %, and s becomes known before any weight is drawn;
- a code depends only on whether w lies below -½E|w|, between, or above +½E|w|, that is on
  whether Φ(w/σ) lies below Φ(-t) or above Φ(t) with t = ½√(2/π) ≈ 0.399. Each latent is drawn
  by inverse-transform sampling from a uniform 16-bit integer u, w = σ Φ⁻¹((u + ½) / 2¹⁶), so its
  code is read off u with two integer comparisons and w itself is never formed.

Worked numbers: Φ(-0.399) = 0.345, so about 34.5 % of the codes are -1, 31.0 % are 0 and 34.5 %
are +1, and ``weight_scale`` = 1 / (0.798 σ).

Per-tensor scales, chosen so that activations stay in a plausible range through 30 layers (an
effective weight code / s has variance 0.44 σ², so a unit-RMS input of width ``in`` gives outputs
of RMS √(0.44 in) σ):

    q, k, v, gate, up   σ = 1/√in            outputs of RMS about 0.66
    o_proj, down_proj   σ = 1/√(2 L in)      the 2L residual updates of L layers add up to an
                                             RMS of order one (GPT-2's residual scaling)
    embedding (bf16)    N(0, 1/D)            the tied head then gives logits of RMS about 1
    norms (bf16)        1 + N(0, 0.1²)       not all equal, so a transposed norm shows up
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..formats.checkpoint import WEIGHTS_FILE, expected_tensors
from ..config import ModelConfig
from ..files import atomic_write_text
from ..formats.safetensors import TensorSpec, write_safetensors
from ..core.bfloat16 import float32_to_bf16

NORM_JITTER = 0.1  # norm weights are 1 + N(0, NORM_JITTER^2), so they are not all equal
CHUNK_WEIGHTS = 1 << 24  # weights generated per chunk: 16 MB of codes, bounded memory
UNIFORM_LEVELS = 1 << 16  # u is a uniform 16-bit integer

# t = ½ E|z| for z ~ N(0, 1): the latent/σ beyond which absmean ternarisation gives ±1
HALF_ABSMEAN = 0.5 * math.sqrt(2.0 / math.pi)


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


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def code_thresholds() -> tuple[int, int]:
    """The 16-bit thresholds (lo, hi): code -1 when u < lo, 0 when lo <= u < hi, +1 when u >= hi.

    u is +1 exactly when (u + ½) / 2¹⁶ > Φ(t), i.e. u > 2¹⁶ Φ(t) - ½; likewise for -1. The two
    counts are equal (lo = 2¹⁶ - hi), so the codes are symmetric about zero.
    """
    lo = math.ceil(UNIFORM_LEVELS * _normal_cdf(-HALF_ABSMEAN) - 0.5)
    hi = math.floor(UNIFORM_LEVELS * _normal_cdf(HALF_ABSMEAN) - 0.5) + 1
    return lo, hi


CODE_LO, CODE_HI = code_thresholds()


def latent_std(name: str, config: ModelConfig) -> float:
    """σ of the latent weights of projection ``name`` (e.g. "model.layers.3.mlp.down_proj")."""
    in_features = config.intermediate_size if name.endswith("down_proj") else (
        config.q_size if name.endswith("o_proj") else config.hidden_size)
    if name.endswith(("o_proj", "down_proj")):  # these write into the residual stream
        return 1.0 / math.sqrt(2 * config.num_hidden_layers * in_features)
    return 1.0 / math.sqrt(in_features)


def weight_scale_of(std: float) -> float:
    """The absmean scale s = 1 / E|w| of N(0, std²) latents, so that w ≈ w_ternary / s."""
    return 1.0 / (std * math.sqrt(2.0 / math.pi))


def random_codes(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """2-bit codes (ternary + 1) of absmean-ternarised N(0, σ²) latents; σ does not matter.

    returns: ``shape`` uint8 in {0, 1, 2}, i.e. w_ternary + 1
    """
    count = math.prod(shape)
    raw = rng.bit_generator.random_raw((count + 3) // 4)  # (ceil(count/4),) uint64
    # little-endian on every platform, so a seed gives the same file everywhere
    u = raw.astype("<u8", copy=False).view("<u2")[:count].reshape(shape)  # uniform 16-bit
    return (u >= CODE_LO).view(np.uint8) + (u >= CODE_HI).view(np.uint8)


def random_packed_weight(rng: np.random.Generator, rows: int, in_features: int
                         ) -> Iterator[np.ndarray]:
    """A packed (rows, in) uint8 ternary weight in the layout of packing.py, in row chunks.

    Packed row r holds weight rows r, R + r, 2R + r, 3R + r (R = rows) in bit pairs 0, 2, 4, 6.
    The weights are independent and identically distributed, so each chunk draws its four
    blocks of codes together: (4, chunk, in) codes packed into (chunk, in) bytes, the same bytes
    :func:`minibitnet.core.packing.pack_ternary` gives for those rows.
    """
    step = max(1, CHUNK_WEIGHTS // (4 * max(in_features, 1)))
    for start in range(0, rows, step):
        count = min(step, rows - start)
        codes = random_codes(rng, (4, count, in_features))  # (4, chunk, in) in {0, 1, 2}
        yield codes[0] | (codes[1] << 2) | (codes[2] << 4) | (codes[3] << 6)  # (chunk, in)


def random_bf16_rows(rng: np.random.Generator, shape: tuple[int, ...], std: float
                     ) -> Iterator[np.ndarray]:
    """N(0, std²) values as bf16 bits, in row chunks of about CHUNK_WEIGHTS values."""
    rows, width = shape[0], math.prod(shape[1:])
    step = max(1, CHUNK_WEIGHTS // max(width, 1))
    for start in range(0, rows, step):
        count = min(step, rows - start)
        values = rng.standard_normal((count, *shape[1:]), dtype=np.float32)  # (chunk, ...)
        yield float32_to_bf16(values * np.float32(std))


class RandomTensors:
    """Produces each tensor's data in file order, as chunks; for :func:`write_safetensors`."""

    def __init__(self, config: ModelConfig, seed: int) -> None:
        self.config = config
        self.rng = np.random.default_rng(seed)
        self.table_std = 1.0 / math.sqrt(config.hidden_size)  # logits of order 1 through the head

    def __call__(self, spec: TensorSpec) -> np.ndarray | Iterator[np.ndarray]:
        if spec.dtype == "U8":  # packed ternary weight (out/4, in)
            return random_packed_weight(self.rng, spec.shape[0], spec.shape[1])
        if spec.name.endswith(".weight_scale"):  # the scale its weight was ternarised with
            std = latent_std(spec.name.removesuffix(".weight_scale"), self.config)
            return float32_to_bf16(np.array([weight_scale_of(std)], np.float32))
        if len(spec.shape) == 1:  # RMSNorm weights
            values = 1.0 + NORM_JITTER * self.rng.standard_normal(spec.shape)
            return float32_to_bf16(values.astype(np.float32))
        return random_bf16_rows(self.rng, spec.shape, self.table_std)  # embedding / untied head


def checkpoint_specs(config: ModelConfig) -> list[TensorSpec]:
    """Every tensor of a checkpoint of ``config`` (name, dtype, shape), in file order."""
    return [TensorSpec(name, dtypes[0], shape)
            for name, (shape, dtypes) in expected_tensors(config).items()]


def checkpoint_bytes(config: ModelConfig) -> int:
    """Size of the data section of model.safetensors for ``config`` (the header adds ~60 kB)."""
    return sum(spec.num_bytes for spec in checkpoint_specs(config))


def write_checkpoint(
    out_dir: str | Path,
    config: ModelConfig,
    seed: int = 0,
    progress: Callable[[TensorSpec], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Path:
    """Write config.json and model.safetensors for ``config`` with random ternary weights.

    Each file is written atomically (temporary file, then rename), model.safetensors first, so
    an interrupted run leaves no partial model and no config.json pointing at one.

    progress: called after each tensor; on_bytes: after each chunk, with its size in bytes
    returns:  the model folder
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_safetensors(out_dir / WEIGHTS_FILE, checkpoint_specs(config),
                      RandomTensors(config, seed), progress=progress, on_bytes=on_bytes)
    atomic_write_text(out_dir / "config.json", json.dumps(config.to_json_dict(), indent=2) + "\n")
    return out_dir
