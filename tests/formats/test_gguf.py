"""GGUF v3 and I2_S: the layout by hand, round trips as properties, models agreeing bit for bit."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minibitnet
from minibitnet.formats.checkpoint import load_weights
from minibitnet.cli import main
from minibitnet.errors import CheckpointError, ConfigError, NumericalError
from minibitnet.formats.gguf.container import (
    ARRAY, BF16, BOOL, F16, F32, FLOAT32, FLOAT64, I2_S, INT8, INT16, INT32, INT64, STRING,
    UINT8, UINT16, UINT32, UINT64, GGUFFile, TensorToWrite, write_gguf,
)
from minibitnet.formats.gguf import container
from minibitnet.formats.gguf.checkpoint import load_gguf, write_gguf_model
from minibitnet.formats.gguf.i2s import pack_i2s, unpack_i2s
from minibitnet.formats.master import round_scale_to_bf16
from minibitnet.core.model import Model
from minibitnet.kernels.registry import get_backend
from minibitnet.core.bfloat16 import bf16_to_float32
from minibitnet_testing.format_builders import FORMAT_SHAPES, build_i2s_packed

BACKENDS = ["reference", "fast"]
PROMPT = [1, 5, 17, 3, 99, 42, 8]


# ---- I2_S ----


def test_i2s_block_worked_by_hand():
    # the module docstring: weights 0, 32, 64, 96 of a block are +1, -1, 0, +1 -> byte 0x86
    w = np.zeros((1, 128), np.int8)
    w[0, [0, 32, 64, 96]] = [1, -1, 0, 1]
    data = pack_i2s(w, np.float32(0.5))
    assert data.shape == (128 // 4 + 32,)
    assert data[0] == 0x86
    assert np.all(data[1:32] == 0b01_01_01_01)  # all other weights 0: code 1 in every pair
    assert data[32:36].tobytes() == struct.pack("<f", 0.5) and not data[36:].any()


@st.composite
def i2s_matrices(draw: st.DrawFn) -> np.ndarray:
    """(out, in) int8 in {-1, 0, +1} with in a multiple of 128."""
    rows, blocks = draw(st.integers(1, 6)), draw(st.integers(1, 3))
    return draw(hnp.arrays(np.int8, (rows, 128 * blocks), elements=st.integers(-1, 1)))


@given(w=i2s_matrices(), scale=st.floats(2.0**-100, 2.0**100, width=32))
def test_i2s_unpack_inverts_pack(w, scale):
    data = pack_i2s(w, np.float32(scale))
    assert data.shape == (w.size // 4 + 32,)
    w_back, scale_back = unpack_i2s(data, *w.shape)
    assert np.array_equal(w_back, w) and scale_back == np.float32(scale)


def test_i2s_refuses_rows_that_are_not_whole_blocks():
    with pytest.raises(ValueError, match="cannot pack 100 weights a row as I2_S: expected a "
                                         "multiple of 128"):
        pack_i2s(np.zeros((4, 100), np.int8), np.float32(1.0))


def test_inverse_scale_rounded_to_bf16_gives_back_every_bf16_weight_scale():
    # every positive bf16 scale from 2^-100 to 2^100: written as float32(1 / s), read back as
    # bf16(1 / that) -- the subtle: comment of gguf_scales.py
    bits = np.arange(0x0D80, 0x7180, dtype=np.uint16)  # bf16 patterns of 2^-100 ... 2^100
    for s in bf16_to_float32(bits):
        i2s_scale = np.float32(1.0 / float(s))
        assert round_scale_to_bf16(np.float32(1.0 / float(i2s_scale))) == s


# ---- the GGUF container ----


def handmade_gguf(path: Path) -> Path:
    """A GGUF file written byte by byte from the spec: two metadata keys, one F32 tensor."""
    def string(text: str) -> bytes:
        return struct.pack("<Q", len(text)) + text.encode()

    header = b"GGUF" + struct.pack("<IQQ", 3, 1, 2)
    header += string("general.architecture") + struct.pack("<I", STRING) + string("test")
    header += string("numbers") + struct.pack("<IIQ", ARRAY, INT16, 3)
    header += struct.pack("<3h", 1, -2, 3)
    header += string("x") + struct.pack("<I", 2) + struct.pack("<2Q", 3, 2)  # dims [3, 2]
    header += struct.pack("<IQ", F32, 0)
    padding = b"\0" * (-len(header) % 32)
    data = np.arange(6, dtype="<f4").tobytes()  # NumPy shape (2, 3)
    path.write_bytes(header + padding + data)
    return path


def test_reader_reads_a_file_made_by_hand(tmp_path):
    file = GGUFFile(handmade_gguf(tmp_path / "hand.gguf"))
    assert file.version == 3 and file.alignment == 32
    assert file.metadata["general.architecture"] == "test"
    assert file.metadata["numbers"].tolist() == [1, -2, 3]
    assert file.tensors["x"].dims == (3, 2) and file.tensors["x"].shape == (2, 3)
    assert np.array_equal(file.array("x"), np.arange(6, dtype=np.float32).reshape(2, 3))


METADATA = {
    "general.architecture": (STRING, "test ünïcode"),
    "general.alignment": (UINT32, 64),
    "u8": (UINT8, 255), "i8": (INT8, -128), "u16": (UINT16, 65535), "i16": (INT16, -32768),
    "u32": (UINT32, 2**32 - 1), "i32": (INT32, -2**31), "u64": (UINT64, 2**64 - 1),
    "i64": (INT64, -2**63), "f32": (FLOAT32, 0.5), "f64": (FLOAT64, 1e-300), "flag": (BOOL, True),
    "words": (ARRAY, (STRING, ["a", "", "ĠHello"])),
    "nested": (ARRAY, (ARRAY, [(INT32, [1, 2]), (INT32, [])])),
    "empty": (ARRAY, (FLOAT32, [])),
}


def test_writer_and_reader_round_trip_every_value_type_and_tensor_type(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.integers(-1, 2, (8, 256)).astype(np.int8)
    tensors = {
        "f32": (F32, (5,), rng.standard_normal(5).astype("<f4")),
        "f16": (F16, (3, 2), rng.standard_normal((2, 3)).astype("<f2")),
        "bf16": (BF16, (4, 3), rng.integers(0, 2**15, (3, 4)).astype("<u2")),
        "i2s": (I2_S, (256, 8), pack_i2s(w, np.float32(0.25))),
    }
    write_gguf(tmp_path / "all.gguf", METADATA,
               [TensorToWrite(name, dims, kind, lambda value=value: value)
                for name, (kind, dims, value) in tensors.items()])
    file = GGUFFile(tmp_path / "all.gguf")
    assert file.alignment == 64
    for key, (kind, value) in METADATA.items():
        if kind != ARRAY:
            assert file.metadata[key] == value and file.value_types[key] == kind, key
    assert file.metadata["words"] == ["a", "", "ĠHello"]
    assert [a.tolist() for a in file.metadata["nested"]] == [[1, 2], []]
    assert file.metadata["empty"].size == 0
    for name, (kind, dims, value) in tensors.items():
        assert file.tensors[name].offset % 64 == 0
        if kind == I2_S:
            assert np.array_equal(unpack_i2s(file.raw(name), 8, 256)[0], w)
        else:
            assert np.array_equal(file.array(name), value), name


# ---- models ----


@pytest.fixture(scope="module", params=["i2s", "i2s-untied"])
def packed_and_gguf(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    packed = build_i2s_packed(root / "packed", request.param, seed=5)
    config = minibitnet.load(packed).config
    path = write_gguf_model(root / "model.gguf", config, load_weights(packed))
    return packed, path


def test_gguf_config_equals_the_packed_config(packed_and_gguf):
    packed, path = packed_and_gguf
    config, _ = load_gguf(path)
    assert config == minibitnet.load(packed).config


@pytest.mark.parametrize("backend", BACKENDS)
def test_gguf_and_packed_give_identical_logits(packed_and_gguf, backend):
    packed, path = packed_and_gguf
    config, weights = load_gguf(path)
    from_gguf = Model(config, weights, get_backend(backend)).logits(PROMPT)
    assert np.array_equal(from_gguf, minibitnet.load(packed, backend=backend).logits(PROMPT))
    assert np.array_equal(from_gguf, minibitnet.load(packed, backend="reference").logits(PROMPT))


def test_gguf_weights_equal_the_packed_weights(packed_and_gguf):
    packed, path = packed_and_gguf
    _, weights = load_gguf(path)
    expected = load_weights(packed)
    assert np.array_equal(weights.embed_tokens, expected.embed_tokens)
    for layer, other in zip(weights.layers, expected.layers):
        for field in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                      "down_proj"):
            mine, theirs = getattr(layer, field), getattr(other, field)
            assert np.array_equal(mine.packed, theirs.packed), field
            assert mine.weight_scale == theirs.weight_scale, field
        assert np.array_equal(layer.ffn_sub_norm, other.ffn_sub_norm)


def test_writing_a_model_whose_rows_are_not_whole_blocks_is_refused(tmp_path):
    packed = build_i2s_packed(tmp_path / "p", "tiny")  # hidden size 64
    config = minibitnet.load(packed).config
    with pytest.raises(CheckpointError, match=r"cannot write I2_S, hidden_size is 64, expected "
                                              r"a multiple of 128"):
        write_gguf_model(tmp_path / "out.gguf", config, load_weights(packed))
    assert not list(tmp_path.glob("*.gguf")) and not list(tmp_path.glob(".*.tmp"))


def test_shapes_used_here_are_whole_blocks():
    for name in ("i2s", "i2s-untied"):
        config = FORMAT_SHAPES[name]
        assert config.hidden_size % 128 == 0 and config.intermediate_size % 128 == 0


# ---- corrupt files: one clean line through `minibitnet info --model DIR` ----


def _field_position(raw: bytes, name: str) -> int:
    """Byte position just after the tensor info name ``name`` (at its n_dims field)."""
    encoded = struct.pack("<Q", len(name)) + name.encode()
    position = raw.index(encoded)
    return position + len(encoded)


def patch_tensor_field(name: str, field: str, value: int) -> Callable[[bytes], bytes]:
    """Overwrite the 'type' (u32) or 'offset' (u64) of tensor ``name``'s info."""
    def mutate(raw: bytes) -> bytes:
        position = _field_position(raw, name)
        (n_dims,) = struct.unpack_from("<I", raw, position)
        type_at = position + 4 + 8 * n_dims
        at, fmt = (type_at, "<I") if field == "type" else (type_at + 4, "<Q")
        return raw[:at] + struct.pack(fmt, value) + raw[at + struct.calcsize(fmt):]
    return mutate


def shift_tensor_offset(name: str, delta: int) -> Callable[[bytes], bytes]:
    def mutate(raw: bytes) -> bytes:
        position = _field_position(raw, name)
        (n_dims,) = struct.unpack_from("<I", raw, position)
        at = position + 4 + 8 * n_dims + 4
        (offset,) = struct.unpack_from("<Q", raw, at)
        return raw[:at] + struct.pack("<Q", offset + delta) + raw[at + 8:]
    return mutate


def copy_offset(source: str, target: str) -> Callable[[bytes], bytes]:
    """Point tensor ``target`` at the bytes of ``source`` (same size), so the two overlap."""
    def mutate(raw: bytes) -> bytes:
        position = _field_position(raw, source)
        (n_dims,) = struct.unpack_from("<I", raw, position)
        (offset,) = struct.unpack_from("<Q", raw, position + 4 + 8 * n_dims + 4)
        return patch_tensor_field(target, "offset", offset)(raw)
    return mutate


def replace_once(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    assert len(old) == len(new)
    return lambda raw: raw.replace(old, new, 1)


def patch_tensor_data(name: str, at: int | None, value: bytes) -> Callable[[bytes], bytes]:
    """Overwrite bytes of tensor ``name``'s data; at None: the I2_S scale in its tail."""
    def mutate(raw: bytes) -> bytes:
        position = _field_position(raw, name)
        (n_dims,) = struct.unpack_from("<I", raw, position)
        dims = struct.unpack_from(f"<{n_dims}Q", raw, position + 4)
        (offset,) = struct.unpack_from("<Q", raw, position + 4 + 8 * n_dims + 4)
        data_start = -(-_end_of_infos(raw) // 32) * 32
        start = data_start + offset + (dims[0] * dims[1] // 4 if at is None else at)
        return raw[:start] + value + raw[start + len(value):]
    return mutate


def _end_of_infos(raw: bytes) -> int:
    """End of the tensor infos. The file is ours (write_gguf), whose last info is
    output_norm.weight, F32 [D]; the data section starts at the next multiple of 32."""
    position = _field_position(raw, "output_norm.weight")
    return position + 4 + 8 + 4 + 8


METADATA_KEY = b"bitnet-b1.58.block_count"
ARCH_VALUE = struct.pack("<Q", 12) + b"bitnet-b1.58"

GGUF_CASES = [
    ("empty file", lambda raw: b"", "file ends at byte 0 inside the magic number"),
    ("cut below its counts", lambda raw: raw[:50], "more than a 50-byte file can hold"),
    ("truncated header", lambda raw: raw[:900], "file ends at byte 900 inside"),
    ("truncated data", lambda raw: raw[:-100], "runs past the end of the"),
    ("bad magic", lambda raw: b"GGUG" + raw[4:], "expected the gguf magic"),
    ("wrong version", lambda raw: raw[:4] + struct.pack("<I", 2) + raw[8:],
     "is gguf version 2, expected 3"),
    ("huge metadata count", lambda raw: raw[:16] + struct.pack("<Q", 2**60) + raw[24:],
     "more than a"),
    ("huge key length", lambda raw: raw[:24] + struct.pack("<Q", 2**62) + raw[32:],
     "inside metadata key 0"),
    ("tensor out of bounds", patch_tensor_field("blk.1.ffn_down.weight", "offset", 2**40),
     "runs past the end of the"),
    ("misaligned tensor", shift_tensor_offset("blk.0.attn_q.weight", 1),
     "expected a multiple of the alignment 32"),
    ("overlapping tensors", copy_offset("blk.0.attn_norm.weight", "blk.0.ffn_norm.weight"),
     "overlaps tensor"),
    ("unknown tensor type", patch_tensor_field("blk.0.attn_k.weight", "type", 99),
     "has tensor type 99, expected one of"),
    ("norm given as I2_S", patch_tensor_field("output_norm.weight", "type", 36),
     "'output_norm.weight' has type i2_s, expected f32 or f16 or bf16"),
    ("missing tensor", replace_once(b"blk.1.ffn_down.weight", b"blk.1.ffn_dowX.weight"),
     "missing tensor 'blk.1.ffn_down.weight'"),
    ("wrong architecture", replace_once(ARCH_VALUE, ARCH_VALUE[:-1] + b"9"),
     "general.architecture is 'bitnet-b1.59', expected 'bitnet-b1.58'"),
    ("metadata of the wrong type",
     lambda raw: raw.replace(METADATA_KEY + struct.pack("<I", UINT32),
                             METADATA_KEY + struct.pack("<I", FLOAT32), 1),
     "has type float32, expected an integer"),
    ("code-3 byte", patch_tensor_data("blk.1.ffn_up.weight", 7, b"\xff"),
     "holds the invalid code 3"),
    ("NaN scale", patch_tensor_data("blk.0.attn_v.weight", None, struct.pack("<f", float("nan"))),
     "i2_s scale nan, expected a finite positive number"),
    ("negative scale", patch_tensor_data("blk.0.attn_v.weight", None, struct.pack("<f", -1.0)),
     "i2_s scale -1.0, expected a finite positive number"),
]


@pytest.fixture(scope="module")
def valid_gguf(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gguf")
    packed = build_i2s_packed(root / "packed", "i2s", seed=2)
    folder = root / "model"
    folder.mkdir()
    write_gguf_model(folder / "ggml-model-i2_s.gguf", minibitnet.load(packed).config,
                     load_weights(packed))
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_the_valid_gguf_passes_info(valid_gguf, capsys):
    assert main(["info", "--model", str(valid_gguf)]) == 0
    assert "format:  gguf-i2s" in capsys.readouterr().out


@pytest.mark.parametrize("mutate, expect", [case[1:] for case in GGUF_CASES],
                         ids=[case[0] for case in GGUF_CASES])
def test_corrupt_gguf_gives_one_clean_line(valid_gguf, tmp_path, capsys, mutate, expect):
    folder = tmp_path / "model"
    shutil.copytree(valid_gguf, folder)
    path = folder / "ggml-model-i2_s.gguf"
    mutated = mutate(path.read_bytes())
    assert mutated != path.read_bytes()  # the mutation found its target
    path.write_bytes(mutated)
    before = snapshot(folder)
    assert main(["info", "--model", str(folder)]) == 1
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and stderr.startswith("minibitnet: error: "), stderr
    assert str(path) in stderr and expect in stderr.lower(), stderr
    with pytest.raises(CheckpointError):
        minibitnet.load(folder)
    assert snapshot(folder) == before  # nothing written, no temporary files


def test_two_gguf_files_are_refused_by_name(valid_gguf, tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(valid_gguf, folder)
    shutil.move(folder / "ggml-model-i2_s.gguf", folder / "a.gguf")
    shutil.copy(folder / "a.gguf", folder / "b.gguf")
    assert main(["info", "--model", str(folder)]) == 1
    assert "holds 2 .gguf files (a.gguf, b.gguf), expected one" in capsys.readouterr().err


def test_the_installed_command_reports_a_corrupt_gguf_without_traceback(valid_gguf, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(valid_gguf, folder)
    path = folder / "ggml-model-i2_s.gguf"
    path.write_bytes(path.read_bytes()[:-100])
    result = subprocess.run([sys.executable, "-m", "minibitnet.cli", "info", "--model",
                             str(folder)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "truncated?" in result.stderr


def test_i2s_rows_that_are_not_whole_blocks_are_refused_on_read(tmp_path):
    tensor = TensorToWrite("w", (100, 4), I2_S, lambda: np.zeros(100 + 32, np.uint8))
    write_gguf(tmp_path / "rows.gguf", {}, [tensor])
    with pytest.raises(CheckpointError, match=r"rows.gguf: tensor 'w' is I2_S with rows of 100 "
                                              r"weights, expected a multiple of 128"):
        GGUFFile(tmp_path / "rows.gguf")


# ---- properties of the container, and fuzzing the reader ----

SCALAR_VALUES = {
    UINT8: st.integers(0, 2**8 - 1), INT8: st.integers(-2**7, 2**7 - 1),
    UINT16: st.integers(0, 2**16 - 1), INT16: st.integers(-2**15, 2**15 - 1),
    UINT32: st.integers(0, 2**32 - 1), INT32: st.integers(-2**31, 2**31 - 1),
    UINT64: st.integers(0, 2**64 - 1), INT64: st.integers(-2**63, 2**63 - 1),
    FLOAT32: st.floats(width=32, allow_nan=False), FLOAT64: st.floats(allow_nan=False),
    BOOL: st.booleans(), STRING: st.text(max_size=20),
}
typed_values = st.one_of(
    *[values.map(lambda v, kind=kind: (kind, v)) for kind, values in SCALAR_VALUES.items()],
    st.sampled_from(list(SCALAR_VALUES)).flatmap(
        lambda kind: st.lists(SCALAR_VALUES[kind], max_size=5).map(
            lambda items, kind=kind: (ARRAY, (kind, items)))),
)


@given(metadata=st.dictionaries(st.text(max_size=12).filter(lambda k: k != "general.alignment"),
                                typed_values, max_size=6))
def test_metadata_reads_back_as_written(tmp_path_factory, metadata):
    path = tmp_path_factory.mktemp("meta") / "m.gguf"
    write_gguf(path, metadata, [])
    file = GGUFFile(path)
    assert list(file.metadata) == list(metadata)
    for key, (kind, value) in metadata.items():
        assert file.value_types[key] == kind
        if kind == ARRAY:
            element_kind, items = value
            read = file.metadata[key]
            assert list(read) == items, key
        else:
            assert file.metadata[key] == value, key


@given(data=st.data())
def test_a_mutated_gguf_loads_or_gives_a_checkpoint_error(valid_gguf, tmp_path_factory, data):
    raw = bytearray((valid_gguf / "ggml-model-i2_s.gguf").read_bytes())
    header_end = _end_of_infos(bytes(raw))
    action = data.draw(st.sampled_from(["flip", "cut", "flip-data"]))
    if action == "cut":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    else:
        at = data.draw(st.integers(0, header_end - 1 if action == "flip" else len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "ggml-model-i2_s.gguf").write_bytes(bytes(raw))
    try:
        model = minibitnet.load(folder)
    except (CheckpointError, ConfigError):
        return
    # a mutation no load check sees (a code, an embedding value) still runs, or overflows into
    # the forward pass's own error, as for a packed checkpoint
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # the overflow is the point here
            assert model.logits([1, 2]).shape == (2, model.config.vocab_size)
    except NumericalError:
        pass


def test_an_f16_embedding_is_kept_as_stored(packed_and_gguf, tmp_path):
    # bitnet.cpp's converter writes token_embd as F16; it is read as stored, never rounded
    from dataclasses import replace

    from minibitnet.formats.gguf.checkpoint import gguf_tensors
    from minibitnet.formats.gguf.config import gguf_metadata
    from minibitnet.core.bfloat16 import float32_to_bf16

    packed, _ = packed_and_gguf
    config = minibitnet.load(packed).config
    weights = load_weights(packed)
    thirds = bf16_to_float32(np.asarray(weights.embed_tokens)) * np.float32(1 / 3)  # (V, D)
    embedding = thirds.astype(np.float16)  # (V, D)
    tensors = gguf_tensors(config, weights)
    tensors[0] = TensorToWrite("token_embd.weight", tensors[0].dims, F16,
                               lambda: embedding.astype("<f2"))
    write_gguf(tmp_path / "f16.gguf", gguf_metadata(config, "f16"), tensors)
    _, loaded = load_gguf(tmp_path / "f16.gguf")
    assert loaded.embed_tokens.dtype == np.float16
    assert np.array_equal(loaded.embed_tokens, embedding)
    expected = Model(config, replace(weights, embed_tokens=embedding)).logits(PROMPT)
    assert np.array_equal(Model(config, loaded).logits(PROMPT), expected)
    # the case is not trivial: the same table rounded to bf16 gives other logits
    rounded = float32_to_bf16(embedding.astype(np.float32))
    assert not np.array_equal(Model(config, replace(weights, embed_tokens=rounded)
                                    ).logits(PROMPT), expected)


@pytest.mark.parametrize("key, value, expect", [
    ("general.architecture", (ARRAY, (INT32, [1, 2])), "'general.architecture' has type ARRAY, "
                                                      "expected a string"),
    ("bitnet-b1.58.rope.scaling.type", (UINT32, 1), "has type UINT32, expected a string"),
    ("bitnet-b1.58.rope.scaling.type", (STRING, "yarn"), "RoPE scaling 'yarn' (factor 1.0) is "
                                                         "not supported"),
    ("bitnet-b1.58.block_count", (STRING, "2"), "has type STRING, expected an integer"),
])
def test_metadata_of_the_wrong_type_is_one_clean_error(packed_and_gguf, tmp_path, key, value,
                                                       expect):
    from minibitnet.formats.gguf.checkpoint import gguf_tensors
    from minibitnet.formats.gguf.config import gguf_metadata

    packed, _ = packed_and_gguf
    config = minibitnet.load(packed).config
    write_gguf(tmp_path / "m.gguf", {**gguf_metadata(config, "m"), key: value},
               gguf_tensors(config, load_weights(packed)))
    with pytest.raises(CheckpointError, match=re.escape(expect)):
        load_gguf(tmp_path / "m.gguf")


def test_an_alignment_that_is_not_a_number_is_one_clean_error(tmp_path):
    # made by hand: the writer itself needs a number there
    key = b"general.alignment"
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
    header += struct.pack("<IIQ", ARRAY, UINT8, 1) + b"\x20"
    (tmp_path / "a.gguf").write_bytes(header)
    with pytest.raises(CheckpointError, match=re.escape("general.alignment is array([32], "
                                                        "dtype=uint8), expected a UINT32")):
        GGUFFile(tmp_path / "a.gguf")


# ---- budgets: every count is bounded before a loop over it starts ----


def string_array_gguf(path: Path, arrays: list[tuple[int, bytes]]) -> Path:
    """A GGUF of string arrays made with NumPy, not the writer: each (claimed count, element
    bytes) is one key; empty strings are 8 zero bytes each (their length)."""
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, len(arrays))
    parts = [header]
    for index, (count, elements) in enumerate(arrays):
        key = f"key{index}".encode()
        parts += [struct.pack("<Q", len(key)), key, struct.pack("<IIQ", ARRAY, STRING, count),
                  elements]
    path.write_bytes(b"".join(parts))
    return path


def test_eight_million_empty_strings_are_refused_by_count(tmp_path):
    count = 8 * 2**20  # a 64 MB file of zeros, but 8M str objects: over MAX_ARRAY_STRINGS
    path = string_array_gguf(tmp_path / "big.gguf", [(count, np.zeros(8 * count, np.uint8)
                                                      .tobytes())])
    with pytest.raises(CheckpointError, match=rf"metadata 'key0' holds {count} strings or "
                                              rf"arrays, expected at most {2**22}"):
        GGUFFile(path)


def test_a_string_array_at_its_budget_is_read_and_one_more_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(container, "MAX_ARRAY_STRINGS", 1000)
    element = struct.pack("<Q", 2) + b"ab"
    path = string_array_gguf(tmp_path / "at.gguf", [(1000, element * 1000)])
    assert GGUFFile(path).metadata["key0"] == ["ab"] * 1000
    path = string_array_gguf(tmp_path / "over.gguf", [(1001, element * 1001)])
    with pytest.raises(CheckpointError, match="holds 1001 strings or arrays, expected at most "
                                              "1000"):
        GGUFFile(path)


def test_the_strings_of_a_whole_file_have_a_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(container, "MAX_FILE_STRINGS", 1500)
    element = struct.pack("<Q", 0)
    path = string_array_gguf(tmp_path / "two.gguf", [(1000, element * 1000),
                                                     (1000, element * 1000)])
    with pytest.raises(CheckpointError, match="metadata 'key1' brings the strings and arrays "
                                              "of the metadata to 2000, expected at most 1500"):
        GGUFFile(path)


@pytest.mark.parametrize("element_type, smallest", [(STRING, 8), (ARRAY, 12), (UINT64, 8),
                                                    (UINT8, 1)])
def test_a_count_the_rest_of_the_file_cannot_hold_is_refused_before_reading(
        tmp_path, element_type, smallest):
    key = b"k"
    raw = (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + key
           + struct.pack("<IIQ", ARRAY, element_type, 2**40) + bytes(100))
    (tmp_path / "claim.gguf").write_bytes(raw)
    with pytest.raises(CheckpointError, match=rf"'k' claims {2**40} elements of {smallest} "
                                              r"bytes or more, more than the 100 bytes left"):
        GGUFFile(tmp_path / "claim.gguf")


def test_an_array_of_an_unknown_element_type_is_refused(tmp_path):
    raw = (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + b"k"
           + struct.pack("<IIQ", ARRAY, 13, 1) + bytes(8))
    (tmp_path / "type.gguf").write_bytes(raw)
    with pytest.raises(CheckpointError, match="is an array of value type 13, expected 0 to 12"):
        GGUFFile(tmp_path / "type.gguf")


def test_the_counts_of_keys_and_tensors_have_a_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(container, "MAX_METADATA_KEYS", 2)
    write_gguf(tmp_path / "keys.gguf", {f"k{i}": (UINT8, i) for i in range(3)}, [])
    with pytest.raises(CheckpointError, match="claims 3 metadata entries and 0 tensors, "
                                              "expected at most 2 entries"):
        GGUFFile(tmp_path / "keys.gguf")


def test_a_numeric_array_is_one_read_only_view_of_the_map(tmp_path):
    values = np.arange(2**20, dtype="<u4")  # a million numbers: no Python object per element
    write_gguf(tmp_path / "n.gguf", {"n": (ARRAY, (UINT32, values))}, [])
    read = GGUFFile(tmp_path / "n.gguf").metadata["n"]
    assert read.dtype == np.dtype("<u4") and np.array_equal(read, values)
    assert not read.flags.writeable
