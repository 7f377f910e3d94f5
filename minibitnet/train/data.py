"""Training text -> one array of token ids, and random batches of windows from it.

Each file becomes ``<|begin_of_text|> text <|end_of_text|>``, and the files are concatenated; a
batch is B windows of T + 1 consecutive ids at random offsets (inputs are the first T, targets
the last T). The offsets of step s come from a generator seeded with (seed, s), so a resumed run
draws exactly the batches the uninterrupted run would have drawn, with no generator state to save.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tiktoken

from ..errors import ArgumentError
from ..files import read_text_argument
from ..tokenizer.pretokenize import encode_ordinary_bounded

# Each file is read whole and becomes int32 token ids in memory. 1 GiB per file holds the largest
# corpus a NumPy training run can use in hours (~250 M tokens; TinyStories' 1.9 GB train split is
# past it, its 19 MB validation split far below), and refuses /dev/zero before it fills memory.
MAX_TRAINING_TEXT_BYTES = 1024 * 1024 * 1024


def read_texts(paths: Sequence[str | Path], flag: str = "--data") -> list[str]:
    """The UTF-8 text of each file; ArgumentError naming ``flag`` and the file if one cannot be
    read (missing, not a regular file, over MAX_TRAINING_TEXT_BYTES, not UTF-8)."""
    texts = [read_text_argument(path, MAX_TRAINING_TEXT_BYTES, flag) for path in paths]
    if not any(texts):
        raise ArgumentError(f"{flag}: the files hold no text")
    return texts


def tokenize_texts(encoding: tiktoken.Encoding, texts: Sequence[str], bos_id: int,
                   eos_id: int) -> np.ndarray:
    """(N,) int32: every text as bos, its tokens, eos, one after the other."""
    pieces = []
    for text in texts:
        # bounded: tiktoken's own encode_ordinary fails on a run of ~1M spaces
        ids = encode_ordinary_bounded(encoding, text, "--data")
        pieces.append(np.array([bos_id, *ids, eos_id], dtype=np.int32))
    return np.concatenate(pieces)


def sample_batch(tokens: np.ndarray, batch_size: int, context: int, seed: int, step: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The batch of step ``step``: inputs and targets, each (B, T) int64."""
    if tokens.size < context + 1:
        raise ArgumentError(f"--data: {tokens.size} tokens, expected at least {context + 1} "
                            "(one window of the context length)")
    rng = np.random.default_rng([seed, step])
    starts = rng.integers(0, tokens.size - context, size=batch_size)  # (B,)
    windows = tokens[starts[:, None] + np.arange(context + 1)[None, :]].astype(np.int64)  # (B, T+1)
    return windows[:, :-1], windows[:, 1:]
