"""ModelConfig: the fields of a BitNet b1.58 ``config.json``, validated.

The field names are those of the Hugging Face file (``hidden_size``, ``num_key_value_heads``,
``rope_theta`` ...), so reading the file is a table, not logic. What this package cannot run is
rejected here with a one-line :class:`ConfigError`, before any tensor is touched:
an unknown ``model_type`` or quantisation method, an activation other than ``relu2``, a RoPE
scaling type other than the default, or sizes that do not fit together.

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

from .errors import ConfigError

# Packed ternary weights hold four rows per byte, so every output size must be a multiple of 4.
ROWS_PER_BYTE = 4
# The 2B4T config.json is under 2 kB; a larger file is not a config and is not read into memory.
MAX_CONFIG_BYTES = 1024 * 1024


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
        """The config.json form, in the layout of the published 2B4T file."""
        eos: int | list[int] = (
            self.eos_token_ids[0] if len(self.eos_token_ids) == 1 else list(self.eos_token_ids)
        )
        out: dict[str, Any] = {
            "architectures": ["BitNetForCausalLM"],
            "model_type": "bitnet",
            "attention_bias": False,
            "attention_dropout": 0.0,
            "hidden_act": "relu2",
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
            "quantization_config": {
                "quant_method": "bitnet",
                "linear_class": "bitlinear",
                "quantization_mode": "offline",
            },
        }
        if self.head_dim * self.num_attention_heads != self.hidden_size:
            out["head_dim"] = self.head_dim
        out.update(self.extra)
        return out


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


def _get_float(raw: dict[str, Any], key: str, default: float, source: str) -> float:
    value = raw.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise _fail(source, f"'{key}' is {_show(value)}, expected a finite number")
    if value <= 0:
        raise _fail(source, f"'{key}' is {_show(value)}, expected a positive number")
    return float(value)


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


def _check_kind(raw: dict[str, Any], source: str) -> None:
    """Reject models of another family or another quantisation before reading any size."""
    model_type = raw.get("model_type")
    if model_type != "bitnet":
        raise _fail(source, f"model_type is {_show(model_type)}, expected 'bitnet'")
    quant = raw.get("quantization_config")
    if quant is not None:
        if not isinstance(quant, dict):
            raise _fail(source, "'quantization_config' is not a JSON object")
        method = quant.get("quant_method", "bitnet")
        if method != "bitnet":
            raise _fail(source, f"quantization method {_show(method)} is not supported, "
                                "expected 'bitnet'")
        mode = quant.get("quantization_mode", "offline")
        if mode != "offline":
            raise _fail(source, f"quantization_mode {_show(mode)} is not supported, expected 'offline' "
                                "(packed uint8 ternary weights)")
    act = raw.get("hidden_act", "relu2")
    if act != "relu2":
        raise _fail(source, f"hidden_act is {_show(act)}, expected 'relu2' (squared ReLU)")
    if raw.get("attention_bias", False):
        raise _fail(source, "attention_bias is true; BitNet b1.58 projections have no bias")


def _rope_theta(raw: dict[str, Any], source: str) -> float:
    """rope_theta sits at the top level in 2B4T; newer files move it into rope_parameters."""
    params = raw.get("rope_parameters") or raw.get("rope_scaling")
    if params is not None:
        if not isinstance(params, dict):
            raise _fail(source, "'rope_parameters' is not a JSON object")
        rope_type = params.get("rope_type", params.get("type", "default"))
        if rope_type != "default":
            raise _fail(source, f"rope_type {_show(rope_type)} is not supported, "
                                "expected 'default'")
        if "rope_theta" in params and "rope_theta" not in raw:
            return _get_float(params, "rope_theta", 500000.0, source)
    return _get_float(raw, "rope_theta", 500000.0, source)


def config_from_dict(raw: Any, source: str = "config.json") -> ModelConfig:
    """Validate a parsed config.json and return the ModelConfig. ``source`` names the file."""
    if not isinstance(raw, dict):
        raise _fail(source, "expected a JSON object at the top level")
    _check_kind(raw, source)
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
    # attention output, so the two must be equal for a checkpoint to load there.
    if num_heads * head_dim != hidden_size:
        raise _fail(source, f"num_attention_heads * head_dim = {num_heads * head_dim}, "
                            f"expected hidden_size ({hidden_size})")
    for name, size in (("hidden_size", hidden_size), ("intermediate_size", intermediate_size),
                       ("num_key_value_heads * head_dim", num_kv_heads * head_dim)):
        if size % ROWS_PER_BYTE:
            raise _fail(source, f"{name} is {size}, expected a multiple of {ROWS_PER_BYTE} "
                                "(packed weights hold 4 rows per byte)")
    tie = raw.get("tie_word_embeddings", True)
    if not isinstance(tie, bool):
        raise _fail(source, f"'tie_word_embeddings' is {_show(tie)}, expected true or false")
    bos = _get_token_id(raw, "bos_token_id", vocab_size, source)
    eos = _get_token_id(raw, "eos_token_id", vocab_size, source)
    known = {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
             "num_attention_heads", "num_key_value_heads", "head_dim", "rms_norm_eps",
             "rope_theta", "max_position_embeddings", "tie_word_embeddings", "bos_token_id",
             "eos_token_id", "architectures", "model_type", "attention_bias", "attention_dropout",
             "hidden_act", "initializer_range", "use_cache", "torch_dtype", "quantization_config"}
    return ModelConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=head_dim,
        rms_norm_eps=_get_float(raw, "rms_norm_eps", 1e-5, source),
        rope_theta=_rope_theta(raw, source),
        max_position_embeddings=max_positions,
        tie_word_embeddings=tie,
        bos_token_id=bos[0] if bos else None,
        eos_token_ids=tuple(eos),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def load_config(model_dir: str | Path) -> ModelConfig:
    """Read and validate ``model_dir/config.json``."""
    path = Path(model_dir) / "config.json"
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, expected the JSON file config.json")
    if not path.is_file():
        raise ConfigError(f"{path}: no such file (a model folder holds config.json and "
                          "model.safetensors)")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes, expected a small "
                          "JSON config")
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
