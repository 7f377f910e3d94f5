"""The bit-plane and base-3 layouts of packing.py: round trips, hand-worked bytes, bounds."""

from __future__ import annotations

import numpy as np
from hypothesis import given

from minibitnet.core.packing import (
    ZERO_GROUP_CODE,
    base3_words_per_row,
    bitplane_words_per_row,
    pack_base3_groups,
    pack_bitplanes,
    unpack_base3_groups,
    unpack_bitplanes,
)
from minibitnet_testing.strategies import ternary_matrices


@given(w=ternary_matrices(max_cols=300))
def test_bitplanes_round_trip(w):
    plus, minus = pack_bitplanes(w)
    assert plus.dtype == np.uint64 and plus.shape == (w.shape[0], bitplane_words_per_row(w.shape[1]))
    assert not np.any(plus & minus)  # never both
    np.testing.assert_array_equal(unpack_bitplanes(plus, minus, w.shape[1]), w)


@given(w=ternary_matrices(max_cols=300))
def test_base3_groups_round_trip(w):
    codes = pack_base3_groups(w)
    assert codes.dtype == np.uint8 and codes.shape == (w.shape[0], 8 * base3_words_per_row(w.shape[1]))
    assert codes.max() <= 242
    np.testing.assert_array_equal(unpack_base3_groups(codes, w.shape[1]), w)


def test_hand_worked_bytes():
    plus, minus = pack_bitplanes(np.array([[1, 0, -1, -1, 1]]))
    assert plus.tolist() == [[0b10001]] and minus.tolist() == [[0b01100]]
    codes = pack_base3_groups(np.array([[1, -1, 0, 0, 1]]))
    # 2 + 0*3 + 1*9 + 1*27 + 2*81 = 200, then seven groups of padding (five zero weights each)
    assert codes.tolist() == [[200] + [ZERO_GROUP_CODE] * 7]


def test_bit_63_is_the_last_column_of_a_word():
    w = np.zeros((1, 64), np.int8)
    w[0, 63] = 1
    plus, _ = pack_bitplanes(w)
    assert int(plus[0, 0]) == 1 << 63
    assert int(plus.view("<i8")[0, 0]) == -(1 << 63)  # what the kernels read as an i64
