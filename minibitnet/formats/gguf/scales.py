"""The I2_S scale of a GGUF tensor <-> the weight_scale of a :class:`TernaryWeight`, kept exact.

An I2_S tensor stores its scale in the direction w ≈ w_ternary * scale, so the scale is
1 / weight_scale (see i2s.py).

subtle: the model divides by weight_scale, so a loaded I2_S scale is inverted, and the inverse
of a float32 does not round-trip: float32(1 / float32(1 / s)) differs from s for about one
bf16 value in six. The loaded weight_scale is therefore 1 / scale rounded to bf16, which gives
back exactly the bf16 weight_scale that every published BitNet b1.58 checkpoint stores (and
that the GGUF of such a checkpoint was made from), so a GGUF and the packed checkpoint it
converts to or from give bit-identical logits. A weight_scale that is not a bf16 number (the
float32 absmean scale of online masters) would move by up to 2^-9 relative; a file written here
from such a model carries the exact values in ``minibitnet.weight_scales`` (ARRAY of FLOAT32,
one per I2_S tensor, in file order), which the reader takes after checking each against its
tensor's scale. bitnet.cpp ignores keys it does not know. The key is written only when the
bf16 rule would not give back every weight_scale, so files of packed checkpoints are unchanged.

gguf_checkpoint.py reads and writes the I2_S tensors with these scales; the file order of the
tensors is gguf_architectures.py's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...config import ModelConfig
from .container import ARRAY, FLOAT32, I2_S, VALUE_TYPE_NAMES, GGUFFile
from .architectures import layer_entries
from ..master import round_scale_to_bf16
from ...core.weights import TernaryWeight, Weights

EXACT_SCALES_KEY = "minibitnet.weight_scales"
# an exact weight_scale must agree with 1 / (its tensor's I2_S scale) this closely (relative);
# the two differ by float32 rounding only, a wrong value or a value of another tensor by more
EXACT_SCALES_TOLERANCE = 2.0 ** -7


def i2s_scale(weight: TernaryWeight) -> np.float32:
    """The I2_S scale of ``weight``: w ≈ w_ternary * scale."""
    return np.float32(1.0 / float(weight.weight_scale))


def weight_scale_metadata(config: ModelConfig, weights: Weights) -> dict[str, tuple[int, Any]]:
    """``minibitnet.weight_scales`` when the bf16 rule of the reader would not give back every
    weight_scale (see the module docstring), else nothing."""
    projections = [value for _, _, value in layer_entries(config, weights)
                   if isinstance(value, TernaryWeight)]  # the I2_S tensors, in file order
    if all(round_scale_to_bf16(np.float32(1.0 / float(i2s_scale(w)))) == w.weight_scale
           for w in projections):
        return {}
    return {EXACT_SCALES_KEY: (ARRAY, (FLOAT32, [float(w.weight_scale) for w in projections]))}


def read_exact_scales(file: GGUFFile) -> dict[str, np.float32] | None:
    """I2_S tensor name -> the weight_scale ``minibitnet.weight_scales`` gives; None without it."""
    if EXACT_SCALES_KEY not in file.metadata:
        return None
    values = file.metadata[EXACT_SCALES_KEY]
    if not isinstance(values, np.ndarray) or values.dtype != np.dtype("<f4"):
        kind = VALUE_TYPE_NAMES[file.value_types[EXACT_SCALES_KEY]]
        raise file.error(f"metadata '{EXACT_SCALES_KEY}' has type {kind}"
                         f"{f' of {values.dtype}' if isinstance(values, np.ndarray) else ''}, "
                         "expected an ARRAY of FLOAT32")
    names = [name for name, info in file.tensors.items() if info.ggml_type == I2_S]
    if values.shape != (len(names),):
        raise file.error(f"metadata '{EXACT_SCALES_KEY}' holds {values.size} values, expected "
                         f"{len(names)} (one per I2_S tensor)")
    return dict(zip(names, (np.float32(v) for v in values)))


def weight_scale_from_i2s(file: GGUFFile, name: str, scale: np.float32,
                          exact: dict[str, np.float32] | None) -> np.float32:
    """The weight_scale of I2_S tensor ``name`` whose scale (1 / weight_scale) is ``scale``."""
    if exact is None:
        # subtle: rounded to bf16, see the module docstring
        weight_scale = round_scale_to_bf16(np.float32(1.0 / float(scale)))
        if not np.isfinite(weight_scale) or weight_scale <= 0:
            raise file.error(f"tensor '{name}' has I2_S scale {scale}, whose inverse is not a "
                             "finite bf16 number")
        return weight_scale
    weight_scale = exact[name]
    if not (np.isfinite(weight_scale) and weight_scale > 0
            and abs(float(weight_scale) * float(scale) - 1.0) <= EXACT_SCALES_TOLERANCE):
        raise file.error(f"metadata '{EXACT_SCALES_KEY}' gives weight_scale {weight_scale} for "
                         f"tensor '{name}', whose I2_S scale is {scale}: expected a positive "
                         f"number within {EXACT_SCALES_TOLERANCE} (relative) of 1 / scale")
    return weight_scale
