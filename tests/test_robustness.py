"""The corrupt-file suite: every way a model folder can be broken gives one clean error.

Each case starts from a valid tiny checkpoint (builders.build_checkpoint), breaks it with one
mutation, and runs it through ``minibitnet info --model DIR`` in a subprocess (the real command,
with the installed package) and through ``minibitnet.load`` (the library). The promise checked:
exit code 1, one line on stderr naming the broken file and what was expected, no traceback, and
every file in the folder byte-for-byte as it was (nothing written, no temporary files left).
docs/robustness.md lists the message each case produces.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import minibitnet
from minibitnet.cli import main
from minibitnet.errors import (
    ArgumentError,
    CheckpointError,
    ConfigError,
    ContextLengthError,
    MinibitnetError,
    NumericalError,
)
from minibitnet_testing.builders import build_checkpoint

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


# ---- editing a checkpoint in place ----


def read_safetensors(path: Path) -> tuple[dict[str, Any], bytes]:
    """(header as JSON, data section bytes) of a safetensors file."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + length]), raw[8 + length:]


def write_safetensors_raw(path: Path, header: dict[str, Any], data: bytes) -> None:
    """Write a header and data section as given, with no checks (the point is to break them)."""
    header_bytes = json.dumps(header).encode("utf-8")
    path.write_bytes(struct.pack("<Q", len(header_bytes)) + header_bytes + data)


def edit_header(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        header, data = read_safetensors(folder / WEIGHTS)
        edit(header)
        write_safetensors_raw(folder / WEIGHTS, header, data)
    return mutate


def edit_tensor_bytes(name: str, offset: int, value: bytes) -> Callable[[Path], None]:
    """Overwrite bytes of tensor ``name`` at ``offset`` within it (the header stays valid)."""
    def mutate(folder: Path) -> None:
        header, data = read_safetensors(folder / WEIGHTS)
        start = header[name]["data_offsets"][0] + offset
        write_safetensors_raw(folder / WEIGHTS, header,
                              data[:start] + value + data[start + len(value):])
    return mutate


def edit_config(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        config = json.loads((folder / CONFIG).read_text())
        edit(config)
        (folder / CONFIG).write_text(json.dumps(config))  # NaN is written as the literal NaN
    return mutate


def set_config(**values: Any) -> Callable[[Path], None]:
    return edit_config(lambda config: config.update(values))


def delete_config_key(key: str) -> Callable[[Path], None]:
    return edit_config(lambda config: config.pop(key))


def set_entry(name: str, **fields: Any) -> Callable[[Path], None]:
    return edit_header(lambda header: header[name].update(fields))


def write_file(name: str, content: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(content)


def replace_with_folder(name: str) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        (folder / name).unlink()
        (folder / name).mkdir()
    return mutate


def truncate(num_bytes: int) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        raw = (folder / WEIGHTS).read_bytes()
        (folder / WEIGHTS).write_bytes(raw[:-num_bytes])
    return mutate


def set_header_length(length: int | None) -> Callable[[Path], None]:
    """Rewrite the length prefix; None: the file's own size, so the header runs past the end."""
    def mutate(folder: Path) -> None:
        raw = (folder / WEIGHTS).read_bytes()
        new_length = len(raw) if length is None else length
        (folder / WEIGHTS).write_bytes(struct.pack("<Q", new_length) + raw[8:])
    return mutate


def replace_header(header_bytes: bytes) -> Callable[[Path], None]:
    """A new header (any bytes), followed by the old data section."""
    def mutate(folder: Path) -> None:
        _, data = read_safetensors(folder / WEIGHTS)
        (folder / WEIGHTS).write_bytes(struct.pack("<Q", len(header_bytes)) + header_bytes + data)
    return mutate


def overlap(header: dict[str, Any]) -> None:
    """Point the post-attention norm at the bytes of the input norm (both are D wide)."""
    first = header["model.layers.0.input_layernorm.weight"]["data_offsets"]
    header["model.layers.0.post_attention_layernorm.weight"]["data_offsets"] = list(first)


def shift_last_tensor(header: dict[str, Any]) -> None:
    """Move the last tensor 8 bytes further, past the end of the data section."""
    entries = [e for k, e in header.items() if k != "__metadata__"]
    last = max(entries, key=lambda e: e["data_offsets"][1])
    last["data_offsets"] = [o + 8 for o in last["data_offsets"]]


def rename_tensor(old: str, new: str) -> Callable[[Path], None]:
    return edit_header(lambda header: header.__setitem__(new, header.pop(old)))


# bf16 bit patterns, little-endian bytes
BF16_NAN = struct.pack("<H", 0x7FC0)
BF16_INF = struct.pack("<H", 0x7F80)
BF16_MINUS_ONE = struct.pack("<H", 0xBF80)
BF16_ZERO = struct.pack("<H", 0x0000)
SCALE = "model.layers.0.self_attn.q_proj.weight_scale"


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Callable[[Path], None]
    file: str  # the path the message must name: "config.json", "model.safetensors" or "" (folder)
    expect: str  # a piece of the message, lower-case
    error: type[MinibitnetError]  # what minibitnet.load raises


CASES = [
    # the safetensors container
    Case("empty file", write_file(WEIGHTS, b""), WEIGHTS, "too short", CheckpointError),
    Case("shorter than the length prefix", write_file(WEIGHTS, b"\x10\x00"), WEIGHTS,
         "too short", CheckpointError),
    Case("truncated file", truncate(100), WEIGHTS, "truncated", CheckpointError),
    Case("trailing bytes", lambda f: (f / WEIGHTS).write_bytes((f / WEIGHTS).read_bytes()
                                                               + b"\0" * 8),
         WEIGHTS, "trailing bytes", CheckpointError),
    Case("header longer than file", set_header_length(None), WEIGHTS, "runs past the end",
         CheckpointError),
    Case("huge header length", set_header_length(2**63), WEIGHTS, "exceeds the", CheckpointError),
    Case("header not JSON", replace_header(b"{not json at all"), WEIGHTS, "not valid utf-8 json",
         CheckpointError),
    Case("header not UTF-8", replace_header(b'{"\xff\xfe": 1}'), WEIGHTS, "not valid utf-8 json",
         CheckpointError),
    Case("header a JSON list", replace_header(b"[1, 2, 3]"), WEIGHTS, "not a json object",
         CheckpointError),
    Case("header nested too deeply", replace_header(b"[" * 100_000 + b"]" * 100_000), WEIGHTS,
         "not valid utf-8 json", CheckpointError),
    Case("number beyond 4300 digits", replace_header(b'{"a": ' + b"9" * 5000 + b"}"), WEIGHTS,
         "not valid utf-8 json", CheckpointError),
    Case("metadata not strings", edit_header(lambda h: h.update(__metadata__={"format": 1})),
         WEIGHTS, "__metadata__", CheckpointError),
    Case("unknown dtype", set_entry("model.norm.weight", dtype="BF17"), WEIGHTS,
         "unknown dtype 'bf17'", CheckpointError),
    Case("dtype a JSON list", set_entry("model.norm.weight", dtype=["BF16"]), WEIGHTS,
         "unknown dtype", CheckpointError),
    Case("negative dimension", set_entry("model.norm.weight", shape=[-64]), WEIGHTS,
         "non-negative integers", CheckpointError),
    Case("dimension beyond 2**63", set_entry("model.norm.weight", shape=[0, 2**70]), WEIGHTS,
         "fewer than 2**63", CheckpointError),
    Case("byte length not dtype x shape", set_entry("model.norm.weight", shape=[65]), WEIGHTS,
         "spans 128 bytes, expected 130", CheckpointError),
    Case("offsets out of range", edit_header(shift_last_tensor), WEIGHTS, "past its end",
         CheckpointError),
    Case("offsets not a pair", set_entry("model.norm.weight", data_offsets=[0]), WEIGHTS,
         "data_offsets", CheckpointError),
    Case("overlapping tensors", edit_header(overlap), WEIGHTS, "overlaps", CheckpointError),
    Case("control characters in a name",
         edit_header(lambda h: h.update({"evil\nname\x1b[31m": {**h.pop("model.norm.weight"),
                                                                 "dtype": "X"}})),
         WEIGHTS, "tensor 'evil\\nname\\x1b[31m' has unknown dtype", CheckpointError),
    # the tensors against config.json
    Case("missing tensor", rename_tensor("model.layers.1.mlp.down_proj.weight", "unused"),
         WEIGHTS, "missing tensor 'model.layers.1.mlp.down_proj.weight'", CheckpointError),
    Case("wrong shape", set_entry("model.norm.weight", shape=[2, 32]), WEIGHTS,
         "has shape [2, 32], expected [64]", CheckpointError),
    Case("wrong dtype", set_entry("model.norm.weight", dtype="I16"), WEIGHTS,
         "has dtype i16, expected bf16 or f16 or f32", CheckpointError),
    Case("packed weight not U8", set_entry("model.layers.0.mlp.up_proj.weight", dtype="I8"),
         WEIGHTS, "expected u8", CheckpointError),
    Case("code-3 byte", edit_tensor_bytes("model.layers.1.mlp.up_proj.weight", 5, b"\xff"),
         WEIGHTS, "invalid code 3", CheckpointError),
    Case("NaN scale", edit_tensor_bytes(SCALE, 0, BF16_NAN), WEIGHTS,
         "expected a finite positive number", CheckpointError),
    Case("infinite scale", edit_tensor_bytes(SCALE, 0, BF16_INF), WEIGHTS,
         "expected a finite positive number", CheckpointError),
    Case("zero scale", edit_tensor_bytes(SCALE, 0, BF16_ZERO), WEIGHTS,
         "expected a finite positive number", CheckpointError),
    Case("negative scale", edit_tensor_bytes(SCALE, 0, BF16_MINUS_ONE), WEIGHTS,
         "expected a finite positive number", CheckpointError),
    Case("infinite norm weight", edit_tensor_bytes("model.norm.weight", 6, BF16_INF), WEIGHTS,
         "holds nan or infinity", CheckpointError),
    Case("config larger than the checkpoint", set_config(vocab_size=512), WEIGHTS,
         "expected [512, 64]", CheckpointError),
    Case("a billion layers claimed", set_config(num_hidden_layers=10**9), WEIGHTS,
         "missing tensor 'model.layers.2.", CheckpointError),
    # config.json
    Case("config not JSON", write_file(CONFIG, b'{"vocab_size": 256,'), CONFIG,
         "not valid json", ConfigError),
    Case("config not UTF-8", write_file(CONFIG, b'{"model_type": "bit\xffnet"}'), CONFIG,
         "not utf-8", ConfigError),
    Case("config empty", write_file(CONFIG, b""), CONFIG, "not valid json", ConfigError),
    Case("config a JSON list", write_file(CONFIG, b"[]"), CONFIG, "json object", ConfigError),
    Case("config nested too deeply", write_file(CONFIG, b"[" * 100_000 + b"]" * 100_000), CONFIG,
         "nested too deeply", ConfigError),
    Case("config over 1 MB", write_file(CONFIG, b" " * (2 * 1024 * 1024) + b"{}"), CONFIG,
         "larger than", ConfigError),
    Case("missing config key", delete_config_key("hidden_size"), CONFIG,
         "missing required key 'hidden_size'", ConfigError),
    Case("heads not dividing hidden", set_config(num_attention_heads=5), CONFIG,
         "num_attention_heads (5) does not divide hidden_size (64)", ConfigError),
    Case("KV heads not dividing heads", set_config(num_key_value_heads=3), CONFIG,
         "num_key_value_heads (3) does not divide num_attention_heads (4)", ConfigError),
    Case("negative vocab", set_config(vocab_size=-256), CONFIG,
         "'vocab_size' is -256, expected an integer >= 1", ConfigError),
    Case("size given as true", set_config(hidden_size=True), CONFIG,
         "'hidden_size' is true, expected an integer", ConfigError),
    Case("size given as a float", set_config(intermediate_size=96.0), CONFIG,
         "'intermediate_size' is 96.0, expected an integer", ConfigError),
    Case("NaN in a float", set_config(rms_norm_eps=float("nan")), CONFIG,
         "'rms_norm_eps' is nan, expected a finite number", ConfigError),
    Case("rope_theta 1e308", set_config(rope_theta=1e308), CONFIG,
         "'rope_theta' is 1e+308, expected a number above 1 and at most 1e+15", ConfigError),
    Case("rope_theta 1e-300", set_config(rope_theta=1e-300), CONFIG,
         "'rope_theta' is 1e-300, expected a number above 1", ConfigError),
    Case("rope_theta a 400-digit integer", set_config(rope_theta=10**400), CONFIG,
         "'rope_theta' is a huge integer, expected a finite number", ConfigError),
    Case("rms_norm_eps subnormal", set_config(rms_norm_eps=1e-320), CONFIG,
         "expected a number above 1e-30 and at most 1", ConfigError),
    Case("rope factor 1e308",
         set_config(rope_scaling={"rope_type": "llama3", "factor": 1e308, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0}), CONFIG,
         "'factor' is 1e+308, expected a number above 0 and at most 10000", ConfigError),
    Case("eos id outside vocab", set_config(eos_token_id=256), CONFIG,
         "expected token ids in [0, 256)", ConfigError),
    Case("unknown model_type", set_config(model_type="gpt2"), CONFIG,
         "model_type is 'gpt2', expected 'bitnet'", ConfigError),
    Case("llama without bitnet quantisation",
         set_config(model_type="llama", quantization_config=None), CONFIG,
         "model_type 'llama' without quantization_config.quant_method 'bitnet'", ConfigError),
    Case("2B4T tensors under a llama config", set_config(model_type="llama"), WEIGHTS,
         "a sub-norm of the bitnet family, but config.json describes the llama-bitnet family",
         CheckpointError),
    Case("online quantisation of packed weights",
         set_config(quantization_config={"quant_method": "bitnet", "linear_class": "autobitlinear",
                                         "quantization_mode": "online"}), WEIGHTS,
         "config.json says quantization_mode 'online', which expects float master weights",
         CheckpointError),
    Case("unknown rope type", set_config(rope_scaling={"rope_type": "yarn", "factor": 4.0}),
         CONFIG, "rope_scaling.rope_type 'yarn' is not supported", ConfigError),
    Case("unknown quantisation method",
         set_config(quantization_config={"quant_method": "gptq"}), CONFIG,
         "quantization method 'gptq' is not supported", ConfigError),
    # files and folders
    Case("missing config.json", lambda f: (f / CONFIG).unlink(), CONFIG, "no such file",
         ConfigError),
    Case("missing model.safetensors", lambda f: (f / WEIGHTS).unlink(), WEIGHTS, "no such file",
         CheckpointError),
    Case("config.json is a folder", replace_with_folder(CONFIG), CONFIG, "is a folder",
         ConfigError),
    Case("model.safetensors is a folder", replace_with_folder(WEIGHTS), WEIGHTS, "is a folder",
         CheckpointError),
    Case("missing model folder", lambda f: shutil.rmtree(f), "", "no such folder", ConfigError),
]


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder`` (folders as '<dir>')."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file() else "<dir>"
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture(scope="module")
def valid_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("valid") / "model", "tiny", seed=3)


@pytest.fixture
def broken(request: pytest.FixtureRequest, valid_model: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(valid_model, folder)
    request.param.mutate(folder)
    return folder


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed ``minibitnet`` command in a fresh interpreter.

    cwd is a temporary folder so that ``-m`` cannot pick up a source tree from the working
    directory instead of the installed package.
    """
    return subprocess.run([sys.executable, "-m", "minibitnet.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_subprocess_runs_the_installed_package(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", "import minibitnet; print(minibitnet.__file__)"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == minibitnet.__file__


def test_subprocess_in_the_clone_root_runs_the_installed_package() -> None:
    # no cwd: the subprocess starts where pytest runs, the clone's root (conftest.py's
    # PYTHONSAFEPATH keeps the source tree off its path)
    result = subprocess.run([sys.executable, "-c", "import minibitnet; print(minibitnet.__file__)"],
                            cwd=Path(__file__).parents[1], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == minibitnet.__file__


def test_the_valid_model_passes(valid_model: Path, tmp_path: Path) -> None:
    result = run_cli("info", "--model", str(valid_model), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tensors" in result.stdout and result.stderr == ""


@pytest.mark.parametrize("broken", CASES, ids=[c.id for c in CASES], indirect=True)
def test_info_gives_one_clean_line(broken: Path, request: pytest.FixtureRequest,
                                   tmp_path: Path) -> None:
    case: Case = request.node.callspec.params["broken"]
    before = snapshot(broken)
    result = run_cli("info", "--model", str(broken), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    message = lines[0]
    assert message.startswith("minibitnet: error: "), message
    named = broken / case.file if case.file else broken
    assert str(named) in message
    assert case.expect in message.lower(), message
    assert message.isprintable()  # no raw control characters from names inside the file
    assert result.stdout == ""  # nothing half-printed before the error
    assert snapshot(broken) == before


@pytest.mark.parametrize("broken", CASES, ids=[c.id for c in CASES], indirect=True)
def test_load_raises_the_area_error(broken: Path, request: pytest.FixtureRequest) -> None:
    case: Case = request.node.callspec.params["broken"]
    before = snapshot(broken)
    with pytest.raises(case.error) as raised:
        minibitnet.load(broken)
    message = str(raised.value)
    assert "\n" not in message and len(message) < 400
    assert str(broken / case.file if case.file else broken) in message
    assert snapshot(broken) == before


def test_model_path_is_a_file(valid_model: Path, tmp_path: Path) -> None:
    result = run_cli("info", "--model", str(valid_model / CONFIG), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"minibitnet: error: {valid_model / CONFIG}: a file, "
                                     "expected a model folder with config.json and "
                                     "model.safetensors")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads files whatever their permissions")
def test_unreadable_file(valid_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(valid_model, folder)
    (folder / WEIGHTS).chmod(0)
    try:
        result = run_cli("info", "--model", str(folder), cwd=tmp_path)
    finally:
        (folder / WEIGHTS).chmod(0o644)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
    assert str(folder / WEIGHTS) in result.stderr and "ermission denied" in result.stderr


def test_debug_shows_the_traceback(valid_model: Path, tmp_path: Path) -> None:
    result = run_cli("--debug", "info", "--model", str(tmp_path / "absent"), cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("minibitnet: error: ")


@pytest.mark.parametrize("argv", [[], ["info", "--nope"], ["no-such-command"], ["info", "--model"]],
                         ids=["no command", "unknown flag", "unknown command", "missing value"])
def test_usage_errors_are_one_line(argv: list[str], tmp_path: Path) -> None:
    result = run_cli(*argv, cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "error:" in result.stderr and "--help" in result.stderr
    assert "Traceback" not in result.stderr


def test_closed_pipe_is_quiet(valid_model: Path, tmp_path: Path) -> None:
    """`minibitnet info | head -1`: the reader leaves early; no BrokenPipeError report."""
    process = subprocess.Popen([sys.executable, "-m", "minibitnet.cli", "info", "--model",
                                str(valid_model)], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before anything is read: every write fails
    stderr = process.stderr.read().decode()
    process.wait(timeout=60)
    assert "Traceback" not in stderr and "Broken pipe" not in stderr, stderr


def test_in_process_main_matches(valid_model: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """main(argv), as other programs may call it, reports the same way."""
    assert main(["info", "--model", str(tmp_path / "absent")]) == 1
    captured = capsys.readouterr()
    assert captured.err == (f"minibitnet: error: {tmp_path / 'absent'}: no such folder, "
                            "expected a model folder with config.json and model.safetensors\n")


# ---- runtime: what a loaded model refuses ----


@pytest.fixture(scope="module")
def model(valid_model: Path) -> minibitnet.Model:
    return minibitnet.load(valid_model)


@pytest.mark.parametrize("ids, match", [
    ([256], "token id 256 is outside the vocabulary"),
    ([-1], "token id -1 is outside the vocabulary"),
    ([1.5], "expected integers"),
    (["a"], "expected integers"),
    ([True], "expected integers"),
    ([2**70], "expected integers"),
    ([[1, 2], [3]], "not a flat sequence"),
    (np.array([2**64 - 1], np.uint64), "outside the vocabulary"),
    ([], "empty"),
], ids=["vocab", "negative", "float", "string", "bool", "huge", "ragged", "uint64", "empty"])
def test_bad_token_ids(model: minibitnet.Model, ids: Any, match: str) -> None:
    with pytest.raises(ArgumentError, match=match):
        model.logits(ids)


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_new_tokens=-1), "max_new_tokens is -1"),
    (dict(max_new_tokens=2.5), "max_new_tokens is 2.5"),
    (dict(temperature=-1.0), "temperature is -1.0"),
    (dict(temperature=float("nan")), "temperature is nan"),
    (dict(temperature=float("inf")), "temperature is inf"),
    (dict(temperature=None), "temperature is None"),
    (dict(top_k=0), "top_k is 0"),
    (dict(top_k=2.5), "top_k is 2.5"),
    (dict(top_p=0.0), "top_p is 0.0"),
    (dict(top_p=1.5), "top_p is 1.5"),
    (dict(top_p=float("nan")), "top_p is nan"),
    (dict(seed=-1), "seed is -1"),
], ids=lambda v: str(v) if isinstance(v, str) else None)
def test_generate_argument_ranges(model: minibitnet.Model, kwargs: dict[str, Any],
                                  match: str) -> None:
    arguments: dict[str, Any] = {"max_new_tokens": 3, **kwargs}
    with pytest.raises(ArgumentError, match=match):
        model.generate([1, 2], **arguments)


def test_prompt_longer_than_context(model: minibitnet.Model) -> None:
    limit = model.config.max_position_embeddings
    with pytest.raises(ContextLengthError, match=f"context length of {limit}"):
        model.generate([5] * (limit + 1), 1)
    with pytest.raises(ContextLengthError, match="max_position_embeddings"):
        model.logits([5] * (limit + 1))


def test_generation_stops_at_the_context(model: minibitnet.Model) -> None:
    limit = model.config.max_position_embeddings
    cache = model.new_cache()
    out = model.generate([5] * (limit - 4), 50, temperature=0.0, stop_ids=[], cache=cache)
    assert len(out) == 4 + 1  # 4 free positions, then the token chosen at the last one
    assert cache.length == limit


def test_unknown_backend_is_named_before_reading(tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match="unknown backend 'nope'; expected one of: reference"):
        minibitnet.load(tmp_path / "absent", backend="nope")


def test_overflow_is_reported_with_its_layer(valid_model: Path, tmp_path: Path) -> None:
    """A scale that passes every load check (finite, positive) but is so small that layer 1's
    output projection overflows float32: the error names layer 1, not a later one."""
    folder = tmp_path / "model"
    shutil.copytree(valid_model, folder)
    tiny_positive = struct.pack("<H", 0x0080)  # the smallest normal bf16, about 1.2e-38
    edit_tensor_bytes("model.layers.1.self_attn.o_proj.weight_scale", 0, tiny_positive)(folder)
    model = minibitnet.load(folder)
    with pytest.raises(NumericalError, match="^layer 1: NaN or infinity"):
        model.logits([1, 2, 3])


def test_nan_in_a_row_of_the_tied_head_is_reported_at_the_head(valid_model: Path,
                                                                 tmp_path: Path) -> None:
    """The embedding is not scanned at load; a NaN in the row of a token the prompt does not
    use reaches only that token's logit, and the forward names the output head."""
    folder = tmp_path / "model"
    shutil.copytree(valid_model, folder)
    width = minibitnet.load(valid_model).config.hidden_size
    edit_tensor_bytes("model.embed_tokens.weight", 2 * width * 200, BF16_NAN)(folder)  # row 200
    model = minibitnet.load(folder)
    with pytest.raises(NumericalError, match="^output head: NaN or infinity in the logits"):
        model.logits([1, 2, 3])
    cache = model.new_cache()
    with pytest.raises(NumericalError):
        model.forward([1, 2], cache)
    assert cache.length == 0  # a failed step leaves the cache where it was


# ---- generate and chat: flags and interruption ----


@pytest.fixture(scope="module")
def model_with_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from minibitnet_testing.tokenizer_builders import build_model_with_tokenizer

    return build_model_with_tokenizer(tmp_path_factory.mktemp("mt") / "model",
                                      max_position_embeddings=4096)


@pytest.mark.parametrize("command", ["generate", "chat"])
@pytest.mark.parametrize("flags, expect", [
    (["-n", "-1"], "argument -n/--n-predict: -1 is out of range, expected an integer >= 0"),
    (["-n", "many"], "argument -n/--n-predict: 'many' is not an integer >= 0"),
    (["--temp", "-1"], "argument --temp: -1 is out of range, expected a number >= 0"),
    (["--temp", "nan"], "argument --temp: nan is out of range"),
    (["--top-p", "0"], "argument --top-p: 0 is out of range, expected a number in (0, 1]"),
    (["--top-p", "1.5"], "argument --top-p: 1.5 is out of range"),
    (["--top-k", "0"], "argument --top-k: 0 is out of range, expected an integer >= 1"),
    (["--top-k", "2.5"], "argument --top-k: '2.5' is not an integer >= 1"),
    (["--seed", "-3"], "argument -s/--seed: -3 is out of range"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_sampling_flags_are_range_checked(command: str, flags: list[str], expect: str,
                                          model_with_tokenizer: Path, tmp_path: Path) -> None:
    result = run_cli(command, "-m", str(model_with_tokenizer), *flags, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"minibitnet {command}: error: {expect}"), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""


@pytest.mark.parametrize("flags, expect", [
    (["--backend", "nope"], "unknown backend 'nope'; expected one of: reference"),
    (["-f", "."], "-f/--file: .: is a folder, expected a UTF-8 text file"),
    (["-f", "absent.txt"], "-f/--file: absent.txt: no such file"),
], ids=["unknown backend", "prompt file is a folder", "prompt file missing"])
def test_generate_bad_inputs(flags: list[str], expect: str, model_with_tokenizer: Path,
                             tmp_path: Path) -> None:
    result = run_cli("generate", "-m", str(model_with_tokenizer), "--quiet", *flags,
                     cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("minibitnet: error: ") and expect in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_generate_prompt_longer_than_context(model_with_tokenizer: Path, tmp_path: Path) -> None:
    result = run_cli("generate", "-m", str(model_with_tokenizer), "--quiet", "-n", "1",
                     "-p", "hello world " * 3000, cwd=tmp_path)
    assert result.returncode == 1
    assert "exceeds the context length of 4096 tokens" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_ctrl_c_during_generation_keeps_the_text(model_with_tokenizer: Path,
                                                 tmp_path: Path) -> None:
    import signal

    process = subprocess.Popen(
        [sys.executable, "-m", "minibitnet.cli", "generate", "-m", str(model_with_tokenizer),
         "--quiet", "--backend", "reference", "-p", "hello", "-n", "4000", "--temp", "0"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    first = process.stdout.read(1)  # generation has started and text is being streamed
    process.send_signal(signal.SIGINT)
    rest, stderr = process.communicate(timeout=120)
    assert first and process.returncode == 130
    assert "interrupted" in stderr.decode() and "Traceback" not in stderr.decode()
    assert len(first + rest) < 4000 * 8  # stopped early, and what was printed came out


# ---- docs/robustness.md lists what every case prints ----

DOC = Path(__file__).resolve().parent.parent / "docs" / "robustness.md"
TABLE_START, TABLE_END = "<!-- cases:start -->", "<!-- cases:end -->"


def case_table(valid_model: Path, workdir: Path) -> str:
    """The markdown table of every case and the line ``minibitnet info --model model`` prints."""
    import contextlib
    import io

    rows = ["| Case | Message (`minibitnet info --model model`, exit code 1) |", "|---|---|"]
    for case in CASES:
        folder = workdir / "model"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(valid_model, folder)
        case.mutate(folder)
        stderr = io.StringIO()
        with contextlib.chdir(workdir), contextlib.redirect_stderr(stderr), \
                contextlib.redirect_stdout(io.StringIO()):
            code = main(["info", "--model", "model"])
        assert code == 1, case.id
        message = stderr.getvalue().strip().replace("|", "\\|")
        rows.append(f"| {case.id} | `{message}` |")
    return "\n".join(rows)


def test_docs_list_every_case(valid_model: Path, tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = text[text.index(TABLE_START) + len(TABLE_START):text.index(TABLE_END)].strip()
    assert documented == case_table(valid_model, tmp_path), (
        "docs/robustness.md is out of date: run `python tests/test_robustness.py`")


if __name__ == "__main__":  # rewrite the table in docs/robustness.md from the cases above
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        model = build_checkpoint(Path(scratch) / "valid" / "model", "tiny", seed=3)
        table = case_table(model, Path(scratch))
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(TABLE_START)
    DOC.write_text(f"{head}{TABLE_START}\n{table}\n{TABLE_END}{rest.split(TABLE_END)[1]}",
                   encoding="utf-8")
