"""The output head: final hidden states -> logits over the vocabulary.

BitNet b1.58 2B4T ties the head to the bf16 token embedding (``tie_word_embeddings``); the head is
a plain float matmul, not a ternary layer. The bf16 table is widened to float32 once, at load,
because widening (a shift) per token would cost more than the matmul itself. Every backend uses
this same head, so the logits of all backends stay bit-identical.
"""

from __future__ import annotations

import numpy as np

from .safetensors import bf16_to_float32


class OutputHead:
    """logits = h @ table.T with ``table`` the (V, D) float32 widening of the bf16 weights."""

    def __init__(self, table_bf16: np.ndarray) -> None:
        self.table = bf16_to_float32(table_bf16)  # (V, D) float32

    def __call__(self, hidden: np.ndarray) -> np.ndarray:
        """hidden: (T, D) float32 -> (T, V) float32 logits."""
        return hidden @ self.table.T
