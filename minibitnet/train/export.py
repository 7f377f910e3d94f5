"""Trained latent weights -> a model folder in the exact BitNet b1.58 2B4T layout.

What the exported folder holds (see :mod:`minibitnet.formats.checkpoint` for the tensor table):
config.json (``ModelConfig.to_json_dict``), model.safetensors with every projection ternarised by
the absmean quantiser (:func:`minibitnet.core.quant.ternarize_weights`), packed 2 bits per weight
(:func:`minibitnet.core.packing.pack_ternary`) with its ``weight_scale`` as BF16 [1], and the
embedding and norm weights in BF16; tokenizer.json and tokenizer_config.json are written beside
them by :mod:`minibitnet.train.bpe`.

subtle: BF16 keeps 8 significant bits, so the exported weight_scale, norms and embedding differ
from the float32 training values by up to 2^-9 relative. The exported model is therefore not
bit-identical to the training forward pass; its score, measured through ``minibitnet.load``, is
the one reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..formats.checkpoint import WEIGHTS_FILE, expected_tensors
from ..config import ModelConfig
from ..files import atomic_write_text
from ..core.packing import pack_ternary
from ..core.quant import ternarize_weights
from ..formats.safetensors import TensorSpec, write_safetensors
from ..core.bfloat16 import float32_to_bf16
from .model import Params


def export_model(params: Params, config: ModelConfig, out_dir: str | Path,
                 metadata: dict[str, str] | None = None) -> Path:
    """Write config.json and model.safetensors for the latent weights ``params``.

    params: the training parameters (float32, Hugging Face names), see train.model
    returns: the model folder
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = [TensorSpec(name, dtypes[0], shape)
             for name, (shape, dtypes) in expected_tensors(config).items()]

    def produce(spec: TensorSpec) -> np.ndarray:
        if spec.dtype == "U8":  # a projection: ternary codes packed 4 per byte
            w_ternary, _ = ternarize_weights(params[spec.name])
            return pack_ternary(w_ternary)  # (out/4, in) uint8
        if spec.name.endswith(".weight_scale"):  # w ≈ w_ternary / weight_scale
            _, scale = ternarize_weights(params[spec.name.replace("weight_scale", "weight")])
            return float32_to_bf16(np.array([scale], dtype=np.float32))
        return float32_to_bf16(params[spec.name].astype(np.float32))

    write_safetensors(out_dir / WEIGHTS_FILE, specs, produce,
                      metadata={"format": "pt", **(metadata or {})})
    atomic_write_text(out_dir / "config.json", json.dumps(config.to_json_dict(), indent=2) + "\n")
    return out_dir


def export_float(params: Params, path: str | Path) -> None:
    """Write the latent weights unquantised, as BF16 safetensors with the same names.

    For the full-precision twin, which the ternary 2B4T layout cannot hold; read it back with
    :func:`read_float`.
    """
    specs = [TensorSpec(name, "BF16", tuple(p.shape)) for name, p in params.items()]
    write_safetensors(path, specs, lambda spec: float32_to_bf16(params[spec.name]))


def read_float(path: str | Path) -> Params:
    """The float32 parameters of a file written by :func:`export_float`."""
    from ..formats.safetensors import SafetensorsFile

    file = SafetensorsFile(path)
    return {name: np.array(file.float32(name)) for name in file.tensors}
