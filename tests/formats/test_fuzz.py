"""Fuzzing the loaders: whatever the bytes, the only failure is the package's own error type.

Three parsers read untrusted files: the safetensors header (and the checkpoint checks behind it),
config.json, and the tokenizer files (tests/tokenizer/test_fuzz_tokenizer.py). Each is fed arbitrary bytes, arbitrary JSON, and structured
mutations of a valid file (a field replaced by any JSON value, an entry dropped or renamed,
offsets nudged, the file cut short, a byte flipped). The property: the loader either returns a
value that satisfies its own invariants, or raises a MinibitnetError subclass; any other
exception (TypeError, KeyError, a NumPy ValueError, RecursionError ...) fails the test.

The "ci" Hypothesis profile runs 60 examples per test; for a longer search run locally::

    HYPOTHESIS_PROFILE=long pytest tests/formats/test_fuzz.py        # 2000 examples per test
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minibitnet
from minibitnet.formats.checkpoint import load_weights
from minibitnet.config import ModelConfig, config_from_dict, load_config
from minibitnet.errors import CheckpointError, ConfigError, MinibitnetError
from minibitnet.formats.safetensors import (
    STORAGE_DTYPES,
    SafetensorsFile,
    TensorSpec,
    write_safetensors,
)
from minibitnet.tools.synthetic import tiny_config
from minibitnet_testing.family_builders import FAMILY_SHAPES
from minibitnet_testing.builders import build_checkpoint
from minibitnet_testing.strategies import INTERESTING_INTS, json_values

# Hypothesis reuses one folder per test (a module-scoped temporary directory), not tmp_path.
fuzz_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                HealthCheck.too_slow])
_counter = itertools.count()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def fresh_file(folder: Path, name: str, content: bytes) -> Path:
    """Write ``content`` to a new inode: an old memory map of the previous example stays valid."""
    path = folder / name
    path.unlink(missing_ok=True)
    path.write_bytes(content)
    return path


def serialise(header: Any, data: bytes) -> bytes:
    header_bytes = json.dumps(header).encode("utf-8")  # NaN/Infinity as JSON's extensions
    return struct.pack("<Q", len(header_bytes)) + header_bytes + data


def split_file(raw: bytes) -> tuple[dict[str, Any], bytes]:
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + length]), raw[8 + length:]


# ---- the safetensors reader ----


def small_safetensors(folder: Path) -> bytes:
    """A valid file with one tensor of several dtypes, an empty one included."""
    shapes = {"packed": ("U8", (4, 8)), "norm": ("BF16", (8,)), "matrix": ("F32", (2, 3)),
              "empty": ("I64", (0, 5)), "half": ("F16", (3,))}
    specs = [TensorSpec(name, dtype, shape) for name, (dtype, shape) in shapes.items()]
    rng = np.random.default_rng(0)

    def produce(spec: TensorSpec) -> np.ndarray:
        dtype = STORAGE_DTYPES[spec.dtype]
        raw = rng.integers(0, 256, spec.num_bytes, dtype=np.uint8)
        return raw.view(dtype).reshape(spec.shape)

    write_safetensors(folder / "small.safetensors", specs, produce)
    return (folder / "small.safetensors").read_bytes()


def read_everything(path: Path) -> None:
    """Open the file and view every tensor; only CheckpointError may escape."""
    try:
        file = SafetensorsFile(path)
        for name, info in file.tensors.items():
            array = file.array(name)
            assert array.shape == info.shape and array.dtype == STORAGE_DTYPES[info.dtype]
            if info.dtype in ("BF16", "F16", "F32"):
                assert file.float32(name).shape == info.shape
    except CheckpointError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)


@st.composite
def header_mutations(draw: st.DrawFn, header: dict[str, Any], data_size: int) -> dict[str, Any]:
    """One to three edits of a parsed header: fields replaced, entries dropped, added, renamed."""
    header = json.loads(json.dumps(header))
    for _ in range(draw(st.integers(1, 3))):
        names = sorted(header) or ["x"]
        name = draw(st.sampled_from(names))
        op = draw(st.sampled_from(["field", "near", "drop_field", "drop", "add", "rename",
                                   "replace"]))
        entry = header.get(name)
        if op == "field" and isinstance(entry, dict):
            key = draw(st.sampled_from(["dtype", "shape", "data_offsets", "format", "extra"]))
            entry[key] = draw(json_values)
        elif op == "near" and isinstance(entry, dict) and "data_offsets" in entry:
            # plausible values: the kind of mistake a buggy writer makes
            which = draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
            if which == "dtype":
                entry["dtype"] = draw(st.sampled_from(list(STORAGE_DTYPES)))
            elif which == "shape":
                entry["shape"] = draw(st.lists(st.integers(0, 16), max_size=3))
            else:
                entry["data_offsets"] = [draw(st.integers(-2, data_size + 8)),
                                         draw(st.integers(-2, data_size + 8))]
        elif op == "drop_field" and isinstance(entry, dict) and entry:
            entry.pop(draw(st.sampled_from(sorted(entry))))
        elif op == "drop":
            header.pop(name, None)
        elif op == "add":
            header[draw(st.text(max_size=8))] = draw(json_values)
        elif op == "rename" and name in header:
            header[draw(st.text(max_size=8))] = header.pop(name)
        elif op == "replace":
            header[name] = draw(json_values)
    return header


@st.composite
def byte_mutations(draw: st.DrawFn, raw: bytes) -> bytes:
    """Cut short, a byte overwritten, bytes inserted, or the length prefix replaced."""
    op = draw(st.sampled_from(["truncate", "overwrite", "insert", "prefix", "append"]))
    if op == "truncate":
        return raw[:draw(st.integers(0, len(raw) - 1))]
    if op == "overwrite":
        at = draw(st.integers(0, len(raw) - 1))
        return raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]
    if op == "insert":
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    if op == "append":
        return raw + draw(st.binary(min_size=1, max_size=16))
    length = draw(st.sampled_from([0, 1, 7, len(raw), len(raw) - 8, 2**32, 2**63, 2**64 - 1])
                  | st.integers(0, len(raw)))
    return struct.pack("<Q", length) + raw[8:]


@fuzz_settings
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes(workdir: Path, raw: bytes) -> None:
    read_everything(fresh_file(workdir, "bytes.safetensors", raw))


@fuzz_settings
@given(header=json_values, data=st.binary(max_size=64))
def test_arbitrary_json_header(workdir: Path, header: Any, data: bytes) -> None:
    read_everything(fresh_file(workdir, "json.safetensors", serialise(header, data)))


@fuzz_settings
@given(data=st.data())
def test_mutated_small_file(workdir: Path, data: st.DataObject) -> None:
    raw = small_safetensors(workdir)
    header, tensor_bytes = split_file(raw)
    if data.draw(st.booleans()):
        mutated = serialise(data.draw(header_mutations(header, len(tensor_bytes))), tensor_bytes)
    else:
        mutated = data.draw(byte_mutations(raw))
    read_everything(fresh_file(workdir, "mutated.safetensors", mutated))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("fuzz-model") / "model", "tiny", seed=5)


@fuzz_settings
@given(data=st.data())
def test_mutated_checkpoint(workdir: Path, tiny_model: Path, data: st.DataObject) -> None:
    """The checkpoint checks behind the header: required tensors, shapes, codes, scales."""
    raw = (tiny_model / "model.safetensors").read_bytes()
    header, tensor_bytes = split_file(raw)
    kind = data.draw(st.sampled_from(["header", "bytes", "data"]))
    if kind == "header":
        mutated = serialise(data.draw(header_mutations(header, len(tensor_bytes))), tensor_bytes)
    elif kind == "bytes":
        mutated = data.draw(byte_mutations(raw))
    else:  # the tensor data itself: codes, scales, norms (the header stays valid)
        edited = bytearray(tensor_bytes)
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(edited) - 1))
            edited[at] = data.draw(st.sampled_from([0xFF, 0x7F, 0x80, 0xC0, 0x00, 0x03]))
        mutated = serialise(header, bytes(edited))
    folder = workdir / f"model-{next(_counter)}"
    shutil.copytree(tiny_model, folder)
    fresh_file(folder, "model.safetensors", mutated)
    config = load_config(folder)
    try:
        weights = load_weights(folder, config)
    except CheckpointError as exc:
        assert "\n" not in str(exc) and str(folder / "model.safetensors") in str(exc)
    else:  # accepted: then every scale is finite and positive and every code is ternary
        for layer in weights.layers:
            assert np.isfinite(layer.input_layernorm).all()
            assert layer.q_proj.weight_scale > 0 and np.isfinite(layer.q_proj.weight_scale)
    finally:
        shutil.rmtree(folder)


# ---- config.json ----


def check_invariants(config: ModelConfig) -> None:
    """What every accepted config guarantees the model code."""
    for size in (config.vocab_size, config.hidden_size, config.intermediate_size,
                 config.num_hidden_layers, config.num_attention_heads,
                 config.num_key_value_heads, config.head_dim, config.max_position_embeddings):
        assert isinstance(size, int) and not isinstance(size, bool) and size >= 1
    if config.has_sub_norms:  # the sub-norm's width is both (LLaMA without them may differ)
        assert config.num_attention_heads * config.head_dim == config.hidden_size
    assert config.q_size % 4 == 0 and config.kv_size % 4 == 0
    assert config.hidden_act in ("relu2", "silu")
    assert config.quantization_mode in ("offline", "online")
    if config.rope_scaling is not None:
        assert config.rope_scaling.factor >= 1
        assert config.rope_scaling.high_freq_factor > config.rope_scaling.low_freq_factor > 0
    assert config.num_attention_heads % config.num_key_value_heads == 0
    assert config.head_dim % 2 == 0
    assert config.hidden_size % 4 == 0 and config.intermediate_size % 4 == 0
    assert math.isfinite(config.rms_norm_eps) and config.rms_norm_eps > 0
    assert math.isfinite(config.rope_theta) and config.rope_theta > 0
    ids = list(config.eos_token_ids) + ([config.bos_token_id] if config.bos_token_id else [])
    assert all(0 <= i < config.vocab_size for i in ids)


def parse_config(raw: Any) -> ModelConfig | None:
    try:
        config = config_from_dict(raw, "config.json")
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("config.json: ")
        return None
    check_invariants(config)
    return config


VALID_CONFIG = tiny_config().to_json_dict()
# every family's config.json (minibitnet_testing.family_builders), so that their keys are mutated too
VALID_CONFIGS = [VALID_CONFIG] + [config.to_json_dict() for config in FAMILY_SHAPES.values()]


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict[str, Any]:
    config = json.loads(json.dumps(draw(st.sampled_from(VALID_CONFIGS))))
    keys = sorted(config) + ["head_dim", "rope_parameters", "rope_scaling", "unknown"]
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(keys))
        op = draw(st.sampled_from(["any", "int", "drop"]))
        if op == "drop":
            config.pop(key, None)
        elif op == "int":
            config[key] = draw(st.sampled_from(INTERESTING_INTS) | st.integers(-4, 300))
        else:
            config[key] = draw(json_values)
    return config


@fuzz_settings
@given(raw=json_values)
def test_config_arbitrary_json(raw: Any) -> None:
    parse_config(raw)


@fuzz_settings
@given(raw=mutated_configs())
def test_config_mutations(raw: dict[str, Any]) -> None:
    parse_config(raw)


@fuzz_settings
@given(raw=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_config_file_bytes(workdir: Path, raw: bytes) -> None:
    folder = workdir / "config-bytes"
    folder.mkdir(exist_ok=True)
    fresh_file(folder, "config.json", raw)
    try:
        check_invariants(load_config(folder))
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(folder / "config.json") in str(exc)


@fuzz_settings
@given(raw=mutated_configs())
def test_mutated_config_with_valid_weights(workdir: Path, tiny_model: Path,
                                           raw: dict[str, Any]) -> None:
    """The whole library path: load, then one forward; any failure is a MinibitnetError."""
    folder = workdir / f"config-model-{next(_counter)}"
    shutil.copytree(tiny_model, folder)
    (folder / "config.json").write_text(json.dumps(raw))
    try:
        model = minibitnet.load(folder)
        logits = model.logits([0, 1])
        assert logits.shape == (2, model.config.vocab_size)
    except MinibitnetError as exc:
        assert "\n" not in str(exc)
    finally:
        shutil.rmtree(folder)
