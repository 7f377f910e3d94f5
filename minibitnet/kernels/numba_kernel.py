"""The backend that runs the numba kernel (:mod:`minibitnet.kernels.numba`) on N threads.

``prepare`` keeps the packed weight as it is, usually a read-only view of the memory-mapped
checkpoint: nothing is converted or copied at load, and the kernel reads those bytes on every
call. numba is an optional extra: :func:`numba_missing` says, without importing it, whether it
can be used, and asking for this backend without it is one :class:`ArgumentError` line that says
what to install.

Threads: ``numba.set_num_threads`` holds for the calling thread only, so the count is set again
on every call (about 1 us), which keeps a model right when another thread runs it.
"""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType

import numpy as np

from ..errors import ArgumentError, warn_once

INSTALL_HINT = 'pip install "minibitnet[numba]" (or pip install numba)'


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def numba_missing() -> str | None:
    """None when numba can be imported; else one line saying that it is not and how to fix it.

    Looks for the package without importing it (importing numba takes about half a second).
    """
    try:
        found = importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):  # a broken entry in sys.modules
        found = False
    return None if found else f"numba is not installed; {INSTALL_HINT}"


def _import_kernels() -> tuple[ModuleType, ModuleType]:
    """numba itself and minibitnet.kernels.numba.ternary, or one ArgumentError line."""
    missing = numba_missing()
    if missing is not None:
        raise ArgumentError(f"backend fast:numba: {missing}")
    try:
        import numba

        from .numba import ternary
    except ImportError as error:  # installed but broken, e.g. built for another NumPy
        raise ArgumentError(f"backend fast:numba: numba does not import ({error}); "
                            f"{INSTALL_HINT}") from None
    return numba, ternary


def numba_import_problem() -> str | None:
    """None when numba and the kernel module import; else why not, one line (this imports
    numba, about half a second: call it when the kernel is about to be used)."""
    try:
        _import_kernels()
    except ArgumentError as error:
        return str(error)
    return None


class NumbaKernel:
    """Multiply the checkpoint's packed bytes directly, rows spread over ``threads`` cores."""

    reads_packed = True  # prepare keeps the memory-mapped bytes: their pages must stay resident

    def __init__(self, threads: int | None = None, name: str = "fast:numba") -> None:
        """threads: at most numba's NUMBA_NUM_THREADS; None: the cores this process may use."""
        self.name = name
        self.numba, self.ternary = _import_kernels()
        if self.ternary.cache_problem is not None:
            warn_once(self.ternary.cache_problem)
        most = int(self.numba.config.NUMBA_NUM_THREADS)  # the threads numba starts, fixed
        if threads is None:
            threads = min(available_cores(), most)
        elif threads < 1:
            raise ArgumentError(f"threads is {threads}, expected an integer >= 1")
        elif threads > most:
            raise ArgumentError(f"threads is {threads}, but numba runs at most {most} in this "
                                f"process (NUMBA_NUM_THREADS, by default the cores it may use); "
                                f"set NUMBA_NUM_THREADS={threads} before starting to allow more")
        self.threads = threads

    def prepare(self, packed: np.ndarray) -> np.ndarray:
        """The packed weight itself: (out/4, in) uint8, no copy."""
        if packed.dtype != np.uint8 or packed.ndim != 2:
            raise ArgumentError(f"numba kernel: packed weight is {packed.dtype} {packed.shape}, "
                                "expected (out/4, in) uint8")
        in_features = packed.shape[1]
        if in_features > self.ternary.MAX_IN_FEATURES:
            raise ArgumentError(f"numba kernel: in_features {in_features} is above "
                                f"{self.ternary.MAX_IN_FEATURES}, where int32 sums could overflow")
        return packed

    def matmul(self, prepared: np.ndarray, x_q: np.ndarray) -> np.ndarray:
        """(T, in) int8 -> (T, out) int32, exact."""
        self.numba.set_num_threads(self.threads)
        result: np.ndarray = self.ternary.ternary_matmul(np.ascontiguousarray(x_q, dtype=np.int8),
                                                         prepared)
        return result
