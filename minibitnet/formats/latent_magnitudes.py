"""How large the bf16 latents for given codes and scale are: exact integer arithmetic.

Steps 1 to 4 of :func:`minibitnet.formats.latents.master_from_ternary`, for n weights of which k have a
nonzero code and a float32 scale s; no array is touched, only a few Python integers.

Every latent is a whole number of units 2^unit_exp, so the loader's float64 sum of |W|
(:func:`minibitnet.core.quant.ternarize_weights`, which this module must agree with bit for bit) is
exact, and only its mean and reciprocal round, as they do on load. The search for the sums that
give back s then runs those same float64 steps on unit counts, and the latents are chosen as
unit counts with at most 8 significant bits, which makes each one a bf16 value:

- the nonzero codes take a_lo or a_hi = a_lo + step, adjacent bf16 magnitudes around
  n / (k s), as many a_hi as keep the sum at or below ``last``;
- what the sum still lacks to reach ``first`` goes on zero codes: ``copies`` times ``limit``
  (the largest bf16 value <= 0.25 / s), then the ``finer`` values, each under ``limit``.

Worked example: codes [1, 0, -1, 0] (n = 4, k = 2) with s = 3 give::

    LatentMagnitudes(unit_exp=-30, first=1431655709, last=1431655822, a_lo=713031680,
                     step=4194304, raised=1, limit=89128960, copies=0, finer=(1392640, 5504))

that is sums of |W| from 1.33333328 to 1.33333339 give back 3.0; a_lo = 0.6640625 and
a_hi = 0.66796875 (the bf16 values either side of 2/3), one of them raised, sum to 1.33203125,
short of ``first`` by 1398045 units; one limit (0.0830078125) is more than that, so the zero
codes get 0.0012969970703125 and 5.125999450683594e-06, ending 99 units above ``first``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.quant import MIN_MEAN_ABS

# A latent whose code is 0 holds at most this / s, so |W s| <= 0.25 stays clear of the 0.5 tie.
ZERO_CODE_LIMIT = 0.25
BF16_DIGITS = 8  # significant bits of a bf16 value, the implicit leading one included
# Sums are counted in units 2^e, every value a whole number of them, and float64 adds them exactly
# while the total stays below 2^53 units. The total is about 2^31 units, or at most n 2^11 where
# the magnitudes or corrections need finer units: under 2^51 for up to 2^40 weights.
MAX_WEIGHTS = 2**40


@dataclass(frozen=True)
class LatentMagnitudes:
    """The few distinct |W| of the latents and how many take each, all in units 2^unit_exp."""

    unit_exp: int            # every value below is a whole number of units 2^unit_exp
    first: int               # the sums of |W| that give back the scale: [first, last]
    last: int
    a_lo: int                # |W| of the nonzero codes ...
    step: int                # ... except the first ``raised``: a_hi = a_lo + step, one bf16 up
    raised: int
    limit: int               # |W| of the first ``copies`` zero codes: bf16 floor of 0.25 / s
    copies: int
    finer: tuple[int, ...]   # one each on the next zero codes; the rest stay 0

    @property
    def corrections(self) -> int:
        """How many zero codes carry a nonzero latent."""
        return self.copies + len(self.finer)


def _bf16_floor(units: int) -> int:
    """Largest integer <= units (>= 0) with at most 8 significant bits.

    Counted in units of a power of two, such an integer is a bf16 value (when in range).
    """
    drop = max(units.bit_length() - BF16_DIGITS, 0)
    return units >> drop << drop


def _unit_exponent(n: int, k: int, scale: np.float32) -> int:
    """e such that sums counted in units 2^e resolve the target sum n / s to 2^-30 and the
    nonzero magnitude n / (k s) and the zero-code limit 0.25 / s to all 8 bf16 digits."""
    target, magnitude = n / float(scale), n / (k * float(scale))
    limit = ZERO_CODE_LIMIT / float(scale)
    return min(math.frexp(target)[1] - 31, math.frexp(magnitude)[1] - 1 - BF16_DIGITS,
               math.frexp(limit)[1] - 1 - BF16_DIGITS)


def _scale_of_sum(units: int, n: int, unit_exp: int) -> np.float32:
    """The scale :func:`ternarize_weights` returns for n latents whose |W| sum to units 2^unit_exp.

    subtle: the same float64 steps as the loader (mean, clamp, reciprocal, then float32), so the
    answer is bit-exact when the float64 sum of the latents is exact, as it is here (every value
    a multiple of the unit, fewer than 2^53 units in all).
    """
    return np.float32(1.0 / max(math.ldexp(units, unit_exp) / n, MIN_MEAN_ABS))


def _smallest_sum_at_most(scale: np.float32, n: int, unit_exp: int, low: int, high: int) -> int:
    """Smallest sum in [low, high] (units) whose scale is <= ``scale``; ``high`` if none is."""
    while low < high:  # the loader's scale never increases with the sum
        middle = (low + high) // 2
        if _scale_of_sum(middle, n, unit_exp) <= scale:
            high = middle
        else:
            low = middle + 1
    return low


def _largest_sum_at_least(scale: np.float32, n: int, unit_exp: int, low: int, high: int) -> int:
    """Largest sum in [low, high] (units) whose scale is >= ``scale``; ``low`` if none is."""
    while low < high:
        middle = (low + high + 1) // 2
        if _scale_of_sum(middle, n, unit_exp) >= scale:
            low = middle
        else:
            high = middle - 1
    return high


def _sum_interval(n: int, scale: np.float32, unit_exp: int) -> tuple[int, int]:
    """[first, last]: the sums of |W|, in units 2^unit_exp, for which the loader returns scale.

    Searched within 2^-16 of n / s: the sums that give s span about 2^-24 of it.
    """
    centre = round(math.ldexp(n / float(scale), -unit_exp))  # >= 2^30 units
    low, high = centre - (centre >> 16), centre + (centre >> 16)
    first = _smallest_sum_at_most(scale, n, unit_exp, low, high)
    last = _largest_sum_at_least(scale, n, unit_exp, low, high)
    if first > last or _scale_of_sum(first, n, unit_exp) != scale:
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


def _corrections(short_by: int, slack: int, limit: int) -> tuple[int, tuple[int, ...]]:
    """Values (units) for zero-code latents that add up to between short_by and short_by + slack.

    returns: how many copies of ``limit``, and the finer values after them: greedy bf16 values,
             each cutting what is left by 2^7 or more, so three bring it within slack whenever
             the tensor has n >= 4 weights (slack is then over 2^-25 n / s, what is left under
             2^-23 / s)
    """
    if short_by <= 0:
        return 0, ()
    left = short_by + slack  # aim at the top of the interval: the greedy values fall short of it
    copies = left // limit
    left -= copies * limit
    finer = []
    while left > slack:
        finer.append(_bf16_floor(left))
        left -= finer[-1]
    return copies, tuple(finer)


def plan_latent_magnitudes(n: int, k: int, scale: np.float32) -> LatentMagnitudes:
    """The magnitudes of the latents for n weights, k >= 1 of them nonzero, and scale s.

    n, k:    Python ints, 1 <= k <= n <= 2^40
    scale:   float32 s, 0 < s <= 1e5
    returns: LatentMagnitudes whose sum of |W|, k a_lo + raised step + copies limit + sum(finer)
             units, lies in [first, last]; whether the tensor has ``corrections`` zero codes
             and whether a_hi lies in bf16's range is for the caller to check
    raises:  ValueError if no float64 mean|W| gives back s
    """
    unit_exp = _unit_exponent(n, k, scale)
    first, last = _sum_interval(n, scale, unit_exp)
    a_lo, step, raised = _nonzero_magnitudes(first, last, k)
    limit = _bf16_floor(math.floor(math.ldexp(ZERO_CODE_LIMIT / float(scale), -unit_exp)))
    copies, finer = _corrections(first - (k * a_lo + raised * step), last - first, limit)
    return LatentMagnitudes(unit_exp, first, last, a_lo, step, raised, limit, copies, finer)
