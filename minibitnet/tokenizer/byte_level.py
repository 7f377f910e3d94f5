"""The GPT-2 byte-level alphabet: each of the 256 byte values as one printable character.

Byte-level BPE vocabularies (GPT-2, LLaMA-3, BitNet b1.58 2B4T) store their tokens in
tokenizer.json as strings over this alphabet, so that a token that is not valid UTF-8 on its own
(half of "é", say) can still be a JSON string. Printable Latin-1 bytes stand for themselves; the
other 68 (controls, space, NBSP, soft hyphen) move to U+0100 and up, in byte order::

    b"!" -> "!"     b"a" -> "a"     b" " (0x20) -> "Ġ" (U+0120)     b"\\n" (0x0A) -> "Ċ" (U+010A)

so the LLaMA-3 token "Ġhello" is the bytes b" hello". Agrees with ``bytes_to_unicode`` in
transformers' models/gpt2/tokenization_gpt2.py and the ByteLevel pre-tokenizer of ``tokenizers``.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Final


def _byte_to_char() -> list[str]:
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars = [""] * 256
    for b in printable:
        chars[b] = chr(b)
    shifted = 0
    for b in range(256):
        if not chars[b]:
            chars[b] = chr(256 + shifted)
            shifted += 1
    return chars


BYTE_TO_CHAR: Final = _byte_to_char()  # BYTE_TO_CHAR[0x20] == "Ġ"

# str.translate table: alphabet character -> the Latin-1 character of its byte, so that
# ``s.translate(_TO_LATIN1).encode("latin-1")`` gives the raw bytes. subtle: the 68 Latin-1
# characters that are *not* in the alphabet (e.g. a raw space) would otherwise pass through
# translate and encode as themselves; mapping them to None deletes them, and the length check in
# token_bytes catches that.
_TO_LATIN1: Final[dict[int, str | None]] = {ord(c): chr(b) for b, c in enumerate(BYTE_TO_CHAR)}
for _code in range(256):
    _TO_LATIN1.setdefault(_code, None)


def token_bytes(token: str) -> bytes | None:
    """The raw bytes of a byte-level token string; None if it uses characters outside the alphabet."""
    latin1 = token.translate(_TO_LATIN1)
    if len(latin1) != len(token):
        return None
    try:
        return latin1.encode("latin-1")
    except UnicodeEncodeError:  # a character above U+00FF that is not in the alphabet
        return None


def tokens_blob(tokens: list[str]) -> bytes | None:
    """The raw bytes of all ``tokens``, end to end; None if any is not byte-level."""
    joined = "".join(tokens)
    latin1 = joined.translate(_TO_LATIN1)
    if len(latin1) != len(joined):
        return None
    try:
        return latin1.encode("latin-1")
    except UnicodeEncodeError:
        return None


def tokens_bytes(tokens: list[str]) -> list[bytes] | None:
    """:func:`token_bytes` of every token, with one translate call; None if any is not byte-level."""
    blob = tokens_blob(tokens)
    if blob is None:
        return None
    # one character is one byte, so each token's bytes sit where its characters sat
    ends = list(accumulate(map(len, tokens)))
    return [blob[end - len(token):end] for token, end in zip(tokens, ends)]


def token_string(raw: bytes) -> str:
    """The byte-level string of raw bytes (the inverse of :func:`token_bytes`)."""
    return "".join(BYTE_TO_CHAR[b] for b in raw)
