"""``minibitnet.load``: a model folder, cached repo id or the built-in model -> a :class:`Model`.

The one place where the three layers meet: :mod:`minibitnet.formats` reads the files into a
``Weights`` value, :mod:`minibitnet.kernels` turns a backend's name into a kernel object, and
:class:`~minibitnet.core.model.Model` takes both (it imports neither).
"""

from __future__ import annotations

from pathlib import Path

from .config import ModelConfig
from .core.model import Model
from .core.weights import Weights
from .formats.detect import read_model
# the built-in model's folder, offered beside load() too: tutorials name it from here
from .formats.locate import BUILTIN_MODEL_DIR as BUILTIN_MODEL_DIR
from .formats.locate import builtin_model_dir as builtin_model_dir
from .formats.locate import resolve_model
from .kernels.registry import get_backend
from .pages import release_pages


def build_model(config: ModelConfig, weights: Weights, backend: str = "fast",
                threads: int | None = None) -> Model:
    """The model of ``weights`` on the backend named ``backend``, its kernels on ``threads``
    cores (None: the cores this process may use; see :func:`load`).

    The memory-mapped pages of each tensor the model has copied (packed weights into a kernel's
    format) are dropped from resident memory as it goes (pages.py): the data stays on disk, and
    a 2B4T model is not held twice.
    """
    kernel = get_backend(backend, threads)
    blas_threads = share_cores_with_blas(kernel, threads)
    # subtle: the head's threads each call BLAS, so they share the cores only where BLAS runs on
    # one thread: beside a kernel with threads of its own. Elsewhere one head thread calls BLAS
    # on the cores BLAS takes (two head threads over two-thread BLAS measured 361 ms a token on
    # 2B4T, one thread 125 ms).
    kernel_threads = getattr(kernel, "threads", None)
    head_threads = kernel_threads if kernel_threads is not None and blas_threads == 1 else 1
    return Model(config, weights, kernel, after_read=release_pages, head_threads=head_threads)


def share_cores_with_blas(kernel: object, threads: int | None) -> int | None:
    """Limit NumPy's BLAS (the head; dense prefill) so that it and the kernel do not fight over
    the cores; process-wide, through threadpoolctl (installed with the numba extra).

    A kernel that runs its own threads (``kernel.threads``, the numba kernel) gets the cores to
    itself and BLAS runs on the calling thread. subtle: OpenBLAS's threads spin for a while after
    each call, so with both on two cores a 2B4T decode step measured 140-177 ms with BLAS on
    two threads and 118 ms with BLAS on one (docs/benchmarks.md). Otherwise an explicit
    ``threads`` (``-t``) caps BLAS too; None leaves it as NumPy started it.

    returns: the thread count BLAS was limited to, or None where it was left as it was (or
             threadpoolctl is missing)
    """
    if getattr(kernel, "threads", None) is not None:
        limit = 1
    elif threads is not None:
        limit = threads
    else:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without it BLAS keeps its threads (OPENBLAS_NUM_THREADS still works)
        return None
    threadpool_limits(limits=limit, user_api="blas")
    return limit


def load(path: str | Path | None = None, backend: str = "fast",
         threads: int | None = None) -> Model:
    """Load a BitNet b1.58 model folder (config.json + model.safetensors), memory-mapped.

    The folder may also hold bf16 master weights or a bitnet.cpp I2_S .gguf file instead
    (formats/detect.py says how each is recognised).

    path:    a folder, or ORG/NAME of a model in the local Hugging Face cache (formats/locate.py);
             None loads the built-in model
    backend: a name from ``minibitnet info`` ("reference", "fast", "fast:lut", ...); "fast" as on
             the command line. Every backend gives bit-identical logits: only speed differs.
    threads: cores for the kernels that use several (the numba kernel; llama.cpp's -t); None:
             the cores this process may use. The same integers on any count. NumPy's BLAS
             (the head, dense prefill) is limited to match (:func:`share_cores_with_blas`):
             one thread beside the numba kernel, ``threads`` beside the others; with
             ``threads=None`` and a single-threaded kernel it keeps the count it started with
             (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS)
    """
    # an unknown name or a bad thread count: ArgumentError, before reading anything
    get_backend(backend, threads)
    config, weights, _ = read_model(resolve_model(path))
    return build_model(config, weights, backend, threads)
