"""Reading and writing GGUF version 3 (llama.cpp / bitnet.cpp), memory-mapped, every field checked.

The format (ggml's ``docs/gguf.md``), all little-endian::

    "GGUF"                      4-byte magic
    u32 version                 3
    u64 tensor_count, u64 kv_count
    kv_count x  string key, u32 value_type, value
    tensor_count x  string name, u32 n_dims, n_dims x u64 dims, u32 ggml_type, u64 offset
    padding to general.alignment (default 32)
    data section: tensor i at data_start + offset_i, each offset a multiple of the alignment

    string = u64 byte length + UTF-8 bytes (no terminator)
    value  = the scalar of its type, a string, or for ARRAY: u32 element type, u64 count, elements

Dims are in ggml order, fastest first: a row-major (out, in) matrix has dims [in, out];
:attr:`GGUFTensor.shape` gives the NumPy order. Tensor types read here: F32, F16, BF16 and I2_S
(bitnet.cpp, see i2s.py); any other type is refused by number.

Every count, length and offset is checked against the file size before it is used, so a
corrupt or truncated file gives one :class:`CheckpointError` naming the file and what was
expected, never a read outside its bounds nor a huge allocation. Counts are bounded before any
loop over them starts: an array's count times the size of its smallest element must fit in the
bytes left, and the keys, tensors and strings of a header have budgets (MAX_* below), since a
small file of empty strings would otherwise make millions of Python objects. Numeric arrays are
read-only views of the map, read in one piece.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ...errors import CheckpointError, one_line
from ...files import atomic_write, open_regular
from .i2s import BLOCK_WEIGHTS, i2s_num_bytes

MAGIC = b"GGUF"
VERSION = 3
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_ARRAY_DEPTH = 4  # arrays of arrays are allowed; deeper than this is not a model file
# Budgets: a header is read into Python objects, so its counts are bounded by what a model file
# holds, not only by the file size (an 8M-string array of empty strings is a 64 MB file, but
# 8M str objects). Each string costs ~0.1 us to read and ~50 bytes to hold.
MAX_METADATA_KEYS = 2**16  # real files carry about 40 keys
MAX_TENSORS = 2**16  # 2B4T has 332 tensors; llama.cpp's largest models a few thousand
MAX_ARRAY_STRINGS = 2**22  # one string array: a vocabulary (2B4T: 128256) or its merges (280147)
MAX_FILE_STRINGS = 2**23  # the strings (and nested arrays) of all arrays of one file together

# value types of the metadata
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, \
    FLOAT64 = range(13)
SCALAR_FORMATS: dict[int, str] = {
    UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
    FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d",
}
SCALAR_STRUCTS = {kind: struct.Struct(fmt) for kind, fmt in SCALAR_FORMATS.items()}
_LENGTH = struct.Struct("<Q")  # the length before every string
# the fewest bytes one array element takes: a number its size, a string its 8-byte length, an
# array its u32 element type and u64 count; a count beyond (bytes left) / this cannot be true
MIN_ELEMENT_BYTES = {**{kind: unpack.size for kind, unpack in SCALAR_STRUCTS.items()},
                     STRING: 8, ARRAY: 12}
INTEGER_TYPES = (UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64)
FLOAT_TYPES = (FLOAT32, FLOAT64)
VALUE_TYPE_NAMES = ["UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL",
                    "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"]

# ggml tensor types this module reads and writes
F32, F16, BF16, I2_S = 0, 1, 30, 36
TENSOR_TYPE_NAMES = {F32: "F32", F16: "F16", BF16: "BF16", I2_S: "I2_S"}
ELEMENT_DTYPES: dict[int, np.dtype[Any]] = {
    F32: np.dtype("<f4"), F16: np.dtype("<f2"), BF16: np.dtype("<u2"),  # BF16 as raw bits
}


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor info: ``offset`` is relative to the data section."""

    name: str
    dims: tuple[int, ...]  # ggml order, fastest first
    ggml_type: int
    offset: int

    @property
    def shape(self) -> tuple[int, ...]:
        """The NumPy (row-major) shape: dims reversed."""
        return tuple(reversed(self.dims))

    @property
    def type_name(self) -> str:
        return TENSOR_TYPE_NAMES.get(self.ggml_type, str(self.ggml_type))

    @property
    def num_bytes(self) -> int:
        count = math.prod(self.dims)
        if self.ggml_type == I2_S:
            return i2s_num_bytes(count // self.dims[0], self.dims[0])
        return count * ELEMENT_DTYPES[self.ggml_type].itemsize


@dataclass(frozen=True)
class TensorToWrite:
    """A tensor for :func:`write_gguf`: its info, and its bytes made only when written."""

    name: str
    dims: tuple[int, ...]  # ggml order
    ggml_type: int
    produce: Callable[[], np.ndarray]  # -> the tensor's bytes (any dtype, num_bytes long)

    @property
    def num_bytes(self) -> int:
        return GGUFTensor(self.name, self.dims, self.ggml_type, 0).num_bytes


# ---- reading ----


class _Cursor:
    """Reads the header of a mapped file front to back; every read is bounds-checked.

    subtle: reads go through a memoryview of the map with ``struct.unpack_from``, never through
    ``bytes(...)`` copies, and arrays are read in one piece (numbers) or one tight loop
    (strings), so that a header of millions of entries parses in linear time.
    """

    def __init__(self, path: Path, raw: np.ndarray) -> None:
        self.path, self.position, self.size = path, 0, int(raw.shape[0])
        self.buffer = raw.data.cast("B")  # (size,) bytes of the map, no copy
        self.strings_read = 0  # string and array elements of every array so far

    def fail(self, message: str) -> CheckpointError:
        return CheckpointError(one_line(f"{self.path}: {message}"))

    def _truncated(self, count: int, what: str) -> CheckpointError:
        return self.fail(f"file ends at byte {self.size} inside {what} (needs {count} bytes "
                         f"at byte {self.position}; truncated?)")

    def take(self, count: int, what: str) -> bytes:
        if count > self.size - self.position:
            raise self._truncated(count, what)
        start, self.position = self.position, self.position + count
        return bytes(self.buffer[start:self.position])

    def scalar(self, value_type: int, what: str) -> Any:
        unpack = SCALAR_STRUCTS[value_type]
        if unpack.size > self.size - self.position:
            raise self._truncated(unpack.size, what)
        value = unpack.unpack_from(self.buffer, self.position)[0]
        self.position += unpack.size
        return value

    def string(self, what: str) -> str:
        return self.strings(1, what)[0]

    def strings(self, count: int, what: str) -> list[str]:
        """``count`` strings, front to back: the hot loop of a vocabulary (one str each)."""
        buffer, position, size, out = self.buffer, self.position, self.size, []
        read_length = _LENGTH.unpack_from
        for index in range(count):
            if size - position < 8:
                self.position = position
                raise self._truncated(8, what if count == 1 else f"{what}[{index}]")
            length = read_length(buffer, position)[0]
            position += 8
            if length > size - position:
                self.position = position
                raise self._truncated(length, what if count == 1 else f"{what}[{index}]")
            try:
                out.append(str(buffer[position:position + length], "utf-8") if length else "")
            except UnicodeDecodeError:
                shown = what if count == 1 else f"{what}[{index}]"
                raise self.fail(f"{shown} is not valid UTF-8") from None
            position += length
        self.position = position
        return out

    def _check_count(self, count: int, element_type: int, what: str) -> None:
        """Refuse, before any element is read, an array that cannot fit in the rest of the
        file or that would break the budget of strings (see MAX_ARRAY_STRINGS)."""
        smallest = MIN_ELEMENT_BYTES[element_type]
        if count > (self.size - self.position) // smallest:
            raise self.fail(f"{what} claims {count} elements of {smallest} bytes or more, more "
                            f"than the {self.size - self.position} bytes left in the file hold")
        if element_type in SCALAR_STRUCTS:
            return
        if count > MAX_ARRAY_STRINGS:
            raise self.fail(f"{what} holds {count} strings or arrays, expected at most "
                            f"{MAX_ARRAY_STRINGS} (a vocabulary is far smaller)")
        if self.strings_read + count > MAX_FILE_STRINGS:
            raise self.fail(f"{what} brings the strings and arrays of the metadata to "
                            f"{self.strings_read + count}, expected at most {MAX_FILE_STRINGS}")
        self.strings_read += count

    def value(self, value_type: int, what: str, depth: int = 0) -> Any:
        if value_type in SCALAR_STRUCTS:
            return self.scalar(value_type, what)
        if value_type == STRING:
            return self.string(what)
        if value_type != ARRAY:
            raise self.fail(f"{what} has value type {value_type}, expected 0 to 12")
        if depth >= MAX_ARRAY_DEPTH:
            raise self.fail(f"{what} nests arrays deeper than {MAX_ARRAY_DEPTH}")
        element_type = self.scalar(UINT32, what)
        if element_type not in MIN_ELEMENT_BYTES:
            raise self.fail(f"{what} is an array of value type {element_type}, expected 0 to 12")
        count = self.scalar(UINT64, what)
        self._check_count(count, element_type, what)
        if element_type in SCALAR_STRUCTS:  # numbers: one read-only view of the map, no copy
            dtype = np.dtype(SCALAR_FORMATS[element_type])
            array = np.frombuffer(self.buffer, dtype, count, self.position)
            self.position += count * dtype.itemsize
            return array
        if element_type == STRING:
            return self.strings(count, what)
        return [self.value(ARRAY, f"{what}[{i}]", depth + 1) for i in range(count)]


def _parse_tensor_info(cursor: _Cursor, index: int) -> GGUFTensor:
    name = cursor.string(f"the name of tensor {index}")
    what = f"tensor '{name}'"
    n_dims = cursor.scalar(UINT32, what)
    if not 1 <= n_dims <= MAX_DIMS:
        raise cursor.fail(f"{what} has {n_dims} dimensions, expected 1 to {MAX_DIMS}")
    dims = tuple(cursor.scalar(UINT64, what) for _ in range(n_dims))
    if any(d == 0 for d in dims) or math.prod(dims) >= 2**62:
        raise cursor.fail(f"{what} has dims {list(dims)}, expected positive sizes with fewer "
                          "than 2**62 elements")
    ggml_type = cursor.scalar(UINT32, what)
    if ggml_type not in TENSOR_TYPE_NAMES:
        known = ", ".join(f"{n} ({t})" for t, n in TENSOR_TYPE_NAMES.items())
        raise cursor.fail(f"{what} has tensor type {ggml_type}, expected one of {known}")
    if ggml_type == I2_S and dims[0] % BLOCK_WEIGHTS:
        raise cursor.fail(f"{what} is I2_S with rows of {dims[0]} weights, expected a multiple "
                          f"of {BLOCK_WEIGHTS}")
    offset = cursor.scalar(UINT64, what)
    return GGUFTensor(name, dims, ggml_type, offset)


class GGUFFile:
    """A memory-mapped GGUF file: ``metadata`` by key, ``tensors`` by name, views on request."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # np.memmap gets a handle checked to be a regular file: mapping the path itself would
        # block on a FIFO and take /dev/zero for an empty file
        with open_regular(self.path, CheckpointError, "a GGUF file") as handle:
            try:
                size = os.fstat(handle.fileno()).st_size
                # subtle: np.memmap cannot map an empty file; an empty array gives the same errors
                raw = np.memmap(handle, np.uint8, mode="r") if size else np.zeros(0, np.uint8)
            except (OSError, ValueError) as exc:
                raise CheckpointError(f"{self.path}: cannot read ({exc})") from None
        self._raw: np.ndarray = raw
        cursor = _Cursor(self.path, raw)
        magic = cursor.take(4, "the magic number")
        if magic != MAGIC:
            raise cursor.fail(f"starts with {magic!r}, expected the GGUF magic b'GGUF'")
        self.version = cursor.scalar(UINT32, "the version")
        if self.version != VERSION:
            raise cursor.fail(f"is GGUF version {self.version}, expected {VERSION}")
        tensor_count = cursor.scalar(UINT64, "the tensor count")
        kv_count = cursor.scalar(UINT64, "the metadata count")
        # a key-value pair takes at least 13 bytes and a tensor info at least 28
        if kv_count * 13 + tensor_count * 28 > size:
            raise cursor.fail(f"claims {kv_count} metadata entries and {tensor_count} tensors, "
                              f"more than a {size}-byte file can hold")
        if kv_count > MAX_METADATA_KEYS or tensor_count > MAX_TENSORS:
            raise cursor.fail(f"claims {kv_count} metadata entries and {tensor_count} tensors, "
                              f"expected at most {MAX_METADATA_KEYS} entries and {MAX_TENSORS} "
                              "tensors (a model file holds a few hundred)")
        self.metadata: dict[str, Any] = {}
        self.value_types: dict[str, int] = {}
        for index in range(kv_count):
            key = cursor.string(f"metadata key {index}")
            if key in self.metadata:
                raise cursor.fail(f"metadata key '{key}' appears twice")
            value_type = cursor.scalar(UINT32, f"metadata '{key}'")
            self.metadata[key] = cursor.value(value_type, f"metadata '{key}'")
            self.value_types[key] = value_type
        self.tensors: dict[str, GGUFTensor] = {}
        for index in range(tensor_count):
            info = _parse_tensor_info(cursor, index)
            if info.name in self.tensors:
                raise cursor.fail(f"tensor '{info.name}' appears twice")
            self.tensors[info.name] = info
        self.alignment = self._alignment(cursor)
        self.data_start = -(-cursor.position // self.alignment) * self.alignment
        self._check_layout(cursor, size - self.data_start)

    def _alignment(self, cursor: _Cursor) -> int:
        if "general.alignment" not in self.metadata:
            return DEFAULT_ALIGNMENT
        value = self.metadata["general.alignment"]
        if self.value_types["general.alignment"] != UINT32 or value <= 0 or value & (value - 1):
            shown = repr(value)[:40]  # any value type may sit here, an array included
            raise cursor.fail(f"general.alignment is {shown}, expected a UINT32 power of two")
        return int(value)

    def _check_layout(self, cursor: _Cursor, data_size: int) -> None:
        """Each tensor aligned and inside the data section, no two overlapping."""
        end_of_previous, previous = 0, ""
        for info in sorted(self.tensors.values(), key=lambda t: t.offset):
            what = f"tensor '{info.name}'"
            if info.offset % self.alignment:
                raise cursor.fail(f"{what} starts at offset {info.offset}, expected a multiple "
                                  f"of the alignment {self.alignment}")
            if info.offset + info.num_bytes > data_size:
                raise cursor.fail(f"{what} ({info.type_name} {list(info.dims)}, "
                                  f"{info.num_bytes} bytes at offset {info.offset}) runs past "
                                  f"the end of the {max(data_size, 0)}-byte data section "
                                  "(truncated?)")
            if info.offset < end_of_previous:
                raise cursor.fail(f"{what} overlaps tensor '{previous}' (starts at "
                                  f"{info.offset}, the other ends at {end_of_previous})")
            end_of_previous, previous = info.offset + info.num_bytes, info.name

    def error(self, message: str) -> CheckpointError:
        """A CheckpointError naming this file: ``<path>: <message>``."""
        return CheckpointError(f"{self.path}: {message}")

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def raw(self, name: str) -> np.ndarray:
        """The tensor's bytes: (num_bytes,) uint8, a read-only view of the map."""
        info = self.tensors[name]
        start = self.data_start + info.offset
        return self._raw[start:start + info.num_bytes]

    def array(self, name: str) -> np.ndarray:
        """An F32, F16 or BF16 tensor in NumPy order (BF16 as uint16 bits), a view."""
        info = self.tensors[name]
        return self.raw(name).view(ELEMENT_DTYPES[info.ggml_type]).reshape(info.shape)


# ---- writing ----


def _pack_string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def _pack_numbers(element_type: int, elements: Any) -> np.ndarray:
    """(count,) array of the element type's dtype; ValueError for a value it cannot hold."""
    dtype = np.dtype(SCALAR_FORMATS[element_type])
    if not isinstance(elements, np.ndarray) and dtype.kind in "iu":
        # Python ints straight into the element type: a list mixing 0 and 2**63 + 1 would
        # otherwise pass through float64 and lose its low bits; NumPy refuses what does not fit
        elements = list(elements)
        if not all(isinstance(e, (int, np.integer)) for e in elements):
            raise ValueError(f"{VALUE_TYPE_NAMES[element_type]} elements must be integers")
        try:
            return np.array([int(e) for e in elements], dtype=dtype)
        except OverflowError:
            raise ValueError(f"an element does not fit {VALUE_TYPE_NAMES[element_type]}") \
                from None
    values = np.asarray(elements if isinstance(elements, np.ndarray) else list(elements))
    if values.ndim != 1 and values.size:
        raise ValueError(f"array elements of shape {values.shape}, expected a flat list")
    try:
        with np.errstate(over="raise", invalid="raise"):
            numbers = values.reshape(-1).astype(dtype, casting="unsafe")
    except (OverflowError, FloatingPointError, TypeError) as exc:
        raise ValueError(f"cannot pack {VALUE_TYPE_NAMES[element_type]} elements ({exc})") \
            from None
    if values.size and dtype.kind in "iub" and not np.array_equal(numbers, values):
        raise ValueError(f"an element does not fit {VALUE_TYPE_NAMES[element_type]}")
    return numbers


def _pack_value(value_type: int, value: Any) -> bytes:
    if value_type in SCALAR_FORMATS:
        return struct.pack(SCALAR_FORMATS[value_type], value)
    if value_type == STRING:
        return _pack_string(value)
    if value_type == ARRAY:  # value = (element type, elements)
        element_type, elements = value
        if element_type in SCALAR_FORMATS:  # numbers in one piece, as the reader takes them
            numbers = _pack_numbers(element_type, elements)
            return struct.pack("<IQ", element_type, numbers.size) + numbers.tobytes()
        elements = list(elements)
        head = struct.pack("<IQ", element_type, len(elements))
        return head + b"".join(_pack_value(element_type, e) for e in elements)
    raise ValueError(f"unknown GGUF value type {value_type}")


def _write_padding(handle: BinaryIO, position: int, alignment: int) -> int:
    padding = -position % alignment
    handle.write(b"\0" * padding)
    return position + padding


def write_gguf(path: str | Path, metadata: dict[str, tuple[int, Any]],
               tensors: Iterable[TensorToWrite],
               on_bytes: Callable[[int], None] | None = None) -> None:
    """Write a GGUF v3 file atomically, one tensor's bytes in memory at a time.

    metadata: key -> (value type, value); an ARRAY value is (element type, list of elements)
    tensors:  in file order; each ``produce()`` must return exactly ``num_bytes`` bytes
    on_bytes: called after each tensor, with its size in bytes
    """
    tensors = list(tensors)
    alignment = int(metadata.get("general.alignment", (UINT32, DEFAULT_ALIGNMENT))[1])
    header = [MAGIC, struct.pack("<IQQ", VERSION, len(tensors), len(metadata))]
    for key, (value_type, value) in metadata.items():
        header += [_pack_string(key), struct.pack("<I", value_type), _pack_value(value_type, value)]
    offset = 0
    for tensor in tensors:
        offset += -offset % alignment
        header += [_pack_string(tensor.name), struct.pack("<I", len(tensor.dims)),
                   struct.pack(f"<{len(tensor.dims)}Q", *tensor.dims),
                   struct.pack("<IQ", tensor.ggml_type, offset)]
        offset += tensor.num_bytes
    with atomic_write(path) as handle:
        header_bytes = b"".join(header)
        handle.write(header_bytes)
        position = _write_padding(handle, len(header_bytes), alignment)  # the data section
        for tensor in tensors:
            # the data section starts aligned, so aligning file positions aligns the offsets
            position = _write_padding(handle, position, alignment)
            data = np.ascontiguousarray(tensor.produce()).reshape(-1).view(np.uint8)
            if data.nbytes != tensor.num_bytes:
                raise ValueError(f"tensor '{tensor.name}': produced {data.nbytes} bytes, "
                                 f"expected {tensor.num_bytes}")
            handle.write(data.data)
            position += data.nbytes
            if on_bytes is not None:
                on_bytes(data.nbytes)
