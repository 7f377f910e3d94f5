"""Tutorial 4: packing ternary weights, and the memory arithmetic of ternary models.

A ternary weight carries log2(3) = 1.58 bits. This tutorial packs the same weights three ways,
all defined in ``minibitnet/core/packing.py``: the Hugging Face 2-bit layout that checkpoints use,
the bit planes of the fast popcount kernel, and base-3 groups of five (1.6 bits per weight) for
the lookup-table kernel. Then it does the arithmetic that matters most on a CPU: generating one
token reads every weight once, so no decoder can pass memory bandwidth / bytes per token tokens
per second, from 125M to 100B parameters, FP16 beside ternary. The bandwidth is estimated by a
large copy, on one thread and on every core this process may use.

    python tutorials/04_packing_and_memory.py --out docs/tutorials/figures
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from minibitnet.config import ModelConfig  # noqa: E402
from minibitnet.core.packing import (  # noqa: E402
    pack_base3_groups,
    pack_bitplanes,
    pack_ternary,
    unpack_base3_groups,
    unpack_bitplanes,
    unpack_ternary,
)
from minibitnet.tools.shapes import SCALING_SIZES, SHAPES, count_parameters  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"
MATRIX_SHAPE = (2560, 6912)  # (out, in) of the matrix packed three ways: a 2B4T gate_proj
EMBEDDING_BYTES = 2  # bytes per entry of the embedding / head table: bf16 in every variant

# Beyond the package's named shapes (minibitnet/tools/shapes.py: 2B4T and bitnet.cpp's 125M..13B),
# three larger LLaMA-like shapes with the 2B4T vocabulary: hidden, intermediate, layers, heads,
# key/value heads.
LARGER = {"30B": (6656, 17920, 60, 52, 52), "70B": (8192, 28672, 80, 64, 8),
          "100B": (10240, 27648, 80, 80, 80)}


def all_shapes() -> dict[str, ModelConfig]:
    """Every shape of the chart, smallest first."""
    named = {name: SHAPES[name] for name in SCALING_SIZES}
    named["2B4T"] = SHAPES["2b4t"]
    for name, (hidden, intermediate, layers, heads, kv_heads) in LARGER.items():
        named[name] = ModelConfig(vocab_size=128256, hidden_size=hidden,
                                  intermediate_size=intermediate, num_hidden_layers=layers,
                                  num_attention_heads=heads, num_key_value_heads=kv_heads,
                                  head_dim=hidden // heads)
    return dict(sorted(named.items(), key=lambda item: count_parameters(item[1])["total"]))


def measure_copy_bandwidth(threads: int) -> float:
    """Bytes per second (read + write) of a large array copy on this machine, best of five, the
    array split into ``threads`` slices copied at once (NumPy lets go of the GIL while it copies).
    """
    source = np.ones(32 * 2**20, dtype=np.float32)  # 128 MiB, far beyond the caches
    target = np.empty_like(source)
    edges = np.linspace(0, source.size, threads + 1).astype(int)  # (threads + 1,) slice bounds

    def copy_slice(index: int) -> None:
        np.copyto(target[edges[index]:edges[index + 1]], source[edges[index]:edges[index + 1]])

    best = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(5):
            start = time.perf_counter()
            list(pool.map(copy_slice, range(threads)))
            best = min(best, time.perf_counter() - start)
    return 2 * source.nbytes / best  # read + write


def main() -> None:
    parser = argparse.ArgumentParser(description="Packing and memory arithmetic.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    # 1. The Hugging Face layout: four rows per byte, rows split into four blocks of out/4.
    w = np.array([[+1], [-1], [0], [+1]], dtype=np.int8)  # (out=4, in=1): one column
    packed = pack_ternary(w)  # (1, 1) uint8
    print("Hugging Face 2-bit layout, one column q = [+1, -1, 0, +1] (out = 4):")
    print(f"  codes q + 1 = {(w[:, 0] + 1).tolist()}; byte = {packed[0, 0]} = "
          f"0b{packed[0, 0]:08b} (row 0 in bits 1-0, row 3 in bits 7-6)")
    assert np.array_equal(unpack_ternary(packed), w)

    # 2. Bit planes: a plus mask and a minus mask per row, 64 columns per 64-bit word.
    row = np.array([[+1, 0, -1, -1, +1]], dtype=np.int8)  # (out=1, in=5)
    plus, minus = pack_bitplanes(row)  # (1, 1) uint64 each
    print("\nbit planes of the row [+1, 0, -1, -1, +1]:")
    print(f"  plus  word = 0b{int(plus[0, 0]):05b} = {int(plus[0, 0])} (bits of the +1 columns)")
    print(f"  minus word = 0b{int(minus[0, 0]):05b} = {int(minus[0, 0])} (bits of the -1 columns)")
    assert np.array_equal(unpack_bitplanes(plus, minus, 5), row)

    # 3. Base-3 groups: five weights -> one byte, first weight the least significant digit.
    row = np.array([[+1, -1, 0, 0, +1]], dtype=np.int8)
    codes = pack_base3_groups(row)  # (1, 8) uint8: one group + seven padding groups
    print("\nbase-3 group of [+1, -1, 0, 0, +1]: digits w + 1 = [2, 0, 1, 1, 2]")
    print(f"  code = 2 + 0*3 + 1*9 + 1*27 + 2*81 = {codes[0, 0]} (one byte for five weights; "
          f"padding groups hold {codes[0, 1]}, five zeros)")
    assert np.array_equal(unpack_base3_groups(codes, 5), row)

    # Bits per weight of each layout, measured on a real-sized matrix.
    rng = np.random.default_rng(4)
    w = rng.integers(-1, 2, size=MATRIX_SHAPE).astype(np.int8)  # (out, in)
    hf = pack_ternary(w)
    planes = pack_bitplanes(w)
    groups = pack_base3_groups(w)
    print(f"\none {w.shape[0]} × {w.shape[1]} matrix ({w.size:,} weights):")
    for name, nbytes in (("int8, unpacked", w.nbytes), ("Hugging Face 2-bit", hf.nbytes),
                         ("bit planes (plus + minus)", planes[0].nbytes + planes[1].nbytes),
                         ("base-3 groups of five", groups.nbytes), ("FP16", 2 * w.size)):
        print(f"  {name:28s} {nbytes / 1e6:8.2f} MB  {8 * nbytes / w.size:5.2f} bits/weight")

    # Memory arithmetic: bytes read per generated token, and the bound it sets.
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))  # the cores this process may use
    else:
        cores = os.cpu_count() or 1
    one_thread = measure_copy_bandwidth(1)
    # the machine's figure; never below one thread's, which a busy machine can undercut
    bandwidth = max(measure_copy_bandwidth(cores), one_thread)
    print(f"\nmeasured copy bandwidth (read + write of a 128 MiB array): one thread "
          f"{one_thread / 1e9:.1f} GB/s; one thread per core: {bandwidth / 1e9:.1f} GB/s")
    print("tok/s columns: bandwidth / bytes per token, at the all-core bandwidth (the bound on "
          "this machine) and, last, at one thread's (what a one-thread decoder can hope for)")
    print(f"{'model':>6s} {'params':>8s} {'vocab':>7s} {'FP16 GB':>8s} {'2-bit GB':>9s} "
          f"{'1.6-bit GB':>11s} {'FP16 tok/s':>11s} {'2-bit tok/s':>12s} "
          f"{'2-bit 1-thread tok/s':>21s}")
    names, params, fp16_bytes, hf_bytes, base3_bytes = [], [], [], [], []
    for name, config in all_shapes().items():
        counts = count_parameters(config)  # ternary, embedding (tied head), norms, total
        other = EMBEDDING_BYTES * counts["embedding"] + 2 * counts["norms"]  # norms: bf16
        names.append(name)
        params.append(counts["total"])
        fp16_bytes.append(2 * counts["total"])
        hf_bytes.append(counts["ternary"] / 4 + other)
        base3_bytes.append(counts["ternary"] / 5 + other)
        print(f"{name:>6s} {counts['total'] / 1e9:7.2f}B {config.vocab_size:>7d} "
              f"{fp16_bytes[-1] / 1e9:8.2f} {hf_bytes[-1] / 1e9:9.2f} "
              f"{base3_bytes[-1] / 1e9:11.2f} {bandwidth / fp16_bytes[-1]:11.2f} "
              f"{bandwidth / hf_bytes[-1]:12.2f} {one_thread / hf_bytes[-1]:21.2f}")
    print("A token cannot be faster than reading its weights once: the all-core columns are the "
          "bound, as far as a copy measures what reading alone would reach. The head table stays "
          "bf16 in every variant, so small ternary models gain less.")

    # Figure: GB per token and the bandwidth-bound tokens/s against parameters.
    params_b = np.array(params) / 1e9
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for values, label, style in ((fp16_bytes, "FP16", "o-"), (hf_bytes, "ternary, 2-bit HF layout", "s-"),
                                 (base3_bytes, "ternary, base-3 (1.6 bits)", "^--")):
        ax1.loglog(params_b, np.array(values) / 1e9, style, label=label, markersize=4)
        ax2.loglog(params_b, bandwidth / np.array(values), style, label=label, markersize=4)
    for ax in (ax1, ax2):
        ax.set_xlabel("parameters (billions, log scale)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    for x, y, name in zip(params_b, np.array(fp16_bytes) / 1e9, names):
        if name in ("125M", "2B4T", "13B", "100B"):
            ax1.annotate(name, (x, y), textcoords="offset points", xytext=(-10, 6), fontsize=8)
    ax1.set_ylabel("weights read per token (GB, log scale)")
    ax1.set_title("Bytes per generated token")
    ax2.set_ylabel("tokens/s upper bound (log scale)")
    ax2.set_title(f"Bandwidth bound at {bandwidth / 1e9:.0f} GB/s (measured, {cores} cores)")
    fig.suptitle("Tutorial 4: memory arithmetic, FP16 vs ternary, 125M to 100B parameters")
    fig.tight_layout()
    fig.savefig(out / "04_memory_per_token.png", dpi=90)
    plt.close(fig)
    print(f"\nfigure: {out / '04_memory_per_token.png'}")


if __name__ == "__main__":
    main()
