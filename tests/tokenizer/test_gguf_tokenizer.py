"""tokenizer.json <-> tokenizer.ggml.* metadata: the cases refused, each with one clear line."""

from __future__ import annotations

import pytest

from minibitnet.errors import CheckpointError, TokenizerError
from minibitnet.formats.gguf.container import ARRAY, INT32, STRING, GGUFFile, write_gguf
from minibitnet.tokenizer.gguf import CONTROL, NORMAL, tokenizer_files, tokenizer_metadata
from minibitnet.tokenizer.synthetic import synthetic_vocab, tokenizer_json


def test_metadata_lists_tokens_by_id_with_their_types():
    spec = tokenizer_json(synthetic_vocab(300))
    metadata = tokenizer_metadata(spec, {"chat_template": "{{ x }}"}, "tokenizer.json")
    tokens = metadata["tokenizer.ggml.tokens"][1][1]
    types = metadata["tokenizer.ggml.token_type"][1][1]
    assert len(tokens) == len(types) == 300 + 256
    assert tokens[300] == "<|begin_of_text|>" and types[300] == CONTROL and types[0] == NORMAL
    assert all(merge.count(" ") == 1 for merge in metadata["tokenizer.ggml.merges"][1][1])
    assert metadata["tokenizer.chat_template"] == (STRING, "{{ x }}")


def test_a_vocabulary_with_a_gap_in_its_ids_is_refused():
    spec = tokenizer_json(synthetic_vocab(300))
    token = next(t for t, i in spec["model"]["vocab"].items() if i == 299)
    del spec["model"]["vocab"][token]
    with pytest.raises(TokenizerError, match=r"tokenizer.json: no token has id 299, expected "
                                             r"ids 0 .. 555 without gaps"):
        tokenizer_metadata(spec, {}, "tokenizer.json")


def test_another_pre_tokenizer_is_refused():
    spec = tokenizer_json(synthetic_vocab(300))
    spec["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\S+|\s+"
    with pytest.raises(TokenizerError, match="the Split regex is not LLaMA-3's"):
        tokenizer_metadata(spec, {}, "tokenizer.json")


def _gguf_with(tmp_path, **metadata):
    write_gguf(tmp_path / "t.gguf", metadata, [])
    return GGUFFile(tmp_path / "t.gguf")


def test_a_file_without_a_tokenizer_gives_none(tmp_path):
    assert tokenizer_files(_gguf_with(tmp_path)) is None


def test_a_sentencepiece_vocabulary_is_refused(tmp_path):
    file = _gguf_with(tmp_path, **{"tokenizer.ggml.model": (STRING, "llama"),
                                   "tokenizer.ggml.tokens": (ARRAY, (STRING, ["a"]))})
    with pytest.raises(CheckpointError, match=r"t.gguf: tokenizer is 'llama' with pre-tokenizer "
                                              r"None, expected 'gpt2' with 'llama-bpe'"):
        tokenizer_files(file)


def test_token_types_must_match_the_tokens(tmp_path):
    file = _gguf_with(tmp_path, **{
        "tokenizer.ggml.model": (STRING, "gpt2"), "tokenizer.ggml.pre": (STRING, "llama-bpe"),
        "tokenizer.ggml.tokens": (ARRAY, (STRING, ["a", "b"])),
        "tokenizer.ggml.token_type": (ARRAY, (INT32, [1])),
        "tokenizer.ggml.merges": (ARRAY, (STRING, []))})
    with pytest.raises(CheckpointError, match=r"'tokenizer.ggml.token_type' is 1 entries, "
                                              r"expected 2 integers"):
        tokenizer_files(file)


def test_a_merge_must_be_two_tokens(tmp_path):
    file = _gguf_with(tmp_path, **{
        "tokenizer.ggml.model": (STRING, "gpt2"), "tokenizer.ggml.pre": (STRING, "llama-bpe"),
        "tokenizer.ggml.tokens": (ARRAY, (STRING, ["a", "b"])),
        "tokenizer.ggml.token_type": (ARRAY, (INT32, [1, 1])),
        "tokenizer.ggml.merges": (ARRAY, (STRING, ["ab"]))})
    with pytest.raises(CheckpointError, match=r"merge 'ab' is not two tokens joined by one space"):
        tokenizer_files(file)


@pytest.mark.parametrize("field, value, shown", [
    ("bos", (INT32, 2), "2"), ("eos", (INT32, -1), "-1"), ("bos", (STRING, "a"), "'a'"),
])
def test_a_bos_or_eos_id_outside_the_vocabulary_is_refused(tmp_path, field, value, shown):
    """Skipping it would lose the prompt's BOS, or the stop token, without a word."""
    file = _gguf_with(tmp_path, **{
        "tokenizer.ggml.model": (STRING, "gpt2"), "tokenizer.ggml.pre": (STRING, "llama-bpe"),
        "tokenizer.ggml.tokens": (ARRAY, (STRING, ["a", "b"])),
        "tokenizer.ggml.token_type": (ARRAY, (INT32, [1, 1])),
        "tokenizer.ggml.merges": (ARRAY, (STRING, [])),
        f"tokenizer.ggml.{field}_token_id": value})
    expected = (rf"t.gguf: metadata 'tokenizer.ggml.{field}_token_id' is {shown}, "
                r"expected a token id from 0 to 1$")
    with pytest.raises(CheckpointError, match=expected):
        tokenizer_files(file)


# ---- a bare GGUF folder (a bitnet.cpp download): the tokenizer comes from the file ----


@pytest.fixture(scope="module")
def bare_gguf(tmp_path_factory):
    """(folder with tokenizer.json, the same model as a folder holding the .gguf alone)."""
    from minibitnet.cli import main
    from minibitnet_testing.tokenizer_builders import build_model_with_tokenizer

    root = tmp_path_factory.mktemp("bare")
    source = build_model_with_tokenizer(root / "source", seed=3, hidden_size=128, head_dim=32,
                                        intermediate_size=256, max_position_embeddings=64)
    assert main(["convert", str(source), str(root / "bare"), "--to", "gguf-i2s"]) == 0
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (root / "bare" / name).unlink()
    assert [p.name for p in (root / "bare").iterdir()] == ["ggml-model-i2_s.gguf"]
    return source, root / "bare"


def test_tokenizer_load_falls_back_to_the_gguf_metadata(bare_gguf):
    from minibitnet.tokenizer import load

    source, bare = bare_gguf
    theirs, ours = load(source), load(bare)
    text = "Hello world <|eot_id|> again, and again"
    assert ours.encode(text, bos=True) == theirs.encode(text, bos=True)
    assert (ours.bos_id, ours.vocab_size) == (theirs.bos_id, theirs.vocab_size)
    assert set(ours.eos_ids) == set(theirs.eos_ids)  # stop ids: a set, in whatever order
    assert ours.source == f"{bare / 'ggml-model-i2_s.gguf'} (tokenizer metadata)"


def test_generate_runs_on_a_bare_gguf_folder(bare_gguf):
    import subprocess
    import sys

    outputs = []
    for folder in bare_gguf:
        result = subprocess.run([sys.executable, "-m", "minibitnet.cli", "generate", "-m",
                                 str(folder), "-p", "Hello world", "-n", "8", "--temp", "0"],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1] and outputs[0].strip()


def test_a_gguf_without_tokenizer_metadata_names_both_files(tmp_path):
    from minibitnet.tokenizer import load

    _gguf_with(tmp_path, **{"general.architecture": (STRING, "bitnet-b1.58")})
    with pytest.raises(TokenizerError, match=r"tokenizer.json: no such file, and t.gguf carries "
                                             r"no tokenizer \(tokenizer.ggml.\* metadata\)"):
        load(tmp_path)
