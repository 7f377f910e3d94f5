"""Tutorial 13: one kernel, three compilers -- the same exact product in NumPy, mypyc and numba.

Every backend computes the same integers: int8 activations times ternary weights, int32 sums.
Three of them get there through three different compilers, and what each compiler can do
decides how fast they go:

- ``reference`` is NumPy: the weights unpacked to int8 once, then an int32 matmul whose loops
  are NumPy's own C. NumPy lets go of the GIL inside its loops, so Python threads, each with a
  block of rows, can run at once.
- ``fast:lut`` is typed Python (``kernels/mypyc/lut.py``) that mypyc compiles to C at install.
  The C holds the GIL for the whole call, so Python threads take turns; it checks the bounds of
  every ``vec`` index (an IndexError, never a wild read), and its loops are scalar: one table
  read at a time.
- ``fast:numba`` (``kernels/numba/ternary.py``) is compiled by numba's LLVM at the first call
  and cached on disk. Its ``prange`` loop runs on numba's own threads with the GIL released,
  checks no index (the kernel checks the shapes once, by hand, before the loop), and LLVM turns
  the 32-bit loop into the CPU's vector instructions: int16 dot products where the CPU has them.

The script checks that all of them give the same int32 sums, shows both bounds-check policies,
then measures ns per weight of one token against the number of threads, beside bitnet.cpp's
figure converted from docs/benchmarks.md. Without numba it says so and measures the other two.

    python tutorials/13_one_kernel_three_compilers.py --out docs/tutorials/figures
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402
import numpy as np  # noqa: E402

from minibitnet.errors import ArgumentError  # noqa: E402
from minibitnet.kernels import mypyc as fast  # noqa: E402
from minibitnet.kernels.registry import LutKernel, available_backends, get_backend  # noqa: E402
from minibitnet.core.bitlinear import ternary_matmul  # noqa: E402
from minibitnet.core.packing import pack_ternary  # noqa: E402
from minibitnet.tools.shapes import SHAPES, count_parameters  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"
THREADS = (1, 2)  # the same counts on every machine, so that the output has the same lines
# bitnet.cpp v1 (I2_S) decoding a 2B4T-shaped model, tokens/s by threads: docs/benchmarks.md,
# "A 2B4T-shaped model", measured 2026-12-04 on the machine that recorded these docs (not here)
BITNET_CPP_DECODE = {1: 17.09, 2: 20.78}
COMPILER = {"reference": "NumPy", "fast:lut": "mypyc", "fast:numba": "numba"}
# how each kernel uses N threads: the two that run on the calling thread get N Python threads,
# each with its own block of rows; numba gets N threads of its own (-t N), one call
HOW = {"reference": "N Python threads", "fast:lut": "N Python threads",
       "fast:numba": "prange on N threads"}


def best_seconds(run: Callable[[], np.ndarray], repeats: int) -> float:
    """The shortest of ``repeats`` timed calls of ``run``, after one untimed call."""
    run()  # warm up: first-call costs (numba's cache load, page faults) are not the kernel's
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def python_threads(name: str, w: np.ndarray, x_q: np.ndarray, threads: int,
                   pool: ThreadPoolExecutor) -> Callable[[], np.ndarray]:
    """One token times ``w`` with backend ``name``, the rows split into ``threads`` blocks that
    the pool's Python threads multiply at once: a function returning (1, out) int32."""
    kernel = get_backend(name)
    blocks = [kernel.prepare(pack_ternary(block))  # each block its own prepared matrix
              for block in np.array_split(w, threads, axis=0)]  # (out / threads, in) each
    vectors = in_turn(x_q)

    def run() -> np.ndarray:
        x_now = next(vectors)
        return np.concatenate(list(pool.map(lambda block: kernel.matmul(block, x_now),
                                            blocks)), axis=1)  # (1, out)
    return run


def in_turn(x_q: np.ndarray) -> Iterator[np.ndarray]:
    """x_q, then x_q with its lowest bits flipped, in turn: each call of a timed product gets
    another vector than the call before, as each token of a decode does (the LUT kernel keeps
    the table of the last vector, and would otherwise skip building it)."""
    return itertools.cycle((x_q, x_q ^ 1))


def numba_threads(w: np.ndarray, x_q: np.ndarray, threads: int) -> Callable[[], np.ndarray]:
    """One token times ``w`` with fast:numba on ``threads`` threads of numba's: (1, out) int32."""
    kernel = get_backend("fast:numba", threads=threads)
    prepared = kernel.prepare(pack_ternary(w))  # the packed bytes themselves
    vectors = in_turn(x_q)
    return lambda: kernel.matmul(prepared, next(vectors))


def main() -> None:
    parser = argparse.ArgumentParser(description="One ternary kernel, three compilers.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(13)
    numba = next(info for info in available_backends(include_missing=True)
                 if info.name == "fast:numba")
    names = ["reference", "fast:lut"] + (["fast:numba"] if numba.missing is None else [])
    compiled = fast.is_compiled()
    print(f"mypyc kernels: {'compiled' if compiled else 'interpreted (not compiled here)'}; "
          f"numba: {'installed' if numba.missing is None else numba.missing}")

    # 1. the same int32 sums from every compiler and every number of threads
    shape = (2560, 2560) if compiled else (256, 320)  # interpreted Python is ~1000x slower
    repeats = 5 if compiled else 1
    w = rng.integers(-1, 2, size=shape).astype(np.int8)  # (out, in) ternary
    x_q = rng.integers(-128, 128, size=(1, shape[1])).astype(np.int8)  # (T = 1, in)
    pools = {n: ThreadPoolExecutor(max_workers=n) for n in THREADS}
    runs: dict[str, dict[int, Callable[[], np.ndarray]]] = {name: {} for name in names}
    for name in names:
        for n in THREADS:
            if name != "fast:numba":
                runs[name][n] = python_threads(name, w, x_q, n, pools[n])
                continue
            try:
                runs[name][n] = numba_threads(w, x_q, n)
            except ArgumentError as error:  # a machine where numba runs fewer threads
                print(f"  fast:numba on {n} threads: {error}")
    expected = ternary_matmul(x_q, w)  # (1, out) int32, the definition (core/bitlinear.py)
    print(f"\none token x a {shape[0]} x {shape[1]} ternary matrix: out = {expected.shape[1]} "
          f"int32 sums, the first four {expected[0, :4].tolist()}, their total "
          f"{int(expected.sum(dtype=np.int64))}")
    for name in names:
        for n, run in runs[name].items():
            result = run()
            print(f"  {name:10s} ({COMPILER[name]}) {n} thread{'s' if n > 1 else ' '}: "
                  f"{result.dtype}, equal to the reference: {np.array_equal(result, expected)}")

    # 2. bounds checks: mypyc checks every vec index, numba none (so its kernel checks shapes)
    small_w = rng.integers(-1, 2, size=(8, 80)).astype(np.int8)  # (out, in): 2 words a row
    small_x = rng.integers(-128, 128, size=(1, 80)).astype(np.int8)  # (T = 1, in)
    lut = LutKernel()
    matrix = lut.prepare(pack_ternary(small_w))  # LutMatrix: 2 words of 8 codes per row
    short_table = fast.lut.build_table(small_x.tobytes(), 0, 80, 8)  # the table of word 0 only
    acc = fast.lut.ternary_matvec(small_x.tobytes(), matrix)  # (out,) i32
    print(f"\nbounds checks: fast.lut.matvec_into reading word 1 of each row from a table of "
          f"{len(short_table)} entries (word 0's):")
    try:
        fast.lut.matvec_into(acc, 0, short_table, matrix)
        print("  no error")
    except IndexError as error:
        checker = "the C that mypyc wrote" if compiled else "librt's vec (interpreted)"
        print(f"  {type(error).__name__}: {checker} checks every vec index")
    if "fast:numba" in names:
        kernel = get_backend("fast:numba", threads=1)
        try:
            kernel.matmul(kernel.prepare(pack_ternary(small_w)), small_x[:, :40])
            print("  no error")
        except ValueError as error:
            print(f"  fast:numba given 40 activations for 80 columns: {type(error).__name__}: "
                  f"{error} (checked once by ternary.py: numba compiles its loops without "
                  "bounds checks)")

    # 3. measured: ns per weight against threads
    print(f"\nmeasured, best of {repeats}, ns per weight of one token (lower is faster):")
    speeds: dict[str, dict[int, float]] = {name: {} for name in names}
    for name in names:
        for n, run in runs[name].items():
            speeds[name][n] = best_seconds(run, repeats) * 1e9 / w.size
        how = f"{COMPILER[name]}, {HOW[name]}"
        print(f"  {name:10s} {how:26s} " + "   ".join(
            f"{n} thread{'s' if n > 1 else ' '} {value:8.4f} ns/weight"
            for n, value in speeds[name].items()))
    for pool in pools.values():
        pool.shutdown()

    # 4. the horizon: bitnet.cpp's whole-model decode, converted to ns per weight
    weights_per_token = count_parameters(SHAPES["2b4t"])["ternary"]  # every BitLinear weight
    horizon = {n: 1e9 / (tok_s * weights_per_token) for n, tok_s in BITNET_CPP_DECODE.items()}
    print(f"\nbitnet.cpp v1, whole 2B4T decode ({weights_per_token:,} ternary weights a token), "
          "from docs/benchmarks.md (2026-12-04, not measured here):")
    for n, tok_s in BITNET_CPP_DECODE.items():
        print(f"  {n} thread{'s' if n > 1 else ' '}: {tok_s} tok/s -> 1e9 / ({tok_s} x "
              f"{weights_per_token:.3e}) = {horizon[n]:.4f} ns/weight")
    print("  an upper bound on its kernel's time: attention, norms and the head are in it too")

    # Figure: ns/weight against threads per kernel, bitnet.cpp's line across the top of it.
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    colors = {"reference": "#8395a7", "fast:lut": "#2e86de", "fast:numba": "#10ac84"}
    lines = {f"{name} ({COMPILER[name]}, {HOW[name]})": (speeds[name], colors[name], "o-")
             for name in names}
    lines["bitnet.cpp v1: whole 2B4T decode, converted (docs/benchmarks.md, not measured here)"] \
        = (horizon, "#ee5253", "s--")
    for label, (values, color, style) in lines.items():
        ax.plot(list(values), list(values.values()), style, color=color, label=label)
        for n, value in values.items():  # the first count's value on its left, others right
            left = n == THREADS[0]
            ax.annotate(f"{value:.3g}", (n, value), textcoords="offset points",
                        xytext=(-8 if left else 8, -3), ha="right" if left else "left",
                        fontsize=8, color=color)
    ax.set_xticks(list(THREADS), [str(n) for n in THREADS])
    ax.set_xlim(THREADS[0] - 0.35, THREADS[-1] + 0.35)
    ax.set_xlabel("threads")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("ns per weight, one token (log scale)")
    ax.set_title(f"One token × {shape[0]}×{shape[1]}, the same int32 sums from each", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1)
    fig.suptitle("Tutorial 13: one ternary kernel, three compilers")
    fig.tight_layout()
    fig.savefig(out / "13_threads.png", dpi=90)
    plt.close(fig)
    print(f"\nfigure: {out / '13_threads.png'}")


if __name__ == "__main__":
    main()
