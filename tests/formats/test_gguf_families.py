"""GGUF I2_S for every family: the model comes back exactly, in bitnet.cpp's layout of its family.

Each case builds a small checkpoint of one family (every projection input a multiple of 128, as
I2_S needs; minibitnet_testing.family_builders' shapes are narrower), loads it, writes the GGUF file with
write_gguf_model and reads it back: config, every weight (codes, scales bit for bit, norms,
tables with their dtype), logits on both backends and the bytes of a second write must agree.
Then the parts each architecture adds: llama.cpp's q/k row order of ``llama`` (by hand, as a
property, and against a rotation of adjacent pairs), the exact-scales key, what cannot be
written, and corrupt files of the new architectures.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minibitnet
from minibitnet.cli import main
from minibitnet.config import Llama3Scaling
from minibitnet.errors import CheckpointError, ConfigError, NumericalError
from minibitnet.families import ONEBITLLM
from minibitnet.formats.detect import read_model
from minibitnet.formats.gguf.container import (
    ARRAY, BF16, F16, F32, FLOAT32, I2_S, INT32, STRING, UINT32, GGUFFile, TensorToWrite,
    write_gguf,
)
from minibitnet.formats.gguf.architectures import (
    ARCHITECTURES, GGUF_ARCHITECTURES, check_gguf_writable, permute_rope_rows,
    unpermute_rope_rows,
)
from minibitnet.formats.gguf.checkpoint import GGUF_FILE, gguf_tensors, load_gguf, write_gguf_model
from minibitnet.formats.gguf.config import gguf_metadata, model_name
from minibitnet.formats.gguf.scales import EXACT_SCALES_KEY, weight_scale_metadata
from minibitnet.formats.gguf.i2s import unpack_i2s
from minibitnet.formats.master import round_scale_to_bf16
from minibitnet.core.packing import unpack_ternary
from minibitnet.core.rope import apply_rope, inverse_frequencies, rope_tables
from minibitnet.core.bfloat16 import float32_to_bf16
from minibitnet.tools.synthetic import tiny_config
from minibitnet_testing.gguf_cases import BASE, CASES, LLAMA, build_source
from minibitnet_testing.weight_checks import assert_same_weights, same_bits

BACKENDS = ["reference", "fast"]
PROMPT = [1, 5, 17, 3, 99, 42, 8, 250]
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

ARCHITECTURE_OF_CASE = {
    "bitnet-packed": "bitnet-b1.58", "bitnet-online": "bitnet-b1.58", "llama-tied": "llama",
    "llama-untied": "llama", "llama-online": "llama", "1bitllm": "bitnet", "bitnet-silu": "bitnet",
}
FAMILY_OF_ARCHITECTURE = {arch: family for family, arch in GGUF_ARCHITECTURES.items()}


@pytest.fixture(scope="module", params=list(CASES))
def case(request, tmp_path_factory) -> dict[str, Any]:
    """One family's source folder, its loaded model, and a folder holding the GGUF written
    from that model."""
    root = tmp_path_factory.mktemp(request.param)
    source = build_source(root / "source", *CASES[request.param])
    config, weights, _ = read_model(source)
    (root / "gguf").mkdir()
    path = write_gguf_model(root / "gguf" / GGUF_FILE, config, weights)
    return {"name": request.param, "source": source, "config": config, "weights": weights,
            "folder": root / "gguf", "path": path}


# ---- the model comes back exactly ----


def test_the_file_has_the_architecture_of_the_family(case):
    assert GGUFFile(case["path"]).metadata["general.architecture"] == \
        ARCHITECTURE_OF_CASE[case["name"]]


def test_the_config_comes_back(case):
    # what changes: the family is the architecture's (bitnet-silu becomes 1bitllm, the same
    # model), and codes with a stored scale load offline, whatever the family (a 1bitLLM
    # config.json is online because its checkpoint holds latents; a GGUF holds none)
    config, _ = load_gguf(case["path"])
    family = FAMILY_OF_ARCHITECTURE[ARCHITECTURE_OF_CASE[case["name"]]]
    assert config == replace(case["config"], family=family, quantization_mode="offline")


def test_every_weight_comes_back(case):
    _, weights = load_gguf(case["path"])
    assert_same_weights(weights, case["weights"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_logits_are_identical(case, backend):
    expected = minibitnet.load(case["source"]).logits(PROMPT)  # reference backend
    from_source = minibitnet.load(case["source"], backend=backend).logits(PROMPT)
    from_gguf = minibitnet.load(case["folder"], backend=backend).logits(PROMPT)
    assert np.array_equal(from_gguf, from_source) and np.array_equal(from_gguf, expected)


def test_writing_the_loaded_model_again_gives_the_same_bytes(case, tmp_path):
    config, weights = load_gguf(case["path"])
    # the name, which the metadata holds and the model does not, is passed on as convert does
    again = write_gguf_model(tmp_path / "again.gguf", config, weights,
                             name=model_name(tmp_path, GGUFFile(case["path"])))
    assert again.read_bytes() == case["path"].read_bytes()


def test_the_file_carries_the_general_keys_bitnet_cpp_writes(case):
    # the values of bitnet.cpp's llama-quantize: LLAMA_FTYPE_MOSTLY_I2_S and GGML_QNT_VERSION
    file = GGUFFile(case["path"])
    assert file.metadata["general.file_type"] == 40
    assert file.value_types["general.file_type"] == UINT32
    assert file.metadata["general.quantization_version"] == 2
    assert file.value_types["general.quantization_version"] == UINT32
    # as the converter's dir_model.name: the folder the file was written into
    assert file.metadata["general.name"] == case["folder"].name == "gguf"
    assert file.value_types["general.name"] == STRING


def test_info_names_the_architecture_and_the_family(case, capsys):
    assert main(["info", "--model", str(case["folder"])]) == 0
    out = capsys.readouterr().out
    arch = ARCHITECTURE_OF_CASE[case["name"]]
    assert f"I2_S ternary weights, architecture {arch} (" in out
    family_line = next(line for line in out.splitlines() if line.startswith("family:  "))
    assert family_line.startswith(f"family:  {FAMILY_OF_ARCHITECTURE[arch]}: "
                                  f"{ARCHITECTURES[arch].description}, ")
    # codes with stored scales, for 1bitllm too: not its latents, not "online"
    assert family_line.endswith("ternary weights quantised offline (I2_S codes, one stored "
                                "scale per tensor)"), family_line
    assert "online" not in family_line and "latents" not in family_line
    assert "on load" not in family_line


# ---- llama.cpp's RoPE row order ----


def test_rope_rows_of_two_heads_by_hand():
    # two heads of Hd = 4: Hugging Face rows [a0 a1 b0 b1 | c0 c1 d0 d1], a_i turning with b_i
    w = np.arange(8)[:, None] * np.array([[1, 100]])  # (8, 2): row r holds r, 100 r
    permuted = permute_rope_rows(w, heads=2)
    assert permuted[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]  # [a0 b0 a1 b1 | c0 d0 c1 d1]
    assert np.array_equal(permuted[:, 1], 100 * permuted[:, 0])  # whole rows move
    assert unpermute_rope_rows(permuted, heads=2).tolist() == w.tolist()
    # one head of Hd = 8: the halves interleave
    assert permute_rope_rows(np.arange(8)[:, None], heads=1)[:, 0].tolist() == \
        [0, 4, 1, 5, 2, 6, 3, 7]


@st.composite
def rope_matrices(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    heads, half, width = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 3))
    w = draw(hnp.arrays(np.int8, (heads * 2 * half, width), elements=st.integers(-1, 1)))
    return w, heads


@given(matrix=rope_matrices())
def test_unpermute_inverts_permute(matrix):
    w, heads = matrix
    assert np.array_equal(unpermute_rope_rows(permute_rope_rows(w, heads), heads), w)
    assert np.array_equal(permute_rope_rows(unpermute_rope_rows(w, heads), heads), w)


def rotate_adjacent_pairs(x: np.ndarray, positions: np.ndarray, inv_freq: np.ndarray
                          ) -> np.ndarray:
    """llama.cpp's RoPE of the llama graph, written out here: rows 2i and 2i + 1 of a head
    turn by position * inv_freq[i]. x: (heads, T, Hd) -> (heads, T, Hd)."""
    angles = positions.astype(np.float32)[:, None] * inv_freq[None, :]  # (T, Hd/2)
    cos, sin = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    even, odd = x[..., 0::2], x[..., 1::2]  # (heads, T, Hd/2) each
    out = np.empty_like(x)
    out[..., 0::2] = even * cos + (-odd) * sin
    out[..., 1::2] = odd * cos + even * sin
    return out


def test_permuted_rows_turned_in_pairs_are_the_hugging_face_rotation_permuted():
    # the reason for the permutation: llama.cpp's pairs applied to the permuted q_proj give
    # the same numbers as rotate-half applied to the original, in the permuted order
    rng = np.random.default_rng(0)
    heads, head_dim, d, t = 3, 8, 16, 5
    w = rng.standard_normal((heads * head_dim, d)).astype(np.float32)  # (H*Hd, D)
    x = rng.standard_normal((t, d)).astype(np.float32)  # (T, D)
    positions = np.arange(t) + 7

    def per_head(rows: np.ndarray) -> np.ndarray:  # (H*Hd, D) -> (H, T, Hd)
        return (x @ rows.T).reshape(t, heads, head_dim).transpose(1, 0, 2)

    cos, sin = rope_tables(positions, head_dim, 10000.0)
    hugging_face = apply_rope(per_head(w), cos, sin)  # (H, T, Hd)
    llama_cpp = rotate_adjacent_pairs(per_head(permute_rope_rows(w, heads)), positions,
                                      inverse_frequencies(head_dim, 10000.0))
    # permute the Hd axis of the Hugging Face result the way the rows were permuted
    expected = permute_rope_rows(hugging_face.transpose(0, 2, 1).reshape(heads * head_dim, t),
                                 heads).reshape(heads, head_dim, t).transpose(0, 2, 1)
    assert np.array_equal(llama_cpp, expected)


def stored_codes(path: Path, name: str) -> np.ndarray:
    """The (out, in) ternary codes of I2_S tensor ``name`` as the file holds them."""
    file = GGUFFile(path)
    out_features, in_features = file.tensors[name].shape
    return unpack_i2s(file.raw(name), out_features, in_features)[0]


@pytest.mark.parametrize("name", ["llama-untied", "bitnet-packed"])
def test_q_and_k_rows_are_stored_in_the_order_of_the_architecture(tmp_path, name):
    config, stored = CASES[name]
    _, weights, _ = read_model(build_source(tmp_path / "src", config, stored))
    path = write_gguf_model(tmp_path / "m.gguf", config, weights)
    layer = weights.layers[1]
    heads = {"attn_q": (layer.q_proj, config.num_attention_heads),
             "attn_k": (layer.k_proj, config.num_key_value_heads), "attn_v": (layer.v_proj, None)}
    for gguf_name, (weight, rope_heads) in heads.items():
        codes = unpack_ternary(np.asarray(weight.packed))  # (out, in) Hugging Face order
        if rope_heads is not None and name.startswith("llama"):
            codes = permute_rope_rows(codes, rope_heads)
        assert np.array_equal(stored_codes(path, f"blk.1.{gguf_name}.weight"), codes), gguf_name
    # the case is not trivial: the permutation moves rows
    q = unpack_ternary(np.asarray(layer.q_proj.packed))
    assert not np.array_equal(permute_rope_rows(q, config.num_attention_heads), q)


# ---- tables keep their dtype ----


@pytest.mark.parametrize("dtype, ggml_type", [(np.uint16, BF16), (np.float16, F16),
                                              (np.float32, F32)])
def test_tables_keep_their_dtype(tmp_path, dtype, ggml_type):
    config, stored = CASES["llama-untied"]
    _, weights, _ = read_model(build_source(tmp_path / "src", config, stored))
    rng = np.random.default_rng(1)

    def table() -> np.ndarray:  # (V, D) of ``dtype``, values not all bf16-exact
        values = (rng.standard_normal((config.vocab_size, config.hidden_size)) / 11.3
                  ).astype(np.float32)
        return float32_to_bf16(values) if dtype == np.uint16 else values.astype(dtype)

    weights = replace(weights, embed_tokens=table(), lm_head=table())
    path = write_gguf_model(tmp_path / "t.gguf", config, weights)
    file = GGUFFile(path)
    assert file.tensors["token_embd.weight"].ggml_type == ggml_type
    assert file.tensors["output.weight"].ggml_type == ggml_type
    _, loaded = load_gguf(path)
    for mine, theirs in ((loaded.embed_tokens, weights.embed_tokens),
                         (loaded.lm_head, weights.lm_head)):
        assert mine.dtype == np.dtype(dtype) and np.array_equal(mine, theirs)
        assert isinstance(mine, np.memmap)  # a view of the file, not a copy


def test_a_nan_in_an_f16_table_is_refused(tmp_path):
    config, weights, _ = read_model(build_source(tmp_path / "src", *CASES["1bitllm"]))
    table = np.array(weights.embed_tokens)  # (V, D) float16, a copy
    table[7, 3] = np.nan
    path = write_gguf_model(tmp_path / "nan.gguf", config, replace(weights, embed_tokens=table))
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: tensor 'token_embd.weight' "
                                                        "holds NaN or infinity")):
        load_gguf(path)


# ---- exact scales ----


def test_the_exact_scales_key_is_written_only_when_needed(case):
    file = GGUFFile(case["path"])
    scales = [getattr(layer, field).weight_scale for layer in case["weights"].layers
              for field in PROJECTIONS]
    bf16_exact = all(round_scale_to_bf16(s) == s for s in scales)
    assert bf16_exact == (CASES[case["name"]][1] == "packed")  # packed files hold bf16 scales
    if bf16_exact:
        assert EXACT_SCALES_KEY not in file.metadata
        return
    assert file.value_types[EXACT_SCALES_KEY] == ARRAY
    values = file.metadata[EXACT_SCALES_KEY]
    assert values.dtype == np.dtype("<f4") and len(values) == 7 * 2
    i2s_names = [name for name, info in file.tensors.items() if info.ggml_type == I2_S]
    assert i2s_names[:7] == [f"blk.0.{n}.weight" for n in ("attn_q", "attn_k", "attn_v",
                                                           "attn_output", "ffn_gate", "ffn_up",
                                                           "ffn_down")]
    assert all(same_bits(v, s) for v, s in zip(values, scales, strict=True))


def write_variant(case: dict[str, Any], path: Path, metadata: dict[str, Any] | None = None,
                  drop: tuple[str, ...] = (), tensors: list[TensorToWrite] = ()) -> Path:
    """The case's GGUF file with metadata keys replaced or dropped and tensors added."""
    config, weights = case["config"], case["weights"]
    keys = {**gguf_metadata(config, "variant"), **weight_scale_metadata(config, weights),
            **(metadata or {})}
    for key in drop:
        del keys[key]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_gguf(path, keys, gguf_tensors(config, weights) + list(tensors))
    return path


@pytest.fixture(scope="module")
def online_llama(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("online")
    source = build_source(root / "source", *CASES["llama-online"])
    config, weights, _ = read_model(source)
    return {"config": config, "weights": weights, "source": source}


def test_without_the_exact_scales_key_the_scales_move(online_llama, tmp_path):
    # why the key exists: the bf16 rule alone would change these float32 scales
    path = write_variant(online_llama, tmp_path / "m.gguf", drop=(EXACT_SCALES_KEY,))
    _, weights = load_gguf(path)
    moved = [field for layer, other in zip(weights.layers, online_llama["weights"].layers)
             for field in PROJECTIONS
             if getattr(layer, field).weight_scale != getattr(other, field).weight_scale]
    assert moved


SCALE_CASES = [
    ("not float32", lambda values: (ARRAY, (INT32, [1] * len(values))),
     "metadata 'minibitnet.weight_scales' has type ARRAY of int32, expected an ARRAY of FLOAT32"),
    ("a string", lambda values: (STRING, "1.0"),
     "metadata 'minibitnet.weight_scales' has type STRING, expected an ARRAY of FLOAT32"),
    ("one short", lambda values: (ARRAY, (FLOAT32, values[:-1])),
     "metadata 'minibitnet.weight_scales' holds 13 values, expected 14 (one per I2_S tensor)"),
    ("NaN", lambda values: (ARRAY, (FLOAT32, [float("nan")] + values[1:])),
     "metadata 'minibitnet.weight_scales' gives weight_scale nan for tensor "
     "'blk.0.attn_q.weight'"),
    ("negative", lambda values: (ARRAY, (FLOAT32, values[:3] + [-values[3]] + values[4:])),
     "gives weight_scale -"),
    ("two per cent off", lambda values: (ARRAY, (FLOAT32, values[:-1] + [values[-1] * 1.02])),
     "for tensor 'blk.1.ffn_down.weight', whose I2_S scale is"),
]


@pytest.mark.parametrize("make, expect", [c[1:] for c in SCALE_CASES],
                         ids=[c[0] for c in SCALE_CASES])
def test_corrupt_exact_scales_are_refused(online_llama, tmp_path, make, expect):
    values = [float(v) for v in
              weight_scale_metadata(online_llama["config"],
                                    online_llama["weights"])[EXACT_SCALES_KEY][1][1]]
    path = write_variant(online_llama, tmp_path / "m.gguf",
                         metadata={EXACT_SCALES_KEY: make(values)})
    with pytest.raises(CheckpointError) as error:
        load_gguf(path)
    assert str(error.value).startswith(f"{path}: ") and expect in str(error.value)
    assert "\n" not in str(error.value)


def test_a_scale_within_the_tolerance_is_taken_as_given(online_llama, tmp_path):
    values = weight_scale_metadata(online_llama["config"],
                                   online_llama["weights"])[EXACT_SCALES_KEY][1][1]
    nudged = float(np.nextafter(np.float32(values[5]), np.float32(np.inf)))
    path = write_variant(online_llama, tmp_path / "m.gguf",
                         metadata={EXACT_SCALES_KEY: (ARRAY, (FLOAT32, values[:5] + [nudged]
                                                              + values[6:]))})
    _, weights = load_gguf(path)
    assert same_bits(weights.layers[0].up_proj.weight_scale, np.float32(nudged))


# ---- what cannot be written ----


REFUSALS = [
    ("Falcon-E", dict(**LLAMA, use_rms_norm=True), "cannot write GGUF, its BitLinear layers "
                                                    "normalise their input (use_rms_norm), "
                                                    "which GGUF I2_S models cannot hold"),
    ("llama3 RoPE", dict(**LLAMA, rope_scaling=Llama3Scaling(8.0, 1.0, 4.0, 48)),
     "cannot write GGUF, llama3 RoPE scaling would become llama.cpp's rope_freqs.weight"),
    ("relu2 without sub-norms", dict(**{**LLAMA, "hidden_act": "relu2"}),
     "cannot write GGUF, a relu2 gate without sub-norms is no GGUF architecture"),
    ("untied 1bitllm", dict(family=ONEBITLLM, hidden_act="silu", quantization_mode="online",
                            tie_word_embeddings=False),
     "cannot write GGUF, its head is untied, and architecture 'bitnet' has no output tensor"),
    ("rows not whole blocks", dict(hidden_size=64, head_dim=32),
     "cannot write I2_S, hidden_size is 64, expected a multiple of 128"),
]


@pytest.mark.parametrize("overrides, expect", [r[1:] for r in REFUSALS],
                         ids=[r[0] for r in REFUSALS])
def test_what_no_gguf_holds_is_refused_before_anything_is_written(tmp_path, overrides, expect):
    config = tiny_config(**{**BASE, **overrides})
    destination = tmp_path / GGUF_FILE
    with pytest.raises(CheckpointError) as error:
        check_gguf_writable(config, destination)
    message = str(error.value)
    assert message.startswith(f"{destination}: {expect}") and "\n" not in message
    # write_gguf_model makes the same check first, whatever the weights
    _, weights, _ = read_model(build_source(tmp_path / "src", *CASES["bitnet-packed"]))
    with pytest.raises(CheckpointError, match=re.escape(message)):
        write_gguf_model(destination, config, weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # nothing written


def test_every_family_config_that_fits_is_writable(tmp_path):
    for config, _ in CASES.values():
        check_gguf_writable(config, tmp_path / GGUF_FILE)  # no error


# ---- corrupt files of the new architectures: one clean line ----


def extra_f32(name: str, size: int) -> TensorToWrite:
    return TensorToWrite(name, (size,), F32, lambda: np.ones(size, "<f4"))


CORRUPT = [
    ("llama3 rope factors", "llama-untied", {}, [extra_f32("rope_freqs.weight", 32)],
     "holds 'rope_freqs.weight', per-frequency rope factors"),
    ("yarn scaling", "llama-tied", {"llama.rope.scaling.type": (STRING, "yarn")}, [],
     "rope scaling 'yarn' (factor 1.0) is not supported, expected none"),
    ("linear scaling by 2", "1bitllm", {"bitnet.rope.scaling.factor": (FLOAT32, 2.0)}, [],
     "rope scaling 'linear' (factor 2.0) is not supported"),
    ("an output under bitnet", "1bitllm", {},
     [TensorToWrite("output.weight", (128, 300), F16, lambda: np.zeros((300, 128), "<f2"))],
     "tensor 'output.weight' is not part of architecture 'bitnet' (llama.cpp's graph uses "
     "token_embd as the head)"),
    ("a sub-norm under llama", "llama-tied", {}, [extra_f32("blk.0.attn_sub_norm.weight", 128)],
     "tensor 'blk.0.attn_sub_norm.weight' is not part of architecture 'llama'"),
    ("values of another head size", "llama-untied",
     {"llama.attention.value_length": (UINT32, 32)}, [],
     "metadata 'llama.attention.value_length' is 32, expected the head size 64"),
    ("rope over half a head", "llama-tied", {"llama.rope.dimension_count": (UINT32, 32)}, [],
     "metadata 'llama.rope.dimension_count' is 32, expected the head size 64"),
    ("head size of the wrong type", "llama-untied",
     {"llama.attention.key_length": (STRING, "64")}, [],
     "metadata 'llama.attention.key_length' has type string, expected an integer"),
    ("unknown architecture", "llama-tied", {"general.architecture": (STRING, "llama4")}, [],
     "general.architecture is 'llama4', expected 'bitnet-b1.58', 'bitnet' or 'llama'"),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, dict[str, Any]]:
    """The loaded models of the cases the corrupt files start from."""
    models = {}
    for name in ("llama-tied", "llama-untied", "1bitllm"):
        source = build_source(tmp_path_factory.mktemp(name) / "source", *CASES[name])
        config, weights, _ = read_model(source)
        models[name] = {"config": config, "weights": weights}
    return models


@pytest.mark.parametrize("name, metadata, tensors, expect", [c[1:] for c in CORRUPT],
                         ids=[c[0] for c in CORRUPT])
def test_corrupt_files_of_every_architecture_give_one_clean_line(built, tmp_path, capsys, name,
                                                                 metadata, tensors, expect):
    path = write_variant(built[name], tmp_path / "model" / GGUF_FILE, metadata, (), tensors)
    before = path.read_bytes()
    assert main(["info", "--model", str(path.parent)]) == 1
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and stderr.startswith("minibitnet: error: "), stderr
    assert str(path) in stderr and expect in stderr.lower(), stderr
    with pytest.raises((CheckpointError, ConfigError)):
        minibitnet.load(path.parent)
    assert sorted(p.name for p in path.parent.iterdir()) == [GGUF_FILE]
    assert path.read_bytes() == before


def test_the_valid_variant_of_the_corrupt_cases_loads(built, tmp_path):
    # write_variant itself makes a valid file: each corrupt case differs by its change alone
    for name, model in built.items():
        path = write_variant(model, tmp_path / name / GGUF_FILE)
        assert load_gguf(path)[0] == replace(model["config"], quantization_mode="offline")


@pytest.fixture(scope="module")
def online_llama_file(online_llama, tmp_path_factory) -> tuple[bytes, int]:
    """The bytes of a llama GGUF file with permuted rows and the exact-scales key, and where
    its data section starts."""
    path = write_gguf_model(tmp_path_factory.mktemp("fuzz") / GGUF_FILE, online_llama["config"],
                            online_llama["weights"])
    return path.read_bytes(), GGUFFile(path).data_start


@given(data=st.data())
def test_a_mutated_llama_gguf_loads_or_gives_a_clean_error(online_llama_file, tmp_path_factory,
                                                           data):
    original, data_start = online_llama_file
    raw = bytearray(original)
    action = data.draw(st.sampled_from(["cut", "flip-header", "flip-data"]))
    if action == "cut":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    else:
        at = data.draw(st.integers(0, data_start - 1) if action == "flip-header"
                       else st.integers(data_start, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    folder = tmp_path_factory.mktemp("mutated")
    (folder / GGUF_FILE).write_bytes(bytes(raw))
    try:
        model = minibitnet.load(folder)
    except (CheckpointError, ConfigError) as error:
        assert "\n" not in str(error) and str(folder / GGUF_FILE) in str(error)
        return
    with np.errstate(over="ignore", invalid="ignore"):  # a changed value may overflow
        try:
            assert model.logits([1, 2]).shape == (2, model.config.vocab_size)
        except NumericalError:
            pass
