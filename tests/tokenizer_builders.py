"""LLaMA-3-style tokenizer files for tests, and model folders that carry one.

Meta's tokenizer cannot be downloaded in tests, so tests build their own in the same format:

- a vocabulary, either trained by Hugging Face ``tokenizers`` on :data:`TRAINING_TEXT` with the
  LLaMA-3 pre-tokenizer (:func:`trained_vocab`, needs the dev extra), or made up without it by
  joining random tokens (:func:`synthetic_vocab`, any size, e.g. 128,000 for load timing);
- merges as LLaMA-3's file has them (:func:`all_split_merges`): every split of a token into two
  tokens, in the order of the token's id, the form transformers' TikTokenConverter writes;
- the 256 LLaMA-3 special tokens after the vocabulary, ``<|begin_of_text|>`` first;
- tokenizer_config.json with the BitNet b1.58 2B4T chat template.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from tokenizer_corpus import TRAINING_TEXT

from minibitnet.byte_level import BYTE_TO_CHAR
from minibitnet.chat_template import BITNET_2B4T_TEMPLATE

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# The LLaMA-3 special tokens, in id order after the ordinary vocabulary (Meta's tokenizer.py).
LLAMA3_SPECIAL_TOKENS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>", "<|reserved_special_token_2|>",
    "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|reserved_special_token_4|>", "<|eot_id|>",
] + [f"<|reserved_special_token_{i}|>" for i in range(5, 256 - 5)]


def all_split_merges(vocab: dict[str, int]) -> list[list[str]]:
    """Every (left, right) with left, right and left+right in ``vocab``, by id of left+right.

    Ties (one token, several splits) are ordered by the ids of left then right, as transformers'
    TikTokenConverter orders them.
    """
    merges = []
    for token, token_id in vocab.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in vocab and right in vocab:
                merges.append((token_id, vocab[left], vocab[right], left, right))
    merges.sort()
    return [[left, right] for _, _, _, left, right in merges]


def hf_trained_json(num_merges: int, text: str = TRAINING_TEXT) -> dict[str, Any]:
    """tokenizer.json as HF ``tokenizers`` trains it: LLaMA-3 pre-tokenizer, one merge per token.

    vocab ids: the 256 bytes first, then tokens in the order training made them
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(ignore_merges=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(vocab_size=256 + num_merges, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(text.splitlines(keepends=True), trainer)
    spec: dict[str, Any] = json.loads(tokenizer.to_str())
    return spec


def trained_vocab(num_merges: int, text: str = TRAINING_TEXT) -> dict[str, int]:
    """The vocabulary of :func:`hf_trained_json`; its ids are tiktoken ranks (training order)."""
    vocab: dict[str, int] = hf_trained_json(num_merges, text)["model"]["vocab"]
    return vocab


def syllable_text(num_words: int, seed: int = 0) -> str:
    """Made-up words of a made-up language, Zipf-distributed, with punctuation and numbers.

    Training on a few million words gives a LLaMA-3-sized vocabulary (128,000 tokens, about
    295,000 all-split merges, LLaMA-3 has 280,147) for load timings.
    """
    rng = random.Random(seed)
    consonants = list("bcdfghjklmnprstvwz") + ["ch", "sh", "th", "st", "tr", "pl", "gr"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "y"]
    lexicon = ["".join(rng.choice(consonants) + rng.choice(vowels)
                       + (rng.choice(consonants) if rng.random() < 0.4 else "")
                       for _ in range(rng.choice([1, 1, 2, 2, 2, 3, 3, 4])))
               for _ in range(400_000)]
    words = []
    for index in range(num_words):
        word = lexicon[int(len(lexicon) ** rng.random()) - 1]  # P(rank k) ~ 1/k, Zipf
        if index % 7 == 0:
            word = word.capitalize()
        if rng.random() < 0.08:
            word += rng.choice([",", ".", ";", "!", "?", ":", ")", "'s", "'ll"])
        if rng.random() < 0.02:
            word += " " + str(rng.randint(0, 10 ** rng.randint(1, 6)))
        words.append(word + ("\n" if index % 13 == 12 else " "))
    return "".join(words)


def synthetic_vocab(size: int, seed: int = 0, max_chars: int = 12) -> dict[str, int]:
    """``size`` byte-level tokens: the 256 bytes, then joins of two earlier tokens (random)."""
    rng = random.Random(seed)
    tokens = list(BYTE_TO_CHAR)
    vocab = {token: index for index, token in enumerate(tokens)}
    letters = [BYTE_TO_CHAR[b] for b in b"etaoinshrdlucmfwypvbgkjqxz ETAOINSHR.,"]
    while len(tokens) < size:
        # prefer short, letter-like tokens so lengths look like a real vocabulary's
        left = rng.choice(letters) if rng.random() < 0.3 else tokens[int(rng.random() ** 2 * len(tokens))]
        right = tokens[int(rng.random() ** 3 * len(tokens))]
        token = left + right
        if len(token) <= max_chars and token not in vocab:
            vocab[token] = len(tokens)
            tokens.append(token)
    return vocab


def tokenizer_json(vocab: dict[str, int], merges: list[list[str]] | None = None) -> dict[str, object]:
    """A tokenizer.json object in LLaMA-3's form for ``vocab``, the special tokens after it."""
    first_special = max(vocab.values()) + 1
    added = [{"id": first_special + i, "content": content, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True}
             for i, content in enumerate(LLAMA3_SPECIAL_TOKENS)]
    bos = LLAMA3_SPECIAL_TOKENS[0]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
             "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": bos, "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": bos, "type_id": 0}},
                      {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": bos, "type_id": 1}},
                      {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {bos: {"id": bos, "ids": [first_special], "tokens": [bos]}}}]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab,
                  "merges": merges if merges is not None else all_split_merges(vocab)},
    }


def tokenizer_config_json() -> dict[str, object]:
    """tokenizer_config.json as BitNet b1.58 2B4T has it (the fields minibitnet reads)."""
    return {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
            "chat_template": BITNET_2B4T_TEMPLATE, "clean_up_tokenization_spaces": True,
            "model_max_length": 4096, "tokenizer_class": "PreTrainedTokenizerFast"}


def write_tokenizer(folder: Path, vocab: dict[str, int]) -> Path:
    """Write tokenizer.json and tokenizer_config.json for ``vocab`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer_json(vocab), ensure_ascii=False),
                                           encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config_json(), indent=2),
                                                  encoding="utf-8")
    return folder


def build_model_with_tokenizer(folder: Path, vocab: dict[str, int] | None = None,
                               shape: str = "tiny", seed: int = 0, **overrides: object) -> Path:
    """A random checkpoint (tests/builders.py) plus a tokenizer, with matching vocab and ids.

    vocab: None uses a 500-token synthetic vocabulary (no dev extra needed)
    """
    from builders import build_checkpoint

    vocab = vocab if vocab is not None else synthetic_vocab(500)
    first_special = max(vocab.values()) + 1
    size = first_special + len(LLAMA3_SPECIAL_TOKENS)
    fields: dict[str, object] = dict(vocab_size=size, bos_token_id=first_special,
                                     eos_token_ids=(first_special + 1, first_special + 9))
    fields.update(overrides)
    build_checkpoint(folder, shape, seed, **fields)
    return write_tokenizer(folder, vocab)
