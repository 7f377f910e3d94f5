"""Ternary codes and a scale -> bf16 latents that ternarise back to exactly them.

A packed checkpoint holds codes and a float32 scale, not the latents they were made from, and
those cannot be recovered. :func:`master_from_ternary` builds bf16 latents W instead whose
absmean ternarisation (:func:`minibitnet.core.quant.ternarize_weights`, which must agree with it bit
for bit) gives the same codes and exactly the same float32 scale s, bf16 value or not. So both
readings of masters (:mod:`minibitnet.formats.master`: bf16-rounded and online) give back what the
packed file held, and packed -> masters -> packed keeps every byte.

The construction, in the order :func:`master_from_ternary` runs it, for n weights of which k
have a nonzero code and z = n - k a zero code:

1. Every latent is a whole number of units 2^e, so the loader's float64 sum of |W| is exact and
   only its mean and reciprocal round, as they do on load.
2. The sums of |W| that the loader turns into exactly s form one interval [first, last]
   around n / s, about 2^-24 of it wide; two bisections find it.
3. The nonzeros take the adjacent bf16 magnitudes a_lo < a_hi around n / (k s), as many a_hi
   as keep the sum at or below ``last``; |W s| is about n / k >= 1 and rounds and clips back
   to ±1.
4. What the sum still lacks to reach ``first`` (less than one bf16 step of a_lo) goes on zero
   codes: copies of the largest bf16 value <= 0.25 / s, then up to three finer bf16 values.
   Each has |W s| <= 0.25, clear of the 0.5 tie, so its code stays 0.
5. The bf16 bits are written in C order, and ternarised once more as a last check.

Steps 1 to 4 are integer arithmetic on a few unit counts, in :mod:`minibitnet.formats.latent_magnitudes`;
this module checks the arguments and does step 5, the only one that touches (out, in) arrays.

Worked example: codes [1, 0, -1, 0] with s = 3 need sum|W| = 4/3 to about 2^-24. The nonzeros
get 0.66796875 and -0.6640625, the bf16 values either side of 2/3, and the zero codes the
corrections 0.0012969970703125 and 5.125999450683594e-06 (|W s| < 0.004, so they stay 0):
sum|W| = 1.3333333730697632, mean|W| = 0.3333333432674408 and float32(1 / mean) = 3.0.

Left out on purpose: latents that look trained (two magnitudes and a few small corrections are
enough to carry codes and scale), and float32 or float16 masters (the -bf16 release is bf16).
"""

from __future__ import annotations

import math

import numpy as np

from .latent_magnitudes import MAX_WEIGHTS, LatentMagnitudes, plan_latent_magnitudes
from ..core.quant import MIN_MEAN_ABS, ternarize_weights
from ..core.bfloat16 import bf16_to_float32, float32_to_bf16

# The largest scale absmean ternarisation returns: mean|W| is clamped at 1e-5.
LARGEST_SCALE = np.float32(1.0 / MIN_MEAN_ABS)


def _checked_scale(weight_scale: np.float32, n: int) -> np.float32:
    """``weight_scale`` as float32; ValueError if no latents of n weights can give it back."""
    scale = np.float32(weight_scale)
    if not (np.isfinite(scale) and 0 < scale <= LARGEST_SCALE):
        raise ValueError(f"weight_scale {scale!s}: expected a finite float32 in "
                         f"(0, {float(LARGEST_SCALE):g}], the scales absmean ternarisation "
                         f"returns (mean|W| is clamped at {MIN_MEAN_ABS:g})")
    if n > MAX_WEIGHTS:
        raise ValueError(f"w_ternary has {n} weights, expected at most 2^40 (the float64 sums "
                         f"of the latents must stay exact)")
    return scale


def _bf16_bits(units: list[int], unit_exp: int, scale: np.float32) -> np.ndarray:
    """(len(units),) uint16 bf16 bits of units * 2^unit_exp; ValueError if one is no bf16 value.

    Each unit count has at most 8 significant bits, so only overflow can make one inexact.
    """
    values = np.array([math.ldexp(u, unit_exp) for u in units], np.float64)
    with np.errstate(over="ignore"):  # a value past float32's range becomes inf, refused below
        bits = float32_to_bf16(values.astype(np.float32))
    if not np.array_equal(bf16_to_float32(bits), values):
        raise ValueError(f"weight_scale {scale!s}: latents of magnitude about n / (k s) = "
                         f"{values.max():.3g} are beyond bf16's largest value")
    return bits


def _magnitude_bits(magnitudes: LatentMagnitudes,
                    scale: np.float32) -> tuple[np.uint16, np.ndarray]:
    """bf16 bits of a_lo, and of the corrections [limit, *finer] in the order they are placed.

    returns: a_lo_bits uint16 scalar, correction_bits (1 + len(finer),) uint16
    """
    m = magnitudes
    # a_hi is written as a_lo's bits + 1 (the next bf16 up), so only its range is checked here;
    # it is the largest magnitude, so it is checked first and names the overflow
    _bf16_bits([m.a_lo + m.step], m.unit_exp, scale)
    value_bits = _bf16_bits([m.a_lo, m.limit, *m.finer], m.unit_exp, scale)
    return value_bits[0], value_bits[1:]


def _prefix_holding(mask: np.ndarray, count: int) -> int:
    """Length of the shortest prefix of ``mask`` that holds ``count`` True values.

    mask: (n,) bool with at least ``count`` True values
    """
    if count == 0:
        return 0
    block = 1 << 16  # counted a block at a time: no (n,) index or cumulative-sum array
    whole = mask.size // block * block
    per_block = np.append(np.count_nonzero(mask[:whole].reshape(-1, block), axis=1),
                          np.count_nonzero(mask[whole:]))  # (ceil(n / block),)
    reached = np.cumsum(per_block)
    b = int(np.searchsorted(reached, count))  # the block holding the count-th True
    inside = np.flatnonzero(mask[b * block:(b + 1) * block])
    return b * block + int(inside[count - int(reached[b] - per_block[b]) - 1]) + 1


def _place_corrections(flat_bits: np.ndarray, zero: np.ndarray, copies: int,
                       correction_bits: np.ndarray) -> None:
    """On the first zero codes: ``copies`` times correction_bits[0], then correction_bits[1:].

    flat_bits: (n,) uint16, written in place; zero: (n,) bool, the codes that are 0
    """
    end = _prefix_holding(zero, copies)
    np.copyto(flat_bits[:end], correction_bits[0], where=zero[:end])
    rest = _prefix_holding(zero, copies + len(correction_bits) - 1)
    flat_bits[end + np.flatnonzero(zero[end:rest])] = correction_bits[1:]


def _write_latent_bits(w_ternary: np.ndarray, nonzero: np.ndarray, magnitudes: LatentMagnitudes,
                       a_lo_bits: np.uint16, correction_bits: np.ndarray) -> np.ndarray:
    """Step 5: ±a_lo on the nonzeros, a_hi on the first ``raised`` of them, the corrections on
    the first zero codes, everything else 0.

    w_ternary: (out, in) int8, C order; nonzero: (out, in) bool, w_ternary != 0
    returns:   (out, in) uint16 bf16 bits
    """
    bits: np.ndarray = nonzero.astype(np.uint16) * a_lo_bits  # (out, in) a_lo or 0
    bits |= (w_ternary < 0).astype(np.uint16) << np.uint16(15)  # bf16 sign bit
    flat, flat_nonzero = bits.reshape(-1), nonzero.reshape(-1)  # (n,) views
    end = _prefix_holding(flat_nonzero, magnitudes.raised)
    flat[:end] += flat_nonzero[:end]  # bits + 1 is the next bf16 magnitude up: a_hi
    if magnitudes.corrections:
        _place_corrections(flat, ~flat_nonzero, magnitudes.copies, correction_bits)
    return bits


def _check_round_trip(bits: np.ndarray, w_ternary: np.ndarray, scale: np.float32) -> None:
    """ValueError unless the loader's ternarisation of ``bits`` gives w_ternary and scale."""
    codes, scale_back = ternarize_weights(bf16_to_float32(bits))
    if scale_back != scale or not np.array_equal(codes, w_ternary):
        raise ValueError(f"weight_scale {scale!s}: the latents built for it ternarise "
                         f"to scale {scale_back!s} and "
                         f"{np.count_nonzero(codes != w_ternary)} changed codes")


def master_from_ternary(w_ternary: np.ndarray, weight_scale: np.float32) -> np.ndarray:
    """Latents whose absmean ternarisation gives ``w_ternary`` and exactly ``weight_scale``.

    w_ternary:    (out, in) int8 in {-1, 0, +1}, k nonzero and z = n - k zero codes
    weight_scale: float32 scalar s, 0 < s <= 1e5 (any float32, not only bf16 values)
    returns:      (out, in) uint16 bf16 bits W with ternarize_weights(W) == (w_ternary, s),
                  codes equal and scale equal bit for bit

    For 0 < s <= 1e5 (larger scales no mean|W| gives) with n / (k s) in bf16's range, the
    result is exact whenever z >= 3. With fewer zero codes the bf16 steps of the nonzeros may
    be too coarse: z = 2 is exact for k >= 16, z = 1 for k >= 2^11, z = 0 for k >= 2^18, and
    smaller tensors come back exact or raise. ValueError, naming the argument, for too few zero
    codes, s not finite, s <= 0, s > 1e5, latents beyond bf16's range, more than 2^40 weights,
    and, as a last guard, if ternarising the result does not give back the codes and s. With
    k = 0 the result is all zeros, whatever s is: the outputs are zero for any scale, and the
    latents reload with the clamped scale 1e5.
    """
    # subtle: C order, so that the flat views in _write_latent_bits are views and not copies
    w_ternary = np.ascontiguousarray(w_ternary, dtype=np.int8)
    nonzero = w_ternary != 0  # (out, in)
    k, n = int(np.count_nonzero(nonzero)), w_ternary.size
    if k == 0:
        return np.zeros(w_ternary.shape, np.uint16)
    scale = _checked_scale(weight_scale, n)
    magnitudes = plan_latent_magnitudes(n, k, scale)  # steps 1 to 4
    if magnitudes.corrections > n - k:
        raise ValueError(f"w_ternary has {n - k} zero codes among {n} weights; weight_scale "
                         f"{scale!s} needs {magnitudes.corrections} of them for the sum of "
                         f"|W| to give it back exactly")
    a_lo_bits, correction_bits = _magnitude_bits(magnitudes, scale)
    bits = _write_latent_bits(w_ternary, nonzero, magnitudes, a_lo_bits, correction_bits)
    _check_round_trip(bits, w_ternary, scale)
    return bits
