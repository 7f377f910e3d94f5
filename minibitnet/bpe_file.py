"""Reading a Hugging Face tokenizer.json into what tiktoken takes: ranks, regex, special tokens.

subtle: tiktoken and HF BPE are different algorithms. tiktoken merges, at each step, the adjacent
pair whose *concatenation* has the lowest rank, and it looks a whole pre-token up before merging;
HF merges the adjacent pair that comes first in the ``merges`` list, and looks whole pre-tokens up
only with ``ignore_merges``. They agree when (1) ``ignore_merges`` is true, (2) every way of
splitting a token into two vocabulary tokens is a merge, and (3) merges are listed in order of the
id of the token they make. LLaMA-3's file is built that way from tiktoken ranks (transformers'
``TikTokenConverter``). A vocabulary trained by HF has one merge per token instead: for the
tokens "a", "b", "c", "bc" (made first), "ab", "abc" (made from "ab" + "c"), HF splits "abc" of
"abcd" as "a" + "bc" and stops, as no merge joins those two, while tiktoken joins them into "abc".
:func:`mergeable_ranks` checks all three, so such a file is refused rather than tokenised
differently.

Every problem is a one-line :class:`TokenizerError` naming the file.
"""

from __future__ import annotations

import json
import operator
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from .byte_level import token_bytes, tokens_bytes
from .errors import TokenizerError


def read_json(path: Path) -> Any:
    """The parsed JSON of ``path``; TokenizerError if it is missing or not JSON."""
    try:
        with open(path, "rb") as file:
            return json.load(file)
    except FileNotFoundError:
        raise TokenizerError(f"{path}: not found (expected a Hugging Face {path.name})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenizerError(f"{path}: not valid JSON ({exc})") from None


def split_pattern(pre_tokenizer: Any, where: str) -> str:
    """The regex of Sequence[Split(Regex, Isolated), ByteLevel(use_regex=false)]."""
    expected = ("expected Sequence[Split(Regex, behavior Isolated), ByteLevel(use_regex false)] "
                "as in LLaMA-3")
    if not isinstance(pre_tokenizer, dict) or pre_tokenizer.get("type") != "Sequence":
        found = pre_tokenizer.get("type") if isinstance(pre_tokenizer, dict) else pre_tokenizer
        raise TokenizerError(f"{where}: pre_tokenizer is {found!r}, {expected}")
    steps: Any = pre_tokenizer.get("pretokenizers")
    kinds = [s.get("type") if isinstance(s, dict) else s for s in steps or []]
    if kinds != ["Split", "ByteLevel"]:
        raise TokenizerError(f"{where}: pre_tokenizer is Sequence{kinds}, {expected}")
    split, byte_level = steps
    pattern = split.get("pattern")
    if not isinstance(pattern, dict) or not isinstance(pattern.get("Regex"), str):
        raise TokenizerError(f"{where}: Split pattern is {pattern!r}, expected {{\"Regex\": ...}}")
    if split.get("behavior") != "Isolated" or split.get("invert", False):
        raise TokenizerError(f"{where}: Split behavior is {split.get('behavior')!r} with invert "
                             f"{split.get('invert')!r}, expected 'Isolated' and false")
    if byte_level.get("use_regex", True) or byte_level.get("add_prefix_space", False):
        raise TokenizerError(f"{where}: ByteLevel pre-tokenizer has use_regex "
                             f"{byte_level.get('use_regex', True)} and add_prefix_space "
                             f"{byte_level.get('add_prefix_space', False)}, expected both false")
    regex: str = pattern["Regex"]
    # subtle: HF's Isolated keeps the text *between* matches as pieces too; tiktoken drops it.
    # The second branch matches such a run (every position where the pattern does not match), so
    # patterns that do not cover every character (LLaMA-3's does) still lose nothing.
    return f"(?:{regex})|(?:(?!(?:{regex}))[\\s\\S])+"


def _count_splits_exact(vocab: dict[str, int]) -> int:
    """Number of (token, cut) with both halves of the token in ``vocab``; plain Python."""
    return sum(1 for token in vocab for cut in range(1, len(token))
               if token[:cut] in vocab and token[cut:] in vocab)


def _count_splits(raws: list[bytes], vocab: dict[str, int]) -> int:
    """:func:`_count_splits_exact`, computed with 64-bit polynomial hashes in NumPy.

    The exact count in Python costs most of a second for 128,000 tokens; with hashes, every
    (token, cut) pair is tested at once. A hash collision can only *raise* the count, and a count
    that disagrees with the merges is checked again exactly before anything is refused.
    """
    lengths = np.fromiter(map(len, raws), np.int64, len(raws))  # (V,)
    ends = np.cumsum(lengths)  # (V,) end offset of each token in blob
    starts = ends - lengths
    blob = np.frombuffer(b"".join(raws), np.uint8).astype(np.uint64) + np.uint64(1)  # (N,) 1..256
    base = np.full(blob.size, 0x9E3779B97F4A7C15, np.uint64)  # odd, so invertible mod 2**64
    powers = np.cumprod(base)  # (N,) base**(q+1), wrapping mod 2**64
    inverse = np.full(blob.size, pow(0x9E3779B97F4A7C15, -1, 2**64), np.uint64)
    inverse_powers = np.concatenate([[np.uint64(1)], np.cumprod(inverse)])  # (N+1,) base**-q
    prefix = np.concatenate([[np.uint64(0)], np.cumsum(blob * powers)])  # (N+1,) hash of blob[:q]

    def substring_hash(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # hash of blob[a:b], any a
        hashes: np.ndarray = (prefix[b] - prefix[a]) * inverse_powers[a]
        return hashes

    known = np.sort(substring_hash(starts, ends))  # (V,)

    # membership by bucket: the top 18 bits of a hash pick a run of ``known`` (sorted, so runs are
    # contiguous); runs hold a few hashes, compared in a few vectorised passes. This is 3x faster
    # than a binary search (np.searchsorted) over the whole table.
    shift = np.uint64(64 - 18)
    first = np.searchsorted(known >> shift, np.arange(2**18 + 1, dtype=np.uint64))  # (2**18+1,)
    padded = np.append(known, np.uint64(0))

    def is_known(hashes: np.ndarray) -> np.ndarray:
        slot = (hashes >> shift).astype(np.int64)
        start, stop = first[slot], first[slot + 1]
        found = np.zeros(hashes.size, bool)
        for step in range(int(np.max(first[1:] - first[:-1]))):
            index = start + step
            found |= (index < stop) & (padded[np.minimum(index, known.size)] == hashes)
        return found

    owner = np.repeat(np.arange(len(raws)), lengths - 1)  # one row per (token, cut)
    cut = np.arange(owner.size) - np.repeat(np.cumsum(lengths - 1) - (lengths - 1), lengths - 1) + 1
    middle = starts[owner] + cut
    both = (is_known(substring_hash(starts[owner], middle))
            & is_known(substring_hash(middle, ends[owner])))
    return int(both.sum())


def _check_merges(vocab: dict[str, int], raws: list[bytes], merges: list[Any], where: str) -> None:
    """(2) and (3) of the module docstring: merges are every two-token split, by id made."""
    pairs = [m.split(" ") if isinstance(m, str) else m for m in merges]
    try:
        if pairs and set(map(len, pairs)) != {2}:
            raise ValueError
        lefts, rights = zip(*pairs) if pairs else ((), ())
        known = all(map(vocab.__contains__, lefts)) and all(map(vocab.__contains__, rights))
        made = list(map(vocab.get, map(operator.add, lefts, rights), repeat(-1)))
    except (TypeError, ValueError):  # not pairs of strings
        known, made = False, []
    if not known or (made and min(made) < 0):
        index = next(i for i, m in enumerate(merges) if not _is_merge(m, vocab))
        raise TokenizerError(f"{where}: merges[{index}] is {merges[index]!r}, expected two "
                             "vocabulary tokens whose join is in the vocabulary")
    made_ids = np.asarray(made, dtype=np.int64)  # (M,)
    steps = np.diff(made_ids)
    if steps.size and steps.min() < 0:
        index = int(np.argmax(steps < 0)) + 1
        raise TokenizerError(f"{where}: merges[{index}] makes token {made[index]} after a merge "
                             f"made {made[index - 1]}; expected merges in order of the id they "
                             "make")
    # a split is (token made, cut position), so repeats show as repeated pairs of those
    cuts = np.fromiter(map(len, lefts), np.int64, len(lefts))
    if np.unique(made_ids * 65536 + cuts).size != len(merges):
        raise TokenizerError(f"{where}: a merge is listed twice")
    splits = _count_splits(raws, vocab)
    if splits != len(merges):
        splits = _count_splits_exact(vocab)
    if splits != len(merges):
        raise TokenizerError(f"{where}: {len(merges)} merges for {splits} ways of splitting a "
                             "token into two tokens; expected one merge per split, as in "
                             "LLaMA-3 (a vocabulary trained by HF has one merge per token)")


def _is_merge(merge: Any, vocab: dict[str, int]) -> bool:
    pair = merge.split(" ") if isinstance(merge, str) else merge
    return (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
            and pair[0] in vocab and pair[1] in vocab and pair[0] + pair[1] in vocab)


def mergeable_ranks(model: Any, where: str) -> dict[bytes, int]:
    """Vocabulary -> {raw bytes: rank}, after checking the merges describe tiktoken's BPE."""
    if not isinstance(model, dict):
        raise TokenizerError(f"{where}: no 'model' object (expected a BPE model)")
    if model.get("type") != "BPE":
        raise TokenizerError(f"{where}: model type is {model.get('type')!r}, expected 'BPE'")
    for key in ("unk_token", "continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(key):
            raise TokenizerError(f"{where}: model.{key} is {model[key]!r}, expected null")
    if model.get("byte_fallback"):
        raise TokenizerError(f"{where}: model.byte_fallback is true, expected false")
    if model.get("ignore_merges") is not True:
        raise TokenizerError(f"{where}: model.ignore_merges is {model.get('ignore_merges')!r}, "
                             "expected true (tiktoken looks whole pre-tokens up first)")
    vocab, merges = model.get("vocab"), model.get("merges")
    if not isinstance(vocab, dict) or not vocab:
        raise TokenizerError(f"{where}: model.vocab is missing or empty")
    if not isinstance(merges, list):
        raise TokenizerError(f"{where}: model.merges is missing")
    tokens, ids = list(vocab), list(vocab.values())
    raws = tokens_bytes(tokens)
    if raws is None or b"" in raws:
        bad = next(t for t in tokens if not token_bytes(t))
        raise TokenizerError(f"{where}: vocabulary token {bad!r} is not a byte-level string")
    if set(map(type, ids)) != {int} or min(ids) < 0:
        bad = next(t for t, i in vocab.items() if type(i) is not int or i < 0)
        raise TokenizerError(f"{where}: vocabulary id of {bad!r} is {vocab[bad]!r}, "
                             "expected an integer >= 0")
    if len(set(ids)) != len(ids):
        raise TokenizerError(f"{where}: two vocabulary tokens share an id")
    ranks = dict(zip(raws, ids))
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise TokenizerError(f"{where}: byte 0x{missing[0]:02x} has no token "
                             f"({len(missing)} of 256 missing), expected every single byte")
    _check_merges(vocab, raws, merges, where)
    return ranks


def special_tokens(added: Any, ranks: dict[bytes, int], where: str) -> dict[str, int]:
    """``added_tokens`` -> {content: id}; one also in the vocabulary leaves ``ranks``."""
    if not isinstance(added, list):
        raise TokenizerError(f"{where}: added_tokens is {type(added).__name__}, expected a list")
    rank_of_id = {rank: raw for raw, rank in ranks.items()}
    specials: dict[str, int] = {}
    for index, entry in enumerate(added):
        if not isinstance(entry, dict) or not isinstance(entry.get("content"), str) \
                or type(entry.get("id")) is not int or not entry["content"]:
            raise TokenizerError(f"{where}: added_tokens[{index}] needs a str 'content' and an "
                                 "int 'id'")
        content, token_id = entry["content"], entry["id"]
        for flag in ("lstrip", "rstrip", "single_word"):
            if entry.get(flag):
                raise TokenizerError(f"{where}: added token {content!r} has {flag} true, "
                                     "expected false")
        if content in specials or token_id in specials.values():
            raise TokenizerError(f"{where}: added token {content!r} (id {token_id}) repeats "
                                 "the content or id of another added token")
        if token_id in rank_of_id:
            # an added token may also sit in the vocabulary (GPT-2 does this) if it is the same
            # string there; it is then special only, as HF cuts it out of the text first
            if rank_of_id[token_id] != content.encode():
                raise TokenizerError(f"{where}: added token {content!r} has id {token_id}, "
                                     "which the vocabulary gives to another token")
            del ranks[rank_of_id.pop(token_id)]
        specials[content] = token_id
    return specials
