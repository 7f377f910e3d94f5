"""Every implementation of the exact ternary product, for tests parametrised over all of them.

``ALL_KERNELS`` holds the reference, each registered fast backend as installed (compiled when the
package was built with mypyc), and, when it is compiled, the same kernels run from their .py
sources in this process, so one test run checks both forms. "fast" here is the mypyc one (LUT and
dense); the numba kernel, the "fast" of an installation with numba, is there when numba is, on
one thread and on every core (its plain-Python form, NUMBA_DISABLE_JIT=1, needs a fresh
process: tests/kernels/test_numba.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from minibitnet.kernels import mypyc as fast
from minibitnet.kernels.numba_kernel import NumbaKernel, numba_missing
from minibitnet.kernels.registry import BitplaneKernel, DenseKernel, FastKernel, LutKernel
from minibitnet.core.bitlinear import ReferenceKernel, TernaryKernel


@dataclass(frozen=True)
class KernelCase:
    name: str
    kernel: TernaryKernel
    interpreted: bool  # pure Python: slow, so tests draw fewer and smaller cases


def _cases() -> list[KernelCase]:
    installed_interpreted = not fast.is_compiled()
    cases = [
        KernelCase("reference", ReferenceKernel(), False),
        KernelCase("fast", FastKernel(), installed_interpreted),
        KernelCase("fast:lut", LutKernel(), installed_interpreted),
        KernelCase("fast:bitplane", BitplaneKernel(), installed_interpreted),
        KernelCase("fast:dense", DenseKernel(), False),
    ]
    if numba_missing() is None:
        cases += [
            KernelCase("fast:numba[1 thread]", NumbaKernel(threads=1), False),
            KernelCase("fast:numba", NumbaKernel(), False),  # every core this process may use
        ]
    if fast.is_compiled():
        cases += [
            KernelCase("fast:lut[py]", LutKernel(fast.interpreted_module("lut")), True),
            KernelCase("fast:bitplane[py]", BitplaneKernel(fast.interpreted_module("bitplane")),
                       True),
        ]
    return cases


ALL_KERNELS = _cases()
COMPILED_OR_NUMPY = [case for case in ALL_KERNELS if not case.interpreted]
INTERPRETED = [case for case in ALL_KERNELS if case.interpreted]


def kernel_name(case: KernelCase) -> str:
    return case.name
