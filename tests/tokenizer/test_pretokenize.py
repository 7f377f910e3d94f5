"""minibitnet.tokenizer.pretokenize: trusted regexes, long texts in bounded chunks, heap BPE.

The oracles: Hugging Face ``tokenizers`` on long runs of every kind of character, and
minibitnet's own unsplit tiktoken encode (one call on the whole text) on moderate lengths.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minibitnet_testing.tokenizer_builders import tokenizer_json, trained_vocab, write_tokenizer

from minibitnet.errors import TokenizerError
from minibitnet.tokenizer import Tokenizer, load
from minibitnet.tokenizer.heap_bpe import byte_pair_encode
from minibitnet.tokenizer.pretokenize import (
    MAX_ENGINE_CHARS,
    MAX_ENGINE_PIECE_BYTES,
    PUBLISHED_PATTERNS,
    TRUST_REGEX_ENV,
)


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("tokenizers")
    return write_tokenizer(tmp_path_factory.mktemp("trained-long"), trained_vocab(3000))


@pytest.fixture(scope="module")
def ours(trained_dir: Path) -> Tokenizer:
    return load(trained_dir)


def unsplit(tokenizer: Tokenizer, text: str) -> list[int]:
    """tiktoken on the whole text at once: the definition the chunks must reproduce."""
    return tokenizer.encoding.encode(text, allowed_special="all")


# Runs of every kind of character, and the characters that end them.
RUNS = {
    "spaces": " ", "tabs": "\t", "newlines": "\n", "space-newline": " \n", "crlf": "\r\n",
    "ideographic space": "\u3000", "letters": "a", "word": "abcdefgh", "digits": "7",
    "punctuation": "!", "cjk": "漢", "emoji": "😀", "mixed": "a1 !\n漢😀\t",
    "words": "the cat sat. ", "apostrophes": "'s'", "marks": "e\u0301",
}
ENDINGS = ["", "x", " x", "!", "\n", "1", "<|eot_id|>"]


@pytest.mark.oracle
@pytest.mark.parametrize("name", RUNS)
def test_long_runs_agree_with_tokenizers(ours: Tokenizer, trained_dir: Path, name: str) -> None:
    from tokenizers import Tokenizer as HFTokenizer

    oracle = HFTokenizer.from_file(str(trained_dir / "tokenizer.json"))
    unit = RUNS[name]
    for length, ending in [(20_000, ""), (30_001, " x"), (25_000, "<|eot_id|>"), (50_000, "\n")]:
        text = "Hi " + unit * (length // len(unit)) + ending
        expected = oracle.encode(text, add_special_tokens=False).ids
        assert ours.encode(text) == expected, (name, ending)


RUN_UNITS = st.sampled_from(list(RUNS.values()) + ENDINGS + ["<|begin_of_text|>", "é", "1234"])


@settings(max_examples=30)
@given(runs=st.lists(st.tuples(RUN_UNITS, st.integers(1, 1500)), min_size=1, max_size=6))
def test_chunks_equal_the_unsplit_encode(ours: Tokenizer, runs: list[tuple[str, int]]) -> None:
    text = "".join(unit * count for unit, count in runs)
    assert ours.encode(text) == unsplit(ours, text)


@given(text=st.one_of([st.text(characters, min_size=MAX_ENGINE_CHARS + 1, max_size=3000)
                       for characters in [st.characters(codec="utf-8", exclude_categories=["Cn"]),
                                          st.characters(codec="utf-8")]]))
def test_any_long_text_equals_the_unsplit_encode(ours: Tokenizer, text: str) -> None:
    assert ours.encode(text) == unsplit(ours, text)


@given(piece=st.lists(st.sampled_from([b"a", b"b", b"ab", b" ", b"th", b"e", b"\n", b"\xe6\xbc\xa2",
                                       b"1", b"!"]), min_size=1, max_size=400).map(b"".join))
def test_heap_bpe_equals_tiktoken(ours: Tokenizer, piece: bytes) -> None:
    """tiktoken's own merge of one piece (lookup first, then lowest rank, leftmost) is the
    oracle."""
    ranks = ours.encoding._mergeable_ranks
    assert byte_pair_encode(piece, ranks) == ours.encoding._encode_single_piece(piece)


def test_long_pieces_go_to_the_heap_bpe(ours: Tokenizer) -> None:
    """A 20k-letter word is one piece, longer than the engine's budget: still the same ids."""
    word = "thecatsat" * 2_300
    assert len(word.encode()) > MAX_ENGINE_PIECE_BYTES
    assert ours.encode(word) == unsplit(ours, word)


@pytest.mark.parametrize("unit", ["\n", " \n", "7", "!", "漢", "a", "word "])
def test_million_character_runs_encode(ours: Tokenizer, unit: str) -> None:
    text = unit * (1_000_000 // len(unit))
    ids = ours.encode(text)
    assert ours.decode(ids) == text


@pytest.mark.slow
def test_million_space_run_encodes(ours: Tokenizer) -> None:
    """tiktoken's regex overflows its stack on this; the chunked path does not."""
    text = " " * 1_000_000 + "x"
    assert ours.decode(ours.encode(text)) == text


# ---- which regexes are trusted ----

def write_with_pattern(folder: Path, pattern: str) -> Path:
    spec = tokenizer_json(trained_vocab(300))
    spec["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = pattern  # type: ignore[index]
    (folder / "tokenizer.json").write_text(json.dumps(spec), "utf-8")
    return folder


@pytest.mark.parametrize("name", PUBLISHED_PATTERNS)
def test_published_patterns_load(tmp_path: Path, name: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRUST_REGEX_ENV, raising=False)
    tokenizer = load(write_with_pattern(tmp_path, PUBLISHED_PATTERNS[name]))
    text = "Hello world!\n  it's 12345 漢字 😀 " * 200
    assert tokenizer.encode(text) == unsplit(tokenizer, text)


def test_other_patterns_need_the_opt_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRUST_REGEX_ENV, raising=False)
    folder = write_with_pattern(tmp_path, r"(a|aa)+b|\s+|\S")
    with pytest.raises(TokenizerError, match=f"tokenizer.json: the Split regex .* is not one of "
                                             f"the published patterns .*{TRUST_REGEX_ENV}=1"):
        load(folder)
    monkeypatch.setenv(TRUST_REGEX_ENV, "1")
    assert load(folder).encode("ab ab") != []


def test_engine_failure_is_a_tokenizer_error(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """An opted-in pattern runs on the whole text: the engine's limit is one clean line."""
    monkeypatch.setenv(TRUST_REGEX_ENV, "1")
    tokenizer = load(write_with_pattern(tmp_path, r"\s+(?!\S)|\s+|\S"))
    with pytest.raises(TokenizerError, match="tokenizer.json: the Split regex failed on this text"):
        tokenizer.encode(" " * 1_000_000 + "x")


def test_ordinary_encode_of_a_training_encoding() -> None:
    """The trainer's encoding (the bare LLaMA-3 pattern): special-token strings stay text."""
    import tiktoken

    from minibitnet.tokenizer.pretokenize import encode_ordinary_bounded
    from minibitnet.tokenizer.tokenizer_json import LLAMA3_PATTERN

    ranks = {bytes([b]): b for b in range(256)} | {b"  ": 256, b"ab": 257}
    encoding = tiktoken.Encoding("t", pat_str=LLAMA3_PATTERN, mergeable_ranks=ranks,
                                 special_tokens={"<|eot_id|>": 300})
    text = (" " * 3000 + "ab<|eot_id|>\n") * 3
    assert encode_ordinary_bounded(encoding, text, "t") == encoding.encode_ordinary(text)
    assert 300 not in encode_ordinary_bounded(encoding, text, "t")
    assert len(encode_ordinary_bounded(encoding, " " * 200_000, "t")) == 100_000
