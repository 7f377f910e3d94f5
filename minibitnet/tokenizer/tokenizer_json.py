"""Writing tokenizer.json in the structure of LLaMA-3's (and so BitNet b1.58 2B4T's) file.

Two writers share it: the byte-level BPE trainer (:mod:`minibitnet.train.bpe`), for the
tokenizers of trained models, and :mod:`minibitnet.tokenizer.synthetic`, for the made-up
128k tokenizer of full-size random checkpoints. The structure, which :mod:`minibitnet.tokenizer.bpe_file`
reads back and Hugging Face ``tokenizers`` loads:

- pre-tokenizer: the LLaMA-3 Split regex, then ByteLevel without its own regex;
- post-processor: ByteLevel, then a template that puts the BOS token before every sequence;
- model: byte-level BPE with ``ignore_merges`` (whole pre-tokens are looked up first, as tiktoken
  does), the vocabulary and the merges as given;
- added tokens: the special tokens, after the vocabulary.
"""

from __future__ import annotations

from typing import Any

# The pre-tokenisation pattern of LLaMA-3 (and so of BitNet b1.58 2B4T).
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def llama3_tokenizer_json(vocab: dict[str, int], merges: list[Any],
                          special_tokens: dict[str, int], bos_token: str) -> dict[str, Any]:
    """The tokenizer.json object for a byte-level BPE vocabulary in LLaMA-3's structure.

    vocab:          byte-level token string -> id (the tiktoken rank)
    merges:         as the file lists them, ["left", "right"] pairs or "left right" strings
    special_tokens: special token string -> id, in id order, after the vocabulary
    bos_token:      the special token the post-processor puts before every sequence
    """
    added = [{"id": token_id, "content": content, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True}
             for content, token_id in special_tokens.items()]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
             "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": bos_token, "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": bos_token, "type_id": 0}},
                      {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": bos_token, "type_id": 1}},
                      {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {bos_token: {"id": bos_token,
                                            "ids": [special_tokens[bos_token]],
                                            "tokens": [bos_token]}}}]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": merges},
    }
