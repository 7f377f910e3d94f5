"""Ternary codes <-> I2_S, the 2-bit layout of bitnet.cpp's ``ggml-model-i2_s.gguf`` (x86).

An I2_S tensor of n = out * in weights (row-major, row r is weights r*in ... r*in + in - 1) is
n/4 bytes of codes followed by a 32-byte tail. The codes come in blocks of 128 weights in 32
bytes; byte j of a block holds weights j, j+32, j+64, j+96 of the block::

    bits:   7 6      | 5 4         | 3 2         | 1 0
    holds:  w[j] + 1 | w[j+32] + 1 | w[j+64] + 1 | w[j+96] + 1

so code 0, 1, 2 means -1, 0, +1 (as in the Hugging Face layout of packing.py, but grouped along
a row instead of down a column). The tail starts with one little-endian float32, the tensor's
scale, and 28 bytes bitnet.cpp leaves unset (written here as zeros, never read).

Worked example: a block whose weights 0, 32, 64, 96 are +1, -1, 0, +1 starts with the byte
(2 << 6) | (0 << 4) | (1 << 2) | 2 = 0b10_00_01_10 = 0x86 = 134.

The scale is stored in the direction w ≈ w_ternary * scale, the reciprocal of the Hugging Face
``weight_scale``. Source: microsoft/BitNet ``src/ggml-bitnet-mad.cpp: quantize_i2_s`` stores
``i2_scale`` = max|w| of weights that ``utils/convert-hf-to-gguf-bitnet.py: weight_quant`` has
already made ternary as w_ternary / s (so max|w| = 1/s), and its I2_S matrix product multiplies
the integer sums by that float and divides by the activation scale 127 / max|x|. The Hugging
Face layer divides the same sums by weight_scale * activation scale, so scale = 1 / weight_scale.
subtle: the direct I2_S path that the same converter gained in July 2026 (``quantize_to_i2_s``)
stores weight_scale itself for a packed source. Nothing in such a file says so; it is read as
any other, and so computes another model (docs/formats.md, GGUF I2_S).

Left out on purpose: the ARM layout of I2_S (other byte order) and rows whose length is not a
multiple of 128 (a block would straddle two rows; bitnet.cpp's kernels do not allow it either).
"""

from __future__ import annotations

import numpy as np

BLOCK_WEIGHTS = 128  # weights per block
BLOCK_BYTES = 32  # bytes per block: 128 weights at 2 bits
GROUPS = 4  # a byte holds one weight of each group of 32
TAIL_BYTES = 32  # after the codes: the float32 scale, then 28 unused bytes
INVALID_CODE = 3


def i2s_num_bytes(out_features: int, in_features: int) -> int:
    """Bytes of an (out, in) I2_S tensor: n/4 of codes plus the 32-byte tail."""
    return out_features * in_features // 4 + TAIL_BYTES


def pack_i2s(w_ternary: np.ndarray, scale: np.float32) -> np.ndarray:
    """Ternary weights and their scale -> the bytes of one I2_S tensor.

    w_ternary: (out, in) integer array in {-1, 0, +1}; in must be a multiple of 128
    scale:     float32, w ≈ w_ternary * scale (1 / weight_scale)
    returns:   (out * in / 4 + 32,) uint8
    """
    out_features, in_features = w_ternary.shape
    if in_features % BLOCK_WEIGHTS:
        raise ValueError(f"cannot pack {in_features} weights a row as I2_S: expected a multiple "
                         f"of {BLOCK_WEIGHTS}")
    if w_ternary.size and (w_ternary.min() < -1 or w_ternary.max() > 1):
        raise ValueError("cannot pack: weights must be in {-1, 0, +1}")
    codes = (np.asarray(w_ternary, np.int16) + 1).astype(np.uint8)  # (out, in) in {0, 1, 2}
    groups = codes.reshape(-1, GROUPS, BLOCK_BYTES)  # (blocks, 4, 32): [b, g, j] = weight 32g + j
    packed = (groups[:, 0] << np.uint8(6)) | (groups[:, 1] << np.uint8(4)) \
        | (groups[:, 2] << np.uint8(2)) | groups[:, 3]  # (blocks, 32)
    tail = np.zeros(TAIL_BYTES, np.uint8)
    tail[:4] = np.array([scale], "<f4").view(np.uint8)
    return np.concatenate([packed.reshape(-1), tail])


def unpack_i2s_codes(data: np.ndarray, out_features: int, in_features: int) -> np.ndarray:
    """The raw 2-bit codes of an I2_S tensor, before the -1 offset.

    data:    (out * in / 4 + 32,) uint8, the whole tensor (the tail is not read here)
    returns: (out, in) uint8 in {0, 1, 2, 3}; 3 marks a corrupt byte
    """
    packed = data[:out_features * in_features // 4].reshape(-1, BLOCK_BYTES)  # (blocks, 32)
    codes = np.empty((packed.shape[0], GROUPS, BLOCK_BYTES), np.uint8)  # (blocks, 4, 32)
    for group in range(GROUPS):
        codes[:, group] = (packed >> np.uint8(6 - 2 * group)) & np.uint8(0b11)
    return codes.reshape(out_features, in_features)


def unpack_i2s(data: np.ndarray, out_features: int, in_features: int
               ) -> tuple[np.ndarray, np.float32]:
    """The inverse of :func:`pack_i2s`.

    data:    (out * in / 4 + 32,) uint8, every code in {0, 1, 2}
    returns: w_ternary (out, in) int8 in {-1, 0, +1}, and the float32 scale from the tail
    """
    w_ternary = unpack_i2s_codes(data, out_features, in_features).astype(np.int8) - np.int8(1)
    start = out_features * in_features // 4
    scale = np.ascontiguousarray(data[start:start + 4]).view("<f4")[0]
    return w_ternary, np.float32(scale)
