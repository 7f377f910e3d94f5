"""minibitnet: readable NumPy BitNet b1.58 (ternary) language models, with a compiled fast path."""

from .config import ModelConfig
from .errors import (
    ArgumentError,
    CheckpointError,
    ConfigError,
    ContextLengthError,
    MinibitnetError,
    NumericalError,
    TokenizerError,
)
from .loader import load
from .model import Model

__all__ = [
    "ArgumentError", "CheckpointError", "ConfigError", "ContextLengthError", "MinibitnetError",
    "Model", "ModelConfig", "NumericalError", "TokenizerError", "load",
]
__version__ = "0.1.0"
