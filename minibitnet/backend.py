"""The one place that picks the ternary kernels: a registry of named backends.

``minibitnet.load(path, backend=NAME)`` looks NAME up here. A backend is a
:class:`~minibitnet.bitlinear.TernaryKernel`: it prepares each packed weight once at load and
computes the exact int32 product per call. Every backend returns the same integers, so the logits
of every backend are bit-identical; they differ only in speed and memory.

This is also the only module that imports ``minibitnet.fast`` (the mypyc-compiled kernels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .bitlinear import ReferenceKernel, TernaryKernel
from .errors import ArgumentError


@dataclass(frozen=True)
class BackendInfo:
    name: str
    description: str
    factory: Callable[[], TernaryKernel]


_REGISTRY: dict[str, BackendInfo] = {}


def register_backend(name: str, description: str, factory: Callable[[], TernaryKernel]) -> None:
    """Add a backend under ``name`` (e.g. "fast:lut"); the factory builds a fresh kernel."""
    _REGISTRY[name] = BackendInfo(name, description, factory)


def available_backends() -> list[BackendInfo]:
    """Every registered backend, in registration order."""
    return list(_REGISTRY.values())


def get_backend(name: str) -> TernaryKernel:
    """A new kernel for ``name``; an unknown name lists the valid ones."""
    info = _REGISTRY.get(name)
    if info is None:
        valid = ", ".join(_REGISTRY)
        raise ArgumentError(f"unknown backend {name!r}; expected one of: {valid}")
    return info.factory()


register_backend(
    "reference",
    "NumPy: weights unpacked to int8 once, exact int32 matmul (the definition; slow)",
    ReferenceKernel,
)
