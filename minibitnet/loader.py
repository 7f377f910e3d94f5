"""``minibitnet.load``: a model folder (or the built-in model) -> a ready :class:`Model`."""

from __future__ import annotations

from pathlib import Path

from .backend import available_backends, get_backend
from .errors import ConfigError
from .formats import read_model
from .model import Model

# The model that ships inside the package, used when no path is given.
BUILTIN_MODEL_DIR = Path(__file__).parent / "models" / "shakespeare-ternary"


def builtin_model_dir() -> Path:
    """The folder of the built-in model; ConfigError if this installation has none."""
    if not (BUILTIN_MODEL_DIR / "config.json").is_file():
        raise ConfigError(f"{BUILTIN_MODEL_DIR}: the built-in model is not installed; "
                          "no model was given (pass a model folder)")
    return BUILTIN_MODEL_DIR


def model_folder(path: str | Path | None) -> Path:
    """The model folder for ``path`` (None: the built-in model); ConfigError unless a folder."""
    model_dir = Path(path) if path is not None else builtin_model_dir()
    if not model_dir.is_dir():
        found = "a file" if model_dir.exists() else "no such folder"
        raise ConfigError(f"{model_dir}: {found}, expected a model folder with config.json "
                          "and model.safetensors")
    return model_dir


def load(path: str | Path | None = None, backend: str = "reference") -> Model:
    """Load a BitNet b1.58 model folder (config.json + model.safetensors), memory-mapped.

    The folder may also hold bf16 master weights or a bitnet.cpp I2_S .gguf file instead
    (formats.py says how each is recognised).

    path:    the folder; None loads the built-in model
    backend: a name from ``minibitnet info`` ("reference", "fast", "fast:lut", ...)
    """
    if backend not in {info.name for info in available_backends()}:
        get_backend(backend)  # raises ArgumentError listing the valid names, before any reading
    model_dir = model_folder(path)
    config, weights, _ = read_model(model_dir)
    return Model(config, weights, backend=backend)
