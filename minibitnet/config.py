"""ModelConfig: the fields of a BitNet b1.58 ``config.json``, validated.

The field names are those of the Hugging Face file (``hidden_size``, ``num_key_value_heads``,
``rope_theta`` ...), so reading the file is a table, not logic. What this package cannot run is
rejected here with a one-line :class:`ConfigError`, before any tensor is touched:
an unknown ``model_type`` or quantisation method, an unknown activation, a RoPE scaling type
other than the default or ``llama3``, or sizes that do not fit together. An unknown key is kept
(``ModelConfig.extra``, written back by ``to_json_dict``); one that is a single edit away from
a key read here (``rope_thetta``) gets a one-line warning naming the key it likely meant.

Three families of 1.58-bit checkpoints are read (:mod:`minibitnet.families` says how each is
recognised); what tells them apart becomes a few fields here (``hidden_act``, ``has_sub_norms``,
``quantization_mode``, ``use_rms_norm``, ``rope_scaling``), never a second model.

Agrees with transformers' ``BitNetConfig`` (models/bitnet/configuration_bitnet.py). The file of
microsoft/bitnet-b1.58-2B-4T, for reference::

    {"model_type": "bitnet", "architectures": ["BitNetForCausalLM"], "hidden_size": 2560,
     "intermediate_size": 6912, "num_hidden_layers": 30, "num_attention_heads": 20,
     "num_key_value_heads": 5, "vocab_size": 128256, "rms_norm_eps": 1e-05,
     "rope_theta": 500000.0, "max_position_embeddings": 4096, "tie_word_embeddings": true,
     "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "relu2",
     "quantization_config": {"quant_method": "bitnet", "linear_class": "bitlinear",
                             "quantization_mode": "offline"}, ...}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, warn_once
from .families import BITNET, FAMILIES, LLAMA_BITNET, ONEBITLLM, family_of
from .files import read_bounded

# Packed ternary weights hold four rows per byte, so every output size must be a multiple of 4.
ROWS_PER_BYTE = 4
# The 2B4T config.json is under 2 kB; a larger file is not a config and is not read into memory.
MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Llama3Scaling:
    """The four numbers of a ``"rope_type": "llama3"`` entry (Llama 3.1: 8, 1, 4, 8192)."""

    factor: float  # long wavelengths are stretched by this
    low_freq_factor: float  # wavelengths beyond L / low_freq_factor are fully stretched
    high_freq_factor: float  # wavelengths below L / high_freq_factor are kept
    original_max_position_embeddings: int  # L, the context length of pre-training

    def to_json_dict(self) -> dict[str, object]:
        return {"rope_type": "llama3", "factor": self.factor,
                "low_freq_factor": self.low_freq_factor,
                "high_freq_factor": self.high_freq_factor,
                "original_max_position_embeddings": self.original_max_position_embeddings}


@dataclass(frozen=True)
class ModelConfig:
    """The shape and constants of one BitNet b1.58 model (one row per config.json field)."""

    vocab_size: int  # V, rows of the embedding and of the output head
    hidden_size: int  # D, width of the residual stream
    intermediate_size: int  # F, width of the squared-ReLU feed-forward
    num_hidden_layers: int  # number of transformer blocks
    num_attention_heads: int  # H, query heads
    num_key_value_heads: int  # K, key/value heads shared by H/K query heads each (GQA)
    head_dim: int  # Hd, width of one head (hidden_size / H unless config.json says otherwise)
    rms_norm_eps: float = 1e-5  # added to the mean square inside every RMSNorm
    rope_theta: float = 500000.0  # RoPE base: angle of pair i at position p is p / theta^(2i/Hd)
    max_position_embeddings: int = 4096  # longest sequence (prompt + generation) the model takes
    tie_word_embeddings: bool = True  # output head reuses the embedding (2B4T does)
    bos_token_id: int | None = 128000  # <|begin_of_text|> for the LLaMA-3 tokenizer
    eos_token_ids: tuple[int, ...] = (128001,)  # generation stops at any of these
    family: str = BITNET  # which family of checkpoints (families.py): names and defaults
    hidden_act: str = "relu2"  # feed-forward gate: "relu2" (BitNet, max(x,0)^2) or "silu" (LLaMA)
    has_sub_norms: bool = True  # RMSNorm before o_proj and before down_proj (BitNet's SubLN)
    # "offline": packed codes with a stored weight_scale (or masters, scale rounded as stored);
    # "online": float latents ternarised at load with their float32 absmean scale, as
    # transformers' AutoBitLinear(online_quant=True) and 1bitLLM's BitLinear recompute it
    quantization_mode: str = "offline"
    use_rms_norm: bool = False  # an RMSNorm on the input of every BitLinear (Falcon-E)
    quant_rms_norm_eps: float = 1e-6  # its eps: quantization_config.rms_norm_eps
    rope_scaling: Llama3Scaling | None = None  # Llama 3.1 frequency scaling, None: plain RoPE
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # other keys

    @property
    def q_size(self) -> int:
        """H * Hd: width of the query projection and of the attention output."""
        return self.num_attention_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        """K * Hd: width of the key and value projections."""
        return self.num_key_value_heads * self.head_dim

    def to_json_dict(self) -> dict[str, Any]:
        """The config.json form: the layout of the published 2B4T file for the bitnet family,
        a LLaMA file with its family's quantisation keys otherwise (families.py)."""
        eos: int | list[int] = (
            self.eos_token_ids[0] if len(self.eos_token_ids) == 1 else list(self.eos_token_ids)
        )
        out: dict[str, Any] = {
            "architectures": ["BitNetForCausalLM"],
            "model_type": "bitnet",
            "attention_bias": False,
            "attention_dropout": 0.0,
            "hidden_act": self.hidden_act,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": eos,
            "initializer_range": 0.02,
            "use_cache": True,
            "torch_dtype": "bfloat16",
            "quantization_config": _quantization_config(self),
        }
        if self.head_dim * self.num_attention_heads != self.hidden_size:
            out["head_dim"] = self.head_dim
        if self.family != BITNET:
            out.update(_family_keys(self))
            if out["quantization_config"] is None:  # 1bitLLM files have none
                del out["quantization_config"]
        if self.rope_scaling is not None:
            out["rope_scaling"] = self.rope_scaling.to_json_dict()
        out.update(self.extra)
        return out


def _family_keys(config: ModelConfig) -> dict[str, Any]:
    """The keys in which a LLaMA-family config.json differs from the 2B4T file."""
    family = FAMILIES[config.family]
    out: dict[str, Any] = {"architectures": [family.architecture],
                           "model_type": family.model_type,
                           "mlp_bias": False, "pretraining_tp": 1}
    if config.family == ONEBITLLM:  # no quantization_config; its BitLinear reads these two
        out.update(quantization_config=None, weight_bits=1, input_bits=8, torch_dtype="float16")
    return out


def _quantization_config(config: ModelConfig) -> dict[str, Any]:
    """transformers' BitNetQuantConfig of this config: BitLinear for packed weights (2B4T's
    entry), AutoBitLinear for online masters, with the BitLinear input norm when used."""
    online = config.quantization_mode == "online"
    quant: dict[str, Any] = {"quant_method": "bitnet",
                             "linear_class": "autobitlinear" if online else "bitlinear",
                             "quantization_mode": config.quantization_mode}
    if config.use_rms_norm:
        quant.update(use_rms_norm=True, rms_norm_eps=config.quant_rms_norm_eps)
    return quant


# ---- reading and checking config.json ----


def _fail(source: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {message}")


def _show(value: Any, limit: int = 60) -> str:
    """repr of an untrusted value, cut short so that an error stays one readable line."""
    if isinstance(value, int) and abs(value) >= 10**limit:
        return "a huge integer"  # repr of one beyond 4300 digits would itself raise ValueError
    try:
        text = repr(value)
    except RecursionError:
        return "a deeply nested value"
    return text if len(text) <= limit else text[:limit] + "..."


def _get_int(raw: dict[str, Any], key: str, source: str, *, minimum: int = 1) -> int:
    if key not in raw:
        raise _fail(source, f"missing required key '{key}'")
    value = raw[key]
    # subtle: bool is a subclass of int in Python; `true` is not a size.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(source, f"'{key}' is {_show(value)}, expected an integer")
    if value < minimum:
        raise _fail(source, f"'{key}' is {_show(value)}, expected an integer >= {minimum}")
    return value


# Finite and positive is not enough where the maths needs a range: the range of each float
# field, as (above, at most, why), so that a value no real model uses is refused at load, naming
# its field, instead of surfacing later as a NaN blamed on the weights.
FLOAT_RANGES: dict[str, tuple[float, float, str]] = {
    # added to a float32 mean square: smaller vanishes in float32, and a zero row divides by 0
    "rms_norm_eps": (1e-30, 1.0, "an epsilon added to a float32 mean square"),
    # pair i turns at theta**(-2i/Hd) radians per position: theta <= 1 reverses the order of
    # the frequencies, and beyond 1e15 the slow pairs underflow float32 (published: 1e4 to 1e7)
    "rope_theta": (1.0, 1e15, "the RoPE base"),
    # llama3 scaling divides the slow frequencies by factor (published: 8 to 64)
    "factor": (0.0, 1e4, "llama3 RoPE scaling"),
    "low_freq_factor": (0.0, 1e4, "llama3 RoPE scaling"),
    "high_freq_factor": (0.0, 1e4, "llama3 RoPE scaling"),
}


def check_float_range(key: str, value: float, source: str) -> float:
    """``value`` when it lies in ``FLOAT_RANGES[key]``, else a ConfigError naming ``key``.

    source: the file the value came from, for the message (config.json or a GGUF file)
    """
    above, at_most, what = FLOAT_RANGES[key]
    if not above < value <= at_most:
        raise _fail(source, f"'{key}' is {value:g}, expected a number above {above:g} and at "
                            f"most {at_most:g} ({what})")
    return value


def _get_float(raw: dict[str, Any], key: str, default: float, source: str) -> float:
    value = raw.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not _finite(value):
        raise _fail(source, f"'{key}' is {_show(value)}, expected a finite number")
    if value <= 0:
        raise _fail(source, f"'{key}' is {_show(value)}, expected a positive number")
    if key in FLOAT_RANGES:
        check_float_range(key, float(value), source)
    return float(value)


def _finite(value: int | float) -> bool:
    """math.isfinite, but an integer beyond float's range (JSON allows 1 followed by 400
    zeros) is infinite here instead of an OverflowError."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _get_token_id(raw: dict[str, Any], key: str, vocab_size: int, source: str) -> list[int]:
    """A token id field that may be absent, null, an int or a list of ints."""
    value = raw.get(key)
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    for token in values:
        if not isinstance(token, int) or isinstance(token, bool) or not 0 <= token < vocab_size:
            raise _fail(source, f"'{key}' is {_show(value)}, expected token ids in "
                                f"[0, {vocab_size})")
    return list(values)


def _check_quantization(raw: dict[str, Any], family: str, source: str) -> dict[str, Any]:
    """The quantization_config of a bitnet or llama-bitnet file, checked ({} when absent)."""
    quant = raw.get("quantization_config")
    if quant is None:
        if family == LLAMA_BITNET:
            raise _fail(source, "missing 'quantization_config' (expected quant_method 'bitnet')")
        return {}
    if not isinstance(quant, dict):
        raise _fail(source, "'quantization_config' is not a JSON object")
    method = quant.get("quant_method", "bitnet")
    if method != "bitnet":
        raise _fail(source, f"quantization method {_show(method)} is not supported, "
                            "expected 'bitnet'")
    mode = quant.get("quantization_mode", "offline")
    linear_class = quant.get("linear_class", "bitlinear")
    if linear_class not in ("bitlinear", "autobitlinear"):
        raise _fail(source, f"linear_class {_show(linear_class)} is not supported, expected "
                            "'bitlinear' or 'autobitlinear'")
    if mode not in ("offline", "online"):
        raise _fail(source, f"quantization_mode {_show(mode)} is not supported, expected "
                            "'offline' (packed uint8 ternary weights) or 'online' (bf16 masters)")
    if (linear_class, mode) == ("autobitlinear", "offline"):
        # subtle: AutoBitLinear multiplies by weight_scale where BitLinear divides by it
        raise _fail(source, "linear_class 'autobitlinear' with quantization_mode 'offline' is "
                            "not supported, expected 'bitlinear' (packed) or 'online' (masters)")
    if (linear_class, mode) == ("bitlinear", "online"):
        raise _fail(source, "quantization_mode 'online' needs linear_class 'autobitlinear' "
                            "(transformers' BitLinear has no online mode)")
    skipped = quant.get("modules_to_not_convert")
    # transformers keeps lm_head in full precision when the list is absent; a list that does not
    # name it would make the head ternary, and one naming other layers leaves them float
    if skipped is not None and (not isinstance(skipped, list) or not skipped
                                or any(name != "lm_head" for name in skipped)):
        raise _fail(source, f"modules_to_not_convert is {_show(skipped)}, expected null or "
                            "['lm_head'] (every projection ternary, the head not)")
    return quant


def _check_kind(raw: dict[str, Any], source: str) -> tuple[str, dict[str, Any]]:
    """Reject models of another family or another quantisation before reading any size.

    returns: (family, quantization_config or {})
    """
    family = family_of(raw)
    if family is None:
        model_type = raw.get("model_type")
        if model_type == "llama":
            raise _fail(source, "model_type 'llama' without quantization_config.quant_method "
                                "'bitnet' or 1bitLLM's weight_bits: not a 1.58-bit model")
        raise _fail(source, f"model_type is {_show(model_type)}, expected 'bitnet' (or 'llama' "
                            "with bitnet quantisation)")
    quant = _check_quantization(raw, family, source) if family != ONEBITLLM else {}
    if family == ONEBITLLM and (raw.get("weight_bits", 1), raw.get("input_bits", 8)) != (1, 8):
        raise _fail(source, f"weight_bits {_show(raw.get('weight_bits'))} / input_bits "
                            f"{_show(raw.get('input_bits'))}, expected 1 and 8 (ternary weights, "
                            "int8 activations)")
    act = raw.get("hidden_act", FAMILIES[family].hidden_act)
    if act not in ("relu2", "silu"):
        raise _fail(source, f"hidden_act is {_show(act)}, expected 'relu2' (squared ReLU) or "
                            "'silu'")
    if raw.get("attention_bias", False):
        raise _fail(source, "attention_bias is true; BitNet b1.58 projections have no bias")
    if raw.get("mlp_bias", False):
        raise _fail(source, "mlp_bias is true; BitNet b1.58 projections have no bias")
    return family, quant


def _llama3_scaling(params: dict[str, Any], raw: dict[str, Any], source: str) -> Llama3Scaling:
    """The numbers of a llama3 rope entry; L defaults to max_position_embeddings as in
    transformers' standardize_rope_params."""
    for key in ("factor", "low_freq_factor", "high_freq_factor"):
        if key not in params:
            raise _fail(source, f"rope_scaling of rope_type 'llama3' lacks '{key}'")
    low = _get_float(params, "low_freq_factor", 1.0, source)
    high = _get_float(params, "high_freq_factor", 4.0, source)
    factor = _get_float(params, "factor", 8.0, source)
    if factor < 1:  # it divides frequencies: below 1 it would shorten the long wavelengths
        raise _fail(source, f"rope_scaling factor is {factor}, expected a number >= 1")
    if high <= low:
        raise _fail(source, f"rope_scaling high_freq_factor ({high}) must exceed "
                            f"low_freq_factor ({low})")
    if "original_max_position_embeddings" in params:
        original = _get_int(params, "original_max_position_embeddings", source)
    else:
        original = _get_int(raw, "max_position_embeddings", source) \
            if "max_position_embeddings" in raw else 4096
    return Llama3Scaling(factor=factor, low_freq_factor=low,
                         high_freq_factor=high, original_max_position_embeddings=original)


def _rope(raw: dict[str, Any], source: str) -> tuple[float, Llama3Scaling | None]:
    """(rope_theta, llama3 scaling or None). rope_theta sits at the top level in 2B4T; newer
    files move it into rope_parameters (older ones call that rope_scaling)."""
    key = "rope_parameters" if raw.get("rope_parameters") is not None else "rope_scaling"
    params = raw.get(key)
    scaling = None
    if params is not None:
        if not isinstance(params, dict):
            raise _fail(source, f"'{key}' is not a JSON object")
        rope_type = params.get("rope_type", params.get("type", "default"))
        if rope_type == "llama3":
            scaling = _llama3_scaling(params, raw, source)
        elif rope_type != "default":
            raise _fail(source, f"{key}.rope_type {_show(rope_type)} is not supported, "
                                "expected 'default' or 'llama3'")
        if "rope_theta" in params and "rope_theta" not in raw:
            return _get_float(params, "rope_theta", 500000.0, source), scaling
    return _get_float(raw, "rope_theta", 500000.0, source), scaling


def _get_bool(raw: dict[str, Any], key: str, default: bool, source: str) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise _fail(source, f"'{key}' is {_show(value)}, expected true or false")
    return value


# The top-level keys this module and families.family_of read. subtle: a misspelt one is not an
# error, only an unknown key (kept in ModelConfig.extra), so the key meant silently takes its
# default (rope_theta 500000) or is reported missing; _warn_misspelt_keys names it.
READ_KEYS = frozenset({
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "rms_norm_eps", "rope_theta", "rope_scaling",
    "rope_parameters", "max_position_embeddings", "tie_word_embeddings", "bos_token_id",
    "eos_token_id", "model_type", "architectures", "hidden_act", "attention_bias", "mlp_bias",
    "quantization_config", "weight_bits", "input_bits",
})
# Keys that transformers' configs (PretrainedConfig, LlamaConfig, BitNetConfig, 4.x and 5.x) or
# the families' own files write and this package accepts without needing them: never a typo.
IGNORED_KEYS = frozenset({
    "_name_or_path", "transformers_version", "torch_dtype", "dtype", "auto_map",
    "attention_dropout", "initializer_range", "use_cache", "pretraining_tp", "pad_token_id",
    "sep_token_id", "decoder_start_token_id", "output_attentions", "output_hidden_states",
    "return_dict", "is_encoder_decoder", "is_decoder", "add_cross_attention",
    "cross_attention_hidden_size", "tie_encoder_decoder", "chunk_size_feed_forward",
    "id2label", "label2id", "problem_type", "tokenizer_class", "task_specific_params",
    "finetuning_task", "prefix", "pruned_heads", "torchscript", "max_length", "min_length",
})


def one_edit_apart(a: str, b: str) -> bool:
    """True when ``b`` is ``a`` with one character inserted, deleted or replaced, or two
    neighbours swapped ("rope_thetta" / "rope_theta", "vocab_szie" / "vocab_size")."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diffs) == 1 or (len(diffs) == 2 and diffs[1] == diffs[0] + 1
                                   and (a[diffs[0]], a[diffs[1]]) == (b[diffs[1]], b[diffs[0]]))
    short, long = (a, b) if len(a) < len(b) else (b, a)
    first = next((i for i in range(len(short)) if short[i] != long[i]), len(short))
    return short[first:] == long[first + 1:]


def _warn_misspelt_keys(raw: dict[str, Any], source: str) -> None:
    """One warning per unknown key that is one edit from a read key the file lacks."""
    for key in raw:
        if key in READ_KEYS or key in IGNORED_KEYS:
            continue
        likely = [known for known in sorted(READ_KEYS)
                  if known not in raw and one_edit_apart(key, known)]
        if likely:
            meant = " or ".join(repr(known) for known in likely)
            warn_once(f"{source}: unknown key {_show(key)} is ignored; did you mean {meant}?")


def config_from_dict(raw: Any, source: str = "config.json") -> ModelConfig:
    """Validate a parsed config.json and return the ModelConfig. ``source`` names the file."""
    if not isinstance(raw, dict):
        raise _fail(source, "expected a JSON object at the top level")
    _warn_misspelt_keys(raw, source)
    family, quant = _check_kind(raw, source)
    has_sub_norms = FAMILIES[family].sub_norms is not None
    vocab_size = _get_int(raw, "vocab_size", source)
    hidden_size = _get_int(raw, "hidden_size", source)
    intermediate_size = _get_int(raw, "intermediate_size", source)
    num_layers = _get_int(raw, "num_hidden_layers", source)
    num_heads = _get_int(raw, "num_attention_heads", source)
    num_kv_heads = _get_int(raw, "num_key_value_heads", source) if "num_key_value_heads" in raw \
        else num_heads
    max_positions = _get_int(raw, "max_position_embeddings", source) \
        if "max_position_embeddings" in raw else 4096
    if raw.get("head_dim") is not None:
        head_dim = _get_int(raw, "head_dim", source)
    else:
        if hidden_size % num_heads:
            raise _fail(source, f"num_attention_heads ({num_heads}) does not divide "
                                f"hidden_size ({hidden_size})")
        head_dim = hidden_size // num_heads
    if head_dim % 2:
        raise _fail(source, f"head size {head_dim} is odd; RoPE rotates pairs, expected even")
    if num_heads % num_kv_heads:
        raise _fail(source, f"num_key_value_heads ({num_kv_heads}) does not divide "
                            f"num_attention_heads ({num_heads})")
    # subtle: transformers sizes attn_sub_norm by hidden_size but applies it to the H*Hd-wide
    # attention output, so the two must be equal for a checkpoint to load there (1bitLLM's
    # inner_attn_ln likewise); without sub-norms LLaMA allows them to differ.
    if has_sub_norms and num_heads * head_dim != hidden_size:
        raise _fail(source, f"num_attention_heads * head_dim = {num_heads * head_dim}, "
                            f"expected hidden_size ({hidden_size})")
    for name, size in (("hidden_size", hidden_size), ("intermediate_size", intermediate_size),
                       ("num_attention_heads * head_dim", num_heads * head_dim),
                       ("num_key_value_heads * head_dim", num_kv_heads * head_dim)):
        if size % ROWS_PER_BYTE:
            raise _fail(source, f"{name} is {size}, expected a multiple of {ROWS_PER_BYTE} "
                                "(packed weights hold 4 rows per byte)")
    # subtle: LlamaConfig defaults to an untied head; this package has always read a bitnet
    # file without the key as tied (2B4T's value), and keeps doing so
    tie = _get_bool(raw, "tie_word_embeddings", family == BITNET, source)
    bos = _get_token_id(raw, "bos_token_id", vocab_size, source)
    eos = _get_token_id(raw, "eos_token_id", vocab_size, source)
    rope_theta, rope_scaling = _rope(raw, source)
    mode = "online" if family == ONEBITLLM else quant.get("quantization_mode", "offline")
    use_rms_norm = _get_bool(quant, "use_rms_norm", False, source)
    # transformers passes rms_norm_eps=None through to LlamaRMSNorm only if set; its default is 1e-6
    quant_eps = _get_float(quant, "rms_norm_eps", 1e-6, source) \
        if quant.get("rms_norm_eps") is not None else 1e-6
    known = {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
             "num_attention_heads", "num_key_value_heads", "head_dim", "rms_norm_eps",
             "rope_theta", "max_position_embeddings", "tie_word_embeddings", "bos_token_id",
             "eos_token_id", "architectures", "model_type", "attention_bias", "attention_dropout",
             "hidden_act", "initializer_range", "use_cache", "torch_dtype", "quantization_config"}
    if family != BITNET:  # keys that to_json_dict writes for these families itself
        known |= {"mlp_bias", "pretraining_tp", "weight_bits", "input_bits", "rope_scaling"}
    if rope_scaling is not None:
        known.add("rope_scaling")
    return ModelConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=head_dim,
        rms_norm_eps=_get_float(raw, "rms_norm_eps", 1e-5, source),
        rope_theta=rope_theta,
        max_position_embeddings=max_positions,
        tie_word_embeddings=tie,
        bos_token_id=bos[0] if bos else None,
        eos_token_ids=tuple(eos),
        family=family,
        hidden_act=raw.get("hidden_act", FAMILIES[family].hidden_act),
        has_sub_norms=has_sub_norms,
        quantization_mode=mode,
        use_rms_norm=use_rms_norm,
        quant_rms_norm_eps=quant_eps,
        rope_scaling=rope_scaling,
        extra={k: v for k, v in raw.items() if k not in known},
    )


def load_config(model_dir: str | Path) -> ModelConfig:
    """Read and validate ``model_dir/config.json``."""
    path = Path(model_dir) / "config.json"
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, expected the JSON file config.json")
    if not path.exists():  # a FIFO or device is refused by its type in read_bounded
        raise ConfigError(f"{path}: no such file (a model folder holds config.json and "
                          "model.safetensors)")
    data = read_bounded(path, MAX_CONFIG_BYTES, ConfigError, "a small JSON config")
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} "
                          f"column {exc.colno})") from None
    except ValueError:  # an integer beyond Python's 4300-digit limit for int(str)
        raise ConfigError(f"{path}: not valid JSON (a number longer than 4300 digits)") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid JSON (nested too deeply)") from None
    return config_from_dict(raw, str(path))
