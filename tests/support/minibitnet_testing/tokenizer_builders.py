"""LLaMA-3-style tokenizer files for tests, and model folders that carry one.

Meta's tokenizer cannot be downloaded in tests, so tests build their own in the same format:

- a vocabulary, either trained by Hugging Face ``tokenizers`` on :data:`TRAINING_TEXT` with the
  LLaMA-3 pre-tokenizer (:func:`trained_vocab`, needs the dev extra), or made up without it by
  joining random tokens (``synthetic_vocab``, any size, e.g. 128,000 for load timing);
- the files around it as :mod:`minibitnet.tokenizer.synthetic` writes them (LLaMA-3's merges,
  pre-tokenizer and special tokens, the 2B4T chat template), re-exported here.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from minibitnet_testing.tokenizer_corpus import TRAINING_TEXT

from minibitnet.tokenizer.synthetic import (  # noqa: F401  (tests import these from here)
    LLAMA3_PATTERN,
    LLAMA3_SPECIAL_TOKENS,
    all_split_merges,
    synthetic_vocab,
    tokenizer_config_json,
    tokenizer_json,
    write_tokenizer,
)


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


def build_model_with_tokenizer(folder: Path, vocab: dict[str, int] | None = None,
                               shape: str = "tiny", seed: int = 0, **overrides: object) -> Path:
    """A random checkpoint (minibitnet_testing.builders) plus a tokenizer, with matching vocab and ids.

    vocab: None uses a 500-token synthetic vocabulary (no dev extra needed)
    """
    from minibitnet_testing.builders import build_checkpoint

    vocab = vocab if vocab is not None else synthetic_vocab(500)
    first_special = max(vocab.values()) + 1
    size = first_special + len(LLAMA3_SPECIAL_TOKENS)
    fields: dict[str, object] = dict(vocab_size=size, bos_token_id=first_special,
                                     eos_token_ids=(first_special + 1, first_special + 9))
    fields.update(overrides)
    build_checkpoint(folder, shape, seed, **fields)
    return write_tokenizer(folder, vocab)


def json_paths(document: Any, per_container: int = 6) -> list[list[Any]]:
    """Paths (lists of keys and indices) to nodes of a parsed JSON document, for fuzzing.

    Every node of small containers; of a container with more than ``per_container`` entries
    (a vocabulary, the merges), only its first few and its last, so that the list stays short.
    """
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            keys = list(node)
            for key in keys[:per_container] + keys[per_container:][-1:]:
                walk(node[key], path + [key])
        elif isinstance(node, list):
            indices = list(range(len(node)))
            for index in indices[:per_container] + indices[per_container:][-1:]:
                walk(node[index], path + [index])

    walk(document, [])
    return paths
