"""The three GGUF architectures of bitnet.cpp: the family each holds, its tensors, what it can hold.

``general.architecture`` names the graph llama.cpp (and bitnet.cpp, built on it) runs, and so
the family (families.py) of the model::

    architecture   family         gate    sub-norms   head                  q / k rows
    bitnet-b1.58   bitnet         relu2   yes         output, or tied       as Hugging Face
    bitnet         1bitllm        silu    yes         token_embd (tied)     as Hugging Face
    llama          llama-bitnet   silu    none        output, or tied       permuted (below)

On write the architecture is the one whose graph computes the model: its family's, except
that the graph is fixed by the gate and the sub-norms, not the name, so a bitnet-family config
with a SiLU gate (writers.py writes a 1bitLLM model so) is the ``bitnet`` graph and is written
as one, and comes back as the 1bitllm family. Tensors, NumPy shapes (the file stores dims
reversed, e.g. [D, V] for the embedding)::

    token_embd.weight                   [V, D]      BF16, F16 or F32, as held
    blk.N.attn_norm.weight              [D]         F32 (F16, BF16)   input_layernorm
    blk.N.attn_{q,k,v,output}.weight    [out, in]   I2_S              q/k/v/o_proj
    blk.N.attn_sub_norm.weight          [H*Hd]      F32               not in llama
    blk.N.ffn_norm.weight               [D]         F32               post_attention_layernorm
    blk.N.ffn_{gate,up,down}.weight     [out, in]   I2_S              gate/up/down_proj
    blk.N.ffn_sub_norm.weight           [F]         F32               not in llama
    output_norm.weight                  [D]         F32               model.norm
    output.weight                       [V, D]      as held           lm_head, only when untied

Names as gguf-py's tensor tables and bitnet.cpp's ``utils/convert-hf-to-gguf-bitnet.py``.

RoPE row order. Hugging Face rotates row i of a head with row i + Hd/2 (rotate-half), and so do
llama.cpp's ``bitnet`` graphs; its ``llama`` graph rotates rows 2i and 2i + 1. The converter for
``llama`` (``LlamaModel.permute``) therefore interleaves the two halves of every head of q_proj
(H heads) and k_proj (K heads): ``w.reshape(heads, 2, Hd/2, in).swapaxes(1, 2)``. One head of
Hd = 4, Hugging Face rows [a0, a1, b0, b1] (a_i turns with b_i) are stored [a0, b0, a1, b1].
The reader undoes it, so the codes are those of the checkpoint again.

Refused by :func:`check_gguf_writable`, with a CheckpointError naming the destination before
anything is written: projection inputs that are not whole I2_S blocks; an RMSNorm inside
BitLinear (``use_rms_norm``, Falcon-E: no GGUF graph has one); Llama 3.1 RoPE scaling, which
llama.cpp stores as a ``rope_freqs.weight`` tensor of per-frequency factors that this package's
RoPE does not take (refused on read too, gguf_config.py, as is every other RoPE scaling); a
gate and sub-norms no graph has (relu2 without sub-norms); and an untied head under
``bitnet``, whose llama.cpp graph has no output tensor.

The metadata is gguf_config.py's, the I2_S scales gguf_scales.py's, and reading and writing
the tensors gguf_checkpoint.py's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...config import ModelConfig
from ...errors import CheckpointError
from ...families import BITNET, FAMILIES, LLAMA_BITNET, ONEBITLLM
from .container import BF16, F16, F32, I2_S
from .i2s import BLOCK_WEIGHTS
from ...core.weights import TernaryWeight, Weights

ARCHITECTURE = "bitnet-b1.58"  # the architecture of the bitnet family (2B4T)


@dataclass(frozen=True)
class Architecture:
    """What one ``general.architecture`` fixes, as llama.cpp's graph of that name runs it."""

    name: str  # general.architecture, and the prefix of its metadata keys
    family: str  # families.py name of the model it holds
    has_output: bool  # an output.weight may hold an untied head (else token_embd is the head)
    rope_pairs: bool  # RoPE turns adjacent rows: q/k rows permuted in the file (see above)
    linear_rope_key: bool  # rope.scaling.type "linear", factor 1.0 is written
    # the model the graph computes, for `minibitnet info`; unlike the family's description it
    # says nothing of how a checkpoint stores the weights (every GGUF holds I2_S codes + scales)
    description: str


ARCHITECTURES = {a.name: a for a in (
    Architecture(ARCHITECTURE, BITNET, has_output=True, rope_pairs=False, linear_rope_key=False,
                 description="BitNet b1.58 (squared-ReLU gate, sub-norms)"),
    Architecture("bitnet", ONEBITLLM, has_output=False, rope_pairs=False, linear_rope_key=True,
                 description="1bitLLM bitnet_b1_58 (LLaMA with sub-norms, SiLU gate)"),
    Architecture("llama", LLAMA_BITNET, has_output=True, rope_pairs=True, linear_rope_key=False,
                 description="LLaMA with ternary projections (Falcon3 1.58-bit, "
                             "Llama3-8B-1.58: SiLU gate, no sub-norms)"),
)}
GGUF_ARCHITECTURES = {a.family: a.name for a in ARCHITECTURES.values()}  # family -> architecture

# LayerWeights field -> the GGUF tensor name within blk.N
LAYER_TENSORS = {
    "input_layernorm": "attn_norm", "q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v",
    "attn_sub_norm": "attn_sub_norm", "o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm", "gate_proj": "ffn_gate", "up_proj": "ffn_up",
    "ffn_sub_norm": "ffn_sub_norm", "down_proj": "ffn_down",
}
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SUB_NORMS = ("attn_sub_norm", "ffn_sub_norm")
FLOAT_TENSOR_TYPES = (F32, F16, BF16)  # the types read for a norm, embedding or head


def layer_tensors(arch: Architecture) -> dict[str, str]:
    """LayerWeights field -> GGUF tensor name within blk.N, for the tensors ``arch`` has."""
    if FAMILIES[arch.family].sub_norms is not None:
        return LAYER_TENSORS
    return {field: name for field, name in LAYER_TENSORS.items() if field not in SUB_NORMS}


def expected_gguf_tensors(config: ModelConfig, arch: Architecture, has_output: bool
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
        for field, gguf_name in layer_tensors(arch).items():
            kinds = (I2_S,) if field in PROJECTIONS else FLOAT_TENSOR_TYPES
            yield f"blk.{n}.{gguf_name}.weight", shapes[field], kinds
    yield "output_norm.weight", (d,), FLOAT_TENSOR_TYPES
    if has_output:
        yield "output.weight", (c.vocab_size, d), FLOAT_TENSOR_TYPES


# ---- which architecture ----


def architecture_of(config: ModelConfig) -> Architecture | None:
    """The architecture whose graph computes ``config``'s model (its family's first), or None."""
    for arch in sorted(ARCHITECTURES.values(), key=lambda a: a.family != config.family):
        family = FAMILIES[arch.family]
        if (family.hidden_act, family.sub_norms is not None) == (config.hidden_act,
                                                                 config.has_sub_norms):
            return arch
    return None


def check_i2s_shapes(config: ModelConfig, destination: str | Path) -> None:
    """CheckpointError naming ``destination`` unless every projection input is a multiple of 128."""
    for name, size in (("hidden_size", config.hidden_size),
                       ("intermediate_size", config.intermediate_size),
                       ("num_attention_heads * head_dim", config.q_size)):
        if size % BLOCK_WEIGHTS:
            raise CheckpointError(f"{destination}: cannot write I2_S, {name} is {size}, expected "
                                  f"a multiple of {BLOCK_WEIGHTS} (I2_S packs each row in "
                                  f"blocks of {BLOCK_WEIGHTS} weights)")


def writable_architecture(config: ModelConfig, destination: str | Path) -> Architecture:
    """The architecture ``config`` is written as; CheckpointError naming ``destination`` when
    no GGUF graph computes its model."""
    def refuse(what: str) -> CheckpointError:
        return CheckpointError(f"{destination}: cannot write GGUF, {what}")

    if config.use_rms_norm:
        raise refuse("its BitLinear layers normalise their input (use_rms_norm), which GGUF "
                     "I2_S models cannot hold (no llama.cpp graph has that norm; Falcon-E)")
    if config.rope_scaling is not None:
        raise refuse("llama3 RoPE scaling would become llama.cpp's rope_freqs.weight factors, "
                     "which this package does not read back; expected plain RoPE")
    arch = architecture_of(config)
    if arch is None:
        sub_norms = "with" if config.has_sub_norms else "without"
        raise refuse(f"a {config.hidden_act} gate {sub_norms} sub-norms is no GGUF architecture "
                     "(bitnet-b1.58: relu2 with sub-norms; bitnet: silu with; llama: silu "
                     "without)")
    if not arch.has_output and not config.tie_word_embeddings:
        raise refuse(f"its head is untied, and architecture '{arch.name}' has no output tensor "
                     "(llama.cpp's graph uses token_embd as the head)")
    return arch


def check_gguf_writable(config: ModelConfig, destination: str | Path) -> None:
    """CheckpointError naming ``destination`` unless a GGUF I2_S file can hold the model of
    ``config`` exactly (whole I2_S blocks, and an architecture that computes it)."""
    writable_architecture(config, destination)  # what the model is, before its sizes
    check_i2s_shapes(config, destination)


def layer_entries(config: ModelConfig, weights: Weights
                  ) -> Iterator[tuple[str, str, np.ndarray | TernaryWeight]]:
    """(GGUF name, LayerWeights field, value) of every block tensor, in file order."""
    arch = writable_architecture(config, "GGUF")
    for n, layer in enumerate(weights.layers):
        for field, gguf_name in layer_tensors(arch).items():
            yield f"blk.{n}.{gguf_name}.weight", field, getattr(layer, field)


# ---- llama.cpp's RoPE row order ----


def permute_rope_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """Rows of q_proj or k_proj from the Hugging Face order to llama.cpp's ``llama`` order.

    w:       (heads * Hd, in), Hd even; within a head row i turns with row i + Hd/2
    returns: (heads * Hd, in), a copy; within a head row 2i turns with row 2i + 1
    """
    rows, width = w.shape
    half = rows // heads // 2
    # (heads, 2, Hd/2, in) -> (heads, Hd/2, 2, in): the halves interleave
    return np.ascontiguousarray(w.reshape(heads, 2, half, width).swapaxes(1, 2)).reshape(rows,
                                                                                         width)


def unpermute_rope_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """The inverse of :func:`permute_rope_rows`: llama.cpp's row order back to Hugging Face's.

    w:       (heads * Hd, in), Hd even
    returns: (heads * Hd, in), a copy
    """
    rows, width = w.shape
    half = rows // heads // 2
    # (heads, Hd/2, 2, in) -> (heads, 2, Hd/2, in): even rows first, then odd rows
    return np.ascontiguousarray(w.reshape(heads, half, 2, width).swapaxes(1, 2)).reshape(rows,
                                                                                         width)


def rope_heads(arch: Architecture, config: ModelConfig, field: str) -> int | None:
    """The heads whose rows ``arch`` permutes in projection ``field``; None: rows as they are."""
    if not arch.rope_pairs:
        return None
    return {"q_proj": config.num_attention_heads, "k_proj": config.num_key_value_heads}.get(field)
