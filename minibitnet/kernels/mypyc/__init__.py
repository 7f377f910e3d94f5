"""The fast path: typed Python kernels compiled by mypyc at install time.

Two kernels, each a plain annotated module with the same contract as the reference
``minibitnet.core.bitlinear.ternary_matmul`` (int8 activations and a packed ternary matrix in, exact
integer sums out):

- :mod:`minibitnet.kernels.mypyc.bitplane`: plus / minus bit masks, 64 weights per word, SWAR popcount;
- :mod:`minibitnet.kernels.mypyc.lut`: five weights per base-3 byte, a table of partial sums per vector.

``pip install .`` compiles both with mypyc (see ``setup.py``); the same ``.py`` files run
unchanged as Python. With the environment variable ``MINIBITNET_INTERPRETED=1`` this package
imports the ``.py`` sources even when the compiled modules are installed, so a debugger can step
into a kernel; :func:`is_compiled` says which form is in use. This file itself is never
compiled: it makes that choice. It imports no NumPy and nothing from the rest of the package.

When the kernels run interpreted although nobody set ``MINIBITNET_INTERPRETED=1``,
:func:`interpreted_reason` says why and what to do: either this package is a source tree that
shadows a compiled install (``python`` started inside a clone imports ``./minibitnet/`` first),
or it was installed without compiling. :mod:`minibitnet.kernels.registry` turns that into a warning, or
an error under ``MINIBITNET_REQUIRE_COMPILED=1``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType

KERNEL_MODULES = ("bitplane", "lut")  # the compiled modules, in the order backends list them
INTERPRETED_ENV = "MINIBITNET_INTERPRETED"
# Read once: the modules are chosen once, at import, below.
INTERPRETED_REQUESTED = os.environ.get(INTERPRETED_ENV) == "1"

_SOURCE_DIR = Path(__file__).resolve().parent
_PACKAGE_PARTS = tuple(__name__.split("."))  # ("minibitnet", "kernels", "mypyc"), in a RECORD


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


if INTERPRETED_REQUESTED:
    bitplane = _load_source("bitplane", f"{__name__}.bitplane")
    lut = _load_source("lut", f"{__name__}.lut")
else:
    from . import bitplane, lut


def is_compiled() -> bool:
    """True when the kernels in use are the mypyc-compiled extension modules."""
    return _is_extension(bitplane) and _is_extension(lut)


def compiled_install() -> Path | None:
    """The package folder of an installed minibitnet whose compiled kernels exist on disk, when
    it is not this package's folder; None when there is none.

    subtle: every distribution of the name is looked at, not just the first: ``python`` started
    in a clone finds the clone's own ``minibitnet.egg-info`` (its file list names no compiled
    module) before the installed ``.dist-info``.
    """
    for distribution in importlib.metadata.distributions(name="minibitnet"):
        for file in distribution.files or ():
            *folder, name = file.parts
            if (tuple(folder) == _PACKAGE_PARTS and name.split(".")[0] in KERNEL_MODULES
                    and name.endswith(tuple(EXTENSION_SUFFIXES))):
                kernel = Path(str(distribution.locate_file(file))).resolve()
                if kernel.parent != _SOURCE_DIR and kernel.is_file():
                    return kernel.parents[len(_PACKAGE_PARTS) - 1]
    return None


def interpreted_reason() -> str | None:
    """One line saying why the kernels run interpreted and what to do; None when they are
    compiled or when ``MINIBITNET_INTERPRETED=1`` asked for the sources."""
    if is_compiled() or INTERPRETED_REQUESTED:
        return None
    package = _SOURCE_DIR.parents[len(_PACKAGE_PARTS) - 2]  # the minibitnet folder
    on_purpose = f"or set {INTERPRETED_ENV}=1 to run the sources on purpose"
    installed = compiled_install()
    if installed is not None:
        return (f"the fast kernels run interpreted (many times slower): the source tree "
                f"{package} shadows the compiled install at {installed} (it comes first on "
                f"sys.path, as the folder `python` starts in does); run from outside the clone, "
                f"{on_purpose}")
    return (f"the fast kernels run interpreted (many times slower): {package} has no compiled "
            "kernels (installed with MINIBITNET_NO_MYPYC=1, a failed mypyc build, or a clone "
            "never installed); reinstall with `pip install .` (`pip install -e .` for a clone "
            f"you edit) and read its build output, {on_purpose}")


_interpreted: dict[str, ModuleType] = {}


def interpreted_module(name: str) -> ModuleType:
    """The kernel module ``name`` ("bitplane" or "lut") run from its .py source.

    When the package is compiled this is a second, interpreted copy under a private name
    (``minibitnet.kernels.mypyc._interpreted_<name>``), so one process can compare both forms; when it
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
