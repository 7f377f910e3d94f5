"""Operation counts and an energy estimate for one forward token, ternary vs FP16.

Why ternary models are cheap, in numbers. For one new token at position ``S - 1`` (attending to S
keys), this module counts what the forward pass does, part by part:

- **ternary projections** (q, k, v, o, gate, up, down in every block): each non-zero weight adds or
  subtracts one int8 activation into an int32 sum, so the count of integer adds/subtracts is the
  number of non-zero weights, read from the checkpoint; zeros cost nothing. The float work left is
  quantising each distinct input (one multiply and one comparison per element) and rescaling each
  output (one multiply). The FP16 model of the same shape does one multiply and one add per weight.
- **attention** (``softmax(q k^T) v``) and the **output head** (``h @ table.T``) are float in both
  models, so they cost the same in both.
- **weights read**: the bytes the forward pass must bring from memory: 2 bits per ternary weight
  (the packed layout) against 16 bits per FP16 weight, plus the bf16 head table, norms and scales
  that both models read alike; the KV cache is counted separately.

Element-wise work (RMSNorm, RoPE, softmax exponentials, squared ReLU, residual adds) is O(D + F)
per layer, under 1% of the total at every published shape, and is not counted.

Energy uses the 45 nm figures of M. Horowitz, "Computing's energy problem (and what we can do
about it)", ISSCC 2014 (table :data:`HOROWITZ_45NM_PJ`). Integer accumulations are priced as
32-bit adds, because the sums of int8 values need an int32 accumulator; pricing them as 8-bit adds
(0.03 pJ) as the BitNet papers do would make the ternary side about three times cheaper still.
The BitNet b1.58 paper itself quotes 7 nm figures; the 45 nm table is used here because its source
is the primary measurement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..formats.checkpoint import load_weights
from ..config import ModelConfig, load_config
from ..core.weights import TernaryWeight

# Energy per operation in picojoules, 45 nm, 0.9 V (Horowitz, ISSCC 2014, figure "rough energy
# costs for various operations"). Memory: one 64-bit DRAM access costs 1.3-2.6 nJ; the lower
# figure is used, per byte.
HOROWITZ_45NM_PJ: dict[str, float] = {
    "int8_add": 0.03,
    "int32_add": 0.1,
    "int8_mult": 0.2,
    "int32_mult": 3.1,
    "fp16_add": 0.4,
    "fp16_mult": 1.1,
    "fp32_add": 0.9,
    "fp32_mult": 3.7,
    "dram_byte": 1300.0 / 8,
}
ENERGY_SOURCE = ('M. Horowitz, "Computing\'s energy problem (and what we can do about it)", '
                 "ISSCC 2014, 45 nm")


@dataclass
class TokenCost:
    """Counts for one forward token (plain Python ints, so nothing overflows)."""

    int_add: int = 0  # integer adds and subtracts (int8 values into int32 sums)
    int_mult: int = 0  # integer multiplies
    float_add: int = 0  # float adds (and comparisons, which cost about the same)
    float_mult: int = 0  # float multiplies (and divisions)
    weight_bytes: int = 0  # bytes of weights read from memory
    kv_bytes: int = 0  # bytes of KV cache read (FP16 keys and values in both models)

    def __add__(self, other: TokenCost) -> TokenCost:
        return TokenCost(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple())))

    def as_tuple(self) -> tuple[int, int, int, int, int, int]:
        return (self.int_add, self.int_mult, self.float_add, self.float_mult, self.weight_bytes,
                self.kv_bytes)

    def arithmetic_pj(self, table: dict[str, float] = HOROWITZ_45NM_PJ) -> float:
        """Energy of the arithmetic in pJ: int as int32, float as FP16 (bf16 costs the same)."""
        return (self.int_add * table["int32_add"] + self.int_mult * table["int32_mult"]
                + self.float_add * table["fp16_add"] + self.float_mult * table["fp16_mult"])

    def memory_pj(self, table: dict[str, float] = HOROWITZ_45NM_PJ) -> float:
        """Energy of reading the weights and the KV cache from DRAM, in pJ."""
        return (self.weight_bytes + self.kv_bytes) * table["dram_byte"]


@dataclass
class ModelCost:
    """Per-part costs of one forward token for one model (part name -> TokenCost)."""

    parts: dict[str, TokenCost] = field(default_factory=dict)

    @property
    def total(self) -> TokenCost:
        total = TokenCost()
        for cost in self.parts.values():
            total = total + cost
        return total


# ---- counting non-zero ternary weights in the packed layout ----

# For every byte value, how many of its four 2-bit codes are non-zero weights (code 0 is -1 and
# code 2 is +1; code 1 is 0).
_NONZERO_PER_BYTE = np.array(
    [sum(((b >> (2 * i)) & 3) != 1 for i in range(4)) for b in range(256)], dtype=np.int64)


def count_nonzero(weight: TernaryWeight) -> int:
    """Number of non-zero ternary weights in one packed (out/4, in) uint8 weight."""
    histogram = np.bincount(np.asarray(weight.packed).reshape(-1), minlength=256)  # (256,)
    return int(histogram @ _NONZERO_PER_BYTE)


def projection_shapes(config: ModelConfig) -> dict[str, tuple[int, int]]:
    """The seven BitLinear layers of one block: name -> (out, in)."""
    d, f, q, kv = config.hidden_size, config.intermediate_size, config.q_size, config.kv_size
    return {"q_proj": (q, d), "k_proj": (kv, d), "v_proj": (kv, d), "o_proj": (d, q),
            "gate_proj": (f, d), "up_proj": (f, d), "down_proj": (d, f)}


# ---- the parts both models share ----


def _attention_cost(config: ModelConfig, context: int) -> TokenCost:
    """Scores q.k for S keys and the weighted sum of S values, over every layer; FP16 KV reads."""
    per_layer = config.num_attention_heads * context * config.head_dim  # (H, S, Hd) products
    layers = config.num_hidden_layers
    kv_bytes = 2 * config.num_key_value_heads * context * config.head_dim * 2  # keys + values
    return TokenCost(float_add=2 * per_layer * layers, float_mult=2 * per_layer * layers,
                     kv_bytes=kv_bytes * layers)


def _head_cost(config: ModelConfig) -> TokenCost:
    """Logits = h @ table.T: V*D multiply-adds; the bf16 table (2 bytes per entry) is read."""
    products = config.vocab_size * config.hidden_size
    return TokenCost(float_add=products, float_mult=products, weight_bytes=2 * products)


def _small_tensors_bytes(config: ModelConfig) -> int:
    """bf16 norms of every layer, the final norm, and the embedding row of the token."""
    c = config
    per_layer = 2 * c.hidden_size + c.q_size + c.intermediate_size
    return 2 * (per_layer * c.num_hidden_layers + c.hidden_size + c.hidden_size)


# ---- the two models ----


def ternary_cost(config: ModelConfig, nonzero_weights: int, context: int) -> ModelCost:
    """Costs of one forward token of the ternary model.

    nonzero_weights: non-zero ternary weights over all layers (from :func:`count_nonzero`)
    context:         S, the keys the new token attends to (its position + 1)
    """
    c = config
    shapes = projection_shapes(c)
    weights = sum(o * i for o, i in shapes.values()) * c.num_hidden_layers
    outputs = sum(o for o, _ in shapes.values()) * c.num_hidden_layers
    # one int8 quantisation per distinct input: q/k/v share theirs, gate/up share theirs
    quantised = (c.hidden_size + c.q_size + c.hidden_size + c.intermediate_size) \
        * c.num_hidden_layers
    projections = TokenCost(
        int_add=nonzero_weights,
        float_add=quantised,  # absmax: one comparison per element
        float_mult=quantised + outputs,  # x * scale per element, one rescale per output
        weight_bytes=weights // 4 + 2 * 7 * c.num_hidden_layers,  # 2 bits per weight + scales
    )
    return ModelCost({
        "ternary projections": projections,
        "attention": _attention_cost(c, context),
        "output head": _head_cost(c),
        "norms and embedding row": TokenCost(weight_bytes=_small_tensors_bytes(c)),
    })


def fp16_cost(config: ModelConfig, context: int) -> ModelCost:
    """Costs of one forward token of an FP16 model of the same shape (no quantisation)."""
    c = config
    weights = sum(o * i for o, i in projection_shapes(c).values()) * c.num_hidden_layers
    projections = TokenCost(float_add=weights, float_mult=weights, weight_bytes=2 * weights)
    return ModelCost({
        "FP16 projections": projections,
        "attention": _attention_cost(c, context),
        "output head": _head_cost(c),
        "norms and embedding row": TokenCost(weight_bytes=_small_tensors_bytes(c)),
    })


@dataclass
class OpReport:
    """What ``minibitnet ops`` prints: both models' costs for one token of one checkpoint."""

    config: ModelConfig
    context: int
    ternary_weights: int  # all weights of the BitLinear layers
    nonzero_weights: int  # of which non-zero
    ternary: ModelCost
    fp16: ModelCost


def count_model_ops(model_dir: str | Path, context: int = 512) -> OpReport:
    """Count one forward token of the checkpoint in ``model_dir`` (memory-mapped, not run)."""
    config = load_config(model_dir)
    weights = load_weights(model_dir, config)
    nonzero = 0
    total = 0
    for layer in weights.layers:
        for name in projection_shapes(config):
            weight: TernaryWeight = getattr(layer, name)
            nonzero += count_nonzero(weight)
            total += weight.out_features * weight.in_features
    return OpReport(config, context, total, nonzero, ternary_cost(config, nonzero, context),
                    fp16_cost(config, context))
