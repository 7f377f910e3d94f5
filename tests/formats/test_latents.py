"""Going back: bf16 latents for given codes and scale ternarise back to exactly them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibitnet.formats.latent_magnitudes import LatentMagnitudes, plan_latent_magnitudes
from minibitnet.formats.latents import LARGEST_SCALE, master_from_ternary
from minibitnet.formats.master import round_scale_to_bf16, ternarize_master, ternarize_online
from minibitnet.core.packing import pack_ternary
from minibitnet.core.quant import ternarize_weights
from minibitnet.core.bfloat16 import bf16_to_float32
from minibitnet_testing.strategies import codes_with_zeros, float32_scales, ternary_matrices


def _is_exact_by_guarantee(w_ternary: np.ndarray) -> bool:
    """Codes for which master_from_ternary's docstring promises latents (k >= 1 nonzero)."""
    k = int(np.count_nonzero(w_ternary))
    z = w_ternary.size - k
    return z >= 3 or (z == 2 and k >= 16) or (z == 1 and k >= 2**11) or (z == 0 and k >= 2**18)


def _float32_bits(value: np.float32) -> int:
    """The bit pattern of a float32, so that equal means bit for bit."""
    return int(np.array([value], np.float32).view(np.uint32)[0])


def _assert_round_trip(w_ternary: np.ndarray, weight_scale: np.float32) -> np.ndarray:
    """Latents of (w_ternary, weight_scale), checked to ternarise back to both exactly."""
    latents = bf16_to_float32(master_from_ternary(w_ternary, weight_scale))
    codes, scale = ternarize_weights(latents)
    assert np.array_equal(codes, w_ternary)
    assert _float32_bits(scale) == _float32_bits(weight_scale)
    # corrections on zero codes keep |W s| <= 0.25, well clear of the 0.5 tie
    assert np.all(np.abs(latents[w_ternary == 0]) * weight_scale <= 0.25)
    return latents


@given(w_ternary=ternary_matrices(), scale_bits=st.integers(0x3A00, 0x4500))
def test_masters_from_codes_ternarise_back_to_the_same_codes_and_scale(w_ternary, scale_bits):
    weight_scale = bf16_to_float32(np.array([scale_bits], np.uint16))[0]  # a bf16 scale
    if not w_ternary.any():  # no scale to keep: zeros, which reload with the clamped scale
        latents = bf16_to_float32(master_from_ternary(w_ternary, weight_scale))
        assert not latents.any()
        assert ternarize_weights(latents)[1] == LARGEST_SCALE
        return
    try:
        _assert_round_trip(w_ternary, weight_scale)
    except ValueError as error:  # too few zero codes to correct the sum with
        assert not _is_exact_by_guarantee(w_ternary), str(error)
        assert "zero codes among" in str(error)


@given(w_ternary=codes_with_zeros(), weight_scale=float32_scales)
def test_online_reading_of_masters_gives_back_any_float32_scale(w_ternary, weight_scale):
    latents = _assert_round_trip(w_ternary, weight_scale)
    weight = ternarize_online(latents)
    assert np.array_equal(weight.packed, pack_ternary(w_ternary))
    assert _float32_bits(weight.weight_scale) == _float32_bits(weight_scale)
    # and the bf16-rounded reading gives the scale a packed checkpoint stores
    assert ternarize_master(latents).weight_scale == round_scale_to_bf16(weight_scale)


@given(w_ternary=codes_with_zeros(), scale_bits=st.integers(0x3C24, 0x461C))
def test_bf16_reading_of_masters_gives_back_a_bf16_scale(w_ternary, scale_bits):
    weight_scale = bf16_to_float32(np.array([scale_bits], np.uint16))[0]
    weight = ternarize_master(bf16_to_float32(master_from_ternary(w_ternary, weight_scale)))
    assert np.array_equal(weight.packed, pack_ternary(w_ternary))
    assert weight.weight_scale == weight_scale


EDGE_SCALES = [
    LARGEST_SCALE,  # mean|W| at the 1e-5 clamp
    np.nextafter(LARGEST_SCALE, np.float32(0)),
    np.float32(2.0**-3), np.nextafter(np.float32(2.0**-3), np.float32(0)),  # across a binade
    np.nextafter(np.float32(64.0), np.float32(np.inf)),
    np.float32(1e-20),  # latents near 1e20, still bf16
]


@pytest.mark.parametrize("weight_scale", EDGE_SCALES, ids=repr)
@pytest.mark.parametrize("fill", ["one nonzero", "three zeros", "random"])
def test_edge_scales_come_back_exactly(weight_scale, fill):
    rng = np.random.default_rng(7)
    w_ternary = rng.integers(-1, 2, (12, 37)).astype(np.int8)  # (12, 37)
    if fill == "one nonzero":
        w_ternary[:] = 0
        w_ternary[5, 3] = -1
    elif fill == "three zeros":
        w_ternary = np.where(w_ternary == 0, 1, w_ternary).astype(np.int8)
        w_ternary[0, :3] = 0
    _assert_round_trip(w_ternary, weight_scale)


@pytest.mark.parametrize(("zeros", "nonzeros"), [(2, 16), (1, 2**11), (0, 2**18)])
def test_fewer_than_three_zero_codes_are_enough_for_large_tensors(zeros, nonzeros):
    rng = np.random.default_rng(zeros)
    for _ in range(5):
        w_ternary = rng.choice(np.array([-1, 1], np.int8), (1, zeros + nonzeros))
        w_ternary[0, rng.choice(zeros + nonzeros, zeros, replace=False)] = 0
        scale_bits = rng.integers(0x3C23D70A, 0x461C4000)
        _assert_round_trip(w_ternary, np.array([scale_bits], np.uint32).view(np.float32)[0])


def test_worked_example_of_going_back():
    # the module docstring: codes [1, 0, -1, 0] with s = 3 need sum|W| = 4/3
    latents = bf16_to_float32(master_from_ternary(np.array([[1], [0], [-1], [0]]), 3.0))
    assert latents[:, 0].tolist() == [0.66796875, 0.0012969970703125, -0.6640625,
                                      5.125999450683594e-06]
    assert float(np.abs(latents).sum(dtype=np.float64)) == 1.3333333730697632
    assert ternarize_weights(latents)[1] == np.float32(3.0)


def test_worked_example_of_the_magnitudes():
    # latent_magnitudes.py's example: the same codes and scale counted in units of 2^-30
    magnitudes = plan_latent_magnitudes(4, 2, np.float32(3.0))
    assert magnitudes == LatentMagnitudes(unit_exp=-30, first=1431655709, last=1431655822,
                                          a_lo=713031680, step=4194304, raised=1,
                                          limit=89128960, copies=0, finer=(1392640, 5504))
    nonzero_sum = 2 * magnitudes.a_lo + magnitudes.raised * magnitudes.step
    assert nonzero_sum * 2.0**-30 == 1.33203125
    assert magnitudes.first - nonzero_sum == 1398045
    assert nonzero_sum + sum(magnitudes.finer) == magnitudes.first + 99
    assert [v * 2.0**-30 for v in (magnitudes.a_lo, magnitudes.a_lo + magnitudes.step,
                                   magnitudes.limit, *magnitudes.finer)] == [
        0.6640625, 0.66796875, 0.0830078125, 0.0012969970703125, 5.125999450683594e-06]


def test_a_projection_of_2b4t_size_comes_back_exactly():
    rng = np.random.default_rng(2560)
    w_ternary = rng.integers(-1, 2, (2560, 6912)).astype(np.int8)  # about a third zero
    weight_scale = np.float32(rng.uniform(0.5, 4.0))
    assert round_scale_to_bf16(weight_scale) != weight_scale  # not a bf16 value
    _assert_round_trip(w_ternary, weight_scale)


def test_codes_in_any_memory_order_give_the_same_latents():
    rng = np.random.default_rng(3)
    w_ternary = rng.integers(-1, 2, (40, 24)).astype(np.int8)
    weight_scale = np.float32(1.2345678)
    transposed = np.ascontiguousarray(w_ternary.T).T  # same values, column-major
    assert np.array_equal(master_from_ternary(transposed, weight_scale),
                          master_from_ternary(w_ternary, weight_scale))


@pytest.mark.parametrize("weight_scale", [np.nan, np.inf, 0.0, -1.0, 2e5,
                                          np.nextafter(LARGEST_SCALE, np.float32(np.inf))])
def test_a_scale_no_latents_give_is_refused(weight_scale):
    w_ternary = np.array([[1], [0], [-1], [0]], np.int8)
    with pytest.raises(ValueError, match=r"weight_scale .*: expected a finite float32 in "
                                         r"\(0, 100000\]"):
        master_from_ternary(w_ternary, np.float32(weight_scale))


def test_latents_beyond_bf16_range_are_refused():
    w_ternary = np.array([[1], [0], [0], [0]], np.int8)  # one nonzero carries 4 / s
    with pytest.raises(ValueError, match=r"weight_scale 1e-38: latents of magnitude about "
                                         r"n / \(k s\) = [34]\.\d+e\+38 are beyond bf16"):
        master_from_ternary(w_ternary, np.float32(1e-38))


def test_codes_without_zeros_to_correct_with_are_refused():
    # 16 nonzeros: their sums move in bf16 steps of about 2^-8 / s, far above the 2^-24
    # relative slack of a float32 scale, and there is no zero code to make up the rest
    with pytest.raises(ValueError, match=r"w_ternary has 0 zero codes among 16 weights; "
                                         r"weight_scale 1.2345678 needs 2 of them"):
        master_from_ternary(np.ones((4, 4), np.int8), np.float32(1.2345678))


def test_all_zero_codes_give_zero_latents_whatever_the_scale():
    latents = bf16_to_float32(master_from_ternary(np.zeros((8, 5), np.int8), np.float32(np.nan)))
    assert latents.shape == (8, 5) and not latents.any()
