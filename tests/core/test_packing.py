import numpy as np
from hypothesis import given

from minibitnet.core.packing import has_invalid_codes, pack_ternary, unpack_ternary
from minibitnet_testing.strategies import ternary_matrices


def test_hand_worked_byte():
    # out = 4 (R = 1), one column q = [+1, -1, 0, +1]: codes [2, 0, 1, 2] -> 0b10_01_00_10
    w = np.array([[1], [-1], [0], [1]], np.int8)
    packed = pack_ternary(w)
    assert packed.shape == (1, 1) and packed[0, 0] == 0b10010010 == 146
    assert np.array_equal(unpack_ternary(packed), w)


def test_rows_are_split_in_blocks_not_interleaved():
    # out = 8 (R = 2): byte [r, c] holds rows r, R + r, 2R + r, 3R + r
    w = np.zeros((8, 1), np.int8)
    w[5, 0] = 1  # row 5 = 2R + 1 -> byte row 1, bit pair 2 (bits 4-5), code 2
    packed = pack_ternary(w)
    assert packed[1, 0] == (1 << 0) | (1 << 2) | (2 << 4) | (1 << 6)
    assert packed[0, 0] == 0b01010101  # all zero weights are code 1


def test_matches_transformers_unpack_example():
    # the worked example in transformers' integrations/bitnet.py: unpack_weights docstring
    packed = np.array([[0b10100001, 0b00011000], [0b10010000, 0b00001010]], np.uint8)
    expected = np.array([[0, -1], [-1, 1], [-1, 1], [-1, 1], [1, 0], [0, -1], [1, -1], [1, -1]])
    assert np.array_equal(unpack_ternary(packed), expected)


@given(ternary_matrices(rows_multiple=4))
def test_unpack_inverts_pack(w):
    packed = pack_ternary(w)
    assert packed.dtype == np.uint8 and packed.shape == (w.shape[0] // 4, w.shape[1])
    assert np.array_equal(unpack_ternary(packed), w)
    assert not has_invalid_codes(packed)


def test_code_three_is_detected():
    packed = np.full((2, 3), 0b01010101, np.uint8)
    assert not has_invalid_codes(packed)
    packed[1, 2] = 0b11010101
    assert has_invalid_codes(packed)
