"""A LLaMA-3-style tokenizer.json <-> the ``tokenizer.ggml.*`` metadata of a GGUF file.

bitnet.cpp's GGUF carries the tokenizer in its metadata (llama.cpp's ``gpt2`` BPE vocabulary)::

    tokenizer.ggml.model         STRING        "gpt2" (byte-level BPE)
    tokenizer.ggml.pre           STRING        "llama-bpe" (the LLaMA-3 pre-tokenizer regex)
    tokenizer.ggml.tokens        STRING array  token i is the byte-level string of id i
    tokenizer.ggml.token_type    INT32 array   1 normal, 3 control (special), 4 user-defined
    tokenizer.ggml.merges        STRING array  "left right", in merge order
    tokenizer.chat_template      STRING        optional
    tokenizer.ggml.add_bos_token BOOL          optional, read only; absent: true (as llama.cpp)
    (bos / eos ids are written with the model metadata, gguf_config.py)

Only the LLaMA-3 form that :mod:`minibitnet.tokenizer` reads is converted, in both directions:
the Split regex of ``tokenizer_json.LLAMA3_PATTERN`` ("llama-bpe"), byte-level tokens, and
special tokens taken from ``added_tokens``. The GGUF list is dense (ids 0 .. N-1); a
tokenizer.json with a gap in its ids is refused. On read, one CheckpointError names the key
of a vocabulary with no normal token, a token type outside 0 .. 6, a token listed twice, a
token_type array of another length, a merge that is not "a b", or a BOS or EOS id outside the
vocabulary. Key names and token types as gguf-py's ``constants.py`` (``Keys.Tokenizer``,
``TokenType``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import CheckpointError, TokenizerError
from ..formats.gguf.container import ARRAY, INT32, STRING, GGUFFile
from .synthetic import LLAMA3_PATTERN, tokenizer_json

NORMAL, CONTROL, USER_DEFINED = 1, 3, 4
MAX_TOKEN_TYPE = 6  # gguf-py's TokenType: 0 undefined ... 6 byte
GGML_MODEL, GGML_PRE = "gpt2", "llama-bpe"


def _merge_text(merge: Any, where: str) -> str:
    """A tokenizer.json merge ("a b" or ["a", "b"]) as GGUF writes it: "a b"."""
    if isinstance(merge, str) and merge.count(" ") == 1:
        return merge
    if isinstance(merge, list) and len(merge) == 2 and all(isinstance(p, str) for p in merge) \
            and " " not in merge[0] + merge[1]:
        return f"{merge[0]} {merge[1]}"
    raise TokenizerError(f"{where}: merge {merge!r} is not two space-free tokens")


def tokenizer_metadata(spec: dict[str, Any], config: dict[str, Any], where: str
                       ) -> dict[str, tuple[int, Any]]:
    """tokenizer.json (and tokenizer_config.json) -> the tokenizer.ggml.* metadata.

    spec:   the parsed tokenizer.json, already accepted by :func:`minibitnet.tokenizer.load`
    config: the parsed tokenizer_config.json ({} when there is none)
    where:  the file to name in errors
    """
    steps = spec["pre_tokenizer"]["pretokenizers"]
    if steps[0]["pattern"]["Regex"] != LLAMA3_PATTERN:
        raise TokenizerError(f"{where}: the Split regex is not LLaMA-3's, so no GGUF "
                             "pre-tokenizer name fits it (expected 'llama-bpe')")
    by_id: dict[int, tuple[str, int]] = {}
    for token, token_id in spec["model"]["vocab"].items():
        by_id[token_id] = (token, NORMAL)
    for entry in spec.get("added_tokens", []):
        by_id[entry["id"]] = (entry["content"], CONTROL if entry.get("special") else USER_DEFINED)
    count = max(by_id) + 1
    if len(by_id) != count:
        missing = next(i for i in range(count) if i not in by_id)
        raise TokenizerError(f"{where}: no token has id {missing}, expected ids 0 .. "
                             f"{count - 1} without gaps (GGUF lists tokens by id)")
    metadata: dict[str, tuple[int, Any]] = {
        "tokenizer.ggml.model": (STRING, GGML_MODEL),
        "tokenizer.ggml.pre": (STRING, GGML_PRE),
        "tokenizer.ggml.tokens": (ARRAY, (STRING, [by_id[i][0] for i in range(count)])),
        "tokenizer.ggml.token_type": (ARRAY, (INT32, [by_id[i][1] for i in range(count)])),
        "tokenizer.ggml.merges": (ARRAY, (STRING, [_merge_text(m, where)
                                                   for m in spec["model"]["merges"]])),
    }
    if isinstance(config.get("chat_template"), str):
        metadata["tokenizer.chat_template"] = (STRING, config["chat_template"])
    return metadata


def _strings(file: GGUFFile, key: str) -> list[str]:
    value = file.metadata.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CheckpointError(f"{file.path}: metadata '{key}' is missing or not a string array")
    return value


def _check_vocabulary(file: GGUFFile, tokens: list[str], types: np.ndarray) -> None:
    """Token types llama.cpp defines, at least one normal token (the BPE vocabulary; the rest
    are added tokens), and no token twice (an id would be lost). Linear in the vocabulary."""
    unknown = np.flatnonzero((types < 0) | (types > MAX_TOKEN_TYPE))
    if unknown.size:
        at = int(unknown[0])
        raise CheckpointError(f"{file.path}: metadata 'tokenizer.ggml.token_type' gives token "
                              f"{at} type {int(types[at])}, expected 0 to {MAX_TOKEN_TYPE} "
                              "(1 normal, 3 control, 4 user-defined)")
    if not np.any(types == NORMAL):
        raise CheckpointError(f"{file.path}: metadata 'tokenizer.ggml.token_type' has no normal "
                              f"token (type {NORMAL}) among {len(tokens)}, expected the byte-level "
                              "BPE vocabulary to be normal tokens")
    if len(set(tokens)) != len(tokens):
        seen: dict[str, int] = {}
        for index, token in enumerate(tokens):
            if token in seen:
                raise CheckpointError(f"{file.path}: metadata 'tokenizer.ggml.tokens' holds "
                                      f"{token[:40]!r} at ids {seen[token]} and {index}, "
                                      "expected every token once")
            seen[token] = index


def tokenizer_files(file: GGUFFile) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The tokenizer.ggml.* metadata -> (tokenizer.json, tokenizer_config.json); None when the
    file carries no tokenizer."""
    if "tokenizer.ggml.tokens" not in file.metadata:
        return None
    model, pre = file.metadata.get("tokenizer.ggml.model"), file.metadata.get("tokenizer.ggml.pre")
    if not isinstance(model, str) or not isinstance(pre, str) or (model, pre) != (GGML_MODEL,
                                                                                  GGML_PRE):
        shown = [repr(v)[:40] for v in (model, pre)]
        raise CheckpointError(f"{file.path}: tokenizer is {shown[0]} with pre-tokenizer "
                              f"{shown[1]}, expected '{GGML_MODEL}' with '{GGML_PRE}' "
                              "(LLaMA-3 BPE)")
    tokens = _strings(file, "tokenizer.ggml.tokens")
    types = file.metadata.get("tokenizer.ggml.token_type")
    if not isinstance(types, np.ndarray) or types.dtype.kind not in "iu" \
            or len(types) != len(tokens):
        found = f"{len(types)} entries" if isinstance(types, np.ndarray) else repr(types)[:40]
        raise CheckpointError(f"{file.path}: metadata 'tokenizer.ggml.token_type' is {found}, "
                              f"expected {len(tokens)} integers (one per token)")
    _check_vocabulary(file, tokens, types)
    merges = []
    for text in _strings(file, "tokenizer.ggml.merges"):
        left, space, right = text.partition(" ")
        if not space or not left or not right or " " in right:
            raise CheckpointError(f"{file.path}: merge {text!r} is not two tokens joined by "
                                  "one space")
        merges.append([left, right])
    vocab = {token: i for i, (token, kind) in enumerate(zip(tokens, types)) if kind == NORMAL}
    spec = tokenizer_json(vocab, merges)
    spec["added_tokens"] = [
        {"id": i, "content": token, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": int(kind) == CONTROL}
        for i, (token, kind) in enumerate(zip(tokens, types)) if int(kind) != NORMAL]
    names: dict[str, Any] = {}
    for field in ("bos", "eos"):
        key = f"tokenizer.ggml.{field}_token_id"
        token_id = file.metadata.get(key)
        if token_id is None:
            continue
        # an id outside the vocabulary is refused, not skipped: a prompt would silently lose
        # its BOS, or generation its stop token
        if isinstance(token_id, bool) or not isinstance(token_id, int) \
                or not 0 <= token_id < len(tokens):
            raise CheckpointError(f"{file.path}: metadata '{key}' is {repr(token_id)[:40]}, "
                                  f"expected a token id from 0 to {len(tokens) - 1}")
        names[f"{field}_token"] = tokens[token_id]
    # subtle: the post-processor of tokenizer_json names LLaMA-3's <|begin_of_text|> as BOS; it
    # is dropped here (minibitnet reads BOS from tokenizer_config.json, not from it) so that a
    # vocabulary with another BOS does not describe a token it lacks
    spec.pop("post_processor", None)
    # ... so whether BOS goes before a text is said by add_bos_token: llama.cpp puts it before
    # LLaMA-3 ("llama-bpe") text unless the file says otherwise
    add_bos = file.metadata.get("tokenizer.ggml.add_bos_token", True)
    if not isinstance(add_bos, bool):
        raise CheckpointError(f"{file.path}: metadata 'tokenizer.ggml.add_bos_token' is "
                              f"{repr(add_bos)[:40]}, expected a bool")
    config = {**names, "add_bos_token": add_bos, "tokenizer_class": "PreTrainedTokenizerFast"}
    template = file.metadata.get("tokenizer.chat_template")
    if isinstance(template, str):
        config["chat_template"] = template
    return spec, config
