"""Where the time of one forward step goes: ternary matmuls, quantisation, attention, norms, head.

:func:`timed_forward` calls :meth:`Model.forward` itself, the one forward pass, with a
:class:`StepClock` as its ``timer``: the forward and its layers wrap each of their steps (the
names of ``minibitnet.core.model.STEPS``) in ``with timer(step):``, and the clock adds up the
time spent inside each. Nothing here computes any part of the model, so the parts are timed on
the real computation, kernels included (compiled ones too), and the logits are the forward's
own; tests/tools/test_step_timing.py checks them bit for bit against the untimed forward in
every family.

The parts, and the forward's steps that make up each::

    ternary matmuls  "ternary matmul": kernel.matmul, int8 activations x packed ternary weights
    quantisation     "quantize", "rescale": absmax int8 activations before each matmul, and the
                     float rescale of its int32 sums after it
    attention        "rope", "kv cache", "attention": RoPE, the KV cache, scores, softmax and the
                     weighted sum of values
    norms            "rms norm": every RMSNorm (block input and post-attention, the sub-norms, the
                     BitLinear input norms, the final norm)
    head             "head": the output head's float matmul over the vocabulary
    other            "embedding", "rope tables", "activation" (embedding lookup, RoPE tables, the
                     gate's activation), and the time inside no step: residual adds, reshapes, the
                     checks for NaN, the Python between the steps

What runs outside every step is charged to "other", so the parts add up to the wall time of the
forward. Each step costs two clock reads and a few calls, ~0.5 us; a 2B4T token passes ~900
steps, ~0.5 ms of its ~350 ms.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from ..core.kv_cache import KVCache
from ..core.model import Model

PARTS = ("ternary matmuls", "quantisation", "attention", "norms", "head", "other")
PART_OF_STEP = {
    "ternary matmul": "ternary matmuls",
    "quantize": "quantisation", "rescale": "quantisation",
    "rope": "attention", "kv cache": "attention", "attention": "attention",
    "rms norm": "norms",
    "head": "head",
    "embedding": "other", "rope tables": "other", "activation": "other",
}  # a name of model.STEPS -> the part of PARTS it counts towards


class StepClock:
    """A timer for :meth:`Model.forward`: ``with clock(step):`` adds the seconds spent inside the
    block to ``seconds[step]``, and ``calls[step]`` counts the blocks."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)  # step -> total seconds
        self.calls: dict[str, int] = defaultdict(int)  # step -> how many times it ran
        self._step: str | None = None  # the step now running
        self._start = 0.0  # its perf_counter at entry

    def __call__(self, step: str) -> StepClock:
        # subtle: a step inside another would be counted twice, once in each
        assert self._step is None, f"step {step!r} inside step {self._step!r}"
        self._step = step
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self._start
        assert self._step is not None
        self.seconds[self._step] += elapsed
        self.calls[self._step] += 1
        self._step = None


def timed_forward(model: Model, ids: Sequence[int], cache: KVCache
                  ) -> tuple[np.ndarray, dict[str, float]]:
    """``model.forward(ids, cache)`` with the time of each part.

    ids:     (T,) token ids after the ``cache.length`` cached positions
    returns: (T, V) float32 logits, model.forward's own, and seconds by part (every name of
             PARTS); the parts add up to the wall time of the forward
    """
    clock = StepClock()
    start = time.perf_counter()
    logits = model.forward(ids, cache, timer=clock)
    total = time.perf_counter() - start
    seconds = dict.fromkeys(PARTS, 0.0)
    for step, spent in clock.seconds.items():
        seconds[PART_OF_STEP[step]] += spent
    # the steps are disjoint intervals inside [start, start + total]; max() only absorbs rounding
    seconds["other"] += max(0.0, total - sum(clock.seconds.values()))
    return logits, seconds
