"""A made-up tokenizer in LLaMA-3's exact format, for random checkpoints of a real vocabulary size.

microsoft/bitnet-b1.58-2B-4T ships Meta's LLaMA-3 tokenizer (128,000 byte-level BPE tokens and
256 special tokens), which cannot be downloaded here. ``make-checkpoint --shape 2b4t`` writes a
tokenizer of the same size and structure instead, so every command (generate, chat, eval) runs
end to end on a full-size random model, with a 128k vocabulary to load and search:

- tokens: the 256 byte-level characters, then joins of two earlier tokens, drawn at random
  (:func:`synthetic_vocab`); made up, so the text they encode means nothing;
- merges as LLaMA-3's file lists them (:func:`all_split_merges`): every split of a token into
  two tokens, in the order of the token's id;
- the LLaMA-3 pre-tokenizer regex, the 256 special tokens after the vocabulary
  (``<|begin_of_text|>`` first, ``<|eot_id|>`` ninth), and tokenizer_config.json with the 2B4T
  chat template.

Hugging Face ``tokenizers`` loads the files as they are (the tests check it agrees with
:mod:`minibitnet.tokenizer` on them).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from .byte_level import BYTE_TO_CHAR
from .chat_template import BITNET_2B4T_TEMPLATE
from ..files import atomic_write_text
from .tokenizer_json import LLAMA3_PATTERN, llama3_tokenizer_json

__all__ = ["LLAMA3_PATTERN", "LLAMA3_SPECIAL_TOKENS", "LLAMA3_VOCAB", "all_split_merges",
           "synthetic_vocab", "tokenizer_config_json", "tokenizer_json", "write_tokenizer"]

# The LLaMA-3 special tokens, in id order after the ordinary vocabulary (Meta's tokenizer.py).
LLAMA3_SPECIAL_TOKENS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>", "<|reserved_special_token_2|>",
    "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|reserved_special_token_4|>", "<|eot_id|>",
] + [f"<|reserved_special_token_{i}|>" for i in range(5, 256 - 5)]

LLAMA3_VOCAB = 128_000  # ordinary tokens; with the specials, config.json's vocab_size 128256


def synthetic_vocab(size: int, seed: int = 0, max_chars: int = 12) -> dict[str, int]:
    """``size`` byte-level tokens -> id: the 256 bytes, then joins of two earlier tokens."""
    rng = random.Random(seed)
    tokens = list(BYTE_TO_CHAR)
    vocab = {token: index for index, token in enumerate(tokens)}
    letters = [BYTE_TO_CHAR[b] for b in b"etaoinshrdlucmfwypvbgkjqxz ETAOINSHR.,"]
    while len(tokens) < size:
        # prefer short, letter-like tokens so lengths look like a real vocabulary's
        if rng.random() < 0.3:
            left = rng.choice(letters)
        else:
            left = tokens[int(rng.random() ** 2 * len(tokens))]
        right = tokens[int(rng.random() ** 3 * len(tokens))]
        token = left + right
        if len(token) <= max_chars and token not in vocab:
            vocab[token] = len(tokens)
            tokens.append(token)
    return vocab


def all_split_merges(vocab: dict[str, int]) -> list[list[str]]:
    """Every (left, right) with left, right and left+right in ``vocab``, by id of left+right.

    Ties (one token, several splits) are ordered by the ids of left then right, as transformers'
    TikTokenConverter orders them when it writes LLaMA-3's tokenizer.json.
    """
    merges = []
    for token, token_id in vocab.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in vocab and right in vocab:
                merges.append((token_id, vocab[left], vocab[right], left, right))
    merges.sort()
    return [[left, right] for _, _, _, left, right in merges]


def tokenizer_json(vocab: dict[str, int], merges: list[list[str]] | None = None
                   ) -> dict[str, Any]:
    """A tokenizer.json object in LLaMA-3's form for ``vocab``, the special tokens after it.

    merges: None lists every split of every token (:func:`all_split_merges`)
    """
    first_special = max(vocab.values()) + 1
    specials = {content: first_special + i for i, content in enumerate(LLAMA3_SPECIAL_TOKENS)}
    return llama3_tokenizer_json(vocab, merges if merges is not None else all_split_merges(vocab),
                                 specials, LLAMA3_SPECIAL_TOKENS[0])


def tokenizer_config_json() -> dict[str, Any]:
    """tokenizer_config.json as BitNet b1.58 2B4T has it (the fields minibitnet reads)."""
    return {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
            "chat_template": BITNET_2B4T_TEMPLATE, "clean_up_tokenization_spaces": True,
            "model_max_length": 4096, "tokenizer_class": "PreTrainedTokenizerFast"}


def write_tokenizer(folder: str | Path, vocab: dict[str, int]) -> Path:
    """Write tokenizer.json and tokenizer_config.json for ``vocab`` into ``folder``, atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "tokenizer.json",
                      json.dumps(tokenizer_json(vocab), ensure_ascii=False))
    atomic_write_text(folder / "tokenizer_config.json",
                      json.dumps(tokenizer_config_json(), indent=2) + "\n")
    return folder
