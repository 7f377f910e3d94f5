"""The one place that picks the ternary kernels: a registry of named backends.

``minibitnet.load(path, backend=NAME, threads=N)`` looks NAME up here. A backend is a
:class:`~minibitnet.core.bitlinear.TernaryKernel`: it prepares each packed weight once at load and
computes the exact int32 product per call. Every backend returns the same integers, so the logits
of every backend, on any number of threads, are bit-identical; they differ only in speed and
memory.

The backends, and the modules that adapt them:

- ``reference``: ``core.bitlinear`` (NumPy integer matmul, the definition);
- ``fast:numba``: :mod:`.numba_kernel`, the checkpoint's packed bytes on N cores (numba, an extra);
- ``fast:lut``, ``fast:bitplane``: :mod:`.mypyc_kernels`, compiled by mypyc at install;
- ``fast:dense``: :mod:`.dense`, unpacked per call and multiplied by NumPy's BLAS;
- ``fast``: the numba kernel when numba is installed, else the mypyc LUT kernel for a few tokens
  and the dense one for many.

Asking for a backend that runs the mypyc kernels while they are interpreted, though nobody asked
for that with ``MINIBITNET_INTERPRETED=1``, prints one warning per process saying why and what
to do; ``MINIBITNET_REQUIRE_COMPILED=1`` (set by CI) makes it an :class:`InstallationError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from . import mypyc as fast
from ..core.bitlinear import ReferenceKernel, TernaryKernel
from ..errors import ArgumentError, InstallationError, warn_once
# the kernel classes and the dense constants, offered here too: tests and tutorials name them
from .dense import DENSE_MAX_IN_FEATURES as DENSE_MAX_IN_FEATURES
from .dense import DENSE_MIN_TOKENS as DENSE_MIN_TOKENS
from .dense import DenseKernel as DenseKernel
from .dense import dense_ternary_matmul as dense_ternary_matmul
from .mypyc_kernels import BitplaneKernel as BitplaneKernel
from .mypyc_kernels import LutKernel as LutKernel
from .numba_kernel import NumbaKernel as NumbaKernel
from .numba_kernel import available_cores as available_cores
from .numba_kernel import numba_import_problem, numba_missing


@dataclass(frozen=True)
class BackendInfo:
    name: str
    description: str
    factory: Callable[[int | None], TernaryKernel]  # threads (None: every core) -> a new kernel
    missing: str | None = None  # why it cannot run in this installation; None: it can


_REGISTRY: dict[str, BackendInfo] = {}
# the backends that run minibitnet.kernels.mypyc's kernels ("fast:dense" is NumPy alone; "fast"
# runs them only without numba)
MYPYC_BACKENDS = ("fast:lut", "fast:bitplane")
REQUIRE_COMPILED_ENV = "MINIBITNET_REQUIRE_COMPILED"


def register_backend(name: str, description: str,
                     factory: Callable[[int | None], TernaryKernel],
                     missing: str | None = None) -> None:
    """Add a backend under ``name`` (e.g. "fast:lut"); ``factory(threads)`` builds a fresh
    kernel. ``missing``: one line saying why it cannot run here and what to install."""
    _REGISTRY[name] = BackendInfo(name, description, factory, missing)


def available_backends(include_missing: bool = False) -> list[BackendInfo]:
    """Every backend that runs in this installation, in registration order; with
    ``include_missing``, also those that need something not installed (``missing`` says what)."""
    return [info for info in _REGISTRY.values() if include_missing or info.missing is None]


def check_compiled() -> None:
    """Warn once, or raise InstallationError under MINIBITNET_REQUIRE_COMPILED=1, when the
    kernels of minibitnet.kernels.mypyc run interpreted without MINIBITNET_INTERPRETED=1."""
    reason = fast.interpreted_reason()
    if reason is None:
        return
    if os.environ.get(REQUIRE_COMPILED_ENV) == "1":
        raise InstallationError(f"{REQUIRE_COMPILED_ENV}=1, but {reason}")
    warn_once(reason)


def check_threads(threads: object) -> None:
    """ArgumentError unless ``threads`` is None (every core) or an integer >= 1."""
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ArgumentError(f"threads is {threads!r}, expected an integer >= 1 (or None: the "
                            f"{available_cores()} cores this process may use)")


def get_backend(name: str, threads: int | None = None) -> TernaryKernel:
    """A new kernel for ``name``; an unknown name lists the valid ones.

    threads: how many cores a multi-threaded kernel (numba) may use; None: the cores this
             process may use. Kernels that run on the calling thread ignore it.
    """
    info = _REGISTRY.get(name)
    if info is None:
        valid = ", ".join(_REGISTRY)
        raise ArgumentError(f"unknown backend {name!r}; expected one of: {valid}")
    if info.missing is not None:
        raise ArgumentError(f"backend {name}: {info.missing}")
    check_threads(threads)
    if name in MYPYC_BACKENDS or (name == "fast" and not _FAST_USES_NUMBA):
        check_compiled()
    return info.factory(None if threads is None else int(threads))


class FastKernel:
    """The fast backend without numba: the LUT kernel for a few tokens, dense NumPy for many."""

    name = "fast"

    def __init__(self, lut_module: ModuleType | None = None) -> None:
        self.lut = LutKernel(lut_module)

    def prepare(self, packed: np.ndarray) -> tuple[Any, np.ndarray]:
        return self.lut.prepare(packed), packed

    def matmul(self, prepared: tuple[Any, np.ndarray], x_q: np.ndarray) -> np.ndarray:
        lut_matrix, packed = prepared
        if x_q.shape[0] >= DENSE_MIN_TOKENS and packed.shape[1] <= DENSE_MAX_IN_FEATURES:
            return dense_ternary_matmul(x_q, packed)
        return self.lut.matmul(lut_matrix, x_q)


def _fast_kernel(threads: int | None) -> TernaryKernel:
    """"fast": the numba kernel for every number of tokens when numba is installed (measured
    faster than dense NumPy from T = 1 to T = 512 on 2560x6912 and 6912x2560, one thread each:
    0.020 against 0.022-0.049 ns/weight for T >= 64; so no dense prefill), else FastKernel."""
    if _FAST_USES_NUMBA:
        problem = numba_import_problem()
        if problem is None:
            return NumbaKernel(threads, name="fast")
        # installed but broken (e.g. built for another NumPy): fast still runs, on the mypyc
        # kernels, as it does without numba; fast:numba itself stays an error
        warn_once(f"{problem}; backend fast runs the mypyc kernels instead")
        check_compiled()
    return FastKernel()


def _kernel_form() -> str:
    """How the mypyc kernels run, for the backend descriptions `minibitnet info` prints."""
    if fast.is_compiled():
        return "compiled"
    if fast.INTERPRETED_REQUESTED:
        return f"interpreted: {fast.INTERPRETED_ENV}=1"
    if fast.compiled_install() is not None:
        return "interpreted: slow, the source tree shadows the compiled install"
    return "interpreted: slow, installed without compiling; reinstall with pip"


_NUMBA_MISSING = numba_missing()  # looked up without importing numba
_FAST_USES_NUMBA = _NUMBA_MISSING is None
_COMPILED_NOTE = _kernel_form()
_NUMBA_DESCRIPTION = ("numba: the checkpoint's packed bytes multiplied as stored, on every core "
                      "(-t/--threads N)")

register_backend(
    "reference",
    "NumPy: weights unpacked to int8 once, exact int32 matmul (the definition; slow)",
    lambda threads: ReferenceKernel(),  # NumPy's integer matmul runs on the calling thread
)
if _FAST_USES_NUMBA:
    register_backend("fast", "the fast:numba kernel for decode and prefill, on every core",
                     _fast_kernel)
else:
    register_backend(
        "fast",
        f"LUT kernel for decode, dense NumPy float32 for {DENSE_MIN_TOKENS}+ tokens "
        f"({_COMPILED_NOTE}; pip install \"minibitnet[numba]\" for the faster numba kernel)",
        _fast_kernel,
    )
register_backend("fast:numba", _NUMBA_DESCRIPTION, NumbaKernel, _NUMBA_MISSING)
# the mypyc kernels run on the calling thread: compiled mypyc code holds the GIL
register_backend("fast:lut", f"base-3 groups, table of partial sums per vector ({_COMPILED_NOTE})",
                 lambda threads: LutKernel())
register_backend("fast:bitplane", f"plus/minus bit planes, SWAR popcount ({_COMPILED_NOTE})",
                 lambda threads: BitplaneKernel())
register_backend("fast:dense", "unpack to float32 per call, NumPy matmul (exact below 2^24)",
                 lambda threads: DenseKernel())  # NumPy's BLAS picks its own threads
