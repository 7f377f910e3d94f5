"""bfloat16, the dtype of BitNet's embedding, head and norms, held as uint16 bit patterns.

NumPy has no bfloat16: a bf16 number is the top half of a float32, so widening is a 16-bit shift
(exact) and narrowing is a rounding of the 16 dropped bits, ties to even, as PyTorch rounds::

    float32 1.0           = 0x3F80_0000  ->  bf16 0x3F80
    float32 1.00390625    = 0x3F80_8000  ->  bf16 0x3F80 (a tie: to the even 0x3F80)
"""

from __future__ import annotations

import numpy as np


def bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    """Widen bfloat16 to float32, exactly.

    bits:    (...) uint16, the raw bf16 bit patterns
    returns: (...) float32; bf16 is the top half of a float32, so this is a 16-bit left shift
    """
    return (bits.astype(np.uint32) << 16).view(np.float32)


def float32_to_bf16(values: np.ndarray) -> np.ndarray:
    """Round float32 to the nearest bfloat16 (ties to even), as torch's ``.to(torch.bfloat16)``.

    values:  (...) float32, finite
    returns: (...) uint16 bf16 bit patterns
    """
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    # add 0x7FFF plus the lowest kept bit, then truncate: round half to even on the 16 dropped bits
    rounding = np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))
    return ((bits + rounding) >> 16).astype(np.uint16)
