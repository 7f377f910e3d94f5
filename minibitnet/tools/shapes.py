"""Named model shapes for ``minibitnet make-checkpoint`` and the scaling benchmark.

``2b4t`` is microsoft/bitnet-b1.58-2B-4T (its config.json is quoted in config.py): 542 tensors,
2.41 B parameters, 1.19 GB on disk.

The sizes 125M ... 13B are bitnet.cpp's dummy-model table, ``model_config`` in
``utils/generate-dummy-bitnet-model.py`` of github.com/microsoft/BitNet: hidden, intermediate,
layers and heads as listed there; that script gives every size 32002 embedding rows, as many
key/value heads as query heads (k_proj and v_proj are hidden x hidden) and no output head, so
the head is tied to the embedding. Its table has no 3.3B row (it has 2.7B and 3.8B); 3.3B here
is bitnet.cpp's other benchmark model of that size, 1bitLLM/bitnet_b1_58-3B (hidden 3200,
intermediate 8640, 26 layers, 32 heads, head size 100, vocabulary 32002).

The 32002-row shapes keep the LLaMA-2 constants of the 1bitLLM models: RoPE base 10000, 2048
positions, bos 1, eos 2. All are written in the 2B4T layout (packed uint8 ternary weights, bf16
scales, norms and tied embedding), which transformers' ``BitNetForCausalLM`` loads.
"""

from __future__ import annotations

from ..formats.checkpoint import expected_tensors
from ..config import ModelConfig
from ..errors import ArgumentError
from .synthetic import tiny_config


def _llama2_shape(hidden: int, intermediate: int, layers: int, heads: int) -> ModelConfig:
    """A shape of bitnet.cpp's dummy table: multi-head attention, 32002-row tied embedding."""
    return ModelConfig(
        vocab_size=32002, hidden_size=hidden, intermediate_size=intermediate,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        head_dim=hidden // heads, rms_norm_eps=1e-5, rope_theta=10000.0,
        max_position_embeddings=2048, tie_word_embeddings=True, bos_token_id=1,
        eos_token_ids=(2,),
    )


SHAPES: dict[str, ModelConfig] = {
    "tiny": tiny_config(),
    "2b4t": ModelConfig(
        vocab_size=128256, hidden_size=2560, intermediate_size=6912, num_hidden_layers=30,
        num_attention_heads=20, num_key_value_heads=5, head_dim=128, rms_norm_eps=1e-5,
        rope_theta=500000.0, max_position_embeddings=4096, tie_word_embeddings=True,
        bos_token_id=128000, eos_token_ids=(128001,),
    ),
    "125M": _llama2_shape(768, 3072, 11, 12),
    "350M": _llama2_shape(1024, 3072, 24, 16),
    "1.5B": _llama2_shape(1536, 9216, 28, 32),
    "3.3B": _llama2_shape(3200, 8640, 26, 32),
    "7B": _llama2_shape(4096, 12032, 32, 32),
    "13B": _llama2_shape(5120, 13824, 40, 40),
}

# The sizes of the scaling benchmark, smallest first.
SCALING_SIZES = ["125M", "350M", "1.5B", "3.3B", "7B", "13B"]


def get_shape(name: str, option: str = "--shape") -> ModelConfig:
    """The config of shape ``name``; an unknown name lists the valid ones (naming ``option``)."""
    config = SHAPES.get(name)
    if config is None:
        raise ArgumentError(f"{option} {name!r} is not a known shape; expected one of: "
                            f"{', '.join(SHAPES)}")
    return config


def count_parameters(config: ModelConfig) -> dict[str, int]:
    """Parameters by part: "ternary" (the BitLinear weights), "embedding", "norms", "total".

    The tied head shares the embedding and is not counted twice; weight scales are not
    parameters.
    """
    counts = {"ternary": 0, "embedding": 0, "norms": 0}
    for name, (shape, dtypes) in expected_tensors(config).items():
        size = 1
        for dim in shape:
            size *= dim
        if dtypes == ("U8",):
            counts["ternary"] += 4 * size  # four weights per packed byte
        elif name.endswith(".weight_scale"):
            continue
        elif len(shape) == 2:
            counts["embedding"] += size
        else:
            counts["norms"] += size
    counts["total"] = sum(counts.values())
    return counts
