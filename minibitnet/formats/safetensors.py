"""Reading and writing the safetensors format, memory-mapped, with every header field checked.

The format (https://github.com/huggingface/safetensors)::

    bytes 0..8        N, the header length, unsigned 64-bit little-endian
    bytes 8..8+N      a JSON object: {"name": {"dtype": "BF16", "shape": [V, D],
                                               "data_offsets": [begin, end]}, ...,
                                      "__metadata__": {"format": "pt"}}   (optional)
    bytes 8+N..       the data section; a tensor's bytes are data[begin:end], little-endian,
                      row-major, packed back to back with no holes

Why not the ``safetensors`` package: NumPy has no bfloat16, and a 1.2 GB checkpoint must not be
read whole. Here the file is mapped with ``np.memmap`` and each tensor is a view into the map,
so opening a 2.4 B-parameter model costs only the header. bf16 tensors are returned as their
raw uint16 bits; :func:`~minibitnet.core.bfloat16.bf16_to_float32` widens them (a 16-bit shift, exact).

Nothing in the file is executed or unpickled: the header is JSON and the rest is raw numbers.
Every header field is checked against the file before any view is made, so a corrupt file gives
a :class:`CheckpointError` naming the file, never a read outside its bounds.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.bfloat16 import bf16_to_float32
from ..errors import CheckpointError, one_line
from ..files import atomic_write, open_regular

# A 2B4T header is ~60 kB; anything beyond this is not a model header but a corrupt length.
MAX_HEADER_BYTES = 100 * 1024 * 1024
# NumPy 1.x arrays have at most 32 dimensions and each must fit a signed 64-bit size; a header
# beyond these would make a view raise a NumPy error instead of a CheckpointError.
MAX_RANK = 32
MAX_DIMENSION = 2**63 - 1

# dtype name in the header -> NumPy storage dtype. BF16 is stored as its raw uint16 bits.
STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype("<u1"),
    "I8": np.dtype("<i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F64": np.dtype("<f8"),
}


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives: ``begin``/``end`` are byte offsets into the data section."""

    name: str
    dtype: str  # header dtype name, e.g. "BF16", "U8"
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def num_elements(self) -> int:
        return math.prod(self.shape)


# ---- reading ----


def _fail(path: Path, message: str) -> CheckpointError:
    # tensor names come from the file and may hold newlines or terminal escapes
    return CheckpointError(one_line(f"{path}: {message}"))


def _show(value: Any, limit: int = 60) -> str:
    """repr of an untrusted header value, cut short so that an error stays one readable line."""
    try:
        text = repr(value)
    except RecursionError:
        return "a deeply nested value"
    return text if len(text) <= limit else text[:limit] + "..."


def _parse_entry(path: Path, name: str, entry: Any) -> TensorInfo:
    if not isinstance(entry, dict):
        raise _fail(path, f"header entry '{name}' is not a JSON object")
    dtype = entry.get("dtype")
    # subtle: a JSON list or object is unhashable, so test the type before the dict lookup
    if not isinstance(dtype, str) or dtype not in STORAGE_DTYPES:
        raise _fail(path, f"tensor '{name}' has unknown dtype {_show(dtype)}, expected one of "
                          f"{', '.join(STORAGE_DTYPES)}")
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise _fail(path, f"tensor '{name}' has shape {_show(shape)}, expected a list of "
                          "non-negative integers")
    if len(shape) > MAX_RANK or math.prod(d for d in shape if d) > MAX_DIMENSION or any(
        d > MAX_DIMENSION for d in shape
    ):
        raise _fail(path, f"tensor '{name}' has shape {_show(shape)}, expected at most "
                          f"{MAX_RANK} dimensions and fewer than 2**63 elements")
    offsets = entry.get("data_offsets")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(
        isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets
    )):
        raise _fail(path, f"tensor '{name}' has data_offsets {_show(offsets)}, expected "
                          "[begin, end] with 0 <= begin")
    begin, end = offsets
    info = TensorInfo(name, dtype, tuple(shape), begin, end)
    expected = info.num_elements * STORAGE_DTYPES[dtype].itemsize
    if end - begin != expected:
        raise _fail(path, f"tensor '{name}' spans {end - begin} bytes, expected {expected} "
                          f"for {dtype} {list(shape)}")
    return info


def read_header(path: str | Path) -> tuple[dict[str, TensorInfo], dict[str, str], int]:
    """Parse and check a safetensors header without reading any tensor data.

    returns: (tensors by name, the __metadata__ strings, byte offset of the data section)
    raises:  CheckpointError naming ``path`` for anything that does not fit the file
    """
    path = Path(path)
    try:
        with open_regular(path, CheckpointError, "a safetensors file") as handle:
            file_size = os.fstat(handle.fileno()).st_size
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise _fail(path, f"file is {file_size} bytes, too short for a safetensors "
                                  "header (expected at least 8)")
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > MAX_HEADER_BYTES:
                raise _fail(path, f"header length {header_len} exceeds the "
                                  f"{MAX_HEADER_BYTES}-byte limit (corrupt or not safetensors)")
            if 8 + header_len > file_size:
                raise _fail(path, f"header length {header_len} runs past the end of the "
                                  f"{file_size}-byte file (truncated?)")
            header_bytes = handle.read(header_len)
    except OSError as exc:
        raise _fail(path, f"cannot read ({exc.strerror or exc})") from None
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    # ValueError covers JSONDecodeError and integers longer than Python's 4300-digit limit
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _fail(path, "header is not valid UTF-8 JSON") from None
    if not isinstance(header, dict):
        raise _fail(path, "header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _fail(path, "__metadata__ is not a JSON object of strings")
    tensors = {name: _parse_entry(path, name, entry) for name, entry in header.items()}
    data_start = 8 + header_len
    _check_layout(path, tensors, file_size - data_start)
    return tensors, metadata, data_start


def _check_layout(path: Path, tensors: dict[str, TensorInfo], data_size: int) -> None:
    """Tensors must tile the data section exactly: in bounds, no overlaps, no holes."""
    position = 0
    for info in sorted(tensors.values(), key=lambda t: (t.begin, t.end)):
        if info.end > data_size:
            raise _fail(path, f"tensor '{info.name}' ends at byte {info.end} of the data "
                              f"section, past its end ({data_size} bytes; truncated file?)")
        if info.begin < position:
            raise _fail(path, f"tensor '{info.name}' overlaps the tensor before it "
                              f"(starts at {info.begin}, previous ends at {position})")
        if info.begin > position:
            raise _fail(path, f"hole of {info.begin - position} bytes before tensor "
                              f"'{info.name}' (expected tensors packed back to back)")
        position = info.end
    if position != data_size:
        raise _fail(path, f"data section is {data_size} bytes but the tensors cover "
                          f"{position} (truncated or trailing bytes)")


class SafetensorsFile:
    """A memory-mapped safetensors file; :meth:`array` returns read-only views, no copies."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tensors, self.metadata, self._data_start = read_header(self.path)
        data_size = max((info.end for info in self.tensors.values()), default=0)
        # subtle: np.memmap cannot map zero bytes, and a file of only empty tensors is valid.
        # The map is sized from the header, not the file, so a file cut short after the header
        # was checked fails here as a CheckpointError rather than in a later view.
        # np.memmap gets a handle checked to be a regular file, not the path: a path swapped
        # for a FIFO since the header was read must not block np.memmap's own open().
        with open_regular(self.path, CheckpointError, "a safetensors file") as handle:
            try:
                self._data: np.ndarray = (
                    np.memmap(handle, dtype=np.uint8, mode="r", offset=self._data_start,
                              shape=(data_size,))
                    if data_size > 0 else np.zeros(0, np.uint8)
                )
            except (OSError, ValueError) as exc:
                raise _fail(self.path, f"cannot map the data section ({exc}; file changed or "
                                       "truncated while opening?)") from None

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def array(self, name: str) -> np.ndarray:
        """The tensor as a read-only view in its storage dtype (BF16 as uint16 bits)."""
        info = self.tensors[name]
        raw = self._data[info.begin:info.end]
        return raw.view(STORAGE_DTYPES[info.dtype]).reshape(info.shape)

    def float32(self, name: str) -> np.ndarray:
        """The tensor widened to a float32 copy (BF16, F16 or F32 in the file)."""
        info = self.tensors[name]
        raw = self.array(name)
        if info.dtype == "BF16":
            return bf16_to_float32(raw)
        if info.dtype in ("F16", "F32"):
            return raw.astype(np.float32)
        raise _fail(self.path, f"tensor '{name}' has dtype {info.dtype}, expected BF16, F16 or F32")


# ---- writing ----


@dataclass(frozen=True)
class TensorSpec:
    """A tensor to write: its header entry, before its bytes exist."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def num_bytes(self) -> int:
        return math.prod(self.shape) * STORAGE_DTYPES[self.dtype].itemsize


def write_safetensors(
    path: str | Path,
    specs: Iterable[TensorSpec],
    produce: Callable[[TensorSpec], np.ndarray | Iterable[np.ndarray]],
    metadata: dict[str, str] | None = None,
    progress: Callable[[TensorSpec], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Stream tensors into a safetensors file, atomically, one tensor in memory at a time.

    specs:    the tensors in file order; the header is written from these first
    produce:  called once per spec, in order; returns its data in the spec's storage dtype and
              shape (BF16 as uint16 bits), or an iterable of chunks in that dtype whose bytes,
              back to back, are the tensor in row-major order (so a 656 MB embedding can be
              made and written a few rows at a time)
    progress: called after each tensor is written
    on_bytes: called after each array or chunk is written, with its size in bytes
    """
    specs = list(specs)
    header: dict[str, Any] = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for spec in specs:
        if spec.name in header:  # a repeated name would leave its first bytes unreachable
            raise ValueError(f"tensor name '{spec.name}' appears twice (or is reserved)")
        header[spec.name] = {"dtype": spec.dtype, "shape": list(spec.shape),
                             "data_offsets": [offset, offset + spec.num_bytes]}
        offset += spec.num_bytes
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)  # pad so tensor data starts 8-byte aligned
    with atomic_write(path) as handle:
        handle.write(struct.pack("<Q", len(header_bytes)))
        handle.write(header_bytes)
        for spec in specs:
            produced = produce(spec)
            expected = STORAGE_DTYPES[spec.dtype]
            if isinstance(produced, np.ndarray) and produced.shape != spec.shape:
                raise ValueError(f"tensor '{spec.name}': produced {produced.dtype} "
                                 f"{produced.shape}, expected {expected} {spec.shape}")
            chunks = [produced] if isinstance(produced, np.ndarray) else produced
            written = 0
            for chunk in chunks:
                if chunk.dtype != expected:
                    raise ValueError(f"tensor '{spec.name}': produced {chunk.dtype}, "
                                     f"expected {expected}")
                data = np.ascontiguousarray(chunk.astype(expected.newbyteorder("<"), copy=False))
                handle.write(data.reshape(-1).view(np.uint8).data)  # its own bytes, no copy
                written += data.nbytes
                if on_bytes is not None:
                    on_bytes(data.nbytes)
            if written != spec.num_bytes:
                raise ValueError(f"tensor '{spec.name}': produced {written} bytes, expected "
                                 f"{spec.num_bytes} for {spec.dtype} {list(spec.shape)}")
            if progress is not None:
                progress(spec)
