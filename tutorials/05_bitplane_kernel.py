"""Tutorial 5: the bit-plane popcount kernel, step by step, interpreted.

The fast kernel ``minibitnet/kernels/mypyc/bitplane.py`` never multiplies. It stores each ternary row as
two bit masks, ``plus`` (+1 weights) and ``minus`` (-1 weights), 64 columns per 64-bit word, and
splits the int8 activations into eight bit planes (bit b of ``u = x + 128``, offset binary so
every value is 0..255). Then, for one row::

    sum_c w[c] x[c] = sum_b 2^b (popcount(plus & U_b) - popcount(minus & U_b)) - 128 (|plus| - |minus|)

This tutorial computes that by hand on a 4 x 10 matrix, then runs the kernel module itself from
its Python source (``minibitnet.kernels.mypyc.interpreted_module``), so that a debugger can step
through every line; the page (docs/tutorials/05-bitplane-kernel.md) shows a pdb session that
stops in ``matvec_into``.

    python tutorials/05_bitplane_kernel.py --out docs/tutorials/figures
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from minibitnet.kernels import mypyc as fast  # noqa: E402
from minibitnet.kernels.registry import BitplaneKernel  # noqa: E402
from minibitnet.core.bitlinear import ternary_matmul  # noqa: E402
from minibitnet.core.packing import pack_bitplanes, pack_ternary  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"
MASK64 = (1 << 64) - 1
COLUMNS = 10  # width of the hand-worked matrix, 1 to 64: each row fits one 64-bit word
ACTIVATION_RANGE = (-128, 128)  # the int8 activations are drawn from [low, high)


def bits(word: int, width: int) -> str:
    """Columns 0..width-1 of a word, column 0 first (the reverse of how binary is written)."""
    return " ".join(str((word >> c) & 1) for c in range(width))


def popcount_steps(word: int) -> list[tuple[str, int]]:
    """The SWAR popcount of bitplane.popcount, one line per step, on an unsigned word."""
    m1, m2, m4 = 0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F
    steps = [("word", word)]
    word = (word - ((word >> 1) & m1)) & MASK64
    steps.append(("2-bit lanes: bits set in each pair", word))
    word = (word & m2) + ((word >> 2) & m2)
    steps.append(("4-bit lanes: sum of two pairs", word))
    word = (word + (word >> 4)) & m4
    steps.append(("bytes: sum of two nibbles", word))
    total = sum((word >> (8 * k)) & 0xFF for k in range(8))  # the kernel: three more fold steps
    steps.append(("sum of the eight bytes", total))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description="The bit-plane kernel, step by step.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    bitplane = fast.interpreted_module("bitplane")  # the .py source, even if compiled
    print(f"kernel module: {bitplane.__name__} from {Path(bitplane.__file__).name} "
          f"(interpreted; the installed kernels are compiled: {fast.is_compiled()})")

    rng = np.random.default_rng(5)
    w = rng.integers(-1, 2, size=(4, COLUMNS)).astype(np.int8)  # (out, in) ternary
    x_q = rng.integers(*ACTIVATION_RANGE, size=COLUMNS).astype(np.int8)  # (in,) int8, one token
    print("\nW =\n" + "\n".join("  " + " ".join(f"{v:+d}" for v in row) for row in w))
    print("x =", x_q.tolist())

    # 1. the weight masks (packing.py defines them once)
    plus, minus = pack_bitplanes(w)  # (4, 1) uint64 each
    print("\nrow 0, column 0 first:")
    print(f"  plus  mask {bits(int(plus[0, 0]), COLUMNS)}   (+1 at these columns)")
    print(f"  minus mask {bits(int(minus[0, 0]), COLUMNS)}   (-1 at these columns)")

    # 2. the activation bit planes
    u = x_q.astype(np.int64) + 128  # (in,) offset binary, 0..255
    planes = [int(sum(((int(u[c]) >> b) & 1) << c for c in range(COLUMNS))) for b in range(8)]
    print("\nu = x + 128 =", u.tolist())
    for b in reversed(range(8)):
        print(f"  U_{b} (weight 2^{b} = {2 ** b:3d}): {bits(planes[b], COLUMNS)}")

    # 3. row 0 by popcounts
    p, m = int(plus[0, 0]), int(minus[0, 0])
    contributions = []
    print("\nrow 0, plane by plane:  2^b * (popcount(plus & U_b) - popcount(minus & U_b))")
    for b in range(8):
        count_plus, count_minus = (p & planes[b]).bit_count(), (m & planes[b]).bit_count()
        contributions.append(2 ** b * (count_plus - count_minus))
        print(f"  b = {b}: 2^{b} * ({count_plus} - {count_minus}) = {contributions[-1]:+5d}")
    offset = -128 * (p.bit_count() - m.bit_count())
    by_planes = sum(contributions) + offset
    print(f"  sum {sum(contributions):+d}, offset -128 * ({p.bit_count()} - {m.bit_count()}) = "
          f"{offset:+d}: total {by_planes:+d}")
    print(f"  direct dot product w[0] . x = {int(w[0].astype(np.int64) @ x_q.astype(np.int64)):+d}")

    # 4. one popcount per plane instead of two: z = plus | minus, and for a -1 weight
    #    -u = (255 - u) - 255, where 255 - u has the complement bits
    z = p | m
    one_count = sum(2 ** b * (z & ~(planes[b] ^ p) & MASK64).bit_count() for b in range(8))
    print(f"\nthe kernel's form: sum_b 2^b popcount(z & ~(U_b ^ plus)) - 128 |plus| - 127 |minus| "
          f"= {one_count - 128 * p.bit_count() - 127 * m.bit_count():+d}")

    # 5. popcount without a popcount instruction: SWAR arithmetic on the word itself
    word = int(rng.integers(0, 2**63))  # a full 64-column word, as in a real row
    print("\nSWAR popcount of one 64-bit word (what bitplane.popcount does, no loop over bits):")
    for label, value in popcount_steps(word):
        print(f"  {value:#018x}  {label}")
    print(f"  bitplane.popcount -> {bitplane.popcount(word)}; bin(word).count('1') -> "
          f"{bin(word).count('1')}")

    # 6. the kernel itself, interpreted, against the reference
    kernel = BitplaneKernel(bitplane)
    matrix = kernel.prepare(pack_ternary(w))  # a bitplane.BitplaneMatrix
    result = list(bitplane.ternary_matvec(x_q.tobytes(), matrix))
    reference = ternary_matmul(x_q[None, :], w)[0].tolist()
    print(f"\nbitplane.ternary_matvec: {result}")
    print(f"reference ternary_matmul: {reference} -> equal: {result == reference}")
    print(f"row offsets stored at load (-128 |plus| - 127 |minus|): {list(matrix.row_offset)}")

    # 7. the price of stepping through Python: interpreted vs compiled, one 256 x 1024 matrix
    big_w = rng.integers(-1, 2, size=(256, 1024)).astype(np.int8)
    big_x = rng.integers(-128, 128, size=(1, 1024)).astype(np.int8)
    for label, module in (("interpreted", bitplane), ("installed", fast.bitplane)):
        big_kernel = BitplaneKernel(module)
        prepared = big_kernel.prepare(pack_ternary(big_w))
        start = time.perf_counter()
        big_kernel.matmul(prepared, big_x)
        seconds = time.perf_counter() - start
        print(f"{label:12s} ({'compiled' if module is fast.bitplane and fast.is_compiled() else 'Python'}): "
              f"{seconds * 1e9 / big_w.size:7.2f} ns/weight")

    # Figure: the planes of row 0 and what each contributes.
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), width_ratios=[1.3, 1])
    grid = np.array([[(planes[b] >> c) & 1 for c in range(COLUMNS)] for b in reversed(range(8))])
    ax1.imshow(grid, cmap="Greys", vmin=0, vmax=1.6, aspect="auto")
    for c in range(COLUMNS):
        colour = {1: "#2e86de", -1: "#c0392b"}.get(int(w[0, c]))
        if colour:
            ax1.axvspan(c - 0.5, c + 0.5, color=colour, alpha=0.25)
    ax1.set_yticks(range(8), [f"U_{b}" for b in reversed(range(8))])
    ax1.set_xticks(range(0, COLUMNS, max(1, COLUMNS // 10)))
    ax1.set_xlabel("column (blue: w = +1, red: w = -1, white: 0)")
    ax1.set_ylabel("activation bit plane")
    ax1.set_title("Bits of u = x + 128 (dark = 1)")
    ax2.bar(range(8), contributions, color=["#2e86de" if v >= 0 else "#c0392b" for v in contributions])
    ax2.axhline(0, color="black", linewidth=0.8)
    ax2.set_xticks(range(8))
    ax2.set_xlabel("bit plane b")
    ax2.set_ylabel("contribution 2^b (n+ - n-) to the sum")
    ax2.set_title(f"Row 0: planes sum to {sum(contributions)}, offset {offset:+d}")
    fig.suptitle("Tutorial 5: a ternary dot product as popcounts of bit planes")
    fig.tight_layout()
    fig.savefig(out / "05_bitplanes.png", dpi=90)
    plt.close(fig)
    print(f"\nfigure: {out / '05_bitplanes.png'}")


if __name__ == "__main__":
    main()
