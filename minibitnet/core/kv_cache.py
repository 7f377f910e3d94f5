"""The key/value cache: the rotated keys and the values of every position seen so far.

During generation each new token attends to all earlier ones; keeping their keys and values
means each step runs the projections for one token only. One cache belongs to one sequence.
It grows by amortised doubling, so appending a token costs O(1) copies on average.
"""

from __future__ import annotations

import numpy as np


class KVCache:
    """Per layer: keys and values of shape (K, S, Hd) float32 for the S positions seen so far."""

    def __init__(self, num_layers: int, num_kv_heads: int, head_dim: int) -> None:
        self.length = 0  # S: positions stored (the same in every layer once a forward completes)
        self._keys: list[np.ndarray] = [np.zeros((num_kv_heads, 0, head_dim), np.float32)
                                        for _ in range(num_layers)]  # each (K, capacity, Hd)
        self._values: list[np.ndarray] = [k.copy() for k in self._keys]

    def append(self, layer: int, keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Store T new positions for ``layer`` after the current ``length``.

        keys, values: (K, T, Hd) float32
        returns:      all keys and values of this layer, each (K, length + T, Hd), views
        """
        new_length = self.length + keys.shape[1]
        if new_length > self._keys[layer].shape[1]:
            self._grow(layer, new_length)
        self._keys[layer][:, self.length:new_length] = keys
        self._values[layer][:, self.length:new_length] = values
        return self._keys[layer][:, :new_length], self._values[layer][:, :new_length]

    def advance(self, num_tokens: int) -> None:
        """Mark ``num_tokens`` more positions as stored (called once per forward, after all layers)."""
        self.length += num_tokens

    def _grow(self, layer: int, needed: int) -> None:
        capacity = max(needed, 2 * self._keys[layer].shape[1], 16)
        for store in (self._keys, self._values):
            old = store[layer]
            grown = np.zeros((old.shape[0], capacity, old.shape[2]), np.float32)  # (K, cap, Hd)
            grown[:, :self.length] = old[:, :self.length]
            store[layer] = grown
