"""``minibitnet convert``: lossless between packed and GGUF, exact logits in every format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import minibitnet
from minibitnet.formats.checkpoint import WEIGHTS_FILE
from minibitnet.cli import main
from minibitnet.formats.safetensors import SafetensorsFile
from minibitnet_testing.builders import build_checkpoint
from minibitnet_testing.format_builders import build_master_checkpoint, build_packed_from_masters
from minibitnet_testing.tokenizer_builders import build_model_with_tokenizer, syllable_text

BACKENDS = ["reference", "fast"]
PROMPT = [1, 5, 17, 3, 99, 42, 8]
GGUF_NAME = "ggml-model-i2_s.gguf"


def convert(src: Path, dst: Path, target: str, *flags: str) -> int:
    return main(["convert", str(src), str(dst), "--to", target, *flags])


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    """A synthetic packed checkpoint whose projection inputs are multiples of 128, with a
    LLaMA-3-style tokenizer of 500 + 256 tokens."""
    return build_model_with_tokenizer(tmp_path_factory.mktemp("src") / "packed", seed=9,
                                      hidden_size=128, head_dim=32, intermediate_size=256)


@pytest.fixture(scope="module")
def converted(packed, tmp_path_factory) -> dict[str, Path]:
    """packed -> gguf -> packed, and packed -> bf16 masters, through the command."""
    root = tmp_path_factory.mktemp("converted")
    assert convert(packed, root / "gguf", "gguf-i2s") == 0
    assert convert(root / "gguf", root / "back", "safetensors") == 0
    assert convert(packed, root / "masters", "bf16") == 0
    return {"packed": packed, "gguf": root / "gguf", "back": root / "back",
            "masters": root / "masters"}


def test_packed_to_gguf_and_back_gives_the_same_files(converted):
    assert sorted(p.name for p in converted["gguf"].iterdir()) == [
        GGUF_NAME, "tokenizer.json", "tokenizer_config.json"]
    for name in (WEIGHTS_FILE, "config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (converted["back"] / name).read_bytes() == (converted["packed"] / name).read_bytes()


def test_every_tensor_survives_the_round_trip_with_its_dtype(converted):
    before = SafetensorsFile(converted["packed"] / WEIGHTS_FILE)
    after = SafetensorsFile(converted["back"] / WEIGHTS_FILE)
    assert list(after.tensors) == list(before.tensors)
    for name, info in before.tensors.items():
        assert after.tensors[name].dtype == info.dtype
        assert np.array_equal(after.array(name), before.array(name)), name


@pytest.mark.parametrize("backend", BACKENDS)
def test_logits_are_identical_in_every_format(converted, backend):
    expected = minibitnet.load(converted["packed"], backend="reference").logits(PROMPT)
    for name, folder in converted.items():
        logits = minibitnet.load(folder, backend=backend).logits(PROMPT)
        assert np.array_equal(logits, expected), name


@pytest.mark.parametrize("backend", BACKENDS)
def test_masters_converted_to_packed_give_identical_logits(tmp_path, backend):
    masters = build_master_checkpoint(tmp_path / "masters", "awkward", seed=6)
    assert convert(masters, tmp_path / "packed", "safetensors") == 0
    packed = SafetensorsFile(tmp_path / "packed" / WEIGHTS_FILE)
    assert packed.tensors["model.layers.1.mlp.down_proj.weight"].dtype == "U8"
    from_masters = minibitnet.load(masters, backend=backend).logits(PROMPT)
    assert np.array_equal(from_masters,
                          minibitnet.load(tmp_path / "packed", backend=backend).logits(PROMPT))
    # and the packed file is the one a training export writes from those masters
    exported = SafetensorsFile(build_packed_from_masters(tmp_path / "export", "awkward", seed=6)
                               / WEIGHTS_FILE)
    for name in exported.tensors:
        assert np.array_equal(packed.array(name), exported.array(name)), name


def test_info_names_each_format(converted, capsys):
    for name, expected in (("packed", "packed"), ("gguf", "gguf-i2s"),
                           ("masters", "bf16-masters")):
        assert main(["info", "--model", str(converted[name])]) == 0
        assert f"format:  {expected}:" in capsys.readouterr().out


def test_stdout_is_the_folder_and_progress_goes_to_stderr(packed, tmp_path, capsys):
    assert convert(packed, tmp_path / "out", "gguf-i2s") == 0
    captured = capsys.readouterr()
    assert captured.out == f"{tmp_path / 'out'}\n"
    assert GGUF_NAME in captured.err and "done in" in captured.err


def test_an_existing_model_is_kept_without_force(packed, tmp_path, capsys):
    assert convert(packed, tmp_path / "out", "safetensors") == 0
    before = (tmp_path / "out" / WEIGHTS_FILE).read_bytes()
    capsys.readouterr()
    assert convert(packed, tmp_path / "out", "gguf-i2s") == 1
    assert "already holds model.safetensors; pass --force" in capsys.readouterr().err
    assert (tmp_path / "out" / WEIGHTS_FILE).read_bytes() == before
    assert not (tmp_path / "out" / GGUF_NAME).exists()


def test_force_replaces_a_model_of_another_format(packed, tmp_path):
    assert convert(packed, tmp_path / "out", "safetensors") == 0
    assert convert(packed, tmp_path / "out", "gguf-i2s", "--force") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        GGUF_NAME, "tokenizer.json", "tokenizer_config.json"]
    assert convert(tmp_path / "out", tmp_path / "out2", "bf16") == 0
    assert convert(tmp_path / "out2", tmp_path / "out", "safetensors", "--force") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "config.json", WEIGHTS_FILE, "tokenizer.json", "tokenizer_config.json"]


def test_bad_destinations_are_one_line_errors(packed, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert convert(packed, tmp_path / "file", "bf16") == 1
    assert "DST" in capsys.readouterr().err
    assert convert(packed, packed, "safetensors", "--force") == 1
    assert "is the source folder" in capsys.readouterr().err


def test_gguf_of_rows_that_are_not_whole_blocks_writes_nothing(tmp_path, capsys):
    source = build_checkpoint(tmp_path / "src", "tiny")  # hidden size 64
    assert convert(source, tmp_path / "out", "gguf-i2s") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot write I2_S, hidden_size is 64, expected a multiple of 128" in err
    assert not (tmp_path / "out").exists()


def test_help_lists_the_formats(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(target in out for target in ("gguf-i2s", "safetensors", "bf16", "--force"))


def test_a_gguf_alone_gives_back_an_equivalent_tokenizer(converted, tmp_path):
    from minibitnet.formats.gguf.container import GGUFFile
    from minibitnet.tokenizer import load as load_tokenizer

    file = GGUFFile(converted["gguf"] / GGUF_NAME)
    assert file.metadata["tokenizer.ggml.model"] == "gpt2"
    assert len(file.metadata["tokenizer.ggml.tokens"]) == 756
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / GGUF_NAME).write_bytes((converted["gguf"] / GGUF_NAME).read_bytes())
    assert convert(alone, tmp_path / "rebuilt", "safetensors") == 0
    original = load_tokenizer(converted["packed"])
    rebuilt = load_tokenizer(tmp_path / "rebuilt")
    text = syllable_text(300, seed=3) + " <|eot_id|> 12345 ,;\n\n  é漢😀"
    assert rebuilt.encode(text, bos=True) == original.encode(text, bos=True)
    assert rebuilt.bos_id == original.bos_id and rebuilt.vocab_size == original.vocab_size
    assert set(original.eos_ids) <= set(rebuilt.eos_ids) | {original.eos_ids[0]}
    ids = original.encode(text)
    assert rebuilt.decode(ids) == original.decode(ids)
