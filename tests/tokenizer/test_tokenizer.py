"""minibitnet.tokenizer against Hugging Face ``tokenizers`` (the oracle), and its error messages.

The tokenizers here are LLaMA-3-style files built by minibitnet_testing.tokenizer_builders: a vocabulary
trained by ``tokenizers`` on minibitnet_testing/tokenizer_corpus.py text, and a made-up one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from minibitnet_testing.tokenizer_builders import (
    LLAMA3_SPECIAL_TOKENS,
    hf_trained_json,
    synthetic_vocab,
    tokenizer_config_json,
    tokenizer_json,
    trained_vocab,
    write_tokenizer,
)
from minibitnet_testing.tokenizer_corpus import SPECIAL_IN_TEXT, corpus

from minibitnet.tokenizer.byte_level import token_bytes
from minibitnet.tokenizer.chat_template import BITNET_2B4T_TEMPLATE
from minibitnet.errors import ArgumentError, CheckpointError, TokenizerError
from minibitnet.formats.locate import BUILTIN_MODEL_DIR
from minibitnet.tokenizer import Tokenizer, load

NUM_MERGES = 3000  # the training text yields about 2,100 before running out of pairs


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("tokenizers")
    return write_tokenizer(tmp_path_factory.mktemp("trained"), trained_vocab(NUM_MERGES))


@pytest.fixture(scope="session")
def ours(trained_dir: Path) -> Tokenizer:
    return load(trained_dir)


@pytest.fixture(scope="session")
def oracle(trained_dir: Path):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer as HFTokenizer

    return HFTokenizer.from_file(str(trained_dir / "tokenizer.json"))


def rare_token_strings(vocab: dict[str, int], count: int, seed: int = 0) -> list[str]:
    """Runs of the last-made (rarest, longest) tokens, as text (invalid UTF-8 replaced)."""
    rng = random.Random(seed)
    rare = sorted(vocab, key=vocab.__getitem__)[-300:]
    return [b"".join(token_bytes(t) or b"" for t in rng.sample(rare, rng.randint(1, 8)))
            .decode("utf-8", "replace") for _ in range(count)]


# ---- agreement with the oracle ----

def assert_agrees(ours: Tokenizer, oracle, text: str) -> None:  # type: ignore[no-untyped-def]
    ids = ours.encode(text)
    assert ids == oracle.encode(text, add_special_tokens=False).ids, repr(text)
    assert ours.decode(ids) == text
    assert ours.decode(ids) == oracle.decode(ids, skip_special_tokens=False)


@pytest.mark.oracle
def test_corpus_agrees_with_tokenizers(ours: Tokenizer, oracle, trained_dir: Path) -> None:  # type: ignore[no-untyped-def]
    vocab = json.loads((trained_dir / "tokenizer.json").read_text("utf-8"))["model"]["vocab"]
    texts = corpus() + rare_token_strings(vocab, 200)
    texts.append("\n".join(texts))  # everything at once, every boundary between kinds of text
    disagreements = [t for t in texts if ours.encode(t) != oracle.encode(t, add_special_tokens=False).ids]
    assert disagreements == [], f"{len(disagreements)} of {len(texts)} strings disagree"
    assert len(texts) > 900
    for text in texts:
        assert_agrees(ours, oracle, text)


@pytest.mark.oracle
def test_special_token_strings_become_ids(ours: Tokenizer, oracle) -> None:  # type: ignore[no-untyped-def]
    eot = ours.special_ids["<|eot_id|>"]
    assert ours.encode("<|eot_id|>") == [eot]
    ids = ours.encode("a<|eot_id|>b")
    assert eot in ids and len(ids) == 3
    for text in SPECIAL_IN_TEXT:
        assert_agrees(ours, oracle, text)


@pytest.mark.oracle
def test_bos_matches_post_processor(ours: Tokenizer, oracle) -> None:  # type: ignore[no-untyped-def]
    for text in ["Hello world", "", "<|eot_id|>"]:
        assert ours.encode(text, bos=True) == oracle.encode(text).ids
    assert ours.encode("x", bos=True)[0] == ours.bos_id


@pytest.mark.oracle
@given(text=st.text())
def test_any_text_agrees(ours: Tokenizer, oracle, text: str) -> None:  # type: ignore[no-untyped-def]
    assert_agrees(ours, oracle, text)


# Pieces where tokenisers tend to differ, joined in random order: Hypothesis finds the joins.
PIECES = ["'s", "'S", "'ll", "'LL", "'", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "1",
          "22", "333", "4444", "a", "A", "é", "ß", "д", "中", "🙂", "👩‍👩‍👧", "🇫🇷", "\u0301", "\ufffd",
          ".", "...", "!?", "--", "<|", "|>", "<|eot_id|>", "<|begin_of_text|>", "_", "$"]


@pytest.mark.oracle
@given(text=st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
def test_joined_pieces_agree(ours: Tokenizer, oracle, text: str) -> None:  # type: ignore[no-untyped-def]
    assert_agrees(ours, oracle, text)


@pytest.mark.oracle
@given(data=st.data())
def test_decode_and_stream_agree(ours: Tokenizer, oracle, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    ids = data.draw(st.lists(st.integers(0, ours.vocab_size - 1), max_size=40))
    text = ours.decode(ids)
    assert text == oracle.decode(ids, skip_special_tokens=False)
    stream = ours.stream_decoder()
    pieces = [stream.add(i) for i in ids] + [stream.flush()]
    assert "".join(pieces) == text


def test_stream_never_splits_a_character(ours: Tokenizer) -> None:
    text = "日本語 🇫🇷 👩‍👩‍👧 é"
    stream = ours.stream_decoder()
    pieces = [stream.add(i) for i in ours.encode(text)] + [stream.flush()]
    assert "".join(pieces) == text
    assert "\ufffd" not in "".join(pieces)
    # a token holding the first byte of "é" alone prints nothing until the second byte comes
    first = ours.encoding.encode_single_token(bytes([0xC3]))
    second = ours.encoding.encode_single_token(bytes([0xA9]))
    stream = ours.stream_decoder()
    assert stream.add(first) == ""
    assert stream.add(second) == "é"
    stream.add(first)
    assert stream.flush() == "\ufffd"


@pytest.mark.oracle
def test_made_up_vocabulary_agrees(tmp_path: Path) -> None:
    """A vocabulary not from training (random joins): only the format makes the two agree."""
    from tokenizers import Tokenizer as HFTokenizer

    folder = write_tokenizer(tmp_path, synthetic_vocab(6000, seed=3))
    ours, oracle = load(folder), HFTokenizer.from_file(str(folder / "tokenizer.json"))
    for text in corpus()[:300]:
        assert ours.encode(text) == oracle.encode(text, add_special_tokens=False).ids, repr(text)


@pytest.mark.oracle
def test_pattern_that_leaves_gaps_agrees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HF keeps the text between regex matches (Isolated); it must not vanish here either."""
    from tokenizers import Tokenizer as HFTokenizer

    monkeypatch.setenv("MINIBITNET_TRUST_TOKENIZER_REGEX", "1")  # not a published pattern

    spec = tokenizer_json(trained_vocab(300))
    spec["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\p{L}+"  # type: ignore[index]
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec), "utf-8")
    ours, oracle = load(tmp_path), HFTokenizer.from_file(str(tmp_path / "tokenizer.json"))
    for text in ["hello, world! 123", "  ...  ", "a1b2", "", "日本 語", "x<|eot_id|>, y"]:
        assert_agrees(ours, oracle, text)


# ---- chat template, special ids ----

# 2B4T's published template writes no BOS; the built-in model's (and many others) starts with
# {{ bos_token }}. Either way the prompt starts with BOS exactly once.
BOS = "<|begin_of_text|>"
TEMPLATE_WITH_BOS = BITNET_2B4T_TEMPLATE.replace("{{ content }}", "{% if loop.index0 == 0 %}"
                                                 "{{ bos_token }}{% endif %}{{ content }}")
MODEL_CARD_MESSAGES = [{"role": "system", "content": "You are a helpful AI assistant."},
                       {"role": "user", "content": "How are you?"}]
MODEL_CARD_PROMPT = ("<|begin_of_text|>System: You are a helpful AI assistant.<|eot_id|>"
                     "User: How are you?<|eot_id|>Assistant: ")


def test_chat_prompt_is_the_2b4t_string(ours: Tokenizer) -> None:
    assert ours.chat_template == BITNET_2B4T_TEMPLATE and "bos_token" not in BITNET_2B4T_TEMPLATE
    assert ours.chat_text(MODEL_CARD_MESSAGES) == MODEL_CARD_PROMPT.removeprefix(BOS)
    ids = ours.chat_prompt(MODEL_CARD_MESSAGES)
    assert ids == ours.encode(MODEL_CARD_PROMPT)
    assert ids[0] == ours.bos_id and ids.count(ours.bos_id) == 1
    assert ids.count(ours.special_ids["<|eot_id|>"]) == 2
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "  What is 2+2?\n"}]
    without = ours.chat_prompt(messages, add_generation_prompt=False)
    assert ours.decode(without) == ("<|begin_of_text|>System: You are a helpful assistant."
                                    "<|eot_id|>User: What is 2+2?<|eot_id|>")


def test_template_that_writes_bos_gets_it_once(tmp_path: Path) -> None:
    config = {**tokenizer_config_json(), "chat_template": TEMPLATE_WITH_BOS}
    tokenizer = load(_write(tmp_path, _base(), config))
    assert tokenizer.chat_text(MODEL_CARD_MESSAGES) == MODEL_CARD_PROMPT
    ids = tokenizer.chat_prompt(MODEL_CARD_MESSAGES)
    assert ids == tokenizer.encode(MODEL_CARD_PROMPT) and ids.count(tokenizer.bos_id) == 1


def test_builtin_model_prompt_is_unchanged() -> None:
    """The shipped tokenizer has a BOS post-processor and a template that writes BOS: one BOS."""
    tokenizer = load(BUILTIN_MODEL_DIR)
    assert tokenizer.add_bos and "bos_token" in tokenizer.chat_template
    assert tokenizer.chat_prompt(MODEL_CARD_MESSAGES) == tokenizer.encode(MODEL_CARD_PROMPT)


@pytest.mark.oracle
@pytest.mark.parametrize("template", [BITNET_2B4T_TEMPLATE, TEMPLATE_WITH_BOS],
                         ids=["2b4t", "with-bos"])
def test_chat_prompt_matches_transformers(trained_dir: Path, ours: Tokenizer,
                                          template: str) -> None:
    """The oracle is the model card's ``tokenizer(apply_chat_template(tokenize=False))``, the
    post-processor included; apply_chat_template(tokenize=True) leaves BOS out for 2B4T's
    template, and tokenizer(text) doubles it for a template that writes it."""
    transformers = pytest.importorskip("transformers")
    hf = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(trained_dir / "tokenizer.json"), bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>", chat_template=template)
    tokenizer = Tokenizer(ours.encoding, "<|begin_of_text|>", ["<|eot_id|>"], template, "test",
                          add_bos=ours.add_bos)
    bos = tokenizer.bos_id
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"},
                {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]
    for chat, add in [(messages, True), (messages, False), (MODEL_CARD_MESSAGES, True)]:
        text = hf.apply_chat_template(chat, add_generation_prompt=add, tokenize=False)
        assert tokenizer.chat_text(chat, add_generation_prompt=add) == text
        expected = hf(text)["input_ids"]
        if template == TEMPLATE_WITH_BOS:
            assert expected[:2] == [bos, bos]  # HF's double BOS, which chat_prompt avoids
            expected = expected[1:]
        assert tokenizer.chat_prompt(chat, add_generation_prompt=add) == expected
        assert expected[0] == bos and expected.count(bos) == 1


def test_special_ids(ours: Tokenizer) -> None:
    first = ours.bos_id
    assert first is not None and ours.decode([first]) == "<|begin_of_text|>"
    # tokenizer_config's eos (<|eot_id|>) first, then <|end_of_text|>
    assert ours.eos_ids == (first + 9, first + 1)
    assert ours.vocab_size == first + len(LLAMA3_SPECIAL_TOKENS)


def test_bad_messages_and_ids(ours: Tokenizer) -> None:
    with pytest.raises(ArgumentError, match=r"messages\[0\]\['content'\]"):
        ours.chat_prompt([{"role": "user", "content": 3}])
    with pytest.raises(ArgumentError, match="outside the tokenizer's vocabulary"):
        ours.decode([ours.vocab_size])
    with pytest.raises(ArgumentError, match="outside"):
        ours.decode([-1])


def test_without_tokenizer_config_uses_2b4t_template(tmp_path: Path) -> None:
    folder = write_tokenizer(tmp_path, synthetic_vocab(400))
    (folder / "tokenizer_config.json").unlink()
    tokenizer = load(folder)
    assert tokenizer.chat_text([{"role": "user", "content": "hi"}]) == \
        "User: hi<|eot_id|>Assistant: "
    assert tokenizer.chat_prompt([{"role": "user", "content": "hi"}]) == \
        tokenizer.encode("<|begin_of_text|>User: hi<|eot_id|>Assistant: ")
    assert tokenizer.eos_ids == (tokenizer.special_ids["<|end_of_text|>"],
                                 tokenizer.special_ids["<|eot_id|>"])


@pytest.mark.slow
def test_loads_a_128k_vocabulary(tmp_path: Path) -> None:
    """The size of LLaMA-3's: 128,000 tokens and 256 special tokens (load time: see the docs)."""
    folder = write_tokenizer(tmp_path, synthetic_vocab(128_000))
    tokenizer = load(folder)
    assert tokenizer.vocab_size == 128_256
    assert tokenizer.decode(tokenizer.encode("the quick brown fox")) == "the quick brown fox"


# ---- bad files: one line, naming the file ----

def _write(folder: Path, spec: object, config: object | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = spec if isinstance(spec, str) else json.dumps(spec)
    (folder / "tokenizer.json").write_text(text, "utf-8")
    if config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(config), "utf-8")
    return folder


def _base(size: int = 400) -> dict:  # type: ignore[type-arg]
    return tokenizer_json(synthetic_vocab(size, seed=1))


def _break_with(key: str):  # type: ignore[no-untyped-def]
    """Each case: a change to a valid tokenizer.json, and text the message must contain."""
    def no_model(s):  # type: ignore[no-untyped-def]
        del s["model"]
    def wordpiece(s):  # type: ignore[no-untyped-def]
        s["model"]["type"] = "WordPiece"
    def ignore_merges_false(s):  # type: ignore[no-untyped-def]
        s["model"]["ignore_merges"] = False
    def no_pre_tokenizer(s):  # type: ignore[no-untyped-def]
        s["pre_tokenizer"] = {"type": "Whitespace"}
    def metaspace(s):  # type: ignore[no-untyped-def]
        s["pre_tokenizer"]["pretokenizers"][1] = {"type": "Metaspace"}
    def normalizer(s):  # type: ignore[no-untyped-def]
        s["normalizer"] = {"type": "NFC"}
    def not_byte_level(s):  # type: ignore[no-untyped-def]
        s["model"]["vocab"]["a b"] = 10_000
    def missing_byte(s):  # type: ignore[no-untyped-def]
        del s["model"]["vocab"]["Ġ"]
        s["model"]["merges"] = [m for m in s["model"]["merges"] if "Ġ" not in m]
    def shared_id(s):  # type: ignore[no-untyped-def]
        s["model"]["vocab"]["zzzzzz"] = 5
    def merge_unknown(s):  # type: ignore[no-untyped-def]
        s["model"]["merges"].append(["q", "qqqqqqq"])
    def merge_not_pair(s):  # type: ignore[no-untyped-def]
        s["model"]["merges"][3] = ["a"]
    def merges_out_of_order(s):  # type: ignore[no-untyped-def]
        s["model"]["merges"].reverse()
    def merge_missing(s):  # type: ignore[no-untyped-def]
        del s["model"]["merges"][-1]
    def merge_twice(s):  # type: ignore[no-untyped-def]
        s["model"]["merges"][-1] = s["model"]["merges"][-2]
    def special_clash(s):  # type: ignore[no-untyped-def]
        s["added_tokens"][1]["id"] = s["added_tokens"][0]["id"]
    def special_on_vocab_id(s):  # type: ignore[no-untyped-def]
        s["added_tokens"][0]["id"] = 300
    def special_lstrip(s):  # type: ignore[no-untyped-def]
        s["added_tokens"][0]["lstrip"] = True
    def pretokenizers_int(s):  # type: ignore[no-untyped-def]
        s["pre_tokenizer"]["pretokenizers"] = 5
    def surrogate_special(s):  # type: ignore[no-untyped-def]
        s["added_tokens"][0]["content"] = "\ud800"
    def merges_object(s):  # type: ignore[no-untyped-def]
        s["model"]["merges"] = {"a": "b"}
    cases = {
        "pretokenizers_int": (pretokenizers_int, "pretokenizers is int"),
        "surrogate_special": (surrogate_special, "lone surrogate"),
        "merges_object": (merges_object, "model.merges is dict, expected a list"),
        "no_model": (no_model, "no 'model'"), "wordpiece": (wordpiece, "expected 'BPE'"),
        "ignore_merges_false": (ignore_merges_false, "ignore_merges"),
        "no_pre_tokenizer": (no_pre_tokenizer, "pre_tokenizer is 'Whitespace'"),
        "metaspace": (metaspace, "Metaspace"), "normalizer": (normalizer, "normalizer is 'NFC'"),
        "not_byte_level": (not_byte_level, "'a b' is not a byte-level string"),
        "missing_byte": (missing_byte, "byte 0x20 has no token"),
        "shared_id": (shared_id, "share an id"), "merge_unknown": (merge_unknown, "merges["),
        "merge_not_pair": (merge_not_pair, "merges[3]"),
        "merges_out_of_order": (merges_out_of_order, "in order of the id"),
        "merge_missing": (merge_missing, "ways of splitting"),
        "merge_twice": (merge_twice, "listed twice"),
        "special_clash": (special_clash, "repeats"),
        "special_on_vocab_id": (special_on_vocab_id, "gives to another token"),
        "special_lstrip": (special_lstrip, "lstrip"),
    }
    return cases[key]


BROKEN = ["pretokenizers_int", "surrogate_special", "merges_object", "no_model", "wordpiece",
          "ignore_merges_false", "no_pre_tokenizer", "metaspace",
          "normalizer", "not_byte_level", "missing_byte", "shared_id", "merge_unknown",
          "merge_not_pair", "merges_out_of_order", "merge_missing", "merge_twice",
          "special_clash", "special_on_vocab_id", "special_lstrip"]


@pytest.mark.parametrize("case", BROKEN)
def test_bad_tokenizer_json(tmp_path: Path, case: str) -> None:
    spec = _base()
    change, expected = _break_with(case)
    change(spec)
    folder = _write(tmp_path, spec)
    with pytest.raises(TokenizerError) as info:
        load(folder)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(folder / "tokenizer.json"))
    assert expected in message


def test_hf_trained_merges_are_refused(tmp_path: Path) -> None:
    """One merge per token (as HF training writes) is not tiktoken's BPE: refused, not guessed."""
    pytest.importorskip("tokenizers")
    spec = hf_trained_json(1200)
    folder = _write(tmp_path, spec)
    with pytest.raises(TokenizerError, match="one merge per split"):
        load(folder)


@pytest.mark.parametrize("text, expected", [
    ("{not json", "not valid JSON"), ("[1, 2]", "top level is list"), ("\udcff", "not valid JSON"),
])
def test_malformed_json(tmp_path: Path, text: str, expected: str) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(TokenizerError, match=expected):
        load(folder)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="tokenizer.json: not found"):
        load(tmp_path)


@pytest.mark.parametrize("config, expected", [
    ({"bos_token": "<|nope|>"}, "bos_token '<|nope|>' is not an added token"),
    ({"chat_template": [{"name": "default", "template": "x"}]}, "named templates"),
    ({"chat_template": "{% for %}"}, None),
])
def test_bad_tokenizer_config(tmp_path: Path, config: dict, expected: str | None) -> None:  # type: ignore[type-arg]
    folder = _write(tmp_path, _base(), config)
    if expected is not None:
        with pytest.raises(TokenizerError, match=expected):
            load(folder)
        return
    tokenizer = load(folder)  # a template is compiled when first used
    with pytest.raises(TokenizerError, match="chat_template failed") as info:
        tokenizer.chat_prompt([{"role": "user", "content": "hi"}])
    assert str(info.value).startswith(str(folder / "tokenizer_config.json"))


def test_bos_token_as_added_token_dict(tmp_path: Path) -> None:
    config = {"bos_token": {"content": "<|begin_of_text|>", "lstrip": False}}
    tokenizer = load(_write(tmp_path, _base(), config))
    assert tokenizer.bos_id == tokenizer.special_ids["<|begin_of_text|>"]


@pytest.mark.parametrize("size, seed", [(300, 0), (3000, 1), (20_000, 2)])
def test_split_count_by_hashes_equals_exact_count(size: int, seed: int) -> None:
    """The vectorised count the loader uses against the plain one (collisions only add)."""
    import numpy as np

    from minibitnet.tokenizer.bpe_file import _count_splits_exact, _count_splits_hashed, _Hashes, _Table

    vocab = synthetic_vocab(size, seed=seed)
    hashes = _Hashes.of_strings(list(vocab))
    assert hashes is not None
    table = _Table(hashes.whole(), np.array(list(vocab.values())))
    assert table.distinct
    assert _count_splits_hashed(hashes, table) == _count_splits_exact(vocab) > 0


# ---- where BOS comes from: the post-processor, add_bos_token, GGUF metadata ----

SINGLE_TEXT = {"Sequence": {"id": "A", "type_id": 0}}


def _template(*first: str) -> dict:  # type: ignore[type-arg]
    """A TemplateProcessing putting the special tokens ``first`` before a single text."""
    single = [{"SpecialToken": {"id": token, "type_id": 0}} for token in first] + [SINGLE_TEXT]
    return {"type": "TemplateProcessing", "single": single, "pair": single + [
        {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {token: {"id": token, "ids": [LLAMA3_SPECIAL_TOKENS.index(token) + 400],
                                   "tokens": [token]} for token in first}}


BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
              "use_regex": True}
POST_PROCESSORS = {  # name: (post_processor, whether it puts BOS before a text)
    "llama3": (tokenizer_json(synthetic_vocab(400))["post_processor"], True),
    "template-alone": (_template(BOS), True),
    "none": (None, False),
    "byte-level": (BYTE_LEVEL, False),
    "template-without-bos": (_template(), False),
    "sequence-without-bos": ({"type": "Sequence", "processors": [BYTE_LEVEL, _template()]}, False),
}


def _folder_with(tmp_path: Path, post_processor: object, **config: object) -> Path:
    spec = tokenizer_json(synthetic_vocab(400))  # specials from id 400, as _template assumes
    spec["post_processor"] = post_processor
    return _write(tmp_path, spec, {**tokenizer_config_json(), **config})


@pytest.mark.parametrize("name", POST_PROCESSORS)
def test_bos_follows_the_post_processor(tmp_path: Path, name: str) -> None:
    post_processor, adds = POST_PROCESSORS[name]
    tokenizer = load(_folder_with(tmp_path, post_processor))
    assert tokenizer.add_bos is adds
    expected = MODEL_CARD_PROMPT if adds else MODEL_CARD_PROMPT.removeprefix(BOS)
    assert tokenizer.chat_prompt(MODEL_CARD_MESSAGES) == tokenizer.encode(expected)


@pytest.mark.oracle
@pytest.mark.parametrize("name", POST_PROCESSORS)
def test_bos_agrees_with_tokenizers(tmp_path: Path, name: str) -> None:
    """Hugging Face ``tokenizers`` runs the same post-processor on a text."""
    from tokenizers import Tokenizer as HFTokenizer

    folder = _folder_with(tmp_path, POST_PROCESSORS[name][0])
    ours, oracle = load(folder), HFTokenizer.from_file(str(folder / "tokenizer.json"))
    for text in [MODEL_CARD_PROMPT.removeprefix(BOS), "Hello world", ""]:
        assert ours.encode(text, bos=ours.add_bos) == oracle.encode(text).ids


@pytest.mark.oracle
@pytest.mark.parametrize("name, add_bos_token", [("llama3", False), ("none", True),
                                                  ("llama3", True), ("none", False)])
def test_add_bos_token_overrides_the_post_processor(tmp_path: Path, name: str,
                                                    add_bos_token: bool) -> None:
    """As transformers, which rebuilds the post-processor from add_bos_token when it is given."""
    transformers = pytest.importorskip("transformers")
    folder = _folder_with(tmp_path, POST_PROCESSORS[name][0], add_bos_token=add_bos_token)
    tokenizer = load(folder)
    assert tokenizer.add_bos is add_bos_token
    text = tokenizer.chat_text(MODEL_CARD_MESSAGES)
    hf = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(folder / "tokenizer.json"), bos_token=BOS, eos_token="<|eot_id|>",
        add_bos_token=add_bos_token)
    assert tokenizer.chat_prompt(MODEL_CARD_MESSAGES) == hf(text)["input_ids"]


@pytest.mark.parametrize("post_processor, config, expected", [
    ({"type": "BertProcessing"}, {}, "tokenizer.json: post_processor is 'BertProcessing', "
                                     "expected TemplateProcessing, ByteLevel or a Sequence"),
    ({"type": "Sequence", "processors": 3}, {}, "Sequence has 'processors' 3, expected a list"),
    ({"type": "Sequence", "processors": ["Sequence"]}, {}, "post_processor is 'Sequence', "
                                                           "expected an object with a 'type'"),
    ({"type": "TemplateProcessing", "single": []}, {}, "'single' starts with None, expected a "
                                                       "SpecialToken or the text"),
    (_template("<|eot_id|>"), {}, "puts ['<|eot_id|>'] before each text, expected the bos_token "
                                  "'<|begin_of_text|>' alone"),
    ({"type": "Sequence", "processors": [_template(BOS), _template(BOS)]}, {},
     "puts ['<|begin_of_text|>', '<|begin_of_text|>'] before each text"),
    (None, {"add_bos_token": "yes"}, "tokenizer_config.json: add_bos_token is 'yes', expected "
                                     "true or false"),
])
def test_bad_bos_settings(tmp_path: Path, post_processor: object, config: dict[str, object],
                          expected: str) -> None:
    with pytest.raises(TokenizerError) as info:
        load(_folder_with(tmp_path, post_processor, **config))
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith(str(tmp_path))


def _gguf_folder(folder: Path, **metadata: tuple[int, object]) -> Path:
    """A folder holding only a .gguf whose metadata carries the tokenizer (as bitnet.cpp's)."""
    from minibitnet.formats.gguf.container import UINT32, write_gguf
    from minibitnet.tokenizer.gguf import tokenizer_metadata

    spec = tokenizer_json(synthetic_vocab(400))
    keys = tokenizer_metadata(spec, tokenizer_config_json(), "tokenizer.json")
    keys["tokenizer.ggml.bos_token_id"] = (UINT32, 400)
    folder.mkdir()
    write_gguf(folder / "ggml-model-i2_s.gguf", {**keys, **metadata}, [])
    return folder


def test_gguf_tokenizer_adds_bos_unless_told_not_to(tmp_path: Path) -> None:
    """llama.cpp's rule: BOS before LLaMA-3 text unless tokenizer.ggml.add_bos_token is false."""
    from minibitnet.formats.gguf.container import BOOL, UINT8

    from minibitnet.formats.gguf.container import GGUFFile
    from minibitnet.tokenizer.gguf import tokenizer_files

    folder = _gguf_folder(tmp_path / "default")
    tokenizer = load(folder)
    assert tokenizer.chat_prompt(MODEL_CARD_MESSAGES) == tokenizer.encode(MODEL_CARD_PROMPT)
    # the files convert writes from it (no post-processor) say so too, by add_bos_token
    files = tokenizer_files(GGUFFile(folder / "ggml-model-i2_s.gguf"))
    assert files is not None and "post_processor" not in files[0]
    rebuilt = load(_write(tmp_path / "rebuilt", *files))
    assert rebuilt.chat_prompt(MODEL_CARD_MESSAGES) == tokenizer.encode(MODEL_CARD_PROMPT)
    told = load(_gguf_folder(tmp_path / "false", **{"tokenizer.ggml.add_bos_token": (BOOL, False)}))
    assert not told.add_bos
    assert told.chat_prompt(MODEL_CARD_MESSAGES) == told.encode(MODEL_CARD_PROMPT.removeprefix(BOS))
    folder = _gguf_folder(tmp_path / "int", **{"tokenizer.ggml.add_bos_token": (UINT8, 1)})
    with pytest.raises(CheckpointError, match=r"ggml-model-i2_s.gguf: metadata 'tokenizer.ggml"
                                              r".add_bos_token' is 1, expected a bool"):
        load(folder)


def test_template_sees_the_named_special_tokens(tmp_path: Path) -> None:
    """As in transformers, a template can use eos_token (and bos/unk/pad) from the config."""
    config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
              "chat_template": "{{ bos_token }}{% for m in messages %}{{ m['content'] }}"
                               "{{ eos_token }}{% endfor %}"}
    tokenizer = load(_write(tmp_path, _base(), config))
    assert tokenizer.chat_text([{"role": "user", "content": "a"}]) == \
        "<|begin_of_text|>a<|end_of_text|>"
