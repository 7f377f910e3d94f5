"""The output head: final hidden states -> logits over the vocabulary.

BitNet b1.58 2B4T ties the head to the bf16 token embedding (``tie_word_embeddings``); the head is
a plain float matmul, not a ternary layer. NumPy has no bf16 matmul, so the table must be widened
to float32 (a 16-bit shift, exact) somewhere. Two ways, measured on the 2B4T table
(V = 128256, D = 2560; docs/benchmarks.md, "Output head"):

    "bf16"     keep the 656 MB of bf16 bits memory-mapped and widen CHUNK_ROWS rows at a time into
               a small reused buffer on every call, the chunks shared out between ``threads``
               Python threads (NumPy lets go of the GIL while it copies and multiplies): no copy
               at load; 60 ms a token on 2 threads, 121 ms on one (BLAS on one thread each)
    "float32"  widen the whole table once at load: 1.31 GB of float32 in memory and about 3 s,
               then one BLAS matrix-vector product per token (68 ms on one BLAS thread)

Each logit is the float32 dot product of one table row with h in both, but not always summed in
the same order: BLAS may sum a chunk of one row differently from the full product. So every
backend builds the same head with the same storage (``DEFAULT_STORAGE``), and the chunks start at
multiples of CHUNK_ROWS whatever the thread count, so the logits of all backends and thread
counts stay bit-identical. bf16 is the default: as fast on two threads, half the bytes read per
token, nothing widened at load.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

import numpy as np

from .bfloat16 import bf16_to_float32

STORAGES = ("float32", "bf16")
DEFAULT_STORAGE = "bf16"
# rows widened per step: 512 x 2560 x 4 bytes = 5 MB, small enough to stay in cache while the
# matmul reads it, large enough that the per-chunk Python overhead is negligible
CHUNK_ROWS = 512


def table_rows(table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows of an embedding or head table, widened to float32 (exact for bf16 and float16).

    table:   (V, D) uint16 bf16 bits, or float16 / float32 (the LLaMA families may ship those)
    rows:    (T,) row indices
    returns: (T, D) float32
    """
    picked = table[rows]  # (T, D)
    if picked.dtype == np.uint16:
        return bf16_to_float32(picked)
    return picked.astype(np.float32)


def widen_table(table_bf16: np.ndarray,
                after_read: Callable[[np.ndarray], object] | None = None) -> np.ndarray:
    """The (V, D) float32 widening of a bf16 table, made in row chunks.

    table_bf16: (V, D) uint16 bf16 bits, usually memory-mapped
    after_read: called with each chunk once it is widened (see Model: the loader drops the
                chunk's pages of the memory map from resident memory)
    returns:    (V, D) float32, exact

    subtle: without after_read dropping each chunk's pages, the whole 656 MB bf16 table would
    stay resident beside its 1.31 GB float32 copy and the peak at load would be 2 GB for the head.
    """
    rows, width = table_bf16.shape
    table = np.empty((rows, width), np.float32)  # (V, D)
    bits = table.view(np.uint32)  # (V, D) the same memory, as bit patterns
    for start in range(0, rows, CHUNK_ROWS):
        chunk = table_bf16[start:start + CHUNK_ROWS]  # (chunk, D) uint16
        if chunk.dtype == np.uint16:
            np.left_shift(chunk, 16, out=bits[start:start + CHUNK_ROWS], dtype=np.uint32)
        else:  # a float16 or float32 table (LLaMA families): widened or copied as it is
            table[start:start + CHUNK_ROWS] = chunk
        if after_read is not None:
            after_read(chunk)
    return table


class OutputHead:
    """logits = h @ table.T with ``table`` the (V, D) bf16 weights, widened to float32."""

    def __init__(self, table_bf16: np.ndarray, storage: str = DEFAULT_STORAGE,
                 after_read: Callable[[np.ndarray], object] | None = None,
                 threads: int = 1) -> None:
        """threads: Python threads that share the chunks of the bf16 storage (1: the calling
        thread only); each calls BLAS, so BLAS itself should run on one thread (the loader sees
        to it beside a kernel with threads of its own). The logits do not depend on it."""
        if storage not in STORAGES:
            raise ValueError(f"head storage {storage!r}; expected one of {', '.join(STORAGES)}")
        if threads < 1:
            raise ValueError(f"head threads is {threads}, expected at least 1")
        self.storage = storage
        self.vocab_size, self.hidden_size = table_bf16.shape
        # subtle: the bf16 storage widens bits in place; a float16 or float32 table has no bits
        # to widen that way, so it is always widened whole
        if storage == "float32" or table_bf16.dtype != np.uint16:
            self.table: np.ndarray | None = widen_table(table_bf16, after_read)  # (V, D) float32
            self.table_bf16: np.ndarray | None = None
            self.threads = 1
            return
        self.table = None
        self.table_bf16 = table_bf16  # (V, D) uint16 bf16 bits, memory-mapped
        # the chunk starts, shared out in runs of consecutive chunks, one run per thread
        starts = list(range(0, self.vocab_size, CHUNK_ROWS))
        self.threads = min(threads, len(starts))
        self._runs = [run.tolist() for run in np.array_split(starts, self.threads)]
        # one reused chunk buffer per run, as uint16 pairs: the low half of every float32 stays
        # zero, the high half receives the bf16 bits (at the odd index on little-endian machines)
        self._buffers = [np.zeros((CHUNK_ROWS, 2 * self.hidden_size), np.uint16)
                         for _ in self._runs]
        self._high = 1 if np.little_endian else 0
        self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        self._lock = threading.Lock()  # one call at a time: the buffers are reused

    def _multiply_run(self, hidden: np.ndarray, logits: np.ndarray, run: int) -> None:
        """logits[:, chunk] for the chunks of run ``run``, through that run's buffer."""
        assert self.table_bf16 is not None
        buffer = self._buffers[run]
        for start in self._runs[run]:
            rows = min(CHUNK_ROWS, self.vocab_size - start)
            chunk = buffer[:rows]  # (rows, 2D) uint16
            chunk[:, self._high::2] = self.table_bf16[start:start + rows]  # bf16 bits -> high halves
            widened = chunk.view(np.float32)  # (rows, D) float32
            np.matmul(hidden, widened.T, out=logits[:, start:start + rows])  # (T, rows)

    def __call__(self, hidden: np.ndarray) -> np.ndarray:
        """hidden: (T, D) float32 -> (T, V) float32 logits."""
        if self.table is not None:
            logits: np.ndarray = hidden @ self.table.T  # (T, V)
            return logits
        logits = np.empty((hidden.shape[0], self.vocab_size), np.float32)  # (T, V), filled below
        with self._lock:
            if self._pool is None:
                self._multiply_run(hidden, logits, 0)
                return logits
            runs: list[Future[None]] = [
                self._pool.submit(self._multiply_run, hidden, logits, run)
                for run in range(len(self._runs))]
            try:
                for done in runs:
                    done.result()  # an error in a run is raised here
            finally:
                # subtle: on Ctrl-C the runs still write to their buffers; wait for them, so
                # that the next call (chat goes on after an interrupted reply) finds them free
                wait(runs)
        return logits
