"""Dropping the pages of a memory-mapped checkpoint from this process's resident memory.

A checkpoint is opened with ``np.memmap``: reading a tensor faults its pages in, and they stay
counted in the process's resident set (RSS) for as long as the file is mapped, even after the
data has been copied into a kernel's own format. For a 2B4T model that is 0.6 GB of packed
weights read once at load and never again. ``madvise(MADV_DONTNEED)`` on a read-only file
mapping drops those pages from the process only: the data stays in the operating system's page
cache, and a later read of the same view faults it back in, unchanged. Nothing is lost, so this
is safe to call on any view at any time; it only costs a page fault on the next access.

Where ``madvise`` is unavailable (Windows, or an array that is not memory-mapped) it does
nothing.
"""

from __future__ import annotations

import mmap

import numpy as np

_PAGE = mmap.PAGESIZE


def _mapping_of(array: np.ndarray) -> mmap.mmap | None:
    """The ``mmap.mmap`` object behind ``array``, walking its chain of bases, or None."""
    base: object = array
    while base is not None:
        if isinstance(base, mmap.mmap):
            return base
        inner = getattr(base, "_mmap", None)  # np.memmap keeps its mmap here
        if isinstance(inner, mmap.mmap):
            return inner
        base = getattr(base, "base", None)
    return None


def release_pages(array: np.ndarray) -> bool:
    """Drop the pages holding ``array``'s bytes from the resident set (the data stays on disk).

    array:   a contiguous view into a read-only memory map (e.g. SafetensorsFile.array)
    returns: True if pages were released, False if there was nothing to do
    """
    mapping = _mapping_of(array)
    if mapping is None or not hasattr(mapping, "madvise") or array.nbytes == 0:
        return False
    if not array.flags.c_contiguous:
        return False
    map_start = np.frombuffer(mapping, dtype=np.uint8).ctypes.data  # address of the map
    begin = array.ctypes.data - map_start
    end = begin + array.nbytes
    # whole pages covering the array; a neighbour's bytes on its edge pages fault back in if read
    first = begin // _PAGE * _PAGE
    last = min(-(-end // _PAGE) * _PAGE, len(mapping))
    if last <= first:
        return False
    mapping.madvise(mmap.MADV_DONTNEED, first, last - first)
    return True
