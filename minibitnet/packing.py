"""Ternary codes <-> the published 2-bit packed layout of Hugging Face BitNet checkpoints.

A BitLinear weight of shape (out, in) with values in {-1, 0, +1} is stored as a uint8 tensor of
shape (out/4, in). With R = out/4, the byte at [r, c] holds four weights of column c, one per
bit pair::

    bits:   7 6 | 5 4 | 3 2 | 1 0
    holds:  q[3R+r, c]+1 | q[2R+r, c]+1 | q[R+r, c]+1 | q[r, c]+1

so code 0, 1, 2 means -1, 0, +1 and code 3 is not a weight. Rows are split into four blocks of R
(not interleaved in fours): unpacking is four strided copies, as transformers'
``integrations/bitnet.py: unpack_weights`` does.

Worked example, out = 4 (R = 1), one column holding q = [+1, -1, 0, +1]::

    codes = q + 1        = [2, 0, 1, 2]
    byte  = 2<<0 | 0<<2 | 1<<4 | 2<<6 = 0b10_01_00_10 = 0x92 = 146

This module defines the layout once; the fast kernels in ``minibitnet.fast`` read these bytes and
their own layouts are built from the codes unpacked here.
"""

from __future__ import annotations

import numpy as np

WEIGHTS_PER_BYTE = 4
INVALID_CODE = 3


def pack_ternary(w_ternary: np.ndarray) -> np.ndarray:
    """Pack ternary weights into the Hugging Face 2-bit layout.

    w_ternary: (out, in) integer array with values in {-1, 0, +1}; out must be a multiple of 4
    returns:   (out/4, in) uint8
    """
    out_features, in_features = w_ternary.shape
    if out_features % WEIGHTS_PER_BYTE:
        raise ValueError(f"cannot pack {out_features} rows: expected a multiple of 4")
    if w_ternary.size and (w_ternary.min() < -1 or w_ternary.max() > 1):
        raise ValueError("cannot pack: weights must be in {-1, 0, +1}")
    rows = out_features // WEIGHTS_PER_BYTE
    codes = (w_ternary.astype(np.int16) + 1).astype(np.uint8)  # (out, in) in {0, 1, 2}
    blocks = codes.reshape(WEIGHTS_PER_BYTE, rows, in_features)  # (4, R, in): block i = rows iR..
    packed = np.zeros((rows, in_features), dtype=np.uint8)
    for i in range(WEIGHTS_PER_BYTE):
        packed |= blocks[i] << np.uint8(2 * i)
    return packed


def unpack_codes(packed: np.ndarray) -> np.ndarray:
    """The raw 2-bit codes of a packed tensor, before the -1 offset.

    packed:  (R, in) uint8
    returns: (4R, in) uint8 in {0, 1, 2, 3}; 3 marks a corrupt byte
    """
    rows, in_features = packed.shape
    codes = np.empty((WEIGHTS_PER_BYTE, rows, in_features), dtype=np.uint8)  # (4, R, in)
    for i in range(WEIGHTS_PER_BYTE):
        codes[i] = (packed >> np.uint8(2 * i)) & np.uint8(0b11)
    return codes.reshape(WEIGHTS_PER_BYTE * rows, in_features)  # (out, in)


def unpack_ternary(packed: np.ndarray) -> np.ndarray:
    """Unpack the Hugging Face 2-bit layout to ternary weights.

    packed:  (out/4, in) uint8, every code in {0, 1, 2}
    returns: (out, in) int8 in {-1, 0, +1}
    """
    return unpack_codes(packed).astype(np.int8) - np.int8(1)


def has_invalid_codes(packed: np.ndarray) -> bool:
    """True if any bit pair holds code 3 (both bits set), which is not a ternary weight."""
    low_bits = packed & np.uint8(0b01010101)
    high_bits = (packed >> np.uint8(1)) & np.uint8(0b01010101)
    return bool(np.any(low_bits & high_bits))
