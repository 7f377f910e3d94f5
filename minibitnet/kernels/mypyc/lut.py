"""The lookup-table kernel: five ternary weights per byte, partial sums looked up, not computed.

T-MAC / bitnet.cpp "TL" style. The layout (defined in ``minibitnet/core/packing.py``, "base-3
groups") stores each run of five weights of a row as one base-3 code in a byte, so a row of
``in`` weights is ``G = ceil(in / 5)`` bytes, padded with zero weights to whole 8-byte words::

    code = (w[5g] + 1) + 3 (w[5g+1] + 1) + 9 (w[5g+2] + 1) + 27 (w[5g+3] + 1) + 81 (w[5g+4] + 1)

Per input vector the kernel first builds, for every group g, the table of all 243 partial sums
``table[243 g + code] = sum_k (trit_k(code) - 1) * x[5g + k]``; then each row's product is one
table read per five weights: no multiplication and no branch in the inner loop. The table is
built once per vector and read by every row, which is why this kernel suits tall matrices. Its
memory (a :class:`LutTable`, allocated once, at load) may be shared by the matrices of one input
width, and remembers the vector it holds: q, k and v (and gate and up) read the same vector, so
the table is filled once for the three, not three times.

Exact: every entry is at most 5 * 128 = 640 in magnitude, so the table is i16 (half the cache
footprint of i32, measurably faster: for in = 6912 it is 672 KB and must stay in L2), and a row
sums at most 128 * in < 2^31, an i32. What this module leaves out: NumPy (the backend converts
arrays to ``bytes`` and ``vec``), and threads (compiled mypyc code holds the GIL).
"""

from __future__ import annotations

from typing import Final, final

from librt.vecs import vec
from mypy_extensions import i16, i32, i64

WEIGHTS_PER_GROUP: Final = 5  # five trits in one byte: 3^5 = 243 <= 256
TABLE_SIZE: Final = 243  # partial sums per group, one per base-3 code
GROUPS_PER_WORD: Final = 8  # eight code bytes per i64 word, little-endian
WORD_TABLE_SIZE: Final = 8 * 243  # table entries covered by one weight word
BYTE_MASK: Final = 255
TILE_WORDS: Final = 64  # weight words (320 columns) per column tile of matvec_into


@final
class LutTable:
    """Room for one vector's table of partial sums, and the vector it holds.

    entries: 8 * words_per_row * 243 i16 (:func:`fill_table`), allocated once
    vector:  the int8 activations (in_features bytes) the entries were filled from; b"" before
             the first fill. A product whose vector equals it reads the entries as they are.
    """

    entries: vec[i16]
    vector: bytes

    def __init__(self, words_per_row: i64) -> None:
        self.entries = vec[i16]([0] * (words_per_row * GROUPS_PER_WORD * TABLE_SIZE))
        self.vector = b""


@final
class LutMatrix:
    """A ternary (out, in) matrix in the base-3 group layout.

    words: out * words_per_row i64 words, row-major; byte k (bits 8k .. 8k+7) of word j of a
           row is the code of group 8j + k (see ``packing.pack_base3_groups``)
    table: where :func:`ternary_matmul` builds each vector's table; pass one LutTable to the
           matrices of one input width to share it (default: a table of the matrix's own)
    """

    out_features: i64
    in_features: i64
    words_per_row: i64
    words: vec[i64]
    table: LutTable

    def __init__(self, out_features: i64, in_features: i64, words_per_row: i64,
                 words: vec[i64], table: LutTable | None = None) -> None:
        if words_per_row != (in_features + 39) // 40:
            raise ValueError(f"words_per_row is {words_per_row}, expected ceil({in_features} / 40)")
        if len(words) != out_features * words_per_row:
            raise ValueError(f"got {len(words)} words, expected {out_features} * {words_per_row}")
        if table is None:
            table = LutTable(words_per_row)
        elif len(table.entries) != words_per_row * GROUPS_PER_WORD * TABLE_SIZE:
            raise ValueError(f"the table has {len(table.entries)} entries, expected "
                             f"{words_per_row} * {GROUPS_PER_WORD} * {TABLE_SIZE}")
        self.out_features = out_features
        self.in_features = in_features
        self.words_per_row = words_per_row
        self.words = words
        self.table = table


def activation(x_q: bytes, index: i64) -> i64:
    """The int8 activation stored (two's complement) in byte ``index`` of x_q."""
    return (i64(x_q[index]) ^ 128) - 128  # 0..127 stay, 128..255 become -128..-1


def fill_table(table: vec[i16], x_q: bytes, start: i64, in_features: i64, groups: i64) -> None:
    """All partial sums of each group of five activations against every ternary pattern.

    x_q:     bytes of int8 activations; this vector is x_q[start : start + in_features]
    groups:  number of groups to cover (a multiple of 8); columns past in_features count as 0
    table:   at least groups * 243 i16; entries 0 .. groups * 243 - 1 are all overwritten:
             entry 243 g + code = sum_k (trit_k(code) - 1) * x[5g + k], each at most
             5 * 128 = 640 in magnitude
    """
    index: i64 = 0
    for g in range(groups):
        column = g * WEIGHTS_PER_GROUP
        # subtle: the last groups may hang over the end of the row; those columns read as 0
        # (and hold zero weights), so they add nothing.
        x0: i64 = 0
        x1: i64 = 0
        x2: i64 = 0
        x3: i64 = 0
        x4: i64 = 0
        if column < in_features:
            x0 = activation(x_q, start + column)
        if column + 1 < in_features:
            x1 = activation(x_q, start + column + 1)
        if column + 2 < in_features:
            x2 = activation(x_q, start + column + 2)
        if column + 3 < in_features:
            x3 = activation(x_q, start + column + 3)
        if column + 4 < in_features:
            x4 = activation(x_q, start + column + 4)
        # codes in increasing order: digit 4 is the most significant, digit 0 the least;
        # digit d stands for the weight d - 1
        s4 = -x4
        d4: i64 = 0  # the digit loops count 0, 1, 2; typed so that mypyc keeps them native
        while d4 < 3:
            s3 = s4 - x3
            d3: i64 = 0
            while d3 < 3:
                s2 = s3 - x2
                d2: i64 = 0
                while d2 < 3:
                    s1 = s2 - x1
                    d1: i64 = 0
                    while d1 < 3:
                        table[index] = i16(s1 - x0)
                        table[index + 1] = i16(s1)
                        table[index + 2] = i16(s1 + x0)
                        index += 3
                        s1 += x1
                        d1 += 1
                    s2 += x2
                    d2 += 1
                s3 += x3
                d3 += 1
            s4 += x4
            d4 += 1


def build_table(x_q: bytes, start: i64, in_features: i64, groups: i64) -> vec[i16]:
    """:func:`fill_table` into a new table of groups * 243 i16, to look at one (the kernel
    fills its matrix's LutTable instead)."""
    table = vec[i16]([0] * (groups * TABLE_SIZE))
    fill_table(table, x_q, start, in_features, groups)
    return table


def matvec_into(acc: vec[i32], out_start: i64, table: vec[i16], matrix: LutMatrix) -> None:
    """acc[out_start + r] += sum over row r of the table entries its codes select (exact).

    This is the hot loop: per weight word, eight table reads (one per five weights). Each entry
    is at most 640 in magnitude, so the eight add up to at most 5120 and fit the i16 sum.

    The columns are taken TILE_WORDS words at a time, every row for one tile before the next:
    the part of the table a tile reads (TILE_WORDS * 1944 i16 entries, 249 KB) then stays in
    the L2 cache while the weights stream past it, where a 6912-wide row would sweep its whole
    672 KB table through a 1 MB L2 once per row. Measured on 2560 x 6912 in alternating builds:
    0.148 and 0.153 ns/weight untiled, 0.129 and 0.138 tiled; 2560-wide rows (one tile) are
    unchanged.
    """
    words = matrix.words
    words_per_row = matrix.words_per_row
    for tile_start in range(0, words_per_row, TILE_WORDS):
        tile_end = min(tile_start + TILE_WORDS, words_per_row)
        for r in range(matrix.out_features):
            row_start = r * words_per_row
            total: i32 = 0  # |total| <= 128 * in < 2^31
            base: i64 = tile_start * WORD_TABLE_SIZE  # group 8 j's entries start at 1944 j
            for j in range(row_start + tile_start, row_start + tile_end):
                word = words[j]
                # mask after every shift: the arithmetic shift of a negative word drags sign
                # bits in
                total += i32(table[base + (word & BYTE_MASK)]
                             + table[base + 243 + ((word >> 8) & BYTE_MASK)]
                             + table[base + 486 + ((word >> 16) & BYTE_MASK)]
                             + table[base + 729 + ((word >> 24) & BYTE_MASK)]
                             + table[base + 972 + ((word >> 32) & BYTE_MASK)]
                             + table[base + 1215 + ((word >> 40) & BYTE_MASK)]
                             + table[base + 1458 + ((word >> 48) & BYTE_MASK)]
                             + table[base + 1701 + ((word >> 56) & BYTE_MASK)])
                base += WORD_TABLE_SIZE
            acc[out_start + r] += total


def ternary_matvec(x_q: bytes, matrix: LutMatrix) -> vec[i32]:
    """The exact integer product of one int8 vector and a ternary matrix.

    x_q:     in_features bytes, int8 activations (two's complement)
    matrix:  (out, in) ternary weights in the base-3 group layout
    returns: out i32, sum_c w[r, c] * x_q[c] for each row r (|sum| <= 128 * in)
    """
    return ternary_matmul(x_q, 1, matrix)


def ternary_matmul(x_q: bytes, num_tokens: i64, matrix: LutMatrix) -> vec[i32]:
    """The exact integer product of T int8 vectors and a ternary matrix.

    x_q:     T * in_features bytes, row-major (T, in) int8 activations
    returns: T * out i32, row-major (T, out): token t's sums at [t * out, (t + 1) * out)
    """
    in_features = matrix.in_features
    if len(x_q) != num_tokens * in_features:
        raise ValueError(f"x_q has {len(x_q)} bytes, expected {num_tokens} * {in_features}")
    out_features = matrix.out_features
    # a new result for every call (the caller keeps it); a vec of [0] * n is one zeroed block
    # in compiled code (20 us for 336,000 entries; an append per entry costs 10 ns)
    acc = vec[i32]([0] * (num_tokens * out_features))
    groups = matrix.words_per_row * GROUPS_PER_WORD
    # subtle: the table may be shared with other matrices, so two calls at once would share it.
    # Compiled mypyc code holds the GIL for a whole call, so threads take turns; the interpreted
    # kernels (MINIBITNET_INTERPRETED=1, for a debugger) must not run one model on two threads.
    table = matrix.table
    for t in range(num_tokens):
        start = t * in_features
        vector = x_q[start:start + in_features]  # x_q itself when T = 1 (no copy)
        # the entries depend on the vector alone: equal bytes, equal table (k and v after q)
        if vector != table.vector:
            fill_table(table.entries, x_q, start, in_features, groups)
            table.vector = vector
        matvec_into(acc, t * out_features, table.entries, matrix)
    return acc
