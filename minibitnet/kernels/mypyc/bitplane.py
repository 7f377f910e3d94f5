"""The bit-plane kernel: ternary rows as two bit masks, activations as eight bit planes, popcount.

The weight layout (defined in ``minibitnet/core/packing.py``, "bit planes") keeps two masks per row,
64 weights per i64 word: ``plus`` (weight +1) and ``minus`` (weight -1). Per call the int8
activations become offset-binary bytes ``u = x + 128`` in [0, 255], split into eight bit planes
``U_b`` (bit b of every u, 64 columns per word). Then, with ``Z = plus | minus``::

    sum_c w[c] * u[c] = sum_b 2^b * (popcount(plus & U_b) - popcount(minus & U_b))
                      = sum_b 2^b * popcount(Z & ~(U_b ^ plus)) - 255 * |minus|

because for a -1 weight ``-u = (255 - u) - 255`` and ``255 - u`` has the bits of ``~U_b``. One
popcount per plane instead of two. Finally ``x = u - 128``, so::

    sum_c w[c] * x[c] = sum_b 2^b * popcount(Z & ~(U_b ^ plus)) - 128 * |plus| - 127 * |minus|

Popcount is SWAR arithmetic on i64 (``int.bit_count`` is a boxed call under mypyc and counts
``abs(x)``, wrong for a negative word). Planes are counted in 4-bit lanes, weighted by 2^b while
the lanes still have room, and summed in 16-bit lanes across up to 8 words before one horizontal
add: every lane bound is proven in a comment, and every shift is masked, so compiled (wrapping
i64) and interpreted (unbounded int) arithmetic agree.
"""

from __future__ import annotations

from typing import Final, final

from librt.vecs import vec
from mypy_extensions import i32, i64

BITS_PER_WORD: Final = 64
PLANES: Final[i64] = 8  # bits of an offset-binary int8
TOP_BIT: Final[i64] = -9223372036854775807 - 1  # bit 63 of an i64 word, as a signed value
MAX_I64: Final[i64] = 9223372036854775807  # bits 0..62
M1: Final[i64] = 0x5555555555555555  # low bit of each 2-bit lane
M2: Final[i64] = 0x3333333333333333  # low 2 bits of each 4-bit lane
M4: Final[i64] = 0x0F0F0F0F0F0F0F0F  # low 4 bits of each byte
M8: Final[i64] = 0x00FF00FF00FF00FF  # low byte of each 16-bit lane
M16: Final[i64] = 0x0000FFFF0000FFFF  # low 16 bits of each 32-bit lane
M32: Final[i64] = 0x00000000FFFFFFFF  # low 32 bits
WORDS_PER_FLUSH: Final = 8  # 16-bit lanes gain <= 4080 per word: 8 words stay < 2^15


@final
class BitplaneMatrix:
    """A ternary (out, in) matrix as plus / minus bit planes, with a constant per row.

    plus, minus: out * words_per_row i64 words, row-major; bit i of word j of a row is column
                 64 j + i (see ``packing.pack_bitplanes``)
    row_offset:  out i64, -128 * |plus row| - 127 * |minus row| (the offset-binary correction)
    not_u:       8 * words_per_row i64, room for one vector's activation planes
                 (:func:`activation_planes`), allocated here once and rewritten by every call
    """

    out_features: i64
    in_features: i64
    words_per_row: i64
    plus: vec[i64]
    minus: vec[i64]
    row_offset: vec[i64]
    not_u: vec[i64]

    def __init__(self, out_features: i64, in_features: i64, words_per_row: i64,
                 plus: vec[i64], minus: vec[i64]) -> None:
        if words_per_row != (in_features + 63) // 64:
            raise ValueError(f"words_per_row is {words_per_row}, expected ceil({in_features} / 64)")
        if len(plus) != out_features * words_per_row or len(minus) != len(plus):
            raise ValueError(f"got {len(plus)} plus and {len(minus)} minus words, "
                             f"expected {out_features} * {words_per_row} each")
        self.out_features = out_features
        self.in_features = in_features
        self.words_per_row = words_per_row
        self.plus = plus
        self.minus = minus
        self.row_offset = vec[i64]([0] * out_features)
        for r in range(out_features):
            plus_count: i64 = 0
            minus_count: i64 = 0
            for j in range(r * words_per_row, (r + 1) * words_per_row):
                plus_count += popcount(plus[j])
                minus_count += popcount(minus[j])
            self.row_offset[r] = -128 * plus_count - 127 * minus_count
        self.not_u = vec[i64]([0] * (PLANES * words_per_row))


def popcount(word: i64) -> i64:
    """Number of set bits of a 64-bit word (bit 63 counts as one bit, not as a sign)."""
    m1: i64 = M1  # see matvec_into: a local copy of a large constant stays unboxed
    word = word - ((word >> 1) & m1)  # 2-bit lanes: 0..2
    word = (word & M2) + ((word >> 2) & M2)  # 4-bit lanes: 0..4
    word = (word + (word >> 4)) & M4  # bytes: 0..8
    word = (word & M8) + ((word >> 8) & M8)  # 16-bit lanes: 0..16
    word = (word & M16) + ((word >> 16) & M16)  # 32-bit lanes: 0..32
    return (word & M32) + ((word >> 32) & M32)  # 0..64


def activation_planes(planes: vec[i64], x_q: bytes, start: i64, in_features: i64,
                      words_per_row: i64) -> None:
    """The complemented bit planes of offset-binary activations, written into ``planes``.

    x_q:     bytes of int8 activations; this vector is x_q[start : start + in_features]
    planes:  8 * words_per_row i64, every word overwritten: word b * words_per_row + j holds ~U_b
             for columns 64 j .. 64 j + 63, where U_b is bit b of u = x + 128 (columns past
             in_features: any bits, since both weight masks are 0 there)
    """
    for j in range(words_per_row):
        for c in range(j * BITS_PER_WORD, (j + 1) * BITS_PER_WORD):
            u: i64 = 0
            if c < in_features:
                # offset binary u = x + 128 is the stored byte with its top bit flipped: 0..255
                u = i64(x_q[start + c]) ^ 128
            # Shift each plane right by one and put this column's bit on top: after 64 columns,
            # column 64 j + i sits at bit i, and whatever the word held before is shifted out.
            # subtle: not `1 << i`, which mypyc compiles to a C int shift and loses bits
            # 32..63; `& MAX_I64` drops the copied sign bit.
            index = j
            top_bit: i64 = TOP_BIT  # local copies: large Final constants are boxed in mypyc
            max_i64: i64 = MAX_I64
            for b in range(PLANES):
                not_bit = ((u >> b) & 1) ^ 1
                planes[index] = ((planes[index] >> 1) & max_i64) | (-not_bit & top_bit)
                index += words_per_row


def matvec_into(acc: vec[i32], out_start: i64, not_u: vec[i64], matrix: BitplaneMatrix) -> None:
    """acc[out_start + r] = exact sum_c w[r, c] * x[c] for every row r.

    not_u: the 8 complemented activation planes from :func:`activation_planes`

    Per word (64 columns) the eight counts popcount(z & (~U_b ^ p)) are taken in 4-bit lanes
    (each <= 4), paired as n_b + 2 n_{b+1} (<= 12, still one nibble), widened to bytes (<= 24),
    weighted as pair0 + 4 pair1 and pair2 + 4 pair3 (<= 120 per byte), widened to 16-bit lanes
    and combined as low + 16 high (<= 4080 per lane). Up to 8 words add into the 16-bit lanes
    (< 2^15) before one horizontal sum. Written out in one loop body because mypyc does not
    inline calls and a call per plane costs more than the arithmetic.
    """
    plus = matrix.plus
    minus = matrix.minus
    words_per_row = matrix.words_per_row
    stride = words_per_row
    # subtle: a Final constant of 2^62 or more is a boxed Python int in mypyc's output, converted
    # at every use; a local i64 copy is a register.
    m1: i64 = M1
    for r in range(matrix.out_features):
        row_start = r * words_per_row
        total: i64 = matrix.row_offset[r]
        j: i64 = 0
        while j < words_per_row:
            lanes: i64 = 0  # four 16-bit lanes, each < 8 * 4080 < 2^15 (never the sign bit)
            stop = min(j + WORDS_PER_FLUSH, words_per_row)
            while j < stop:
                p = plus[row_start + j]
                z = p | minus[row_start + j]
                # planes 0 and 1 -> q0, 2 and 3 -> q1, 4 and 5 -> q2, 6 and 7 -> q3 (nibbles)
                a = z & (not_u[j] ^ p)
                a = a - ((a >> 1) & m1)
                q0 = (a & M2) + ((a >> 2) & M2)
                a = z & (not_u[j + stride] ^ p)
                a = a - ((a >> 1) & m1)
                q0 += ((a & M2) + ((a >> 2) & M2)) << 1
                a = z & (not_u[j + 2 * stride] ^ p)
                a = a - ((a >> 1) & m1)
                q1 = (a & M2) + ((a >> 2) & M2)
                a = z & (not_u[j + 3 * stride] ^ p)
                a = a - ((a >> 1) & m1)
                q1 += ((a & M2) + ((a >> 2) & M2)) << 1
                a = z & (not_u[j + 4 * stride] ^ p)
                a = a - ((a >> 1) & m1)
                q2 = (a & M2) + ((a >> 2) & M2)
                a = z & (not_u[j + 5 * stride] ^ p)
                a = a - ((a >> 1) & m1)
                q2 += ((a & M2) + ((a >> 2) & M2)) << 1
                a = z & (not_u[j + 6 * stride] ^ p)
                a = a - ((a >> 1) & m1)
                q3 = (a & M2) + ((a >> 2) & M2)
                a = z & (not_u[j + 7 * stride] ^ p)
                a = a - ((a >> 1) & m1)
                q3 += ((a & M2) + ((a >> 2) & M2)) << 1
                # nibbles -> bytes, weighted: low = q0 + 4 q1, high = q2 + 4 q3 (each <= 120)
                low = ((q0 & M4) + ((q0 >> 4) & M4)) + (((q1 & M4) + ((q1 >> 4) & M4)) << 2)
                high = ((q2 & M4) + ((q2 >> 4) & M4)) + (((q3 & M4) + ((q3 >> 4) & M4)) << 2)
                # bytes -> 16-bit lanes; the high planes weigh 2^4 more: low + 16 high <= 4080
                lanes += ((low & M8) + ((low >> 8) & M8)
                          + (((high & M8) + ((high >> 8) & M8)) << 4))
                j += 1
            lanes = (lanes & M16) + ((lanes >> 16) & M16)  # two 32-bit lanes
            total += (lanes & M32) + (lanes >> 32)
        acc[out_start + r] = i32(total)


def ternary_matvec(x_q: bytes, matrix: BitplaneMatrix) -> vec[i32]:
    """The exact integer product of one int8 vector and a ternary matrix.

    x_q:     in_features bytes, int8 activations (two's complement)
    matrix:  (out, in) ternary weights as bit planes
    returns: out i32, sum_c w[r, c] * x_q[c] for each row r (|sum| <= 128 * in)
    """
    return ternary_matmul(x_q, 1, matrix)


def ternary_matmul(x_q: bytes, num_tokens: i64, matrix: BitplaneMatrix) -> vec[i32]:
    """The exact integer product of T int8 vectors and a ternary matrix.

    x_q:     T * in_features bytes, row-major (T, in) int8 activations
    returns: T * out i32, row-major (T, out): token t's sums at [t * out, (t + 1) * out)
    """
    in_features = matrix.in_features
    if len(x_q) != num_tokens * in_features:
        raise ValueError(f"x_q has {len(x_q)} bytes, expected {num_tokens} * {in_features}")
    out_features = matrix.out_features
    # a new result for every call (the caller keeps it); a vec of [0] * n is one zeroed block
    # in compiled code, faster than an append per entry
    acc = vec[i32]([0] * (num_tokens * out_features))
    # subtle: the planes are the matrix's, so two calls on one matrix at once would share them.
    # Compiled mypyc code holds the GIL for a whole call, so threads take turns; the interpreted
    # kernels (MINIBITNET_INTERPRETED=1, for a debugger) must not share a matrix between threads.
    not_u = matrix.not_u
    for t in range(num_tokens):
        activation_planes(not_u, x_q, t * in_features, in_features, matrix.words_per_row)
        matvec_into(acc, t * out_features, not_u, matrix)
    return acc
