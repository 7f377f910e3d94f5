"""tokenizer.json <-> tokenizer.ggml.* metadata: the cases refused, each with one clear line."""

from __future__ import annotations

import pytest

from minibitnet.errors import CheckpointError, TokenizerError
from minibitnet.gguf import ARRAY, INT32, STRING, GGUFFile, write_gguf
from minibitnet.gguf_tokenizer import CONTROL, NORMAL, tokenizer_files, tokenizer_metadata
from minibitnet.synthetic_tokenizer import synthetic_vocab, tokenizer_json


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
