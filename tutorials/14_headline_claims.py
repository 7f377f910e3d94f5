"""Tutorial 14: the headline claims of the BitNet papers, recomputed from the package's counts.

Four claims, each set beside what this package counts or this machine measures:

1. **71.4× less arithmetic energy** for the matrix multiplications ("The Era of 1-bit LLMs",
   arXiv 2402.17764, Figure 3, 7 nm). Recomputed from ``minibitnet.tools.opcount`` (the counts
   ``minibitnet ops`` prints) for the 2B4T shape, then moved one assumption at a time.
2. **A 100B model on one CPU at human reading speed, 5-7 tokens/s** (bitnet.cpp, arXiv
   2410.16144): bytes per token in each packing, the bandwidth that speed needs, and what this
   machine's memory delivers (measured here, under a second).
3. **About 10× less memory than FP16**: the ternary weights alone, and the whole 2B4T file
   broken down by tensor kind.
4. **No multiplications**: true of the arithmetic; the CPU kernels win by moving fewer bytes.
   Where a decode step's time goes (recorded in docs/benchmarks.md) beside the bandwidth bound.

    python tutorials/14_headline_claims.py --out docs/tutorials/figures
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import struct
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from minibitnet.config import ModelConfig  # noqa: E402
from minibitnet.formats.checkpoint import expected_tensors  # noqa: E402
from minibitnet.formats.locate import builtin_model_dir  # noqa: E402
from minibitnet.tools.opcount import (  # noqa: E402
    HOROWITZ_45NM_PJ,
    TokenCost,
    count_model_ops,
    fp16_cost,
    ternary_cost,
)
from minibitnet.tools.shapes import SHAPES, count_parameters  # noqa: E402
from minibitnet.tools.synthetic import tiny_config, write_checkpoint  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"

CONTEXT = 512  # the new token attends to this many positions (attention's share of the work)
HEAD_BYTES_PER_ENTRY = 4  # the recorded profile's head: the bf16 table widened to float32
BANDWIDTH_ARRAY_MIB = 128  # far beyond the caches (32 MiB L3 on the benchmark machine)
MEASURE_SECONDS = 0.6  # each bandwidth is the best read of up to this long (at least 5 reads):
# on a shared machine a single read can be several times slower than the memory allows

# Energy per operation in pJ, the table of the BitNet paper (arXiv 2310.11453, "ADD and MUL
# energy consumption ... at 45nm and 7nm process nodes", from Horowitz, ISSCC 2014, and Zhang
# et al. 2022), which the b1.58 paper reuses for its 71.4×. The 45 nm column equals the
# package's HOROWITZ_45NM_PJ.
PAPER_ENERGY_PJ = {
    "45nm": {"int8_add": 0.03, "int8_mult": 0.2, "fp16_add": 0.4, "fp16_mult": 1.1,
             "fp32_add": 0.9, "fp32_mult": 3.7},
    "7nm": {"int8_add": 0.007, "int8_mult": 0.07, "fp16_add": 0.16, "fp16_mult": 0.34,
            "fp32_add": 0.38, "fp32_mult": 1.31},
}
# The table has no int32 add. 45 nm: Horowitz's 0.1 pJ. 7 nm: an assumption, Horowitz's 0.1 pJ
# scaled by the int8 add's own 7 nm / 45 nm ratio (0.007 / 0.03).
INT32_ADD_PJ = {"45nm": HOROWITZ_45NM_PJ["int32_add"],
                "7nm": HOROWITZ_45NM_PJ["int32_add"] * 0.007 / 0.03}
PAPER_RATIO = 71.4

# bitnet.cpp's dummy-model table (utils/generate-dummy-bitnet-model.py in microsoft/BitNet):
# random weights in a LLaMA-like shape; no trained BitNet checkpoint of this size was published.
# Multi-head attention and a 32002-row tied embedding, as the package's 7B shape of that table.
SHAPE_100B = dataclasses.replace(SHAPES["7B"], hidden_size=8192, intermediate_size=45568,
                                 num_hidden_layers=72, num_attention_heads=64,
                                 num_key_value_heads=64, head_dim=128)
READING_SPEED = (5.0, 7.0)  # tokens/s, bitnet.cpp's "comparable to human reading"
# Packings of the ternary weights: bits per weight (the bf16 embedding and norms as stored).
PACKINGS = {"I2_S 2-bit": 2.0, "TL2 1.67-bit": 5 / 3, "base-3 1.6-bit": 1.6, "FP16": 16.0}

# Recorded in docs/benchmarks.md on 2026-12-04 (2 cores, copy bandwidth 24-27 GB/s), a
# 2B4T-shaped model, 2 threads: quoted here, not measured by this script.
RECORDED_DATE = "2026-12-04"
RECORDED_DECODE = {"minibitnet fast (numba)": 8.49, "bitnet.cpp I2_S": 20.78}  # tokens/s
RECORDED_BANDWIDTH = (24.0, 27.0)  # GB/s, that machine's measured copy bandwidth
RECORDED_PROFILE_MS = {"ternary matmuls": 42.6, "output head": 63.0, "quantisation": 4.6,
                       "attention": 3.8, "norms": 2.7, "other": 1.9}


# ---- 1. energy ----


def price_table(node: str, int_add: str, float_width: str) -> dict[str, float]:
    """A table in the keys TokenCost.arithmetic_pj reads: its "int32_add" priced as ``int_add``
    ("int8_add" or "int32_add") and its "fp16_*" entries as ``float_width`` ("fp16", "fp32")."""
    energy = PAPER_ENERGY_PJ[node]
    return {"int32_add": INT32_ADD_PJ[node] if int_add == "int32_add" else energy[int_add],
            "int32_mult": energy["int8_mult"],  # counted 0 times: no integer multiplies
            "fp16_add": energy[f"{float_width}_add"], "fp16_mult": energy[f"{float_width}_mult"]}


def energy_ratios(config: ModelConfig, zero_share: float) -> dict[str, dict[str, float]]:
    """FP16 energy ÷ ternary energy of one token's linear layers under each assumption.

    returns: assumption -> {"45nm": ratio, "7nm": ratio}
    """
    weights = count_parameters(config)["ternary"]
    every = ternary_cost(config, weights, CONTEXT)  # as the paper counts: every weight adds
    skipping = ternary_cost(config, round(weights * (1 - zero_share)), CONTEXT)  # zeros skipped
    fp16 = fp16_cost(config, CONTEXT)
    baseline = fp16.parts["FP16 projections"]

    def adds(cost: TokenCost) -> TokenCost:  # the integer adds of the projections alone
        return TokenCost(int_add=cost.int_add)

    rows: dict[str, dict[str, float]] = {}
    for node in PAPER_ENERGY_PJ:
        int8, int32 = price_table(node, "int8_add", "fp16"), price_table(node, "int32_add", "fp16")
        fp32_baseline = price_table(node, "int8_add", "fp32")
        paper = adds(every.parts["ternary projections"])
        options = {
            "paper: one int8 add per weight vs FP16 multiply-add":
                (paper, int8, baseline, int8),
            f"zeros skipped ({zero_share:.1%} zeros, built-in model)":
                (adds(skipping.parts["ternary projections"]), int8, baseline, int8),
            "adds priced as int32 (the accumulator's width)": (paper, int32, baseline, int32),
            "FP32 baseline instead of FP16": (paper, int8, baseline, fp32_baseline),
            "+ activation quantisation and rescale (FP16)":
                (every.parts["ternary projections"], int8, baseline, int8),
            "all three corrections (zeros, int32, quantisation)":
                (skipping.parts["ternary projections"], int32, baseline, int32),
            f"whole token: + attention ({CONTEXT} positions) and head":
                (skipping.total, int32, fp16.total, int32),
        }
        for name, (ternary, t_table, fp, f_table) in options.items():
            rows.setdefault(name, {})[node] = fp.arithmetic_pj(f_table) / ternary.arithmetic_pj(t_table)
    return rows


# ---- 2. bytes per token and bandwidth ----


def bytes_per_token(config: ModelConfig, bits_per_weight: float) -> float:
    """Weights read to decode one token: the ternary weights at ``bits_per_weight``, plus what
    opcount.ternary_cost counts beside them (weight scales, the bf16 head table, norms and the
    embedding row). The KV cache is left out: at short contexts it is small beside the weights."""
    weights = count_parameters(config)["ternary"]
    packed_2bit = ternary_cost(config, weights, CONTEXT).total.weight_bytes  # 2 bits per weight
    if bits_per_weight == 16.0:
        return fp16_cost(config, CONTEXT).total.weight_bytes
    return packed_2bit - weights / 4 + weights * bits_per_weight / 8


def measure_read_bandwidth() -> tuple[float, float | None, int]:
    """Bytes per second of reading a large float32 array: (one thread with NumPy, every core
    with numba or None when numba is missing, numba's thread count). Each the fastest read of
    at least five, repeated for up to MEASURE_SECONDS."""
    values = np.ones(BANDWIDTH_ARRAY_MIB * 2**20 // 4, dtype=np.float32)

    def fastest_read(read) -> float:
        best, reads, began = float("inf"), 0, time.perf_counter()
        while reads < 5 or (time.perf_counter() - began < MEASURE_SECONDS and reads < 100):
            start = time.perf_counter()
            read()
            best = min(best, time.perf_counter() - start)
            reads += 1
        return values.nbytes / best

    one_thread = fastest_read(values.sum)
    try:
        from numba import get_num_threads, njit, prange  # noqa: PLC0415
    except ImportError:
        return one_thread, None, 1

    @njit(parallel=True)
    def sum_blocks(words: np.ndarray, blocks: int) -> int:
        # integer sums, so LLVM vectorises the inner loop (a float sum must keep its order)
        size = words.size // blocks
        partial = np.zeros(blocks, dtype=np.int64)
        for b in prange(blocks):  # one block of the array per thread
            block = words[b * size:(b + 1) * size]
            total = 0
            for i in range(block.size):
                total += block[i]
            partial[b] = total
        return partial.sum()

    words = values.view(np.int32)  # the same bytes
    threads = get_num_threads()
    sum_blocks(words[:1024], threads)  # compile before timing
    every_core = fastest_read(lambda: sum_blocks(words, threads))
    return one_thread, every_core, threads


def total_ram_bytes() -> int:
    """Physical memory of this machine (os.sysconf: pages × page size)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


# ---- 3. the file ----


def file_breakdown(config: ModelConfig) -> dict[str, tuple[int, int, int]]:
    """Bytes of a packed checkpoint by tensor kind: kind -> (tensors, parameters, bytes).

    The layout is formats.checkpoint.expected_tensors: U8 codes (four weights a byte), one bf16
    weight_scale per projection, the bf16 embedding (tied head) and bf16 norms.
    """
    kinds: dict[str, list[int]] = {}
    for name, (shape, dtypes) in expected_tensors(config).items():
        size = int(np.prod(shape))
        if dtypes == ("U8",):
            kind, parameters, nbytes = "ternary weights (U8, 4 a byte)", 4 * size, size
        elif name.endswith(".weight_scale"):
            kind, parameters, nbytes = "weight scales (bf16)", 0, 2 * size
        elif len(shape) == 2:
            kind, parameters, nbytes = "embedding = tied head (bf16)", size, 2 * size
        else:
            kind, parameters, nbytes = "norms (bf16)", size, 2 * size
        counts = kinds.setdefault(kind, [0, 0, 0])
        counts[0] += 1
        counts[1] += parameters
        counts[2] += nbytes
    return {kind: (c[0], c[1], c[2]) for kind, c in kinds.items()}


def header_and_data_bytes(path: Path) -> tuple[int, int]:
    """(header bytes, tensor data bytes) of a safetensors file: an 8-byte length, the JSON
    header, then the data, whose extent the header's last data_offsets gives."""
    with path.open("rb") as f:
        (header_length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_length))
    data = max(entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__")
    return 8 + header_length, data


# ---- the figures ----


def draw_energy(rows: dict[str, dict[str, float]], path: Path) -> None:
    """Horizontal bars: the ratio under each assumption, both process nodes."""
    names = list(rows)
    positions = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(9.5, 4.2))
    for offset, node, color in ((-0.2, "45nm", "#8e44ad"), (0.2, "7nm", "#2e86de")):
        bars = ax.barh(positions + offset, [rows[n][node] for n in names], 0.4,
                       label=node.replace("nm", " nm"), color=color)
        ax.bar_label(bars, fmt="{:.1f}×", fontsize=7, padding=2)
    ax.axvline(PAPER_RATIO, color="#c0392b", linestyle="--", linewidth=1)
    ax.text(PAPER_RATIO * 1.05, len(names) - 0.6, "paper: 71.4×", color="#c0392b", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(2, 600)  # room for the labels
    ax.set_yticks(positions, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("FP16 arithmetic energy ÷ ternary (log scale)")
    ax.set_title("Tutorial 14: the 71.4× energy claim under each assumption, 2B4T shape")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def draw_reading_speed(models: dict[str, float], measured: list[tuple[str, float]],
                       ram_gib: float, path: Path) -> None:
    """Left: tokens/s = bandwidth ÷ bytes per token; right: the recorded decode profile."""
    bandwidth = np.logspace(0, np.log10(2000), 100)  # GB/s
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.3), gridspec_kw={"width_ratios": [3, 2]})
    ax1.axhspan(*READING_SPEED, color="#f6c453", alpha=0.4, label="5-7 tokens/s (bitnet.cpp)")
    for (name, nbytes), style in zip(models.items(), ("-", "--", ":")):
        ax1.loglog(bandwidth, bandwidth * 1e9 / nbytes, style, color="#2e86de",
                   label=f"{name}, 2 bits/weight ({nbytes / 1e9:.1f} GB/token)")
    for label, value in measured:
        ax1.axvline(value / 1e9, color="#27ae60", linewidth=1)
        ax1.text(value / 1e9 * 1.05, 0.012, label, rotation=90, fontsize=7, color="#27ae60")
    x = float(np.mean(RECORDED_BANDWIDTH))
    for (name, speed), marker in zip(RECORDED_DECODE.items(), ("o", "s")):
        ax1.plot([x], [speed], marker, color="#c0392b", label=f"{name}: {speed} tok/s "
                 f"(2B4T, recorded {RECORDED_DATE})")
    ax1.set_ylim(0.01, 5000)  # room above the lines for the legend
    ax1.set_xlabel("memory read bandwidth (GB/s, log scale)")
    ax1.set_ylabel("decode tokens/s upper bound (log scale)")
    ax1.set_title(f"Bandwidth ÷ bytes per token (this machine: {ram_gib:.1f} GiB RAM)",
                  fontsize=10)
    ax1.grid(True, which="major", alpha=0.3)
    ax1.legend(fontsize=7, loc="upper left")
    parts = list(RECORDED_PROFILE_MS)
    ax2.barh(parts, [RECORDED_PROFILE_MS[p] for p in parts], color="#c0392b")
    ax2.invert_yaxis()
    ax2.set_xlabel("ms per token (recorded, 2B4T, 2 threads)")
    ax2.set_title(f"Where a decode step went ({RECORDED_DATE})", fontsize=10)
    fig.suptitle("Tutorial 14: 100B on one CPU at reading speed?")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description="The headline claims, recomputed and measured.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    config = SHAPES["2b4t"]
    counts = count_parameters(config)

    # 1. Energy: the paper's 71.4×, from the package's op counts.
    builtin = count_model_ops(builtin_model_dir())
    zero_share = 1 - builtin.nonzero_weights / builtin.ternary_weights
    print("1. '71.4x less arithmetic energy for the matrix multiplications' "
          "(arXiv 2402.17764, Figure 3, 7 nm)")
    print("energy per operation, pJ (BitNet, arXiv 2310.11453, from Horowitz 2014 and "
          "Zhang et al. 2022):")
    print(f"  {'':6s} {'int8 add':>9s} {'int8 mult':>10s} {'FP16 add':>9s} {'FP16 mult':>10s} "
          f"{'FP32 add':>9s} {'FP32 mult':>10s} {'int32 add':>10s}")
    for node, e in PAPER_ENERGY_PJ.items():
        print(f"  {node:6s} {e['int8_add']:9.3f} {e['int8_mult']:10.2f} {e['fp16_add']:9.2f} "
              f"{e['fp16_mult']:10.2f} {e['fp32_add']:9.2f} {e['fp32_mult']:10.2f} "
              f"{INT32_ADD_PJ[node]:10.4f}")
    print("  (int32 add: Horowitz at 45 nm; at 7 nm assumed, scaled by the int8 add's 7/45 nm "
          "ratio)")
    seven = PAPER_ENERGY_PJ["7nm"]
    print(f"the paper's ratio per weight: (FP16 add + FP16 mult) / int8 add = "
          f"({seven['fp16_add']} + {seven['fp16_mult']}) / {seven['int8_add']} = "
          f"{(seven['fp16_add'] + seven['fp16_mult']) / seven['int8_add']:.1f}")
    print(f"2B4T, one token, the package's counts (opcount): {counts['ternary'] / 1e9:.3f} G "
          f"ternary weights; ratio FP16 / ternary under each assumption:")
    rows = energy_ratios(config, zero_share)
    print(f"  {'assumption':58s} {'45 nm':>7s} {'7 nm':>7s}")
    for name, ratio in rows.items():
        print(f"  {name:58s} {ratio['45nm']:6.1f}x {ratio['7nm']:6.1f}x")
    print("Reading DRAM costs far more than either side's arithmetic (tutorial 3): "
          "the arithmetic ratio is not the energy ratio of a token.")
    draw_energy(rows, out / "14_energy_ratio.png")

    # 2. A 100B model on one CPU at 5-7 tokens/s.
    models = {"2B4T": config, "7B": SHAPES["7B"], "100B": SHAPE_100B}
    print("\n2. '100B on a single CPU at human reading speed, 5-7 tokens/s' (arXiv 2410.16144)")
    print("shapes: 2B4T as published; 7B and 100B from bitnet.cpp's dummy-model table "
          "(random weights, no such BitNet checkpoint published):")
    for name in ("7B", "100B"):
        c = models[name]
        print(f"  {name:>4s}: hidden {c.hidden_size}, feed-forward {c.intermediate_size}, "
              f"{c.num_hidden_layers} layers, {c.num_attention_heads} heads, "
              f"vocabulary {c.vocab_size}")
    print("GB of weights read per token, by packing of the ternary weights "
          "(bf16 head and norms in all):")
    print(f"  {'model':>5s} {'params':>7s} " + " ".join(f"{p:>14s}" for p in PACKINGS))
    per_token = {name: {p: bytes_per_token(c, bits) for p, bits in PACKINGS.items()}
                 for name, c in models.items()}
    for name, c in models.items():
        print(f"  {name:>5s} {count_parameters(c)['total'] / 1e9:6.2f}B "
              + " ".join(f"{per_token[name][p] / 1e9:14.2f}" for p in PACKINGS))
    for packing in ("I2_S 2-bit", "TL2 1.67-bit", "FP16"):
        need = [per_token["100B"][packing] * speed / 1e9 for speed in READING_SPEED]
        print(f"  100B {packing:12s}: 5 to 7 tokens a second need {need[0]:.0f} to {need[1]:.0f} "
              f"GB read per second")
    one_thread, every_core, threads = measure_read_bandwidth()
    print(f"measured read bandwidth on this machine (sum of a {BANDWIDTH_ARRAY_MIB} MiB array, "
          f"fastest of repeated reads; the bounds below use the larger):")
    print(f"  one thread (NumPy):      {one_thread / 1e9:6.1f} GB/s")
    if every_core is None:
        print("  every core:              not measured (numba is not installed)")
    else:
        print(f"  every core (numba):      {every_core / 1e9:6.1f} GB/s")
    fastest = max(one_thread, every_core or 0.0)
    for name in models:
        bound = fastest / per_token[name]["I2_S 2-bit"]
        print(f"  {name:>4s} at 2 bits: at most {bound:7.2f} tok/s at {fastest / 1e9:.1f} GB/s")
    ram = total_ram_bytes()
    print(f"  RAM (os.sysconf) against the 100B weights at {fastest / 1e9:.1f} GB/s: "
          + ", ".join(f"{p} {per_token['100B'][p] / ram:.0%}" for p in PACKINGS)
          + " of it (over 100%: does not fit)")
    print(f"recorded {RECORDED_DATE} in docs/benchmarks.md (2B4T shape, 2 threads; not measured "
          "here): " + ", ".join(f"{n} {s} tok/s" for n, s in RECORDED_DECODE.items()))
    measured = [("one thread", one_thread)]
    if every_core is not None:
        measured.append((f"numba, {threads} threads", every_core))
    draw_reading_speed({n: per_token[n]["I2_S 2-bit"] for n in models}, measured, ram / 2**30,
                       out / "14_reading_speed.png")

    # 3. About 10x less memory than FP16.
    ternary = counts["ternary"]
    print("\n3. 'about 10x less memory than FP16' (2B4T shape)")
    print(f"  ternary linear weights: {ternary / 1e9:.3f} G; FP16 {2 * ternary / 1e9:.2f} GB, "
          f"2 bits {ternary / 4e9:.2f} GB ({16 / 2:.1f}x less), "
          f"log2(3) bits {ternary * np.log2(3) / 8e9:.2f} GB ({16 / np.log2(3):.1f}x less)")
    breakdown = file_breakdown(config)
    file_bytes = sum(nbytes for _, _, nbytes in breakdown.values())
    print("  the file by tensor kind (formats.checkpoint.expected_tensors):")
    print(f"    {'kind':32s} {'tensors':>7s} {'params':>9s} {'MB':>9s} {'share':>6s} "
          f"{'bits/param':>10s}")
    for kind, (tensors, parameters, nbytes) in breakdown.items():
        bits = f"{8 * nbytes / parameters:10.2f}" if parameters else f"{'':>10s}"
        print(f"    {kind:32s} {tensors:7d} {parameters / 1e6:8.1f}M {nbytes / 1e6:9.3f} "
              f"{nbytes / file_bytes:6.1%} {bits}")
    print(f"    {'total':32s} {sum(t for t, _, _ in breakdown.values()):7d} "
          f"{counts['total'] / 1e6:8.1f}M {file_bytes / 1e6:9.3f} {1:6.1%} "
          f"{8 * file_bytes / counts['total']:10.2f}")
    fp16_file = 2 * counts["total"]
    print(f"  the FP16 model of this shape: {fp16_file / 1e9:.2f} GB, "
          f"{fp16_file / file_bytes:.1f}x the ternary file; the 10x holds for the linear "
          f"weights only, the bf16 embedding is {breakdown['embedding = tied head (bf16)'][2] / file_bytes:.0%} "
          f"of the file")
    with tempfile.TemporaryDirectory() as tmp:  # the breakdown is the file: check on a tiny one
        path = write_checkpoint(Path(tmp) / "tiny", tiny_config(), seed=0) / "model.safetensors"
        header, data = header_and_data_bytes(path)
        predicted = sum(nbytes for _, _, nbytes in file_breakdown(tiny_config()).values())
        print(f"  check on a tiny checkpoint written here: file {path.stat().st_size:,} bytes = "
              f"header {header:,} + data {data:,}; predicted data {predicted:,} "
              f"({'equal' if predicted == data else 'DIFFERENT'})")

    # 4. No multiplications, and where the time goes.
    t_proj = ternary_cost(config, round(ternary * (1 - zero_share)), CONTEXT).parts[
        "ternary projections"]
    print("\n4. 'no multiplications'")
    print(f"  ternary projections of one 2B4T token (opcount): {t_proj.int_mult} integer "
          f"multiplies, {t_proj.int_add / 1e9:.2f} G integer adds")
    print("  but bitnet.cpp's I2_S kernel (src/ggml-bitnet-mad.cpp) multiplies: "
          "_mm256_maddubs_epi16 multiplies 32 2-bit codes (0, 1, 2) by 32 int8 activations "
          "an instruction; the package's numba kernel computes "
          "sum(code * x) - sum(x) the same way")
    matmul_bytes = ternary / 4
    head_bytes = config.vocab_size * config.hidden_size * HEAD_BYTES_PER_ENTRY
    print(f"  recorded decode profile ({RECORDED_DATE}, docs/benchmarks.md, 2B4T, 2 threads) "
          f"and the bound bytes / {fastest / 1e9:.1f} GB/s measured here:")
    total_ms = sum(RECORDED_PROFILE_MS.values())
    for part, ms in RECORDED_PROFILE_MS.items():
        read = {"ternary matmuls": matmul_bytes, "output head": head_bytes}.get(part)
        bound = f"reads {read / 1e9:.2f} GB: at least {1e3 * read / fastest:.1f} ms" if read else ""
        print(f"    {part:16s} {ms:5.1f} ms {ms / total_ms:4.0%}  {bound}")
    print(f"    {'total':16s} {total_ms:5.1f} ms = {1e3 / total_ms:.2f} tok/s")
    print(f"  The head, a float matmul both models share, is the largest part: the ternary "
          f"matmuls read {matmul_bytes / head_bytes:.0%} of the head's bytes.")
    print(f"\nfigures: {out / '14_energy_ratio.png'}, {out / '14_reading_speed.png'}")


if __name__ == "__main__":
    main()
