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


def read_texts(paths: Sequence[str | Path]) -> list[str]:
    """The UTF-8 text of each file; ArgumentError naming the file if one cannot be read."""
    texts = []
    for path in paths:
        try:
            texts.append(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ArgumentError(f"--data: {path}: no such file") from None
        except IsADirectoryError:
            raise ArgumentError(f"--data: {path}: is a folder, expected a text file") from None
        except UnicodeDecodeError as exc:
            raise ArgumentError(f"--data: {path}: not UTF-8 text (byte {exc.start})") from None
    if not any(texts):
        raise ArgumentError("--data: the files hold no text")
    return texts


def tokenize_texts(encoding: tiktoken.Encoding, texts: Sequence[str], bos_id: int,
                   eos_id: int) -> np.ndarray:
    """(N,) int32: every text as bos, its tokens, eos, one after the other."""
    pieces = []
    for text in texts:
        pieces.append(np.array([bos_id, *encoding.encode_ordinary(text), eos_id], dtype=np.int32))
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
