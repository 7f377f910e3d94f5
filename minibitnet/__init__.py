"""minibitnet: readable NumPy BitNet b1.58 (ternary) language models, with a compiled fast path.

The public names: ``load``, ``Model``, ``ModelConfig`` and the error types.

subtle: ``load``, ``Model`` and ``ModelConfig`` are imported on first use (PEP 562), not when the
package is. The ``minibitnet`` command imports this package before its ``main`` can catch Ctrl-C;
importing NumPy and the model here would put most of the start-up outside that reach.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (
    ArgumentError,
    CheckpointError,
    ConfigError,
    ContextLengthError,
    InstallationError,
    MinibitnetError,
    NumericalError,
    TokenizerError,
)

if TYPE_CHECKING:
    from .config import ModelConfig
    from .loader import load
    from .core.model import Model

__all__ = [
    "ArgumentError", "CheckpointError", "ConfigError", "ContextLengthError", "InstallationError",
    "MinibitnetError", "Model", "ModelConfig", "NumericalError", "TokenizerError", "load",
]
__version__ = "0.1.0"

# public name -> the module that defines it
_DEFINED_IN = {"load": ".loader", "Model": ".core.model", "ModelConfig": ".config"}


def __getattr__(name: str) -> Any:
    if name not in _DEFINED_IN:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_DEFINED_IN[name], __name__), name)
    globals()[name] = value  # later lookups find it directly
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
