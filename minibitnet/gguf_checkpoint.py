"""bitnet.cpp's ``ggml-model-i2_s.gguf`` <-> (:class:`ModelConfig`, :class:`Weights`): name tables.

A GGUF model folder holds one ``.gguf`` file (config.json is not needed: the metadata carries
the config). ``general.architecture`` names the graph llama.cpp (and bitnet.cpp, built on it)
runs, and so the family (families.py) of the model::

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

Metadata (prefix: the architecture, e.g. ``llama.``): embedding_length (D), block_count,
feed_forward_length (F), attention.head_count (H), attention.head_count_kv (K, default H),
attention.layer_norm_rms_epsilon, rope.freq_base (default 10000, as llama.cpp),
context_length, rope.dimension_count (Hd: the whole head rotates), attention.key_length and
value_length (Hd; written only when it is not D / H, its default); ``bitnet`` also carries
rope.scaling.type "linear" with factor 1.0, as bitnet.cpp's converter writes it.
``tokenizer.ggml.bos_token_id`` / ``eos_token_id`` / ``eot_token_id`` when present (the stop
ids are EOS then EOT, so config.json's eos_token_id keeps at most two). V is the embedding's
row count. Names as gguf-py's tensor tables and bitnet.cpp's
``utils/convert-hf-to-gguf-bitnet.py``.

RoPE row order. Hugging Face rotates row i of a head with row i + Hd/2 (rotate-half), and so do
llama.cpp's ``bitnet`` graphs; its ``llama`` graph rotates rows 2i and 2i + 1. The converter for
``llama`` (``LlamaModel.permute``) therefore interleaves the two halves of every head of q_proj
(H heads) and k_proj (K heads): ``w.reshape(heads, 2, Hd/2, in).swapaxes(1, 2)``. One head of
Hd = 4, Hugging Face rows [a0, a1, b0, b1] (a_i turns with b_i) are stored [a0, b0, a1, b1].
The reader undoes it, so the codes are those of the checkpoint again.

Tables keep their type: an embedding or head held as bf16 bits, float16 (1bitLLM) or float32 is
written as BF16, F16 or F32, and read back as it is stored (a memory-mapped view; F16 and F32
are checked for NaN), never rounded: the model widens any of them to float32 (head.py).

I2_S tensors are unpacked to ternary codes and repacked in the Hugging Face layout at load (the
kernels read that one layout), so a GGUF model is held in memory, not memory-mapped, except
for its tables. The I2_S scale is 1 / weight_scale (see i2s.py).

subtle: the model divides by weight_scale, so a loaded I2_S scale is inverted, and the inverse
of a float32 does not round-trip: float32(1 / float32(1 / s)) differs from s for about one
bf16 value in six. The loaded weight_scale is therefore 1 / scale rounded to bf16, which gives
back exactly the bf16 weight_scale that every published BitNet b1.58 checkpoint stores (and
that the GGUF of such a checkpoint was made from), so a GGUF and the packed checkpoint it
converts to or from give bit-identical logits. A weight_scale that is not a bf16 number (the
float32 absmean scale of online masters) would move by up to 2^-9 relative; a file written here
from such a model carries the exact values in ``minibitnet.weight_scales`` (ARRAY of FLOAT32,
one per I2_S tensor, in file order), which the reader takes after checking each against its
tensor's scale. bitnet.cpp ignores keys it does not know. The key is written only when the
bf16 rule would not give back every weight_scale, so files of packed checkpoints are unchanged.

Refused, with a CheckpointError naming the file (:func:`check_gguf_writable` says it before
anything is written): projection inputs that are not whole I2_S blocks; an RMSNorm inside
BitLinear (``use_rms_norm``, Falcon-E: no GGUF graph has one); Llama 3.1 RoPE scaling, which
llama.cpp stores as a ``rope_freqs.weight`` tensor of per-frequency factors that this package's
RoPE does not take (refused both ways, as is every other RoPE scaling); a gate and sub-norms no
graph has (relu2 without sub-norms); an untied head under ``bitnet``, whose llama.cpp graph has
no output tensor; and on read any tensor the architecture lacks (llama.cpp refuses such a file).

The tokenizer metadata (``tokenizer.ggml.*``) is gguf_tokenizer.py's. Left out on purpose: the
TL1/TL2 layouts of bitnet.cpp.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import ModelConfig, config_from_dict
from .errors import CheckpointError
from .families import BITNET, FAMILIES, LLAMA_BITNET, ONEBITLLM
from .gguf import (
    ARRAY, BF16, F16, F32, FLOAT32, FLOAT_TYPES, I2_S, INTEGER_TYPES, STRING, TENSOR_TYPE_NAMES,
    UINT32, VALUE_TYPE_NAMES, GGUFFile, TensorToWrite, write_gguf,
)
from .i2s import BLOCK_WEIGHTS, INVALID_CODE, pack_i2s, unpack_i2s, unpack_i2s_codes
from .master import round_scale_to_bf16
from .packing import pack_ternary, unpack_ternary
from .safetensors import bf16_to_float32
from .weights import LayerWeights, TernaryWeight, Weights

GGUF_FILE = "ggml-model-i2_s.gguf"
ARCHITECTURE = "bitnet-b1.58"  # the architecture of the bitnet family (2B4T)
EXACT_SCALES_KEY = "minibitnet.weight_scales"
# an exact weight_scale must agree with 1 / (its tensor's I2_S scale) this closely (relative);
# the two differ by float32 rounding only, a wrong value or a value of another tensor by more
EXACT_SCALES_TOLERANCE = 2.0 ** -7
FLOAT_TENSOR_TYPES = (F32, F16, BF16)
# the tensor type of an embedding or head table, by the dtype it is held in
TABLE_TYPES = {np.dtype(np.uint16): BF16, np.dtype(np.float16): F16, np.dtype(np.float32): F32}
_TABLE_ROWS = 4096  # table rows checked for NaN at a time (40 MB of float32 at D = 2560)


@dataclass(frozen=True)
class Architecture:
    """What one ``general.architecture`` fixes, as llama.cpp's graph of that name runs it."""

    name: str  # general.architecture, and the prefix of its metadata keys
    family: str  # families.py name of the model it holds
    has_output: bool  # an output.weight may hold an untied head (else token_embd is the head)
    rope_pairs: bool  # RoPE turns adjacent rows: q/k rows permuted in the file (see above)
    linear_rope_key: bool  # rope.scaling.type "linear", factor 1.0 is written


ARCHITECTURES = {a.name: a for a in (
    Architecture(ARCHITECTURE, BITNET, has_output=True, rope_pairs=False, linear_rope_key=False),
    Architecture("bitnet", ONEBITLLM, has_output=False, rope_pairs=False, linear_rope_key=True),
    Architecture("llama", LLAMA_BITNET, has_output=True, rope_pairs=True, linear_rope_key=False),
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


def layer_tensors(arch: Architecture) -> dict[str, str]:
    """LayerWeights field -> GGUF tensor name within blk.N, for the tensors ``arch`` has."""
    if FAMILIES[arch.family].sub_norms is not None:
        return LAYER_TENSORS
    return {field: name for field, name in LAYER_TENSORS.items() if field not in SUB_NORMS}


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


# ---- metadata -> ModelConfig ----


def _fail(file: GGUFFile, message: str) -> CheckpointError:
    return CheckpointError(f"{file.path}: {message}")


def _number(file: GGUFFile, key: str, kinds: tuple[int, ...], default: Any = None) -> Any:
    """The value of ``key`` if its type is one of ``kinds``; ``default`` when absent."""
    if key not in file.metadata:
        if default is None:
            raise _fail(file, f"missing metadata '{key}'")
        return default
    value_type = file.value_types[key]
    if value_type not in kinds:
        expected = "an integer" if kinds == INTEGER_TYPES else "a float"
        raise _fail(file, f"metadata '{key}' has type {VALUE_TYPE_NAMES[value_type]}, "
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
        raise _fail(file, f"metadata '{key}' has type {VALUE_TYPE_NAMES[file.value_types[key]]}, "
                          "expected a string")
    value: str = file.metadata[key]
    return value


def architecture_of_file(file: GGUFFile) -> Architecture:
    """The architecture ``general.architecture`` names; CheckpointError for any other."""
    name = _string(file, "general.architecture", "")
    if name not in ARCHITECTURES:
        *others, last = (f"'{a}'" for a in ARCHITECTURES)
        raise _fail(file, f"general.architecture is {name[:40]!r}, expected "
                          f"{', '.join(others)} or {last}")
    return ARCHITECTURES[name]


def _check_rope(file: GGUFFile, arch: Architecture) -> None:
    """Plain RoPE only: no scaling type but none or linear 1.0 (bitnet.cpp's identity), and no
    per-frequency factors (llama.cpp's form of Llama 3.1 scaling)."""
    scaling = _string(file, f"{arch.name}.rope.scaling.type", "none")
    factor = _number(file, f"{arch.name}.rope.scaling.factor", FLOAT_TYPES, 1.0)
    if scaling not in ("none", "linear") or (scaling == "linear" and factor != 1.0):
        raise _fail(file, f"RoPE scaling {scaling[:40]!r} (factor {factor!r}) is not supported, "
                          "expected none")
    if "rope_freqs.weight" in file:
        raise _fail(file, "holds 'rope_freqs.weight', per-frequency RoPE factors (llama.cpp's "
                          "form of Llama 3.1 rope scaling), which are not supported; expected "
                          "plain RoPE")


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
            raise _fail(file, f"metadata '{arch.name}.{key}' is {value}, expected the head size "
                              f"{config.head_dim} (RoPE over whole heads, keys and values "
                              "of one size)")


def config_from_gguf(file: GGUFFile) -> ModelConfig:
    """Check the architecture and read the config from the metadata (and the embedding shape)."""
    arch = architecture_of_file(file)
    _check_rope(file, arch)
    embedding = file.tensors.get("token_embd.weight")
    if embedding is None or len(embedding.dims) != 2:
        raise _fail(file, "missing tensor 'token_embd.weight' (expected 2 dimensions [D, V])")
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
        "rms_norm_eps": float(_number(file, p + "attention.layer_norm_rms_epsilon", FLOAT_TYPES)),
        "rope_theta": float(_number(file, p + "rope.freq_base", FLOAT_TYPES, 10000.0)),
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
    return config


# ---- tensors -> Weights ----


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


def _check_tensors(file: GGUFFile, config: ModelConfig, arch: Architecture) -> None:
    expected: set[str] = set()
    for name, shape, kinds in expected_gguf_tensors(config, arch, not config.tie_word_embeddings):
        info = file.tensors.get(name)
        if info is None:
            raise _fail(file, f"missing tensor '{name}' (expected by the metadata)")
        if info.shape != shape:
            raise _fail(file, f"tensor '{name}' has dims {list(info.dims)}, expected "
                              f"{list(reversed(shape))} (ggml order)")
        if info.ggml_type not in kinds:
            names = " or ".join(TENSOR_TYPE_NAMES[k] for k in kinds)
            raise _fail(file, f"tensor '{name}' has type {info.type_name}, expected {names}")
        expected.add(name)
    for name in file.tensors:  # every tensor the file holds is expected: the loop is bounded
        if name not in expected:
            why = " (llama.cpp's graph uses token_embd as the head)" \
                if name == "output.weight" else ""
            raise _fail(file, f"tensor '{name[:60]}' is not part of architecture "
                              f"'{arch.name}'{why}, expected none")


def _float32(file: GGUFFile, name: str) -> np.ndarray:
    info = file.tensors[name]
    values = file.array(name)
    widened = bf16_to_float32(values) if info.ggml_type == BF16 else values.astype(np.float32)
    if not np.isfinite(widened).all():
        raise _fail(file, f"tensor '{name}' holds NaN or infinity")
    return widened


def _table(file: GGUFFile, name: str) -> np.ndarray:
    """(V, D) as stored, a view of the map: bf16 bits (uint16), float16 or float32. F16 and F32
    are checked for NaN a few rows at a time, so that no copy of the whole table is made."""
    table = file.array(name)  # (V, D)
    if file.tensors[name].ggml_type != BF16:
        for start in range(0, table.shape[0], _TABLE_ROWS):
            if not np.isfinite(table[start:start + _TABLE_ROWS]).all():
                raise _fail(file, f"tensor '{name}' holds NaN or infinity")
    return table


def _exact_scales(file: GGUFFile) -> dict[str, np.float32] | None:
    """I2_S tensor name -> the weight_scale ``minibitnet.weight_scales`` gives; None without it."""
    if EXACT_SCALES_KEY not in file.metadata:
        return None
    values = file.metadata[EXACT_SCALES_KEY]
    if not isinstance(values, np.ndarray) or values.dtype != np.dtype("<f4"):
        kind = VALUE_TYPE_NAMES[file.value_types[EXACT_SCALES_KEY]]
        raise _fail(file, f"metadata '{EXACT_SCALES_KEY}' has type {kind}"
                          f"{f' of {values.dtype}' if isinstance(values, np.ndarray) else ''}, "
                          "expected an ARRAY of FLOAT32")
    names = [name for name, info in file.tensors.items() if info.ggml_type == I2_S]
    if values.shape != (len(names),):
        raise _fail(file, f"metadata '{EXACT_SCALES_KEY}' holds {values.size} values, expected "
                          f"{len(names)} (one per I2_S tensor)")
    return dict(zip(names, (np.float32(v) for v in values)))


def _weight_scale(file: GGUFFile, name: str, scale: np.float32,
                  exact: dict[str, np.float32] | None) -> np.float32:
    """The weight_scale of I2_S tensor ``name`` whose scale (1 / weight_scale) is ``scale``."""
    if exact is None:
        # subtle: rounded to bf16, see the module docstring
        weight_scale = round_scale_to_bf16(np.float32(1.0 / float(scale)))
        if not np.isfinite(weight_scale) or weight_scale <= 0:
            raise _fail(file, f"tensor '{name}' has I2_S scale {scale}, whose inverse is not a "
                              "finite bf16 number")
        return weight_scale
    weight_scale = exact[name]
    if not (np.isfinite(weight_scale) and weight_scale > 0
            and abs(float(weight_scale) * float(scale) - 1.0) <= EXACT_SCALES_TOLERANCE):
        raise _fail(file, f"metadata '{EXACT_SCALES_KEY}' gives weight_scale {weight_scale} for "
                          f"tensor '{name}', whose I2_S scale is {scale}: expected a positive "
                          f"number within {EXACT_SCALES_TOLERANCE} (relative) of 1 / scale")
    return weight_scale


def _load_projection(file: GGUFFile, name: str, heads: int | None,
                     exact: dict[str, np.float32] | None) -> TernaryWeight:
    """One I2_S tensor as a packed TernaryWeight; ``heads``: undo the RoPE row permutation."""
    out_features, in_features = file.tensors[name].shape
    data = file.raw(name)  # (out * in / 4 + 32,) uint8
    if np.any(unpack_i2s_codes(data, out_features, in_features) == INVALID_CODE):
        raise _fail(file, f"tensor '{name}' holds the invalid code 3 (expected 2-bit codes "
                          "0, 1, 2 for -1, 0, +1)")
    w_ternary, scale = unpack_i2s(data, out_features, in_features)  # (out, in) int8, float32
    if not np.isfinite(scale) or scale <= 0:
        raise _fail(file, f"tensor '{name}' has I2_S scale {scale}, expected a finite "
                          "positive number")
    weight_scale = _weight_scale(file, name, scale, exact)
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
    exact = _exact_scales(file)
    weights = Weights(
        embed_tokens=_table(file, "token_embd.weight"),
        layers=[_load_layer(file, n, config, arch, exact)
                for n in range(config.num_hidden_layers)],
        norm=_float32(file, "output_norm.weight"),
        lm_head=_table(file, "output.weight") if "output.weight" in file else None,
    )
    return config, weights


# ---- (ModelConfig, Weights) -> GGUF ----


def gguf_metadata(config: ModelConfig) -> dict[str, tuple[int, Any]]:
    """The metadata written for ``config``: key -> (value type, value)."""
    arch = writable_architecture(config, "GGUF")
    p = arch.name + "."
    metadata: dict[str, tuple[int, Any]] = {
        "general.architecture": (STRING, arch.name),
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


def _i2s_scale(weight: TernaryWeight) -> np.float32:
    """The I2_S scale of ``weight``: w ≈ w_ternary * scale."""
    return np.float32(1.0 / float(weight.weight_scale))


def _layer_entries(config: ModelConfig, weights: Weights
                   ) -> Iterator[tuple[str, str, np.ndarray | TernaryWeight]]:
    """(GGUF name, LayerWeights field, value) of every block tensor, in file order."""
    arch = writable_architecture(config, "GGUF")
    for n, layer in enumerate(weights.layers):
        for field, gguf_name in layer_tensors(arch).items():
            yield f"blk.{n}.{gguf_name}.weight", field, getattr(layer, field)


def weight_scale_metadata(config: ModelConfig, weights: Weights) -> dict[str, tuple[int, Any]]:
    """``minibitnet.weight_scales`` when the bf16 rule of the reader would not give back every
    weight_scale (see the module docstring), else nothing."""
    projections = [value for _, _, value in _layer_entries(config, weights)
                   if isinstance(value, TernaryWeight)]  # the I2_S tensors, in file order
    if all(round_scale_to_bf16(np.float32(1.0 / float(_i2s_scale(w)))) == w.weight_scale
           for w in projections):
        return {}
    return {EXACT_SCALES_KEY: (ARRAY, (FLOAT32, [float(w.weight_scale) for w in projections]))}


def _i2s_producer(weight: TernaryWeight, heads: int | None) -> Callable[[], np.ndarray]:
    def produce() -> np.ndarray:
        w_ternary = unpack_ternary(np.asarray(weight.packed))  # (out, in) int8
        if heads is not None:
            w_ternary = permute_rope_rows(w_ternary, heads)  # (out, in) in llama.cpp's order
        return pack_i2s(w_ternary, _i2s_scale(weight))
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
    for name, field, value in _layer_entries(config, weights):
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
                     extra_metadata: dict[str, tuple[int, Any]] | None = None) -> Path:
    """Write ``weights`` as a bitnet.cpp I2_S GGUF file (atomically); returns the path.

    extra_metadata: more key -> (value type, value), e.g. the tokenizer (gguf_tokenizer.py)
    """
    check_gguf_writable(config, path)
    metadata = {**gguf_metadata(config), **weight_scale_metadata(config, weights),
                **(extra_metadata or {})}
    write_gguf(path, metadata, gguf_tensors(config, weights), on_bytes)
    return Path(path)


def gguf_bytes(config: ModelConfig, weights: Weights) -> int:
    """Tensor bytes :func:`write_gguf_model` writes (for a progress bar)."""
    return sum(t.num_bytes for t in gguf_tensors(config, weights))
