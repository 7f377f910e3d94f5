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

This module defines the layout once; the fast kernels in ``minibitnet.kernels.mypyc`` read these bytes and
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


# ---- bit planes (the fast bit-plane kernel) ----
#
# Two bit masks per row, 64 weights per little-endian 64-bit word. Bit i of word j of a row
# describes column 64 j + i: set in ``plus`` where the weight is +1, set in ``minus`` where it
# is -1, set in neither where it is 0 (never in both). Columns past ``in`` are 0 in both.
#
#     row  w = [+1, 0, -1, -1, +1]          (in = 5, one word per row)
#     plus  word = 0b10001 = 17             (bits 0 and 4)
#     minus word = 0b01100 = 12             (bits 2 and 3)

BITS_PER_WORD = 64


def bitplane_words_per_row(in_features: int) -> int:
    """Words per row of one bit plane: ceil(in / 64)."""
    return -(-in_features // BITS_PER_WORD)


def pack_bitplanes(w_ternary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ternary weights -> the plus and minus bit planes.

    w_ternary: (out, in) integer array with values in {-1, 0, +1}
    returns:   plus, minus: (out, ceil(in / 64)) uint64 each, bit i of word j = column 64 j + i
    """
    out_features, in_features = w_ternary.shape
    padded = bitplane_words_per_row(in_features) * BITS_PER_WORD
    planes = []
    for sign in (1, -1):
        bits = np.zeros((out_features, padded), dtype=np.uint8)  # (out, 64 words)
        bits[:, :in_features] = w_ternary == sign
        packed = np.packbits(bits, axis=1, bitorder="little")  # (out, 8 words) bytes
        planes.append(np.ascontiguousarray(packed).view("<u8"))  # (out, words)
    return planes[0], planes[1]


def unpack_bitplanes(plus: np.ndarray, minus: np.ndarray, in_features: int) -> np.ndarray:
    """The inverse of :func:`pack_bitplanes`: (out, words) uint64 twice -> (out, in) int8."""
    def bits_of(plane: np.ndarray) -> np.ndarray:
        as_bytes = np.ascontiguousarray(plane.astype("<u8")).view(np.uint8)  # (out, 8 words)
        return np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :in_features]  # (out, in)

    return bits_of(plus).astype(np.int8) - bits_of(minus).astype(np.int8)


# ---- base-3 groups (the fast lookup-table kernel) ----
#
# Five consecutive weights of a row form one base-3 number, stored in one byte (3^5 = 243, so
# 1.6 bits per weight); the first weight is the least significant digit::
#
#     code = (w[5g] + 1) + 3 (w[5g+1] + 1) + 9 (w[5g+2] + 1) + 27 (w[5g+3] + 1) + 81 (w[5g+4] + 1)
#
# A row of ``in`` weights has ceil(in / 5) codes, padded with zero weights (code 121, all
# digits 1) to a multiple of 8 codes, so that a row is whole little-endian 64-bit words: byte k of
# word j is the code of group 8 j + k, i.e. of columns 40 j + 5 k .. 40 j + 5 k + 4.
#
#     row  w = [+1, -1, 0, 0, +1]  ->  digits [2, 0, 1, 1, 2]
#     code = 2 + 0*3 + 1*9 + 1*27 + 2*81 = 200

WEIGHTS_PER_GROUP = 5
GROUPS_PER_WORD = 8
ZERO_GROUP_CODE = 121  # five zero weights: digits 1, 1, 1, 1, 1


def base3_words_per_row(in_features: int) -> int:
    """64-bit words per row in the base-3 group layout: ceil(in / 40)."""
    return -(-in_features // (WEIGHTS_PER_GROUP * GROUPS_PER_WORD))


def pack_base3_groups(w_ternary: np.ndarray) -> np.ndarray:
    """Ternary weights -> one base-3 code byte per five weights.

    w_ternary: (out, in) integer array with values in {-1, 0, +1}
    returns:   (out, 8 * ceil(in / 40)) uint8, codes in [0, 242]; view as "<u8" for the words
    """
    out_features, in_features = w_ternary.shape
    groups = GROUPS_PER_WORD * base3_words_per_row(in_features)
    padded = np.ones((out_features, groups * WEIGHTS_PER_GROUP), dtype=np.uint8)  # zero weights
    padded[:, :in_features] = w_ternary + 1  # digits 0, 1, 2; no int16 temporary
    digits = padded.reshape(out_features, groups, WEIGHTS_PER_GROUP)  # (out, G, 5)
    # Horner's rule, d0 + 3 (d1 + 3 (d2 + 3 (d3 + 3 d4))), in uint8 (max 242 fits): five passes,
    # several times faster at load than a sum over the last axis of (out, G, 5)
    codes: np.ndarray = digits[:, :, 4].copy()  # (out, G)
    for k in (3, 2, 1, 0):
        codes = codes * np.uint8(3) + digits[:, :, k]
    return codes


def unpack_base3_groups(codes: np.ndarray, in_features: int) -> np.ndarray:
    """The inverse of :func:`pack_base3_groups`: (out, G) uint8 -> (out, in) int8."""
    out_features, groups = codes.shape
    digits = np.empty((out_features, groups, WEIGHTS_PER_GROUP), dtype=np.int8)  # (out, G, 5)
    remaining = codes.astype(np.int16)
    for k in range(WEIGHTS_PER_GROUP):
        digits[:, :, k] = remaining % 3
        remaining //= 3
    return digits.reshape(out_features, -1)[:, :in_features] - np.int8(1)  # (out, in)
