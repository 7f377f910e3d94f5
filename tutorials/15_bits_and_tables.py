"""Tutorial 15: what "1.58 bits" means, and the lookup-table kernels that pack closest to it.

A ternary weight can take three values, so it carries at most log2(3) = 1.585 bits; how much it
carries in a real model depends on how often it is zero. This tutorial measures that share in
the built-in model and in absmean-ternarised random weights, and sets the entropy beside the
packings the kernels use: 2 bits (the checkpoint layout, bitnet.cpp's I2_S), 1.6 bits (five
weights a byte, the package's LUT kernel), TL1 and TL2 (bitnet.cpp, arXiv 2502.11880). Then two
integer questions: why the sums are int32, and what 4-bit activations would cost. Last, the
lookup tables themselves, from the package's 243-entry table (tutorial 6) to T-MAC's and TL2's
16-entry tables that fit one SIMD register.

    python tutorials/15_bits_and_tables.py --out docs/tutorials/figures
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minibitnet  # noqa: E402
from minibitnet.core.packing import base3_words_per_row, pack_base3_groups, pack_ternary  # noqa: E402
from minibitnet.core.quant import INT8_MAX, quantize_activations, ternarize_weights  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"

LATENT_DISTRIBUTION = "gaussian"  # the random latent weights ternarised beside the model's
LOW_BITS = 4  # the narrower activation width compared with int8
REDUCTION_WIDTH = 2560  # K, the length of one dot product (2B4T's hidden size)
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
REGISTER_ENTRIES = 16  # one-byte entries a pshufb / tbl lookup selects from (one 128-bit lane)


# ---- 1. bits ----


def ternary_entropy(shares: np.ndarray) -> float:
    """Bits per weight of an ideal code for weights with these shares of (-1, 0, +1)."""
    shares = shares[shares > 0]
    return float(-(shares * np.log2(shares)).sum())


def value_shares(w_ternary: np.ndarray) -> np.ndarray:
    """(3,) float: the shares of -1, 0 and +1 in an int8 ternary array."""
    return np.bincount((w_ternary.reshape(-1) + 1).astype(np.int64), minlength=3) / w_ternary.size


def builtin_model_weights() -> np.ndarray:
    """Every ternary weight of the built-in model, flattened to one int8 array.

    The reference backend holds each projection unpacked to (out, in) int8, so the codes are
    read from the loaded model itself.
    """
    model = minibitnet.load(backend="reference")
    matrices = []
    for block in model.blocks:
        for name in PROJECTIONS:
            owner = block.attention if hasattr(block.attention, name) else block.feed_forward
            matrices.append(np.asarray(getattr(owner, name).prepared).reshape(-1))
    return np.concatenate(matrices)


def random_latent_weights(rng: np.random.Generator) -> np.ndarray:
    """(1024, 1024) float32 latent weights of LATENT_DISTRIBUTION, standard deviation 0.02."""
    if LATENT_DISTRIBUTION == "laplace":
        return rng.laplace(0.0, 0.02 / math.sqrt(2), size=(1024, 1024)).astype(np.float32)
    return rng.normal(0.0, 0.02, size=(1024, 1024)).astype(np.float32)


# ---- 2. integers ----


def quantize_absmax(x: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Absmax quantisation to ``bits`` with one scale per token (quant.quantize_activations at
    any width): Q_b = 2^(bits-1), codes in [-Q_b, Q_b - 1].

    x:       (T, D) float32
    returns: x_q (T, D) int32, scale (T, 1) float32 with x ≈ x_q / scale
    """
    top = 2 ** (bits - 1) - 1
    peak = np.maximum(np.abs(x).max(axis=-1, keepdims=True), np.float32(1e-5))  # (T, 1)
    scale = (np.float32(top) / peak).astype(np.float32)  # (T, 1)
    x_q = np.clip(np.rint(x * scale), -top - 1, top).astype(np.int32)  # (T, D)
    return x_q, scale


def tutorial_02_tokens() -> np.ndarray:
    """The 64 × 512 hidden states of tutorial 2: loudness varying by token, four outlier
    channels (same seed and recipe, so the int8 error here is tutorial 2's)."""
    rng = np.random.default_rng(1)
    tokens, width = 64, 512
    loudness = np.exp(rng.normal(0.0, 1.0, size=(tokens, 1)))  # (T, 1)
    loudness[0] = 40.0
    x = rng.standard_normal((tokens, width)) * loudness  # (T, D)
    x[:, :4] *= 6.0
    return x.astype(np.float32)


# ---- 3. tables ----


def table_sizes(group: int) -> dict[str, int]:
    """Lookup-table sizes for groups of ``group`` ternary weights.

    plain:  one entry per pattern, 3^g, indexed by a ceil(log2 3^g)-bit code
    signed: patterns w and -w give opposite sums, so keep one of each pair plus the zero
            pattern, (3^g + 1) / 2 entries, and a sign bit beside the index (TL2's trick)
    """
    plain = 3**group
    signed = (plain + 1) // 2
    return {"plain": plain, "plain_bits": math.ceil(math.log2(plain)),
            "signed": signed, "signed_bits": 1 + math.ceil(math.log2(signed))}


def draw(group_sizes: list[int], schemes: list[tuple[str, float, int]], path: Path) -> None:
    """Left: bits per weight against group size; right: table entries against group size."""
    sizes = [table_sizes(g) for g in group_sizes]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 4))
    # the sign bit never saves an index bit here: halving the entries halves the index range
    ax1.plot(group_sizes, [s["plain_bits"] / g for s, g in zip(sizes, group_sizes)], "o-",
             color="#2e86de", label="index bits / g (the same with a sign bit)")
    ax1.axhline(math.log2(3), color="#c0392b", linewidth=1)
    ax1.text(group_sizes[0], math.log2(3) + 0.01, "log2 3 = 1.585", fontsize=8,
             color="#c0392b")
    ax1.set_ylim(1.5, 2.1)
    for name, bits, group in schemes:
        ax1.annotate(name, (group, bits), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax1.set_xlabel("weights per group g")
    ax1.set_ylabel("bits per weight")
    ax1.set_title("Packing: bits per ternary weight")
    ax1.legend(fontsize=8)
    ax2.semilogy(group_sizes, [s["plain"] for s in sizes], "o-", color="#2e86de",
                 label="entries, 3^g")
    ax2.semilogy(group_sizes, [s["signed"] for s in sizes], "s--", color="#8e44ad",
                 label="entries with sign symmetry")
    ax2.plot([4], [REGISTER_ENTRIES], "D", color="#27ae60")
    ax2.annotate("T-MAC: 4 bits of one plane", (4, REGISTER_ENTRIES), textcoords="offset points",
                 xytext=(6, -14), fontsize=8)
    ax2.axhline(REGISTER_ENTRIES, color="#27ae60", linewidth=1)
    ax2.text(group_sizes[0], REGISTER_ENTRIES * 1.15, "16 one-byte entries: one 128-bit "
             "register (pshufb / tbl)", fontsize=8, color="#27ae60")
    ax2.set_xlabel("weights per group g")
    ax2.set_ylabel("table entries per group (log scale)")
    ax2.set_title("Table size per group of activations")
    ax2.legend(fontsize=8, loc="lower right")
    fig.suptitle("Tutorial 15: 1.58 bits, and the lookup tables of TL1, TL2, T-MAC and tutorial 6")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description="1.58 bits, and the lookup-table kernels.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(15)

    # 1. "1.58 bits": the most a ternary weight can carry, and what it carries here.
    print(f"1.58 bits = log2(3) = {math.log2(3):.4f} bits: three equally likely values")
    model_w = builtin_model_weights()
    random_w, _ = ternarize_weights(random_latent_weights(rng))  # (1024, 1024) int8
    # absmean rounds |w| below half the mean |w| to zero; for a Gaussian, mean |w| = σ √(2/π)
    gaussian_zero = math.erf(0.5 * math.sqrt(2 / math.pi) / math.sqrt(2))
    print(f"{'weights':44s} {'-1':>6s} {'0':>6s} {'+1':>6s} {'entropy':>8s}")
    measured = {}
    for name, w in ((f"built-in model ({model_w.size:,} weights)", model_w),
                    (f"absmean of {LATENT_DISTRIBUTION} latents ({random_w.size:,})", random_w)):
        shares = value_shares(w)
        measured[name] = shares
        print(f"{name:44s} {shares[0]:6.1%} {shares[1]:6.1%} {shares[2]:6.1%} "
              f"{ternary_entropy(shares):8.3f} bits")
    print(f"(a Gaussian ternarised by absmean is zero with probability "
          f"erf(0.5 √(2/π) / √2) = {gaussian_zero:.1%})")
    model_entropy = ternary_entropy(value_shares(model_w))

    # Packing efficiency: measured bytes of the two layouts the package writes, the rest counted.
    matrix = rng.integers(-1, 2, size=(2560, 6910)).astype(np.int8)  # in = 6910: not a multiple
    formats = [
        ("int8, unpacked (reference backend)", 8.0, "1 weight a byte"),
        ("2-bit: checkpoint layout, I2_S",
         8 * pack_ternary(matrix).nbytes / matrix.size, "4 weights a byte"),
        ("TL1 (bitnet.cpp)", 4 / 2, "2 weights -> 4-bit index (9 of 16 codes)"),
        ("TL2 (bitnet.cpp)", 5 / 3, "3 weights -> sign + 4-bit index"),
        ("base-3 groups (tutorials 4, 6)",
         8 * pack_base3_groups(matrix).nbytes / matrix.size, "5 weights a byte, 243 of 256"),
        ("log2(3), the limit for any ternary weights", math.log2(3), ""),
        ("entropy at the built-in model's shares", model_entropy, ""),
    ]
    print(f"\n{'format':44s} {'bits/weight':>11s} {'log2(3) / bits':>15s}  how")
    for name, bits, how in formats:
        print(f"{name:44s} {bits:11.3f} {math.log2(3) / bits:15.1%}  {how}")
    print("(2-bit and base-3 measured on one packed 2560 × 6910 matrix: base-3 pads each row "
          "to whole 8-byte words)")

    # 2a. int32 sums: the largest |sum| of int8 activations and ternary weights is 127 K.
    x_q, _ = quantize_activations(np.full((1, REDUCTION_WIDTH), 3.0, dtype=np.float32))
    w_row = np.ones(REDUCTION_WIDTH, dtype=np.int8)  # every weight +1: the worst case
    exact = int(x_q[0].astype(np.int64) @ w_row.astype(np.int64))
    in_int16 = int(np.sum(x_q[0].astype(np.int16) * w_row.astype(np.int16), dtype=np.int16))
    in_int32 = int(np.sum(x_q[0].astype(np.int32) * w_row.astype(np.int32), dtype=np.int32))
    print(f"\nlargest dot product of K = {REDUCTION_WIDTH} int8 activations (absmax gives at "
          f"most {INT8_MAX}) with ternary weights: {INT8_MAX} × {REDUCTION_WIDTH} = {exact:,}")
    print(f"  summed in int16: {in_int16:,} ({'exact' if in_int16 == exact else 'wrapped'}; "
          f"int16 holds up to 32,767, so K ≤ {32767 // INT8_MAX})")
    print(f"  summed in int32: {in_int32:,} ({'exact' if in_int32 == exact else 'wrapped'}; "
          f"exact up to K = {(2**31 - 1) // INT8_MAX:,})")

    # 2b. Narrower activations: the error of int8 against LOW_BITS, per token and per product.
    x = tutorial_02_tokens()  # (64, 512)
    x_q8, scale8 = quantize_absmax(x, 8)
    x_ref, scale_ref = quantize_activations(x)
    assert np.array_equal(x_q8, x_ref) and np.array_equal(scale8, scale_ref)  # the same quantiser
    w_ternary, w_scale = ternarize_weights(rng.normal(0, 0.02, size=(256, 512)).astype(np.float32))
    w = w_ternary.astype(np.float32) / w_scale  # (out, in) the ternary weights as floats
    y = x @ w.T  # (T, out) with unquantised activations
    print("\nactivation width, on tutorial 2's 64 tokens (int8 matches "
          "quant.quantize_activations exactly):")
    print(f"  {'bits':>4s} {'levels':>6s} {'median error of x':>18s} "
          f"{'median error of x @ W.T':>24s}")
    errors = {}
    for bits in sorted({8, LOW_BITS}, reverse=True):
        x_q, scale = quantize_absmax(x, bits)
        x_back = x_q / scale  # (T, D)
        x_error = np.linalg.norm(x - x_back, axis=1) / np.linalg.norm(x, axis=1)  # (T,)
        y_error = np.linalg.norm(y - x_back @ w.T, axis=1) / np.linalg.norm(y, axis=1)  # (T,)
        errors[bits] = float(np.median(y_error))
        print(f"  {bits:4d} {2**bits - 1:6d} {np.median(x_error):18.2%} "
              f"{np.median(y_error):24.2%}")
    if LOW_BITS != 8:
        print(f"  {LOW_BITS} bits: {errors[LOW_BITS] / errors[8]:.1f}x the error of int8 in the "
              f"product")

    # 3. The tables: group size -> entries, index bits, bits per weight, fits one register.
    group_sizes = [1, 2, 3, 4, 5, 6]
    print("\nlookup tables for groups of g ternary weights (one table per g activations):")
    print(f"  {'g':>2s} {'3^g':>5s} {'bits':>4s} {'bits/w':>6s} {'signed':>6s} {'bits':>4s} "
          f"{'bits/w':>6s} {'int8 B':>6s} {'int16 B':>7s}  one 16-entry register?")
    for g in group_sizes:
        s = table_sizes(g)
        fits = "yes" if s["plain"] <= REGISTER_ENTRIES else (
            "with sign symmetry" if s["signed"] <= REGISTER_ENTRIES else "no")
        print(f"  {g:2d} {s['plain']:5d} {s['plain_bits']:4d} {s['plain_bits'] / g:6.3f} "
              f"{s['signed']:6d} {s['signed_bits']:4d} {s['signed_bits'] / g:6.3f} "
              f"{s['signed']:6d} {2 * s['signed']:7d}  {fits}")
    words = base3_words_per_row(6912)
    print("the schemes:")
    print(f"  tutorial 6 (package LUT): g = 5, 243 int16 entries per group, no sign folding; "
          f"for in = 6912: {words} words × 8 groups × 243 × 2 B = {words * 8 * 243 * 2:,} B "
          "per token, read from L2, one entry at a time")
    print("  T-MAC: weights as bit planes, g = 4 bits of one plane -> 2^4 = 16 int8 entries, "
          "one 128-bit register; ternary needs 2 planes (2 bits/weight, two lookups)")
    print("  TL1: g = 2 -> 9 entries, 4-bit index: 2 bits/weight, fits one register")
    print("  TL2: g = 3 -> 27 patterns, 14 with sign symmetry (padded to 16), 1 + 4 bits: "
          "1.67 bits/weight; int16 entries kept as two 16-byte tables (low and high bytes)")
    print("  I2_S: g = 1, no table: 2-bit codes times int8 activations (_mm256_maddubs_epi16)")
    schemes = [("I2_S", 2.0, 1), ("TL1", 2.0, 2), ("TL2", 5 / 3, 3), ("tutorial 6", 1.6, 5)]
    draw(group_sizes, schemes, out / "15_bits_and_tables.png")
    print(f"\nfigure: {out / '15_bits_and_tables.png'}")


if __name__ == "__main__":
    main()
