"""tokenizer.json -> a tiktoken ``Encoding``, exact to Hugging Face ``tokenizers``; chat prompts.

BitNet b1.58 2B4T ships the LLaMA-3 tokenizer as a Hugging Face tokenizer.json: 128,000
byte-level BPE tokens (ids 0..127999) and 256 special tokens (128000 ``<|begin_of_text|>``,
128001 ``<|end_of_text|>``, 128009 ``<|eot_id|>``, ...). LLaMA-3's tokenizer *is* a tiktoken
encoding, converted: the id of a token is its tiktoken rank. :func:`load` converts back:

- ranks: each vocabulary string through the byte-level alphabet (:mod:`minibitnet.byte_level`)
  to its raw bytes, rank = id;
- ``pat_str``: the regex of the Split pre-tokenizer;
- special tokens: ``added_tokens``, which HF and tiktoken both cut out of the text first.

subtle: tiktoken and HF BPE are different algorithms. tiktoken merges, at each step, the adjacent
pair whose *concatenation* has the lowest rank, and it looks a whole pre-token up before merging;
HF merges the adjacent pair that comes first in the ``merges`` list, and looks whole pre-tokens up
only with ``ignore_merges``. They agree when (1) ``ignore_merges`` is true, (2) every way of
splitting a token into two vocabulary tokens is a merge, and (3) merges are listed in order of the
id of the token they make. LLaMA-3's file is built that way from tiktoken (transformers'
``TikTokenConverter``), and :func:`load` checks all three, so a vocabulary trained by HF (one merge
per token) is refused rather than tokenised differently.

Left out: normalizers, byte fallback, ``unk_token``, word-continuation prefixes (SentencePiece
and WordPiece-style vocabularies), added tokens with lstrip/rstrip/single_word.
"""

from __future__ import annotations

import codecs
import json
import operator
from itertools import repeat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tiktoken

from .byte_level import token_bytes, tokens_bytes
from .chat_template import BITNET_2B4T_TEMPLATE, render_chat
from .errors import ArgumentError, TokenizerError

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"

# Names the end of a text or of a turn in LLaMA-3 vocabularies; generation stops at any present.
END_TOKENS = ("<|end_of_text|>", "<|eot_id|>", "<|eom_id|>")


def _read_json(path: Path) -> Any:
    try:
        with open(path, "rb") as file:
            return json.load(file)
    except FileNotFoundError:
        raise TokenizerError(f"{path}: not found (expected a Hugging Face {path.name})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenizerError(f"{path}: not valid JSON ({exc})") from None


def _split_pattern(pre_tokenizer: Any, where: str) -> str:
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


def _mergeable_ranks(model: Any, where: str) -> dict[bytes, int]:
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


def _special_tokens(added: Any, ranks: dict[bytes, int], where: str) -> dict[str, int]:
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


def _token_name(value: Any) -> str | None:
    """A tokenizer_config special token: a string, or an AddedToken dict with 'content'."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class StreamDecoder:
    """Token ids in, text out, never half a UTF-8 character: bytes wait until they complete one.

    skip_special: special tokens print as nothing (as llama.cpp prints a reply)
    """

    def __init__(self, encoding: tiktoken.Encoding, skip_special: bool = False) -> None:
        self._encoding = encoding
        self._skip: frozenset[int] = (frozenset(encoding._special_tokens.values())
                                      if skip_special else frozenset())
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, token_id: int) -> str:
        """The text that ``token_id`` completes (possibly ""); ids the tokenizer lacks add none."""
        if token_id in self._skip:
            return ""
        try:
            raw = self._encoding.decode_single_token_bytes(token_id)
        except KeyError:  # a padding row of the embedding: HF's decode skips these too
            return ""
        return str(self._utf8.decode(raw))

    def flush(self) -> str:
        """Any incomplete character at the end, as U+FFFD."""
        return str(self._utf8.decode(b"", final=True))


class Tokenizer:
    """A model's tokenizer: ``encode``, ``decode``, ``stream_decoder``, ``chat_prompt``.

    encoding:      the tiktoken Encoding (ranks = HF ids)
    bos_id:        <|begin_of_text|> (or tokenizer_config's bos_token); None if there is none
    eos_ids:       ids that end generation: tokenizer_config's eos_token and the LLaMA-3 end tokens
    special_ids:   {added token string: id}
    chat_template: Jinja source from tokenizer_config.json, else the 2B4T template
    """

    def __init__(self, encoding: tiktoken.Encoding, bos_token: str | None,
                 eos_tokens: Sequence[str], chat_template: str, origin: str) -> None:
        self.encoding = encoding
        self.special_ids: dict[str, int] = dict(encoding._special_tokens)
        self.bos_token = bos_token
        self.bos_id = self.special_ids.get(bos_token) if bos_token is not None else None
        self.eos_ids = tuple(dict.fromkeys(self.special_ids[t] for t in eos_tokens
                                           if t in self.special_ids))
        self.chat_template = chat_template
        self.origin = origin  # where the template came from, named in errors

    @property
    def vocab_size(self) -> int:
        """One more than the largest id (ordinary and special tokens)."""
        return int(self.encoding.max_token_value) + 1

    def encode(self, text: str, bos: bool = False) -> list[int]:
        """Token ids of ``text``; special-token strings in it become their ids, as in HF.

        bos: prepend ``bos_id`` (as HF's post-processor does for LLaMA-3 text)
        """
        ids = self.encoding.encode(text, allowed_special="all")
        if bos and self.bos_id is not None:
            ids.insert(0, self.bos_id)
        return ids

    def check_ids(self, ids: Iterable[int]) -> list[int]:
        """``ids`` as a list; ArgumentError for an id the tokenizer does not have."""
        checked = list(ids)
        for token_id in checked:
            if not isinstance(token_id, int) or token_id < 0 or token_id > self.encoding.max_token_value:
                raise ArgumentError(f"token id {token_id!r} is outside the tokenizer's "
                                    f"vocabulary [0, {self.vocab_size})")
        return checked

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; special tokens as their strings; invalid UTF-8 as U+FFFD (as HF)."""
        checked = self.check_ids(ids)
        try:
            return self.encoding.decode(checked, errors="replace")
        except KeyError as exc:  # an unused id inside the range
            raise ArgumentError(f"token id {exc.args[0]} is not in the tokenizer's "
                                "vocabulary") from None

    def stream_decoder(self, skip_special: bool = False) -> StreamDecoder:
        """A decoder for one stream of ids: ``add(id) -> str`` then ``flush() -> str``."""
        return StreamDecoder(self.encoding, skip_special)

    def chat_text(self, messages: Sequence[Mapping[str, Any]],
                  add_generation_prompt: bool = True) -> str:
        """The chat template applied to ``messages`` ([{"role": ..., "content": ...}, ...])."""
        variables = {"bos_token": self.bos_token or ""}
        return render_chat(self.chat_template, messages, add_generation_prompt, variables,
                           self.origin)

    def chat_prompt(self, messages: Sequence[Mapping[str, Any]],
                    add_generation_prompt: bool = True) -> list[int]:
        """Token ids of the chat template applied to ``messages``, as HF apply_chat_template."""
        return self.encode(self.chat_text(messages, add_generation_prompt))


def load(model_dir: str | Path) -> Tokenizer:
    """Read ``model_dir``/tokenizer.json (and tokenizer_config.json if present) into a Tokenizer.

    Bad files raise TokenizerError with one line naming the file.
    """
    model_dir = Path(model_dir)
    path = model_dir / TOKENIZER_FILE
    spec = _read_json(path)
    if not isinstance(spec, dict):
        raise TokenizerError(f"{path}: top level is {type(spec).__name__}, expected an object")
    if spec.get("normalizer") is not None:
        raise TokenizerError(f"{path}: normalizer is {spec['normalizer'].get('type')!r}, "
                             "expected null (as in LLaMA-3)")
    pat_str = _split_pattern(spec.get("pre_tokenizer"), str(path))
    ranks = _mergeable_ranks(spec.get("model"), str(path))
    specials = _special_tokens(spec.get("added_tokens", []), ranks, str(path))
    config_path = model_dir / TOKENIZER_CONFIG_FILE
    config = _read_json(config_path) if config_path.exists() else {}
    if not isinstance(config, dict):
        raise TokenizerError(f"{config_path}: top level is {type(config).__name__}, "
                             "expected an object")
    bos_token = _token_name(config.get("bos_token", "<|begin_of_text|>"))
    if bos_token is not None and bos_token not in specials:
        raise TokenizerError(f"{config_path}: bos_token {bos_token!r} is not an added token "
                             "of tokenizer.json")
    eos_token = _token_name(config.get("eos_token"))
    template = config.get("chat_template") or BITNET_2B4T_TEMPLATE
    template_origin = str(config_path) if config.get("chat_template") else "the 2B4T template"
    if not isinstance(template, str):
        raise TokenizerError(f"{config_path}: chat_template is {type(template).__name__}, "
                             "expected a string (named templates are not supported)")
    try:
        encoding = tiktoken.Encoding(model_dir.name or "tokenizer", pat_str=pat_str,
                                     mergeable_ranks=ranks, special_tokens=specials)
    except ValueError as exc:  # the Rust side rejects the regex
        raise TokenizerError(f"{path}: Split regex not accepted by tiktoken: {exc}") from None
    eos_tokens = ([eos_token] if eos_token else []) + list(END_TOKENS)
    return Tokenizer(encoding, bos_token, eos_tokens, template, template_origin)
