"""bf16 master weights <-> ternary weights: the layout of microsoft/bitnet-b1.58-2B-4T-bf16.

A master checkpoint holds every tensor of the packed layout (see :mod:`minibitnet.checkpoint`)
except that each BitLinear weight is the latent float tensor itself and no ``weight_scale``
tensor exists::

    model.layers.N.self_attn.{q,k,v,o}_proj.weight     BF16 [out, in]   latent weights
    model.layers.N.mlp.{gate,up,down}_proj.weight      BF16 [out, in]

On load each one is ternarised as BitNet b1.58 does in training (paper section 2, transformers'
``integrations/bitnet.py: WeightQuant``): s = 1 / max(mean|W|, 1e-5) per tensor,
w_ternary = clip(round_half_even(W s), -1, 1), by :func:`minibitnet.quant.ternarize_weights`.
The result is the packed 2-bit tensor and the scale the packed checkpoint would hold.

Under ``quantization_mode`` "online" (the config.json of the -bf16 checkpoint, transformers'
``AutoBitLinear(online_quant=True)``, and 1bitLLM's BitLinear) the same codes are kept with the
float32 scale itself (:func:`ternarize_online`): those layers recompute it from the latents in
every forward and never round it to bf16. What they then compute in float,
``linear(x_q / s_x, w_ternary / s)``, is here the exact integer sum divided once by s_x s, which
differs from theirs only by float32 rounding.

Left out on purpose: per-channel or per-group scales (b1.58 has one scale per tensor) and
keeping the latents after load (the model needs only the codes and the scale).

Going back (:func:`master_from_ternary`) cannot recover the latents a packed file was made from;
it builds bf16 latents whose absmean ternarisation gives the same codes and exactly the same
float32 scale, bf16 value or not, so both readings (bf16-rounded and online) give back what the
packed file held. Worked example: codes [1, 0, -1, 0] with s = 3 need sum|W| = 4/3 to about
2^-24. The nonzeros get 0.66796875 and -0.6640625, the bf16 values either side of 2/3, and the
zero codes the corrections 0.0012969970703125 and 5.125999450683594e-06 (|W s| < 0.004, so
they stay 0): sum|W| = 1.3333333730697632, mean|W| = 0.3333333432674408 and
float32(1 / mean) = 3.0.
"""

from __future__ import annotations

import math

import numpy as np

from .packing import pack_ternary
from .quant import MIN_MEAN_ABS, ternarize_weights
from .safetensors import bf16_to_float32, float32_to_bf16
from .weights import TernaryWeight


def round_scale_to_bf16(scale: np.float32) -> np.float32:
    """``scale`` rounded to the nearest bfloat16 (ties to even), returned as float32."""
    return np.float32(bf16_to_float32(float32_to_bf16(np.array([scale], np.float32)))[0])


def ternarize_master(w: np.ndarray) -> TernaryWeight:
    """One latent BitLinear weight -> the packed ternary weight the model runs.

    w:       (out, in) float32 latent weights (out a multiple of 4)
    returns: TernaryWeight with packed (out/4, in) uint8 in the Hugging Face layout and
             weight_scale float32, w ≈ w_ternary / weight_scale

    subtle: the codes are taken with the float32 scale s, but the weight_scale returned is s
    rounded to bf16. The packed checkpoint stores weight_scale as BF16 [1], so this is the
    number a model loaded from the packed file made from these masters divides by; keeping the
    float32 s instead would move every logit in its last bits and the two formats would no
    longer agree bit for bit. The rounding changes the scale by at most 2^-9 relative.
    """
    w_ternary, scale = ternarize_weights(w)  # (out, in) int8, float32
    return TernaryWeight(packed=pack_ternary(w_ternary), weight_scale=round_scale_to_bf16(scale))


def ternarize_online(w: np.ndarray) -> TernaryWeight:
    """One latent weight -> packed codes and the unrounded float32 absmean scale.

    w:       (out, in) float32 latent weights (out a multiple of 4)
    returns: TernaryWeight with packed (out/4, in) uint8 and weight_scale float32
             s = 1 / max(mean|w|, 1e-5), w ≈ w_ternary / s
    """
    w_ternary, scale = ternarize_weights(w)  # (out, in) int8, float32
    return TernaryWeight(packed=pack_ternary(w_ternary), weight_scale=scale)


# ---- going back: latents for given codes and scale ----

# The largest scale absmean ternarisation returns: mean|W| is clamped at 1e-5.
LARGEST_SCALE = np.float32(1.0 / MIN_MEAN_ABS)
# A latent whose code is 0 holds at most this / s, so |W s| <= 0.25 stays clear of the 0.5 tie.
ZERO_CODE_LIMIT = 0.25
BF16_DIGITS = 8  # significant bits of a bf16 value, the implicit leading one included
# Sums are counted in units 2^e, every value a whole number of them, and float64 adds them exactly
# while the total stays below 2^53 units. The total is about 2^31 units, or at most n 2^11 where
# the magnitudes or corrections need finer units: under 2^51 for up to 2^40 weights.
MAX_WEIGHTS = 2**40


def _bf16_floor(units: int) -> int:
    """Largest integer <= units (>= 0) with at most 8 significant bits.

    Counted in units of a power of two, such an integer is a bf16 value (when in range).
    """
    drop = max(units.bit_length() - BF16_DIGITS, 0)
    return units >> drop << drop


def _absmean_scale(total: float, n: int) -> np.float32:
    """The scale :func:`ternarize_weights` returns for n latents whose |W| sum to ``total``.

    subtle: the same float64 steps as the loader (mean, clamp, reciprocal, then float32), so the
    answer is bit-exact when the float64 sum of the latents is exact, as it is here (every value
    a multiple of the unit, fewer than 2^53 units in all).
    """
    return np.float32(1.0 / max(total / n, MIN_MEAN_ABS))


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


def _unit_exponent(n: int, k: int, scale: np.float32) -> int:
    """e such that sums counted in units 2^e resolve the target sum n / s to 2^-30 and the
    nonzero magnitude n / (k s) and the zero-code limit 0.25 / s to all 8 bf16 digits."""
    target, magnitude = n / float(scale), n / (k * float(scale))
    limit = ZERO_CODE_LIMIT / float(scale)
    return min(math.frexp(target)[1] - 31, math.frexp(magnitude)[1] - 1 - BF16_DIGITS,
               math.frexp(limit)[1] - 1 - BF16_DIGITS)


def _sum_interval(n: int, scale: np.float32, unit_exp: int) -> tuple[int, int]:
    """[first, last]: the sums of |W|, in units 2^unit_exp, for which the loader returns scale.

    Searched by bisection within 2^-16 of n / s: the loader's scale never increases with the
    sum, and those that give s span about 2^-24 of it.
    """
    centre = round(math.ldexp(n / float(scale), -unit_exp))  # >= 2^30 units
    low, high = centre - (centre >> 16), centre + (centre >> 16)

    def scale_of(units: int) -> np.float32:
        return _absmean_scale(math.ldexp(units, unit_exp), n)

    first, top = low, high  # smallest sum whose scale is <= s
    while first < top:
        middle = (first + top) // 2
        first, top = (first, middle) if scale_of(middle) <= scale else (middle + 1, top)
    bottom, last = low, high  # largest sum whose scale is >= s
    while bottom < last:
        middle = (bottom + last + 1) // 2
        bottom, last = (middle, last) if scale_of(middle) >= scale else (bottom, middle - 1)
    if first > last or scale_of(first) != scale:
        raise ValueError(f"weight_scale {scale!s}: no float64 mean|W| near "
                         f"{1 / float(scale):.9g} gives it back")
    return first, last


def _nonzero_magnitudes(first: int, last: int, k: int) -> tuple[int, int, int]:
    """a_lo, its bf16 step to a_hi, and how many of the k nonzeros take a_hi (all in units).

    The largest sum of k such magnitudes that is at most ``last``: a_lo <= last / k < a_hi,
    so fewer than k are raised and the sum falls short of ``last`` by less than one step.
    """
    a_lo = _bf16_floor(last // k)
    step = 1 << max(a_lo.bit_length() - BF16_DIGITS, 0)
    return a_lo, step, (last - k * a_lo) // step


def _corrections(short_by: int, slack: int, limit: int) -> tuple[int, list[int]]:
    """Values (units) for zero-code latents that add up to between short_by and short_by + slack.

    returns: how many copies of ``limit``, and the finer values after them: greedy bf16 values,
             each cutting what is left by 2^7 or more, so three bring it within slack whenever
             the tensor has n >= 4 weights (slack is then over 2^-25 n / s, what is left under
             2^-23 / s)
    """
    if short_by <= 0:
        return 0, []
    left = short_by + slack
    copies = left // limit
    left -= copies * limit
    finer = []
    while left > slack:
        finer.append(_bf16_floor(left))
        left -= finer[-1]
    return copies, finer


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


def _place(bits: np.ndarray, free: np.ndarray, copies: int, value_bits: np.ndarray) -> None:
    """On the first free positions: ``copies`` times value_bits[0], then value_bits[1:].

    bits: (n,) uint16, written in place; free: (n,) bool
    """
    end = _prefix_holding(free, copies)
    np.copyto(bits[:end], value_bits[0], where=free[:end])
    rest = _prefix_holding(free, copies + len(value_bits) - 1)
    bits[end + np.flatnonzero(free[end:rest])] = value_bits[1:]


def _latent_bits(w_ternary: np.ndarray, nonzero: np.ndarray, value_bits: np.ndarray,
                 raised: int, copies: int) -> np.ndarray:
    """The bf16 latents: ±a_lo on the nonzeros, a_hi on the first ``raised`` of them, and on
    the first zero codes ``copies`` times value_bits[1], then value_bits[2:].

    w_ternary:  (out, in) int8, C order; nonzero: (out, in) bool, w_ternary != 0
    value_bits: uint16 bf16 bits of a_lo, the zero-code limit, the finer corrections
    returns:    (out, in) uint16
    """
    bits: np.ndarray = nonzero.astype(np.uint16) * value_bits[0]  # (out, in) a_lo or 0
    bits |= (w_ternary < 0).astype(np.uint16) << np.uint16(15)  # bf16 sign bit
    flat, flat_nonzero = bits.reshape(-1), nonzero.reshape(-1)  # (n,) views
    end = _prefix_holding(flat_nonzero, raised)
    flat[:end] += flat_nonzero[:end]  # bits + 1 is the next bf16 magnitude up: a_hi
    if len(value_bits) > 2 or copies:
        _place(flat, ~flat_nonzero, copies, value_bits[1:])
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

    The |W| must sum to n / s, up to the 2^-24 relative slack that still rounds to s; the sum
    is searched with the loader's own float64 arithmetic (every value is a multiple of one
    power of two, so the float64 sum is exact and its mean rounds once, as in the loader).
    The nonzeros take the two adjacent bf16 magnitudes a_lo < a_hi around n / (k s), as many
    a_hi as keep the sum at or below the target; |W s| is about n / k >= 1 and rounds and clips
    back to ±1. What the sum still lacks (less than one bf16 step of a_lo) goes on the first
    zero-code positions: copies of about 0.25 / s, then up to three finer bf16 values, each
    with |W s| <= 0.25 so that the code stays 0.

    For 0 < s <= 1e5 (larger scales no mean|W| gives) with n / (k s) in bf16's range, the
    result is exact whenever z >= 3. With fewer zero codes the bf16 steps of the nonzeros may
    be too coarse: z = 2 is exact for k >= 16, z = 1 for k >= 2^11, z = 0 for k >= 2^18, and
    smaller tensors come back exact or raise. ValueError, naming the argument, for too few zero
    codes, s not finite, s <= 0, s > 1e5, latents beyond bf16's range, more than 2^40 weights,
    and, as a last guard, if ternarising the result does not give back the codes and s. With
    k = 0 the result is all zeros, whatever s is: the outputs are zero for any scale, and the
    latents reload with the clamped scale 1e5.
    """
    # subtle: C order, so that the flat views in _latent_bits are views and not copies
    w_ternary = np.ascontiguousarray(w_ternary, dtype=np.int8)
    nonzero = w_ternary != 0  # (out, in)
    k, n = int(np.count_nonzero(nonzero)), w_ternary.size
    if k == 0:
        return np.zeros(w_ternary.shape, np.uint16)
    scale = _checked_scale(weight_scale, n)
    unit_exp = _unit_exponent(n, k, scale)
    first, last = _sum_interval(n, scale, unit_exp)
    a_lo, step, raised = _nonzero_magnitudes(first, last, k)
    limit = _bf16_floor(math.floor(math.ldexp(ZERO_CODE_LIMIT / float(scale), -unit_exp)))
    copies, finer = _corrections(first - (k * a_lo + raised * step), last - first, limit)
    if copies + len(finer) > n - k:
        raise ValueError(f"w_ternary has {n - k} zero codes among {n} weights; weight_scale "
                         f"{scale!s} needs {copies + len(finer)} of them for the sum of "
                         f"|W| to give it back exactly")
    _bf16_bits([a_lo + step], unit_exp, scale)  # a_hi, written as a_lo's bits + 1, in range too
    value_bits = _bf16_bits([a_lo, limit, *finer], unit_exp, scale)
    bits = _latent_bits(w_ternary, nonzero, value_bits, raised, copies)
    _check_round_trip(bits, w_ternary, scale)
    return bits
