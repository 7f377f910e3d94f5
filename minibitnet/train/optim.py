"""AdamW and the two-stage learning-rate and weight-decay schedule of BitNet b1.58 training.

Schedule, after "BitNet b1.58 2B4T Technical Report" (Ma et al., 2025, section 3.1, "Learning
rate schedule" and "Weight decay schedule"):

- warm-up: the learning rate rises linearly from 0 to ``lr`` over ``warmup`` steps;
- stage 1 (high learning rate, up to mid-training): cosine decay from ``lr`` towards
  ``STAGE1_END * lr``; ternary weights tolerate (and need) a high learning rate early;
- stage 2 (cool-down, second half): the learning rate drops abruptly to ``STAGE2_START * lr`` and
  decays by cosine to 0;
- weight decay follows a cosine from its peak ``weight_decay`` (0.1) down over stage 1 and is 0 in
  stage 2, so the latent weights settle instead of being pulled towards zero while the learning
  rate is small.

The report gives the shape of the schedule, not the ratios; the ratios here are this package's.

AdamW (Loshchilov and Hutter, 2019): Adam moments with bias correction, weight decay decoupled
from the gradient (``w -= lr * wd * w``) and applied to matrices only, not to norm weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

STAGE1_END = 0.5  # stage 1 cosine ends at this fraction of the peak learning rate
STAGE2_START = 0.2  # stage 2 restarts at this fraction of the peak, then decays to 0


@dataclass(frozen=True)
class Schedule:
    """Learning rate and weight decay as functions of the step (0-based) of a ``steps`` run."""

    lr: float  # peak learning rate
    steps: int  # planned length of the run
    warmup: int  # linear warm-up steps
    weight_decay: float = 0.1  # peak weight decay (stage 1)

    @property
    def midpoint(self) -> int:
        return self.steps // 2

    def learning_rate(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        if step < self.midpoint:
            progress = (step - self.warmup) / max(1, self.midpoint - self.warmup)  # 0 -> 1
            return self.lr * (STAGE1_END + (1 - STAGE1_END) * 0.5 * (1 + math.cos(math.pi * progress)))
        progress = (step - self.midpoint) / max(1, self.steps - self.midpoint)  # 0 -> 1
        return self.lr * STAGE2_START * 0.5 * (1 + math.cos(math.pi * progress))

    def decay(self, step: int) -> float:
        if step >= self.midpoint:
            return 0.0
        return self.weight_decay * 0.5 * (1 + math.cos(math.pi * step / max(1, self.midpoint)))


class AdamW:
    """Adam with decoupled weight decay over a dict of float32 arrays, updated in place."""

    def __init__(self, params: dict[str, np.ndarray], beta1: float = 0.9, beta2: float = 0.95,
                 eps: float = 1e-8, clip_norm: float = 1.0) -> None:
        self.beta1, self.beta2, self.eps, self.clip_norm = beta1, beta2, eps, clip_norm
        self.m = {name: np.zeros_like(p) for name, p in params.items()}  # first moments
        self.v = {name: np.zeros_like(p) for name, p in params.items()}  # second moments
        self.t = 0  # updates taken

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float,
             weight_decay: float, decay_mask: dict[str, bool]) -> float:
        """One update. Gradients are first clipped to a global norm of ``clip_norm``.

        returns: the gradient norm before clipping
        """
        norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
        factor = min(1.0, self.clip_norm / (norm + 1e-12))
        self.t += 1
        correction1 = 1 - self.beta1 ** self.t
        correction2 = 1 - self.beta2 ** self.t
        for name, p in params.items():
            g = grads[name] * np.float32(factor)
            m, v = self.m[name], self.v[name]
            m *= np.float32(self.beta1)
            m += np.float32(1 - self.beta1) * g
            v *= np.float32(self.beta2)
            v += np.float32(1 - self.beta2) * g * g
            if decay_mask[name] and weight_decay:
                p *= np.float32(1 - lr * weight_decay)
            update = (m / np.float32(correction1)) / (np.sqrt(v / np.float32(correction2))
                                                       + np.float32(self.eps))
            p -= np.float32(lr) * update
        return norm
