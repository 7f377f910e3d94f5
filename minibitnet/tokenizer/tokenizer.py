"""tokenizer.json -> a tiktoken ``Encoding``, exact to Hugging Face ``tokenizers``; chat prompts.

BitNet b1.58 2B4T ships the LLaMA-3 tokenizer as a Hugging Face tokenizer.json: 128,000
byte-level BPE tokens (ids 0..127999) and 256 special tokens (128000 ``<|begin_of_text|>``,
128001 ``<|end_of_text|>``, 128009 ``<|eot_id|>``, ...). LLaMA-3's tokenizer *is* a tiktoken
encoding, converted: the id of a token is its tiktoken rank. :func:`load` converts back
(:mod:`minibitnet.tokenizer.bpe_file` reads and checks the file):

- ranks: each vocabulary string through the byte-level alphabet (:mod:`minibitnet.tokenizer.byte_level`)
  to its raw bytes, rank = id;
- ``pat_str``: the regex of the Split pre-tokenizer;
- special tokens: ``added_tokens``, which HF and tiktoken both cut out of the text first.

tokenizer_config.json, when present, gives ``bos_token``, ``eos_token``, ``chat_template`` and
``add_bos_token``. Whether BOS goes before a text (as HF's ``tokenizer(text)`` puts it) is read
from tokenizer.json's post-processor: LLaMA-3's is a TemplateProcessing whose ``single`` is
``<|begin_of_text|> $A``; an ``add_bos_token`` in tokenizer_config.json overrides it, as in
transformers, and in a GGUF file ``tokenizer.ggml.add_bos_token`` does (llama.cpp's default for
LLaMA-3 text is yes). :meth:`Tokenizer.chat_prompt` follows it, so a prompt from 2B4T's template,
which writes no BOS itself, starts with BOS as the model card's prompt does.
A model folder with no tokenizer.json whose model is a GGUF file (a bitnet.cpp download holds
only ggml-model-i2_s.gguf) gives the tokenizer its metadata carries, rebuilt as these two files
by :mod:`minibitnet.tokenizer.gguf`.

Left out: normalizers, byte fallback, ``unk_token``, word-continuation prefixes (SentencePiece
and WordPiece-style vocabularies), added tokens with lstrip/rstrip/single_word.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tiktoken

from .bpe_file import mergeable_ranks, read_json, special_tokens, split_pattern
from .chat_template import BITNET_2B4T_TEMPLATE, render_chat
from .pretokenize import encode_bounded
from ..errors import ArgumentError, TokenizerError, one_line
from ..formats.detect import find_gguf
from ..formats.gguf.container import GGUFFile
from .gguf import tokenizer_files
from ..formats.locate import resolve_model

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"

# Names the end of a text or of a turn in LLaMA-3 vocabularies; generation stops at any present.
END_TOKENS = ("<|end_of_text|>", "<|eot_id|>", "<|eom_id|>")


def _token_name(value: Any) -> str | None:
    """A tokenizer_config special token: a string, or an AddedToken dict with 'content'."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _leading_special_tokens(processor: Any, path: str) -> list[str]:
    """The special tokens a tokenizer.json post-processor puts before a single text, as HF's
    ``tokenizer(text)`` does: LLaMA-3's gives ["<|begin_of_text|>"]; none gives [].

    Read: null; ByteLevel (it changes offsets, not ids); TemplateProcessing, whose ``single``
    starts with a SpecialToken or with the text ("Sequence"); a Sequence of these processors.
    """
    if processor is None:
        return []
    if not isinstance(processor, dict):
        raise TokenizerError(f"{path}: post_processor is {one_line(repr(processor)[:40])}, "
                             "expected an object with a 'type'")
    kind = processor.get("type")
    if kind == "ByteLevel":
        return []
    if kind == "Sequence":
        steps = processor.get("processors")
        if not isinstance(steps, list):
            raise TokenizerError(f"{path}: post_processor Sequence has 'processors' "
                                 f"{one_line(repr(steps)[:40])}, expected a list")
        return [token for step in steps for token in _leading_special_tokens(step, path)]
    if kind == "TemplateProcessing":
        single = processor.get("single")
        first = single[0] if isinstance(single, list) and single else None
        if isinstance(first, dict) and "Sequence" in first:
            return []
        piece = first.get("SpecialToken") if isinstance(first, dict) else None
        if isinstance(piece, dict) and isinstance(piece.get("id"), str):
            return [piece["id"]]
        raise TokenizerError(f"{path}: post_processor TemplateProcessing 'single' starts with "
                             f"{one_line(repr(first)[:60])}, expected a SpecialToken or the text")
    raise TokenizerError(f"{path}: post_processor is {one_line(repr(kind)[:40])}, expected "
                         "TemplateProcessing, ByteLevel or a Sequence of them (as in LLaMA-3)")


def _adds_bos(spec: dict[str, Any], config: dict[str, Any], bos_token: str | None, path: str,
              config_path: str) -> bool:
    """Whether the tokenizer puts ``bos_token`` before a text: tokenizer_config's
    ``add_bos_token`` when it has one (transformers then rebuilds the post-processor from it),
    else what tokenizer.json's post-processor puts there.

    path, config_path: the two files, named in errors
    """
    add_bos_token = config.get("add_bos_token")
    if add_bos_token is not None:
        if not isinstance(add_bos_token, bool):
            raise TokenizerError(f"{config_path}: add_bos_token is "
                                 f"{one_line(repr(add_bos_token)[:40])}, expected true or false")
        return add_bos_token and bos_token is not None
    leading = _leading_special_tokens(spec.get("post_processor"), path)
    if leading and leading != [bos_token]:
        raise TokenizerError(f"{path}: post_processor puts {one_line(repr(leading)[:80])} before "
                             f"each text, expected the bos_token {bos_token!r} alone")
    return bool(leading)


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
    add_bos:       whether the tokenizer puts bos_id before a text (HF's ``tokenizer(text)``);
                   chat_prompt follows it
    eos_ids:       ids that end generation: tokenizer_config's eos_token and the LLaMA-3 end tokens
    special_ids:   {added token string: id}
    chat_template: Jinja source from tokenizer_config.json, else the 2B4T template
    source:        the file the vocabulary came from (tokenizer.json or a .gguf), for errors
    """

    def __init__(self, encoding: tiktoken.Encoding, bos_token: str | None,
                 eos_tokens: Sequence[str], chat_template: str, origin: str,
                 template_variables: Mapping[str, str] | None = None,
                 source: str = TOKENIZER_FILE, add_bos: bool = False) -> None:
        self.encoding = encoding
        self._undecodable: dict[int, np.ndarray] = {}  # vocab_size -> undecodable_ids
        self.source = source  # the file the vocabulary was read from, named in errors
        self.special_ids: dict[str, int] = dict(encoding._special_tokens)
        self.bos_token = bos_token
        self.bos_id = self.special_ids.get(bos_token) if bos_token is not None else None
        self.add_bos = add_bos and self.bos_id is not None
        self.eos_ids = tuple(dict.fromkeys(self.special_ids[t] for t in eos_tokens
                                           if t in self.special_ids))
        self.chat_template = chat_template
        self.origin = origin  # where the template came from, named in errors
        # what transformers passes a template besides the messages: the named special tokens
        self.template_variables = {"bos_token": bos_token or "", **(template_variables or {})}

    @property
    def vocab_size(self) -> int:
        """One more than the largest id (ordinary and special tokens)."""
        return int(self.encoding.max_token_value) + 1

    def undecodable_ids(self, vocab_size: int) -> np.ndarray:
        """(vocab_size,) bool: True for each id of a model's vocabulary this tokenizer has no
        token for; pass it as ``suppressed`` to ``Model.generate`` / ``Model.stream``.

        Several published models pad config.json's vocab_size past the tokenizer's last id (to
        a multiple of 64, say), and a vocabulary may leave ids unused inside its range. Such an
        id has an embedding row but no text: sampled, it could not be decoded. ``chat`` and
        ``generate`` never sample one. The array is computed once per vocab_size (a loop over
        the vocabulary) and read-only.
        """
        cached = self._undecodable.get(vocab_size)
        if cached is not None:
            return cached
        undecodable = np.ones(vocab_size, dtype=bool)  # (V,)
        for token_id in range(min(self.vocab_size, vocab_size)):
            try:
                self.encoding.decode_single_token_bytes(token_id)
            except KeyError:  # an unused id inside the tokenizer's range
                continue
            undecodable[token_id] = False
        undecodable.flags.writeable = False  # shared by every caller
        self._undecodable[vocab_size] = undecodable
        return undecodable

    def encode(self, text: str, bos: bool = False) -> list[int]:
        """Token ids of ``text``; special-token strings in it become their ids, as in HF.

        Any length: a long text is encoded in bounded chunks with the same result
        (:mod:`minibitnet.tokenizer.pretokenize`).

        bos: prepend ``bos_id`` (as HF's post-processor does for LLaMA-3 text)
        """
        ids = encode_bounded(self.encoding, text, self.source)
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
        return render_chat(self.chat_template, messages, add_generation_prompt,
                           self.template_variables, self.origin)

    def chat_prompt(self, messages: Sequence[Mapping[str, Any]],
                    add_generation_prompt: bool = True) -> list[int]:
        """Token ids of the chat template applied to ``messages``, starting with BOS exactly once.

        The ids are those of the model card's ``tokenizer(apply_chat_template(messages,
        tokenize=False))``: the rendered text, encoded, with bos_id put first when the tokenizer
        puts it before a text (``add_bos``), as llama.cpp and bitnet.cpp do too. 2B4T's template
        writes no BOS, so this adds it; a template that writes ``{{ bos_token }}`` first already
        has it, and it is not doubled (HF's ``tokenizer(text)`` would double it).

        returns: list of int ids, e.g. for 2B4T with a system and a user message the ids of
                 ``<|begin_of_text|>System: ...<|eot_id|>User: ...<|eot_id|>Assistant: ``
        """
        ids = self.encode(self.chat_text(messages, add_generation_prompt))
        bos_id = self.bos_id
        if self.add_bos and bos_id is not None and ids[:1] != [bos_id]:
            ids.insert(0, bos_id)
        return ids


@contextlib.contextmanager
def _rust_panic_report_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for a moment: a Rust panic writes its report (and a
    backtrace under RUST_BACKTRACE) there before Python can catch it, and a bad file must give
    one line, not a Rust backtrace."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load(model_dir: str | Path | None = None) -> Tokenizer:
    """Read ``model_dir``/tokenizer.json (and tokenizer_config.json if present) into a Tokenizer;
    in a GGUF model folder without tokenizer.json, the tokenizer stored in the .gguf file.

    model_dir: a folder, or ORG/NAME of a model in the local Hugging Face cache, as for
               ``minibitnet.load``; None: the built-in model's tokenizer

    Bad files raise TokenizerError with one line naming the file.
    """
    model_dir = resolve_model(model_dir)
    path = model_dir / TOKENIZER_FILE
    config_path = model_dir / TOKENIZER_CONFIG_FILE
    name = model_dir.name or "tokenizer"
    gguf_path = find_gguf(model_dir) if not path.exists() else None
    if gguf_path is not None:
        files = tokenizer_files(GGUFFile(gguf_path))
        if files is None:
            raise TokenizerError(f"{path}: no such file, and {gguf_path.name} carries no "
                                 "tokenizer (tokenizer.ggml.* metadata)")
        where = f"{gguf_path} (tokenizer metadata)"
        return tokenizer_from_json(files[0], files[1], where, where, name)
    spec = read_json(path)
    config = read_json(config_path) if config_path.exists() else {}
    return tokenizer_from_json(spec, config, str(path), str(config_path), name)


def tokenizer_from_json(spec: Any, config: Any, path: str, config_path: str,
                        encoding_name: str = "tokenizer") -> Tokenizer:
    """A Tokenizer from parsed tokenizer.json and tokenizer_config.json ({} when absent).

    path, config_path: what errors name for each; encoding_name: the tiktoken encoding's name
    """
    if not isinstance(spec, dict):
        raise TokenizerError(f"{path}: top level is {type(spec).__name__}, expected an object")
    normalizer = spec.get("normalizer")
    if normalizer is not None:
        found = normalizer.get("type") if isinstance(normalizer, dict) else normalizer
        raise TokenizerError(f"{path}: normalizer is {found!r}, expected null (as in LLaMA-3)")
    pat_str = split_pattern(spec.get("pre_tokenizer"), path)
    ranks = mergeable_ranks(spec.get("model"), path)
    specials = special_tokens(spec.get("added_tokens", []), ranks, path)
    if not isinstance(config, dict):
        raise TokenizerError(f"{config_path}: top level is {type(config).__name__}, "
                             "expected an object")
    bos_token = _token_name(config.get("bos_token", "<|begin_of_text|>"))
    if bos_token is not None and bos_token not in specials:
        raise TokenizerError(f"{config_path}: bos_token {bos_token!r} is not an added token "
                             "of tokenizer.json")
    add_bos = _adds_bos(spec, config, bos_token, path, config_path)
    eos_token = _token_name(config.get("eos_token"))
    template = config.get("chat_template") or BITNET_2B4T_TEMPLATE
    template_origin = config_path if config.get("chat_template") else "the 2B4T template"
    if not isinstance(template, str):
        raise TokenizerError(f"{config_path}: chat_template is {type(template).__name__}, "
                             "expected a string (named templates are not supported)")
    try:
        encoding = tiktoken.Encoding(encoding_name, pat_str=pat_str,
                                     mergeable_ranks=ranks, special_tokens=specials)
    except ValueError as exc:  # the Rust side rejects the regex
        raise TokenizerError(f"{path}: Split regex not accepted by tiktoken: {exc}") from None
    # subtle: tiktoken's Rust core panics (a BaseException) on an empty regex match, so a pattern
    # that can match nothing (e.g. "" or "a*") is refused here, probed on every kind of character
    for probe in ("", "a", "Ab 12 ,!", " \n\t", "é漢😀"):
        try:
            with _rust_panic_report_silenced():
                encoding.encode_ordinary(probe)
        except BaseException as exc:
            if type(exc).__name__ != "PanicException":
                raise
            raise TokenizerError(f"{path}: the Split regex matches an empty piece of text; "
                                 "expected every match to be non-empty") from None
    eos_tokens = ([eos_token] if eos_token else []) + list(END_TOKENS)
    named = {key: name for key in ("eos_token", "unk_token", "pad_token")
             if (name := _token_name(config.get(key))) is not None}
    return Tokenizer(encoding, bos_token, eos_tokens, template, template_origin, named, path,
                     add_bos)


def read_tokenizer_files(folder: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(tokenizer.json, tokenizer_config.json) of ``folder`` parsed, after checking that
    :func:`load` accepts them (what ``convert`` copies); None when there is no tokenizer.json."""
    if not (folder / "tokenizer.json").exists():  # a FIFO or device there: load refuses it
        return None
    load(folder)  # every check of the tokenizer module, with its messages
    spec = read_json(folder / "tokenizer.json")
    config_path = folder / "tokenizer_config.json"
    return spec, (read_json(config_path) if config_path.exists() else {})
