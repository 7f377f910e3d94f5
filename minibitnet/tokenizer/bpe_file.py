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
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from .byte_level import token_bytes, tokens_blob, tokens_bytes
from .pretokenize import check_pattern_trusted, isolated_pattern
from ..errors import TokenizerError, one_line
from ..files import read_bounded

# Token ids are tiktoken ranks, 32-bit in its Rust core; 2**31 - 1 also keeps every id an exact
# NumPy int64 after the arithmetic the merge checks do (ids times 65536).
MAX_TOKEN_ID = 2**31 - 1

# Count budgets, checked before any loop over the entries starts, so that a crafted file is
# refused in one line instead of holding the loader for minutes. Published vocabularies have at
# most about 260,000 tokens (Gemma's 262,144; LLaMA-3 128,000) and a few hundred added tokens.
MAX_VOCAB_SIZE = 2**22  # 4,194,304 tokens: 16x the largest published vocabulary
MAX_MERGES = 2**24  # 16,777,216: LLaMA-3 has 280,147 merges, about 2 per token
MAX_ADDED_TOKENS = 2**18  # 262,144: LLaMA-3 has 256; every check per entry is O(1)


# Budgets for reading a tokenizer's files whole. Real tokenizer.json files are 2 MB (GPT-2) to
# 9 MB (LLaMA-3) and ~35 MB (Gemma's 256k vocabulary); 256 MB leaves room for any real vocabulary
# while refusing /dev/zero or a mislabelled checkpoint before it fills memory. tokenizer_config.json
# holds names and a chat template (a few kB; ~50 kB with tool-use templates), so 16 MB is ample.
MAX_TOKENIZER_JSON_BYTES = 256 * 1024 * 1024
MAX_TOKENIZER_CONFIG_BYTES = 16 * 1024 * 1024


def read_json(path: Path) -> Any:
    """The parsed JSON of ``path`` (tokenizer.json, tokenizer_config.json, ...), read through
    :func:`~minibitnet.files.read_bounded`; TokenizerError if it is missing, not a regular
    file, over its budget or not JSON."""
    big = path.name == "tokenizer.json"  # only the vocabulary file is large
    limit = MAX_TOKENIZER_JSON_BYTES if big else MAX_TOKENIZER_CONFIG_BYTES
    expected = f"a Hugging Face {path.name}"
    data = read_bounded(path, limit, TokenizerError, expected,
                        missing=f"not found (expected {expected})")
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenizerError(f"{path}: not valid JSON ({exc})") from None
    except ValueError:  # an integer beyond Python's 4300-digit limit for int(str)
        raise TokenizerError(f"{path}: not valid JSON (a number longer than 4300 digits)") from None
    except RecursionError:
        raise TokenizerError(f"{path}: not valid JSON (nested too deeply)") from None


def _type_name(value: Any) -> str:
    """A JSON value's kind for a message: 'null', 'list', 'dict', 'str', 'int', ..."""
    return "null" if value is None else type(value).__name__


def split_pattern(pre_tokenizer: Any, where: str) -> str:
    """The regex of Sequence[Split(Regex, Isolated), ByteLevel(use_regex=false)], as tiktoken's
    ``pat_str``; TokenizerError for any other shape, wrong-typed field or an untrusted regex
    (:func:`minibitnet.tokenizer.pretokenize.check_pattern_trusted`)."""
    expected = ("expected Sequence[Split(Regex, behavior Isolated), ByteLevel(use_regex false)] "
                "as in LLaMA-3")
    if not isinstance(pre_tokenizer, dict) or pre_tokenizer.get("type") != "Sequence":
        found = pre_tokenizer.get("type") if isinstance(pre_tokenizer, dict) else pre_tokenizer
        raise TokenizerError(f"{where}: pre_tokenizer is {one_line(repr(found)[:60])}, {expected}")
    steps: Any = pre_tokenizer.get("pretokenizers")
    if not isinstance(steps, list):
        raise TokenizerError(f"{where}: pre_tokenizer.pretokenizers is {_type_name(steps)}, "
                             f"{expected}")
    kinds = [s.get("type") if isinstance(s, dict) else s for s in steps[:3]]
    if kinds != ["Split", "ByteLevel"] or len(steps) != 2:
        raise TokenizerError(f"{where}: pre_tokenizer is Sequence{one_line(repr(kinds)[:80])}, "
                             f"{expected}")
    split, byte_level = steps
    pattern = split.get("pattern")
    if not isinstance(pattern, dict) or not isinstance(pattern.get("Regex"), str):
        raise TokenizerError(f"{where}: Split pattern is {one_line(repr(pattern)[:60])}, "
                             "expected {\"Regex\": ...}")
    if split.get("behavior") != "Isolated" or split.get("invert", False) is not False:
        behavior = one_line(repr(split.get("behavior"))[:40])
        invert = one_line(repr(split.get("invert"))[:20])
        raise TokenizerError(f"{where}: Split behavior is {behavior} with invert {invert}, "
                             "expected 'Isolated' and false")
    use_regex, prefix = byte_level.get("use_regex", True), byte_level.get("add_prefix_space", False)
    if use_regex is not False or prefix is not False:
        raise TokenizerError(f"{where}: ByteLevel pre-tokenizer has use_regex "
                             f"{one_line(repr(use_regex)[:20])} and add_prefix_space "
                             f"{one_line(repr(prefix)[:20])}, expected both false")
    regex: str = pattern["Regex"]
    check_pattern_trusted(regex, where)
    return isolated_pattern(regex)


# ---- the merges check in plain Python: it defines the behaviour (and is slow) ----

def _is_merge(merge: Any, vocab: dict[str, int]) -> bool:
    pair = merge.split(" ") if isinstance(merge, str) else merge
    return (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
            and pair[0] in vocab and pair[1] in vocab and pair[0] + pair[1] in vocab)


def _count_splits_exact(vocab: dict[str, int]) -> int:
    """Number of (token, cut) with both halves of the token in ``vocab``."""
    return sum(1 for token in vocab for cut in range(1, len(token))
               if token[:cut] in vocab and token[cut:] in vocab)


def _check_merges_exact(vocab: dict[str, int], merges: list[Any], where: str) -> None:
    """(2) and (3) of the module docstring: merges are every two-token split, by id made."""
    last_made = -1
    seen: set[tuple[str, str]] = set()
    for index, merge in enumerate(merges):
        if not _is_merge(merge, vocab):
            raise TokenizerError(f"{where}: merges[{index}] is {merge!r}, expected two "
                                 "vocabulary tokens whose join is in the vocabulary")
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        made = vocab[left + right]
        if made < last_made:
            raise TokenizerError(f"{where}: merges[{index}] makes token {made} after a merge "
                                 f"made {last_made}; expected merges in order of the id they "
                                 "make")
        if (left, right) in seen:
            raise TokenizerError(f"{where}: merges[{index}] {merge!r} is listed twice")
        seen.add((left, right))
        last_made = made
    splits = _count_splits(vocab)
    if splits != len(merges):
        raise TokenizerError(f"{where}: {len(merges)} merges for {splits} ways of splitting a "
                             "token into two tokens; expected one merge per split, as in "
                             "LLaMA-3 (a vocabulary trained by HF has one merge per token)")


# ---- the same check with 64-bit hashes in NumPy: fast, and it defers to the exact one ----
#
# h(s) = sum over i of (s[i] + 1) * B**(i + 1), mod 2**64, so h(left + right) is
# h(left) + B**len(left) * h(right): every merge and every (token, cut) is checked at once, in
# about a tenth of the time of the Python loops. Anything it cannot confirm goes to the exact
# check, which raises the error (or passes, had two strings shared a hash).

_BASE = 0x9E3779B97F4A7C15  # odd, so invertible mod 2**64


class _Hashes:
    """Hashes of byte strings laid end to end, and of any substring of them."""

    def __init__(self, blob: bytes, lengths: np.ndarray) -> None:
        self.lengths = lengths  # (n,) int64
        self.ends = np.cumsum(self.lengths)  # (n,) where each string ends in the blob
        self.starts = self.ends - self.lengths  # (n,)
        codes = np.frombuffer(blob, np.uint8).astype(np.uint64) + np.uint64(1)  # (N,) 1..256
        powers = np.cumprod(np.full(codes.size, _BASE, np.uint64))  # (N,) B**(q+1), wrapping
        inverse = np.full(codes.size, pow(_BASE, -1, 2**64), np.uint64)
        self.inverse_powers = np.concatenate([[np.uint64(1)], np.cumprod(inverse)])  # (N+1,)
        self.prefix = np.concatenate([[np.uint64(0)], np.cumsum(codes * powers)])  # (N+1,)

    @classmethod
    def of_strings(cls, tokens: Sequence[str]) -> _Hashes | None:
        """Hashes of byte-level strings (through their raw bytes); None if one is not one."""
        blob = tokens_blob(list(tokens))
        if blob is None:
            return None
        return cls(blob, np.fromiter(map(len, tokens), np.int64, len(tokens)))

    def between(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """h(blob[a:b]) for each pair of offsets: (prefix[b] - prefix[a]) / B**a."""
        hashes: np.ndarray = (self.prefix[b] - self.prefix[a]) * self.inverse_powers[a]
        return hashes

    def whole(self) -> np.ndarray:
        return self.between(self.starts, self.ends)


class _Table:
    """Hash -> vocabulary id, looked up for many hashes at once.

    The top 18 bits of a hash pick a run of the sorted table (0.5 entries on average, rarely 7);
    a few vectorised passes scan the runs, each pass only for the queries not yet settled. This
    is several times faster than a binary search (np.searchsorted) over the whole table.
    """

    SHIFT = np.uint64(64 - 18)

    def __init__(self, hashes: np.ndarray, ids: np.ndarray) -> None:
        order = np.argsort(hashes)
        self.known = hashes[order]  # (V,) sorted
        self.ids = ids[order]  # (V,)
        self.distinct = not np.any(self.known[1:] == self.known[:-1])
        self.first = np.searchsorted(self.known >> self.SHIFT,
                                     np.arange(2**18 + 1, dtype=np.uint64))  # (2**18+1,)

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """The id of each hash, -1 where the table lacks it."""
        slot = (hashes >> self.SHIFT).astype(np.int64)
        position, stop = self.first[slot], self.first[slot + 1]  # (n,) each: the run to scan
        found = np.full(hashes.size, -1, np.int64)
        todo = np.flatnonzero(position < stop)  # queries still scanning; fewer each pass
        while todo.size:
            at = position[todo]
            hit = self.known[at] == hashes[todo]
            found[todo[hit]] = self.ids[at[hit]]
            todo = todo[~hit]
            position[todo] += 1
            todo = todo[position[todo] < stop[todo]]
        return found


def _merges_look_right(vocab: dict[str, int], merges: list[Any]) -> bool:
    """The exact check's conditions, by hashes; False means "ask the exact check"."""
    vocab_hashes = _Hashes.of_strings(list(vocab))
    if vocab_hashes is None:
        return False
    table = _Table(vocab_hashes.whole(), np.fromiter(vocab.values(), np.int64, len(vocab)))
    if not table.distinct:
        return False
    if not merges:
        return _count_splits_hashed(vocab_hashes, table) == 0
    # [left, right] pairs (newer files) or "left right" strings (older ones)
    pairs = merges if set(map(type, merges)) == {list} else [
        m.split(" ") if isinstance(m, str) else m for m in merges]
    try:
        if set(map(len, pairs)) != {2}:
            return False
        # itemgetter through map runs in C; zip(*pairs) would make a call with M arguments
        lefts = list(map(operator.itemgetter(0), pairs))
        rights = list(map(operator.itemgetter(1), pairs))
        left, right = _Hashes.of_strings(lefts), _Hashes.of_strings(rights)
    except (TypeError, KeyError):  # a part that is not a string, or a pair that is an object
        return False
    if left is None or right is None or min(left.lengths.min(), right.lengths.min()) < 1:
        return False
    if left.lengths.max() >= 65536:
        return False
    left_hash, right_hash = left.whole(), right.whole()  # (M,) each
    if np.any(table.lookup(left_hash) < 0) or np.any(table.lookup(right_hash) < 0):
        return False
    length_powers = np.cumprod(np.full(int(left.lengths.max()), _BASE, np.uint64))  # B**1 ...
    made = table.lookup(left_hash + length_powers[left.lengths - 1] * right_hash)  # (M,)
    if np.any(made < 0) or np.any(made[1:] < made[:-1]):
        return False
    # a split is (token made, cut position), so a repeated merge repeats one of those
    keys = np.sort(made * 65536 + left.lengths)
    if np.any(keys[1:] == keys[:-1]):
        return False
    return _count_splits_hashed(vocab_hashes, table) == len(merges)


def _count_splits_hashed(vocab: _Hashes, table: _Table) -> int:
    """:func:`_count_splits_exact` by hashes (a collision could only raise the count)."""
    cuts_of = vocab.lengths - 1  # (V,) cut positions per token
    owner = np.repeat(np.arange(cuts_of.size), cuts_of)  # one row per (token, cut)
    first_row = np.repeat(np.cumsum(cuts_of) - cuts_of, cuts_of)  # row of each owner's cut 1
    middle = vocab.starts[owner] + np.arange(owner.size) - first_row + 1
    both = ((table.lookup(vocab.between(vocab.starts[owner], middle)) >= 0)
            & (table.lookup(vocab.between(middle, vocab.ends[owner])) >= 0))
    return int(both.sum())


# The exact split count slices every token at every cut: sum of squared token lengths in
# character operations. LLaMA-3's vocabulary needs about 10**7; past this budget the hashed count
# stands in (a hash collision, chance about 2**-40, could only make it refuse a good file).
MAX_EXACT_SPLIT_WORK = 2**26


def _count_splits(vocab: dict[str, int]) -> int:
    """:func:`_count_splits_exact` within MAX_EXACT_SPLIT_WORK, else by hashes (linear)."""
    if sum(len(token) ** 2 for token in vocab) <= MAX_EXACT_SPLIT_WORK:
        return _count_splits_exact(vocab)
    hashes = _Hashes.of_strings(list(vocab))
    assert hashes is not None  # mergeable_ranks refused non-byte-level tokens before
    return _count_splits_hashed(hashes, _Table(hashes.whole(), np.fromiter(
        vocab.values(), np.int64, len(vocab))))


def _check_merges(vocab: dict[str, int], merges: list[Any], where: str) -> None:
    if not _merges_look_right(vocab, merges):
        _check_merges_exact(vocab, merges, where)


def mergeable_ranks(model: Any, where: str) -> dict[bytes, int]:
    """Vocabulary -> {raw bytes: rank}, after checking the merges describe tiktoken's BPE."""
    if not isinstance(model, dict):
        raise TokenizerError(f"{where}: no 'model' object (expected a BPE model)")
    if model.get("type") != "BPE":
        raise TokenizerError(f"{where}: model type is {one_line(repr(model.get('type'))[:40])}, "
                             "expected 'BPE'")
    for key in ("unk_token", "continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(key) not in (None, ""):
            raise TokenizerError(f"{where}: model.{key} is {one_line(repr(model[key])[:40])}, "
                                 "expected null")
    if model.get("byte_fallback") not in (None, False):
        raise TokenizerError(f"{where}: model.byte_fallback is "
                             f"{one_line(repr(model['byte_fallback'])[:20])}, expected false")
    if model.get("ignore_merges") is not True:
        raise TokenizerError(f"{where}: model.ignore_merges is "
                             f"{one_line(repr(model.get('ignore_merges'))[:20])}, "
                             "expected true (tiktoken looks whole pre-tokens up first)")
    vocab, merges = model.get("vocab"), model.get("merges")
    if not isinstance(vocab, dict) or not vocab:
        found = "empty" if vocab == {} else _type_name(vocab)
        raise TokenizerError(f"{where}: model.vocab is {found}, expected a non-empty object")
    if not isinstance(merges, list):
        raise TokenizerError(f"{where}: model.merges is {_type_name(merges)}, expected a list")
    if len(vocab) > MAX_VOCAB_SIZE or len(merges) > MAX_MERGES:
        raise TokenizerError(f"{where}: {len(vocab)} vocabulary tokens and {len(merges)} merges, "
                             f"expected at most {MAX_VOCAB_SIZE} and {MAX_MERGES}")
    tokens, ids = list(vocab), list(vocab.values())
    raws = tokens_bytes(tokens)
    if raws is None or b"" in raws:
        bad = next(t for t in tokens if not token_bytes(t))
        raise TokenizerError(f"{where}: vocabulary token {bad!r} is not a byte-level string")
    if set(map(type, ids)) != {int} or min(ids) < 0 or max(ids) > MAX_TOKEN_ID:
        bad = next(t for t, i in vocab.items() if type(i) is not int or not 0 <= i <= MAX_TOKEN_ID)
        raise TokenizerError(f"{where}: vocabulary id of {bad!r} is {vocab[bad]!r}, "
                             f"expected an integer in [0, {MAX_TOKEN_ID}]")
    if len(set(ids)) != len(ids):
        raise TokenizerError(f"{where}: two vocabulary tokens share an id")
    ranks = dict(zip(raws, ids))
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise TokenizerError(f"{where}: byte 0x{missing[0]:02x} has no token "
                             f"({len(missing)} of 256 missing), expected every single byte")
    _check_merges(vocab, merges, where)
    return ranks


def special_tokens(added: Any, ranks: dict[bytes, int], where: str) -> dict[str, int]:
    """``added_tokens`` -> {content: id}; one also in the vocabulary leaves ``ranks``.

    Linear in the number of entries: every check per entry is a set or dict lookup.
    """
    if not isinstance(added, list):
        raise TokenizerError(f"{where}: added_tokens is {_type_name(added)}, expected a list")
    if len(added) > MAX_ADDED_TOKENS:
        raise TokenizerError(f"{where}: {len(added)} added tokens, expected at most "
                             f"{MAX_ADDED_TOKENS}")
    rank_of_id = {rank: raw for raw, rank in ranks.items()}
    specials: dict[str, int] = {}
    special_ids: set[int] = set()
    for index, entry in enumerate(added):
        if not isinstance(entry, dict) or not isinstance(entry.get("content"), str) \
                or type(entry.get("id")) is not int or not entry["content"]:
            raise TokenizerError(f"{where}: added_tokens[{index}] needs a str 'content' and an "
                                 "int 'id'")
        content, token_id = entry["content"], entry["id"]
        shown = one_line(repr(content)[:60])
        try:
            raw = content.encode()
        except UnicodeEncodeError:  # a lone surrogate, which JSON's \ud800 escape can write
            raise TokenizerError(f"{where}: added token {shown} is not valid Unicode "
                                 "(a lone surrogate)") from None
        if not 0 <= token_id <= MAX_TOKEN_ID:
            raise TokenizerError(f"{where}: added token {shown} has id {token_id}, expected "
                                 f"an integer in [0, {MAX_TOKEN_ID}]")
        for flag in ("lstrip", "rstrip", "single_word"):
            if entry.get(flag) not in (None, False):
                raise TokenizerError(f"{where}: added token {shown} has {flag} "
                                     f"{one_line(repr(entry[flag])[:20])}, expected false")
        if content in specials or token_id in special_ids:
            raise TokenizerError(f"{where}: added token {shown} (id {token_id}) repeats "
                                 "the content or id of another added token")
        if token_id in rank_of_id:
            # an added token may also sit in the vocabulary (GPT-2 does this) if it is the same
            # string there; it is then special only, as HF cuts it out of the text first
            if rank_of_id[token_id] != raw:
                raise TokenizerError(f"{where}: added token {shown} has id {token_id}, "
                                     "which the vocabulary gives to another token")
            del ranks[rank_of_id.pop(token_id)]
        specials[content] = token_id
        special_ids.add(token_id)
    return specials
