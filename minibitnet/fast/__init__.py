"""The fast path: typed Python kernels compiled by mypyc at install time.

Two kernels, each a plain annotated module with the same contract as the reference
``minibitnet.bitlinear.ternary_matmul`` (int8 activations and a packed ternary matrix in, exact
integer sums out):

- :mod:`minibitnet.fast.bitplane`: plus / minus bit masks, 64 weights per word, SWAR popcount;
- :mod:`minibitnet.fast.lut`: five weights per base-3 byte, a table of partial sums per vector.

``pip install .`` compiles both with mypyc (see ``setup.py``); the same ``.py`` files run
unchanged as Python. With the environment variable ``MINIBITNET_INTERPRETED=1`` this package
imports the ``.py`` sources even when the compiled modules are installed, so a debugger can step
into a kernel; :func:`is_compiled` says which form is in use. This file itself is never
compiled: it makes that choice. It imports no NumPy and nothing from the rest of the package.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType

KERNEL_MODULES = ("bitplane", "lut")  # the compiled modules, in the order backends list them
INTERPRETED_ENV = "MINIBITNET_INTERPRETED"

_SOURCE_DIR = Path(__file__).resolve().parent


def _load_source(name: str, module_name: str) -> ModuleType:
    """Execute fast/<name>.py as a fresh module called ``module_name`` (never the extension).

    subtle: the import system prefers an extension module over a .py file of the same name,
    so the source is loaded by path. The module is put in sys.modules before it runs, as the
    import system does, so that its classes can find their module.
    """
    path = _SOURCE_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: cannot load the kernel source")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _is_extension(module: ModuleType) -> bool:
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None) or getattr(module, "__file__", None) or ""
    return str(origin).endswith(tuple(EXTENSION_SUFFIXES))


if os.environ.get(INTERPRETED_ENV) == "1":
    bitplane = _load_source("bitplane", f"{__name__}.bitplane")
    lut = _load_source("lut", f"{__name__}.lut")
else:
    from . import bitplane, lut


def is_compiled() -> bool:
    """True when the kernels in use are the mypyc-compiled extension modules."""
    return _is_extension(bitplane) and _is_extension(lut)


_interpreted: dict[str, ModuleType] = {}


def interpreted_module(name: str) -> ModuleType:
    """The kernel module ``name`` ("bitplane" or "lut") run from its .py source.

    When the package is compiled this is a second, interpreted copy under a private name
    (``minibitnet.fast._interpreted_<name>``), so one process can compare both forms; when it
    is not, it is the module in use. Its classes are its own: prepare weights with the same
    module that multiplies them.
    """
    if name not in KERNEL_MODULES:
        raise ValueError(f"unknown kernel module {name!r}; expected one of {KERNEL_MODULES}")
    module = {"bitplane": bitplane, "lut": lut}[name]
    if not _is_extension(module):
        return module
    if name not in _interpreted:
        _interpreted[name] = _load_source(name, f"{__name__}._interpreted_{name}")
    return _interpreted[name]
