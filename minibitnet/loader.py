"""``minibitnet.load``: a model folder, cached repo id or the built-in model -> a :class:`Model`."""

from __future__ import annotations

from pathlib import Path

from .backend import available_backends, get_backend
from .formats import read_model
# the built-in model's folder, offered beside load() too: tutorials name it from here
from .locate import BUILTIN_MODEL_DIR as BUILTIN_MODEL_DIR
from .locate import builtin_model_dir as builtin_model_dir
from .locate import resolve_model
from .model import Model


def load(path: str | Path | None = None, backend: str = "fast") -> Model:
    """Load a BitNet b1.58 model folder (config.json + model.safetensors), memory-mapped.

    The folder may also hold bf16 master weights or a bitnet.cpp I2_S .gguf file instead
    (formats.py says how each is recognised).

    path:    a folder, or ORG/NAME of a model in the local Hugging Face cache (locate.py);
             None loads the built-in model
    backend: a name from ``minibitnet info`` ("reference", "fast", "fast:lut", ...); "fast" as on
             the command line. Every backend gives bit-identical logits: only speed differs.
    """
    if backend not in {info.name for info in available_backends()}:
        get_backend(backend)  # raises ArgumentError listing the valid names, before any reading
    model_dir = resolve_model(path)
    config, weights, _ = read_model(model_dir)
    return Model(config, weights, backend=backend)
