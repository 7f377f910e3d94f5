"""The general.* keys bitnet.cpp's tools write: their values, the model's name, and a reader that
needs none of them.

bitnet.cpp's llama-quantize writes ``general.file_type`` = LLAMA_FTYPE_MOSTLY_I2_S (40 in the
``llama_ftype`` enum of its llama.cpp, include/llama.h) and ``general.quantization_version`` =
GGML_QNT_VERSION (2), both UINT32; its converter names the model after its folder
(``general.name`` = ``dir_model.name``). Every family's file carries them
(test_gguf_families.py); here: the names convert gives, that reading ignores the keys, and
that a GGUF of every architecture loads as offline-quantised weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import minibitnet
from minibitnet.cli import main
from minibitnet.formats.detect import read_model
from minibitnet.formats.gguf.container import FLOAT32, STRING, UINT8, UINT32, GGUFFile, write_gguf
from minibitnet.formats.gguf.checkpoint import GGUF_FILE, gguf_tensors, load_gguf, write_gguf_model
from minibitnet.formats.gguf.config import (
    FILE_TYPE_MOSTLY_I2_S, QUANTIZATION_VERSION, gguf_metadata, model_name,
)
from minibitnet.formats.gguf.scales import weight_scale_metadata
from minibitnet_testing.gguf_cases import CASES, build_source
from minibitnet_testing.weight_checks import assert_same_weights

GENERAL_KEYS = ("general.name", "general.file_type", "general.quantization_version")


def test_the_values_are_bitnet_cpps():
    # LLAMA_FTYPE_MOSTLY_I2_S = 40 (after TL1 = 38, TL2 = 39); GGML_QNT_VERSION = 2
    assert (FILE_TYPE_MOSTLY_I2_S, QUANTIZATION_VERSION) == (40, 2)


def test_the_metadata_holds_the_general_keys_with_their_types():
    config = CASES["bitnet-packed"][0]
    metadata = gguf_metadata(config, "bitnet-b1.58-2B-4T")
    assert metadata["general.name"] == (STRING, "bitnet-b1.58-2B-4T")
    assert metadata["general.file_type"] == (UINT32, 40)
    assert metadata["general.quantization_version"] == (UINT32, 2)
    assert list(metadata)[:2] == ["general.architecture", "general.name"]


# ---- general.name ----


def test_a_folder_is_named_by_its_own_name(tmp_path, monkeypatch):
    folder = tmp_path / "bitnet-b1.58-2B-4T"
    folder.mkdir()
    assert model_name(folder) == "bitnet-b1.58-2B-4T"
    assert model_name(str(folder) + "/") == "bitnet-b1.58-2B-4T"
    monkeypatch.chdir(folder)
    assert model_name(".") == "bitnet-b1.58-2B-4T"  # "." has no name of its own


def test_a_symlinked_folder_keeps_the_name_it_was_given(tmp_path):
    (tmp_path / "weights-v3").mkdir()
    (tmp_path / "my-model").symlink_to(tmp_path / "weights-v3")
    assert model_name(tmp_path / "my-model") == "my-model"


def test_a_snapshot_of_the_hugging_face_cache_is_named_by_its_repository(tmp_path):
    snapshot = (tmp_path / "hub" / "models--microsoft--bitnet-b1.58-2B-4T" / "snapshots"
                / "0123456789abcdef0123456789abcdef01234567")
    snapshot.mkdir(parents=True)
    assert model_name(snapshot) == "bitnet-b1.58-2B-4T"
    # a folder that is merely called snapshots, outside the cache, keeps its own name
    other = tmp_path / "work" / "snapshots" / "run-7"
    other.mkdir(parents=True)
    assert model_name(other) == "run-7"


def write_variant(packed: Path, path: Path, changes: dict[str, tuple[int, Any]] | None = None,
                  drop: tuple[str, ...] = ()) -> Path:
    """The GGUF of ``packed`` with metadata keys replaced or dropped."""
    config, weights, _ = read_model(packed)
    metadata = {**gguf_metadata(config, "variant"), **weight_scale_metadata(config, weights),
                **(changes or {})}
    for key in drop:
        del metadata[key]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_gguf(path, metadata, gguf_tensors(config, weights))
    return path


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    """A packed bitnet checkpoint in a folder named like the published one."""
    folder = tmp_path_factory.mktemp("models") / "bitnet-b1.58-2B-4T"
    return build_source(folder, *CASES["bitnet-packed"])


def test_a_gguf_source_keeps_its_name(packed, tmp_path):
    config, weights, _ = read_model(packed)
    path = write_gguf_model(tmp_path / "x" / GGUF_FILE, config, weights, name="kept")
    assert model_name(tmp_path / "x", GGUFFile(path)) == "kept"


def test_a_general_name_that_is_not_a_string_is_not_taken(packed, tmp_path):
    path = write_variant(packed, tmp_path / "odd" / GGUF_FILE,
                         changes={"general.name": (UINT8, 7)})
    assert model_name(tmp_path / "odd", GGUFFile(path)) == "odd"


def test_write_gguf_model_names_the_model_after_the_folder_it_writes_into(packed, tmp_path):
    config, weights, _ = read_model(packed)
    path = write_gguf_model(tmp_path / "Falcon3-1B" / GGUF_FILE, config, weights)
    assert GGUFFile(path).metadata["general.name"] == "Falcon3-1B"


def convert(src: Path, dst: Path, target: str = "gguf-i2s") -> int:
    return main(["convert", str(src), str(dst), "--to", target])


def test_convert_names_the_gguf_after_the_source_folder(packed, tmp_path):
    assert convert(packed, tmp_path / "out") == 0
    assert GGUFFile(tmp_path / "out" / GGUF_FILE).metadata["general.name"] == \
        "bitnet-b1.58-2B-4T"


def test_convert_from_a_gguf_keeps_its_name(packed, tmp_path):
    assert convert(packed, tmp_path / "first") == 0
    assert convert(tmp_path / "first", tmp_path / "second") == 0
    first = (tmp_path / "first" / GGUF_FILE).read_bytes()
    assert (tmp_path / "second" / GGUF_FILE).read_bytes() == first  # the name included


# ---- reading needs none of them ----


@pytest.mark.parametrize("changes, drop", [
    ({}, GENERAL_KEYS),  # as minibitnet wrote files before it wrote these keys
    # what bitnet.cpp's converter writes before llama-quantize (ALL_F32), another version, and
    # a file_type of an unexpected type: none of them is read
    ({"general.file_type": (UINT32, 0), "general.quantization_version": (UINT32, 1)}, ()),
    ({"general.file_type": (FLOAT32, 40.0), "general.name": (STRING, "")}, ()),
], ids=["without", "other-values", "other-types"])
def test_the_general_keys_are_not_needed_to_read(packed, tmp_path, changes, drop):
    path = write_variant(packed, tmp_path / "model" / GGUF_FILE, changes, drop)
    expected_config, expected_weights, _ = read_model(packed)
    config, weights = load_gguf(path)
    assert config == expected_config
    assert_same_weights(weights, expected_weights)
    assert main(["info", "--model", str(path.parent)]) == 0


# ---- every architecture loads as offline-quantised weights ----


@pytest.mark.parametrize("name", ["bitnet-packed", "llama-tied", "1bitllm"])
def test_a_gguf_of_every_architecture_is_offline(name, tmp_path, capsys):
    source = build_source(tmp_path / "source", *CASES[name])
    assert convert(source, tmp_path / "gguf") == 0
    assert minibitnet.load(tmp_path / "gguf").config.quantization_mode == "offline"
    capsys.readouterr()
    assert main(["info", "--model", str(tmp_path / "gguf")]) == 0
    out = capsys.readouterr().out
    assert "quantised offline (I2_S codes, one stored scale per tensor)" in out
    assert "quantization_mode online" not in out and "ternarised on load" not in out
