"""Which Split regexes are trusted, and encoding text of any length with one, within budgets.

The pre-tokenizer regex of tokenizer.json runs in tiktoken's Rust engine (fancy-regex, a
backtracking engine), where it cannot be interrupted with Ctrl-C. Two things go wrong there:

- a crafted pattern backtracks for tens of milliseconds per character of input, or hits the
  engine's backtrack limit. So a regex earns trust only by being, character for character, one of
  the patterns of published tokenizer.json files (:data:`PUBLISHED_PATTERNS`); any other is refused
  at load unless the environment variable ``MINIBITNET_TRUST_TOKENIZER_REGEX=1`` says the user
  trusts the file. Such a pattern then runs as tiktoken runs it, on the whole text, and an engine
  failure becomes a TokenizerError naming the file.
- even a published pattern fails on long runs: LLaMA-3's ``\\s+(?!\\S)`` overflows the engine's
  stack on ~1M spaces, and tiktoken's BPE is quadratic in the length of one piece.

So :func:`encode_bounded` encodes a text longer than :data:`MAX_ENGINE_CHARS` (published patterns
only) in three steps, and no call into tiktoken ever sees more than that many characters:

1. special tokens are cut out first, leftmost-longest, as HF's added vocabulary does;
2. the ordinary text between them is cut at *safe cuts* (below) into chunks of at most
   MAX_ENGINE_CHARS characters, each encoded by tiktoken as the whole text would be;
3. a longer stretch with no safe cut (1M spaces, a 100k-letter word) is split into pieces by the
   same regex in Python's ``regex`` module (linear on these patterns, no stack limit); a piece is
   encoded by tiktoken if at most :data:`MAX_ENGINE_PIECE_BYTES` long, else by
   :func:`byte_pair_encode`, tiktoken's merge order in O(n log n).

Why a safe cut changes nothing. A safe cut is a position p with an ASCII letter or digit before
and an ASCII space, tab, CR or LF after, or ASCII punctuation before and a space or tab after.
(a) No piece of a published pattern holds both text[p-1] and text[p]: its letter, digit and
contraction branches end in a letter, digit or mark and never take whitespace; its punctuation
branch takes only CR/LF after the punctuation; its whitespace branches start at whitespace. The
pieces cover the text (the catch-all branch of :func:`isolated_pattern` never fires for these
patterns, which match every character), so p is a piece boundary of the whole text.
(b) The patterns have no lookbehind, ``^``, ``\\b`` or ``\\G``, so the pieces of text[p:] are the
pieces of the whole text from p.
(c) The pieces of text[:p] are those of the whole text before p: a branch tried at s < p sees a
different text only at p; a path that would consume text[p] would give a piece across p, which
(a) excludes for the chosen branch and which, for an earlier branch, would have been chosen; the
only other look at text[p] is ``(?!\\S)``, true for whitespace at p and at the end of text alike,
and ``\\s+(?!\\S)`` cannot reach p as text[p-1] is not whitespace.
BPE runs per piece, so equal pieces give equal ids. ASCII only, so that every engine agrees on
the classes of the two characters.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from typing import Final

import regex  # a dependency of tiktoken: the same regex syntax, with no stack limit
import tiktoken

from ..errors import TokenizerError, one_line
from .heap_bpe import byte_pair_encode
from .tokenizer_json import LLAMA3_PATTERN

TRUST_REGEX_ENV: Final = "MINIBITNET_TRUST_TOKENIZER_REGEX"

# The Split regexes of published tokenizer.json files, exactly as the files write them.
PUBLISHED_PATTERNS: Final[dict[str, str]] = {
    # LLaMA-3, 3.1, 3.2, BitNet b1.58 2B4T; also GPT-4's cl100k as converted to tokenizer.json
    "LLaMA-3": LLAMA3_PATTERN,
    # Qwen2, Qwen2.5: LLaMA-3's with single digits
    "Qwen2": (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
              r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
    # GPT-4o's o200k as converted to tokenizer.json (tiktoken_ext/openai_public.py)
    "o200k": "|".join([
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"\p{N}{1,3}", r" ?[^\s\p{L}\p{N}]+[\r\n/]*", r"\s*[\r\n]+", r"\s+(?!\S)", r"\s+"]),
    # GPT-2's original pattern, as a Split regex
    "GPT-2": r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
}

# Budgets: what one call into tiktoken's Rust core may see. 1024 characters keep the regex far
# from its stack limit (LLaMA-3's overflows near 10**6) and tiktoken's quadratic BPE of a piece
# (at most 4096 bytes) at a few milliseconds.
MAX_ENGINE_CHARS: Final = 1024
MAX_ENGINE_PIECE_BYTES: Final = 1024

# Position p of a safe cut (module docstring): a zero-width match with text[p-1], text[p] as said.
_SAFE_CUT: Final = re.compile(r"(?<=[A-Za-z0-9])(?=[ \t\r\n])|(?<=[!-/:-@\[-`{-~])(?=[ \t])")


def isolated_pattern(pattern: str) -> str:
    """tiktoken's ``pat_str`` for HF's Split(pattern, Isolated).

    subtle: HF's Isolated keeps the text *between* matches as pieces too; tiktoken drops it. The
    second branch matches such a run (every position where the pattern does not match), so
    patterns that do not cover every character (LLaMA-3's does) still lose nothing.
    """
    return f"(?:{pattern})|(?:(?!(?:{pattern}))[\\s\\S])+"


# tiktoken's pat_str of each: the Split regex as tokenizer.json gives it, and as Isolated wraps it
PUBLISHED_PAT_STRS: Final = frozenset([*PUBLISHED_PATTERNS.values(),
                                       *map(isolated_pattern, PUBLISHED_PATTERNS.values())])


def check_pattern_trusted(pattern: str, where: str) -> None:
    """TokenizerError unless ``pattern`` is published or the user opted in (module docstring)."""
    if pattern in PUBLISHED_PATTERNS.values() or os.environ.get(TRUST_REGEX_ENV) == "1":
        return
    raise TokenizerError(
        f"{where}: the Split regex {one_line(repr(pattern)[:60])} is not one of the published "
        f"patterns ({', '.join(PUBLISHED_PATTERNS)}); a regex from a file can take minutes per "
        f"text and cannot be interrupted, so set {TRUST_REGEX_ENV}=1 to use it anyway")


@lru_cache(maxsize=8)
def _python_regex(pat_str: str) -> regex.Pattern[str]:
    return regex.compile(pat_str)


class _SpecialFinder:
    """Leftmost-longest occurrences of the special tokens, as HF's added vocabulary finds them.

    A position is a candidate only if it holds the first character of some special token; there
    each distinct token length is looked up in a set, longest first: O(text x lengths) at worst,
    with no regex compiled over the (up to MAX_ADDED_TOKENS) tokens.
    """

    def __init__(self, specials: frozenset[str]) -> None:
        self.specials = specials
        self.lengths = sorted({len(token) for token in specials}, reverse=True)
        firsts = "".join(sorted({re.escape(token[0]) for token in specials}))
        self.candidate = re.compile(f"[{firsts}]") if firsts else None

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        """(start, stop) of each special token in ``text``, left to right, not overlapping."""
        position = 0
        while self.candidate is not None:
            found = self.candidate.search(text, position)
            if found is None:
                return
            position = found.start()
            stop = next((position + length for length in self.lengths
                         if text[position:position + length] in self.specials), None)
            if stop is None:
                position += 1
            else:
                yield position, stop
                position = stop


@lru_cache(maxsize=8)
def _special_finder(specials: frozenset[str]) -> _SpecialFinder:
    return _SpecialFinder(specials)


@lru_cache(maxsize=1)
def _unassigned() -> re.Pattern[str]:
    """Characters unassigned in Python's Unicode database (Unicode 14 on Python 3.11).

    subtle: the regex engines take their character classes from different Unicode versions
    (``regex`` follows the newest; U+33291, a CJK ideograph of Unicode 15, is a letter to it and
    not to tiktoken's engine). On characters assigned by Unicode 14 they agree.
    """
    ranges, start = [], None
    for code in range(0x110000 + 1):
        unassigned = code <= 0x10FFFF and unicodedata.category(chr(code)) == "Cn"
        if unassigned and start is None:
            start = code
        elif not unassigned and start is not None:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(code - 1))}")
            start = None
    return re.compile(f"[{''.join(ranges)}]")


def _encode_stretch(encoding: tiktoken.Encoding, stretch: str) -> list[int]:
    """A text with no safe cut (step 3): pieces by Python's regex, each piece within budget.

    A stretch holding a character that Unicode 14 leaves unassigned goes to tiktoken whole
    (:func:`_unassigned`): exact, and an engine failure on it is a TokenizerError.
    """
    if _unassigned().search(stretch):
        return encoding.encode(stretch, allowed_special=set(), disallowed_special=())
    ids: list[int] = []
    ranks = encoding._mergeable_ranks
    for match in _python_regex(encoding._pat_str).finditer(stretch):
        piece = match.group().encode("utf-8")
        if len(piece) <= MAX_ENGINE_PIECE_BYTES:
            ids += encoding._encode_single_piece(piece)
        else:
            ids += byte_pair_encode(piece, ranks)
    return ids


def _encode_ordinary(encoding: tiktoken.Encoding, text: str) -> list[int]:
    """Text without special tokens, in chunks that end at safe cuts (step 2)."""
    ids: list[int] = []
    start = 0
    while start < len(text):
        if len(text) - start <= MAX_ENGINE_CHARS:
            cut = len(text)
        else:
            cuts = list(_SAFE_CUT.finditer(text, start + 1, start + MAX_ENGINE_CHARS + 1))
            if not cuts:  # no cut within budget: the stretch up to the next one, piece by piece
                following = _SAFE_CUT.search(text, start + MAX_ENGINE_CHARS + 1)
                stop = following.start() if following else len(text)
                ids += _encode_stretch(encoding, text[start:stop])
                start = stop
                continue
            cut = cuts[-1].start()
        ids += encoding.encode(text[start:cut], allowed_special=set(), disallowed_special=())
        start = cut
    return ids


def encode_bounded(encoding: tiktoken.Encoding, text: str, where: str) -> list[int]:
    """``encoding.encode(text, allowed_special="all")``, for any length of text.

    encoding: with a pattern of :data:`PUBLISHED_PAT_STRS` (else the text goes to tiktoken whole)
    where:    the tokenizer's file, named if the regex engine fails
    returns:  list of int ids, equal to tiktoken's (and HF's) for the whole text
    """
    try:
        if len(text) <= MAX_ENGINE_CHARS or encoding._pat_str not in PUBLISHED_PAT_STRS:
            return encoding.encode(text, allowed_special="all")
        # as tiktoken does: a lone surrogate cannot be UTF-8, it becomes U+FFFD
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        finder = _special_finder(frozenset(encoding._special_tokens))
        ids: list[int] = []
        start = 0
        for special_start, special_stop in finder.spans(text):
            ids += _encode_ordinary(encoding, text[start:special_start])
            ids.append(encoding._special_tokens[text[special_start:special_stop]])
            start = special_stop
        return ids + _encode_ordinary(encoding, text[start:])
    except ValueError as exc:  # tiktoken's regex engine gave up (a trusted-by-the-user pattern)
        raise TokenizerError(f"{where}: the Split regex failed on this text "
                             f"({one_line(str(exc))[:120]})") from None


def encode_ordinary_bounded(encoding: tiktoken.Encoding, text: str, where: str) -> list[int]:
    """``encoding.encode_ordinary(text)`` (special-token strings stay text), for any length.

    As :func:`encode_bounded`: returns list of int ids equal to tiktoken's for the whole text.
    """
    try:
        if len(text) <= MAX_ENGINE_CHARS or encoding._pat_str not in PUBLISHED_PAT_STRS:
            return encoding.encode(text, allowed_special=set(), disallowed_special=())
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return _encode_ordinary(encoding, text)
    except ValueError as exc:
        raise TokenizerError(f"{where}: the Split regex failed on this text "
                             f"({one_line(str(exc))[:120]})") from None
