"""Byte-level BPE training, written out as a LLaMA-3 style Hugging Face tokenizer.json.

The algorithm is the one of GPT-2 and LLaMA-3 (and of karpathy/minbpe ``regex.py``):

1. pre-tokenise: the LLaMA-3 regex cuts the text into chunks (a word with its leading space, up
   to three digits, a run of punctuation, whitespace), so that no token crosses a chunk border;
2. start from the 256 single bytes (token id = byte value);
3. repeatedly count adjacent token pairs over all chunks (each unique chunk weighted by how often
   it occurs), and merge the most frequent pair into a new token, until the vocabulary is full.

Worked example: chunks {"low": 5, " lower": 2}: the pair (l, o) occurs 7 times and becomes token
256; then (256, w) occurs 7 times and becomes 257 ("low"), and so on.

Step 3 updates the pair counts incrementally: only the chunks that hold the merged pair change,
so a few thousand merges over Shakespeare's ~30k distinct chunks take seconds, not hours.

The result is written the way transformers' ``TikTokenConverter`` writes LLaMA-3: the vocabulary
in the GPT-2 byte-to-unicode alphabet (:mod:`minibitnet.tokenizer.byte_level`), and as ``merges`` every way
of splitting a token into two tokens, in the order of the id of the token made. Then Hugging Face
``tokenizers`` (merge-list BPE) and tiktoken (rank BPE, which :mod:`minibitnet.tokenizer` uses)
tokenise identically. Special tokens (``<|begin_of_text|>`` ...) follow the BPE ids.

Left out: training on special-token boundaries, byte fallback, normalisation; the regex module is
the one tiktoken itself depends on (the ``\\p{L}`` classes of the pattern need it).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import regex
import tiktoken

from ..tokenizer.bpe_file import read_json
from ..tokenizer.byte_level import token_string
from ..tokenizer.chat_template import BITNET_2B4T_TEMPLATE
from ..files import atomic_write_text
from ..tokenizer.tokenizer_json import LLAMA3_PATTERN, llama3_tokenizer_json


BOS_TOKEN = "<|begin_of_text|>"
EOS_TOKEN = "<|end_of_text|>"
EOT_TOKEN = "<|eot_id|>"
# The LLaMA-3 specials a chat model uses, in LLaMA-3's relative order.
SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, "<|start_header_id|>", "<|end_header_id|>", EOT_TOKEN)

Pair = tuple[int, int]


def count_chunks(texts: Iterable[str]) -> Counter[bytes]:
    """How often each pre-tokenised chunk occurs, as UTF-8 bytes."""
    pattern = regex.compile(LLAMA3_PATTERN)
    counts: Counter[bytes] = Counter()
    for text in texts:
        counts.update(chunk.encode("utf-8") for chunk in pattern.findall(text))
    return counts


def train_bpe(chunk_counts: Counter[bytes], vocab_size: int,
              progress: Callable[[int, int], None] | None = None) -> dict[bytes, int]:
    """Learn merges until the vocabulary holds ``vocab_size`` tokens (or no pair occurs twice).

    returns: ranks {token bytes: id}; ids 0..255 are the single bytes, later ids in merge order
    """
    if vocab_size < 256:
        raise ValueError(f"vocab_size is {vocab_size}, expected at least 256 (the single bytes)")
    ranks: dict[bytes, int] = {bytes([b]): b for b in range(256)}
    token_of: list[bytes] = [bytes([b]) for b in range(256)]  # id -> bytes
    words = [list(chunk) for chunk in chunk_counts]  # each chunk as a list of token ids
    weights = list(chunk_counts.values())
    pair_counts: Counter[Pair] = Counter()
    where: dict[Pair, set[int]] = {}  # pair -> indices of the words that hold it
    for index, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += weights[index]
            where.setdefault(pair, set()).add(index)
    while len(token_of) < vocab_size and pair_counts:
        # most frequent pair; ties go to the smallest pair of ids, so training is deterministic
        best, count = max(pair_counts.items(), key=lambda item: (item[1], -item[0][0], -item[0][1]))
        if count < 2:
            break
        merged = token_of[best[0]] + token_of[best[1]]
        # subtle: (ab, c) and (a, bc) both make "abc"; a second merge reuses the first id
        new_id = ranks.get(merged)
        if new_id is None:
            new_id = len(token_of)
            ranks[merged] = new_id
            token_of.append(merged)
        for index in where.pop(best, set()):
            word, weight = words[index], weights[index]
            for pair in zip(word, word[1:]):  # take this word's old pairs out ...
                pair_counts[pair] -= weight
                if pair_counts[pair] <= 0:
                    del pair_counts[pair]
                if pair != best and pair in where:
                    where[pair].discard(index)
            out: list[int] = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == best[0] and word[i + 1] == best[1]:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            words[index] = out
            for pair in zip(out, out[1:]):  # ... and its new pairs in
                pair_counts[pair] += weight
                where.setdefault(pair, set()).add(index)
        pair_counts.pop(best, None)
        if progress is not None:
            progress(len(token_of), vocab_size)
    return ranks


def make_encoding(ranks: dict[bytes, int], name: str = "bpe") -> tiktoken.Encoding:
    """The trained tokenizer as a tiktoken Encoding, with the special tokens after the BPE ids."""
    specials = {token: len(ranks) + i for i, token in enumerate(SPECIAL_TOKENS)}
    return tiktoken.Encoding(name, pat_str=LLAMA3_PATTERN, mergeable_ranks=ranks,
                             special_tokens=specials)


def special_token_ids(ranks: dict[bytes, int]) -> dict[str, int]:
    """Each special token -> its id (they follow the BPE ids)."""
    return {token: len(ranks) + i for i, token in enumerate(SPECIAL_TOKENS)}


def _merges(ranks: dict[bytes, int]) -> list[str]:
    """Every split of a token into two tokens, ordered by the id made, then left, then right id.

    This is transformers' TikTokenConverter.extract_vocab_merges_from_model, so that merge-list
    BPE and rank BPE agree (see :mod:`minibitnet.tokenizer`).
    """
    found: list[tuple[int, int, int, str]] = []
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in ranks and right in ranks:
                found.append((rank, ranks[left], ranks[right],
                              f"{token_string(left)} {token_string(right)}"))
    found.sort()
    return [merge for *_, merge in found]


def tokenizer_json(ranks: dict[bytes, int]) -> dict[str, object]:
    """The tokenizer.json object in the LLaMA-3 structure (see minibitnet.tokenizer.tokenizer_json)."""
    vocab = {token_string(token): rank for token, rank in sorted(ranks.items(), key=lambda t: t[1])}
    return llama3_tokenizer_json(vocab, _merges(ranks), special_token_ids(ranks), BOS_TOKEN)


def tokenizer_config_json(max_length: int) -> dict[str, object]:
    """tokenizer_config.json: the specials by name and the 2B4T chat template."""
    return {
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "chat_template": BITNET_2B4T_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": max_length,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


def write_tokenizer(out_dir: str | Path, ranks: dict[bytes, int], max_length: int) -> None:
    """Write tokenizer.json and tokenizer_config.json into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "tokenizer.json",
                      json.dumps(tokenizer_json(ranks), ensure_ascii=False, indent=1) + "\n")
    atomic_write_text(out_dir / "tokenizer_config.json",
                      json.dumps(tokenizer_config_json(max_length), indent=2) + "\n")


def read_ranks(path: str | Path) -> dict[bytes, int]:
    """The BPE ranks of a tokenizer.json written by :func:`write_tokenizer`."""
    from ..tokenizer.byte_level import token_bytes

    spec = read_json(Path(path))  # bounded, and refused by type if not a regular file
    ranks: dict[bytes, int] = {}
    for token, rank in spec["model"]["vocab"].items():
        raw = token_bytes(token)
        if raw is None:
            raise ValueError(f"{path}: vocabulary token {token!r} is not a byte-level string")
        ranks[raw] = rank
    return ranks
