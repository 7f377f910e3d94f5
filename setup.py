"""Build script: compiles minibitnet/kernels/mypyc/ with mypyc unless MINIBITNET_NO_MYPYC=1.

Everything else about the package lives in pyproject.toml. The compiled modules sit beside the
.py sources they were built from; MINIBITNET_INTERPRETED=1 makes minibitnet.kernels.mypyc import the .py
files instead (see minibitnet/kernels/mypyc/__init__.py).
"""

import os
from pathlib import Path

from setuptools import setup

# The kernels that mypyc compiles, as one unit. __init__.py stays interpreted: it chooses
# between the compiled and the interpreted modules at import time.
FAST_SOURCES = sorted(
    str(path) for path in Path("minibitnet/kernels/mypyc").glob("*.py") if path.name != "__init__.py"
)


def ext_modules() -> list:
    if os.environ.get("MINIBITNET_NO_MYPYC") == "1" or not FAST_SOURCES:
        return []
    from mypyc.build import mypycify

    # opt_level 3 is mypyc's highest; no -march=native, so the wheel runs on any x86-64 / arm64.
    # --follow-imports=silent: mypyc type-checks minibitnet/kernels/mypyc/ (strict, from pyproject.toml),
    # not the NumPy modules that importing the parent package brings in.
    return mypycify(["--follow-imports=silent", *FAST_SOURCES], opt_level="3")


setup(ext_modules=ext_modules())
