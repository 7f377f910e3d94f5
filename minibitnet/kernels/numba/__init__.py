"""The numba kernel: the checkpoint's own packed bytes times int8 activations, on every core.

One module, :mod:`minibitnet.kernels.numba.ternary`: plain loops over NumPy arrays that numba
compiles to machine code on first use (``cache=True`` keeps that code on disk, so the compile
happens once per machine), with ``prange`` spreading the rows over threads and LLVM putting the
columns into the CPU's vector lanes. It multiplies the uint8 weights of the Hugging Face packed
layout (``core/packing.py``) as they lie in the memory-mapped checkpoint: no copy, no second
layout.

numba is an optional extra (``pip install "minibitnet[numba]"``); importing ``ternary`` without
it raises ImportError, which :mod:`minibitnet.kernels.numba_kernel` turns into a one-line error.
``NUMBA_DISABLE_JIT=1`` runs the same source as plain Python, for a debugger. This package
imports nothing else of minibitnet.
"""
