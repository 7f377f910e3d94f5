"""Tutorial 6: lookup-table kernels (T-MAC / bitnet.cpp "TL"), and each kernel's speed.

Five ternary weights have 3^5 = 243 possible patterns, so one byte can name the pattern (the
base-3 groups of ``packing.py``). For one token, every group of five activations has only 243
possible partial sums -- one per pattern -- and they can be computed once, before any row is
touched. Each row's dot product then becomes one table read per five weights: no multiply, no
branch, no bit fiddling. The table costs 243 entries per five columns per token, shared by all
rows, so it pays off for tall matrices (many rows), which is every matrix of an LLM.

    python tutorials/06_lut_kernels.py --out docs/tutorials/figures
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402
import numpy as np  # noqa: E402

from minibitnet.kernels import mypyc as fast  # noqa: E402
from minibitnet.kernels.registry import LutKernel, available_backends, get_backend  # noqa: E402
from minibitnet.core.bitlinear import ternary_matmul  # noqa: E402
from minibitnet.core.packing import base3_words_per_row, pack_base3_groups, pack_ternary  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"


def ns_per_weight(name: str, w: np.ndarray, x_q: np.ndarray, repeats: int) -> float:
    """Best time of ``repeats`` matrix-vector products with backend ``name``, per weight.

    Each call gets another vector than the call before (x_q, then x_q with its lowest bits
    flipped, in turn), as each token of a decode does: the LUT kernel keeps the table of the
    last vector, and the same vector again would time the product without building it.
    """
    kernel = get_backend(name)
    prepared = kernel.prepare(pack_ternary(w))
    vectors = (x_q, x_q ^ 1)  # (1, in) int8 each
    kernel.matmul(prepared, vectors[1])  # warm up: first-call costs are not the kernel's
    best = float("inf")
    for call in range(repeats):
        x_now = vectors[call % 2]
        start = time.perf_counter()
        kernel.matmul(prepared, x_now)
        best = min(best, time.perf_counter() - start)
    return best * 1e9 / w.size


def main() -> None:
    parser = argparse.ArgumentParser(description="Lookup-table kernels and kernel speeds.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    lut = fast.interpreted_module("lut")  # the .py source, readable and steppable
    rng = np.random.default_rng(6)

    # 1. the table of one group of five activations
    x_q = np.array([10, -3, 7, 0, -128], dtype=np.int8)  # (in = 5,)
    table = list(lut.build_table(x_q.tobytes(), 0, 5, 8))[:243]  # group 0 of a padded row
    print("five activations x =", x_q.tolist())
    for pattern in ([-1, -1, -1, -1, -1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [1, -1, 0, 0, 1]):
        code = sum((w + 1) * 3 ** k for k, w in enumerate(pattern))
        print(f"  weights {pattern!s:21s} code {code:3d}: table[{code:3d}] = {table[code]:+5d} "
              f"= w . x = {int(np.dot(pattern, x_q.astype(np.int64))):+5d}")
    print(f"  ... 243 entries, about one add each (each entry is a neighbour plus or minus one "
          "activation), not five adds each")

    # 2. a row's dot product is a sum of table reads
    w = rng.integers(-1, 2, size=(8, 40)).astype(np.int8)  # (out, in)
    x_q = rng.integers(-128, 128, size=40).astype(np.int8)  # (in,)
    codes = pack_base3_groups(w)  # (out, 8 groups) uint8
    table = list(lut.build_table(x_q.tobytes(), 0, 40, 8))  # (8 * 243,)
    row0 = sum(table[243 * g + int(codes[0, g])] for g in range(8))
    print(f"\nrow 0 of an 8 x 40 matrix: codes {codes[0].tolist()}")
    print(f"  sum of table[243 g + code_g] = {row0}; w[0] . x = "
          f"{int(w[0].astype(np.int64) @ x_q.astype(np.int64))}")
    kernel = LutKernel(lut)
    result = kernel.matmul(kernel.prepare(pack_ternary(w)), x_q[None, :])[0]
    print(f"  lut.ternary_matmul, all rows: {result.tolist()}; equal to the reference: "
          f"{np.array_equal(result, ternary_matmul(x_q[None, :], w)[0])}")

    # 3. measured: every registered kernel, one token (decode), ns per weight
    compiled = fast.is_compiled()
    shape = (2560, 6912) if compiled else (256, 1024)  # interpreted Python is ~1000x slower
    repeats = 5 if compiled else 1
    big_w = rng.integers(-1, 2, size=shape).astype(np.int8)
    big_x = rng.integers(-128, 128, size=(1, shape[1])).astype(np.int8)  # (T=1, in)
    names = [info.name for info in available_backends()]
    print(f"\none token x a {shape[0]} x {shape[1]} matrix, best of {repeats}, "
          f"fast kernels {'compiled' if compiled else 'interpreted (not compiled here)'}:")
    speeds = {}
    for name in names:
        speeds[name] = ns_per_weight(name, big_w, big_x, repeats)
        print(f"  {name:14s} {speeds[name]:9.3f} ns/weight")

    # 4. why the table pays off for tall matrices: the LUT kernel's cost per weight by rows
    rows_list = [8, 32, 128, 512] + ([2048] if compiled else [])
    by_rows: dict[str, list[float]] = {"fast:lut": [], "fast:bitplane": []}
    in_features = shape[1]
    x_row = rng.integers(-128, 128, size=(1, in_features)).astype(np.int8)
    for rows in rows_list:
        w_rows = rng.integers(-1, 2, size=(rows, in_features)).astype(np.int8)
        for name in by_rows:
            if name in names:
                by_rows[name].append(ns_per_weight(name, w_rows, x_row, repeats))
    print(f"\nns/weight by number of rows (in = {in_features}; the table is built once per "
          f"token: {243 * 8 * base3_words_per_row(in_features):,} entries):")
    for name, values in by_rows.items():
        if values:
            print(f"  {name:14s} " + "  ".join(f"{r:>5d} rows {v:8.3f}" for r, v in
                                               zip(rows_list, values)))

    # Figure: kernels side by side, and cost against rows.
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 3.9))
    order = sorted(speeds, key=speeds.get)  # type: ignore[arg-type]
    bars = ax1.barh(order, [speeds[n] for n in order], color="#2e86de")
    ax1.bar_label(bars, fmt="%.3g", fontsize=8, padding=2)
    ax1.set_xscale("log")
    ax1.set_xlim(min(speeds.values()) / 1.5, max(speeds.values()) * 2.5)  # room for the labels
    ax1.set_xlabel("ns per weight (log scale; lower is faster)")
    ax1.set_title(f"One token × {shape[0]}×{shape[1]} "
                  f"({'compiled' if compiled else 'interpreted'})", fontsize=10)
    ax1.invert_yaxis()
    for name, values in by_rows.items():
        if values:
            ax2.plot(rows_list, values, "o-", label=name)
    ax2.set_xscale("log", base=2)
    ax2.set_xticks(rows_list, [str(r) for r in rows_list])
    ax2.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    for axis in (ax1.xaxis, ax2.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(NullFormatter())
    ax2.set_xlabel("rows of the matrix (log scale)")
    ax2.set_ylabel("ns per weight (log scale)")
    ax2.set_title("The table is shared by all rows", fontsize=10)
    ax2.legend()
    fig.suptitle("Tutorial 6: measured speed of each ternary kernel, one thread")
    fig.tight_layout()
    fig.savefig(out / "06_kernel_speed.png", dpi=90)
    plt.close(fig)
    print(f"\nfigure: {out / '06_kernel_speed.png'}")


if __name__ == "__main__":
    main()
