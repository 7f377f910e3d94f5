"""Tutorial 3: BitLinear, and why the multiplications vanish.

A BitLinear layer computes the same product as a float matmul, but in three steps: quantise the
input to int8 (tutorial 2), sum int8 values with ternary weights exactly in int32, rescale once.
Because every weight is -1, 0 or +1, the integer sum is only adds and subtracts: +x where the
weight is +1, -x where it is -1, nothing where it is 0. This tutorial computes one layer those
three ways, then counts the operations of a whole model with ``minibitnet ops`` and prices them
with published per-operation energies (Horowitz, ISSCC 2014, 45 nm).

    python tutorials/03_bitlinear.py --out docs/tutorials/figures
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from minibitnet.kernels.registry import get_backend  # noqa: E402
from minibitnet.core.bitlinear import BitLinear, ternary_matmul  # noqa: E402
from minibitnet.cli import main as minibitnet_cli  # noqa: E402
from minibitnet.config import ModelConfig  # noqa: E402
from minibitnet.tools.opcount import ENERGY_SOURCE, HOROWITZ_45NM_PJ, fp16_cost, ternary_cost  # noqa: E402
from minibitnet.core.packing import pack_ternary  # noqa: E402
from minibitnet.core.quant import quantize_activations, ternarize_weights  # noqa: E402
from minibitnet.tools.synthetic import tiny_config, write_checkpoint  # noqa: E402
from minibitnet.core.weights import TernaryWeight  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"
DRAM_PJ_PER_BYTE = HOROWITZ_45NM_PJ["dram_byte"]

# microsoft/bitnet-b1.58-2B-4T's config.json, the shape priced in the figure.
BITNET_2B4T = ModelConfig(vocab_size=128256, hidden_size=2560, intermediate_size=6912,
                          num_hidden_layers=30, num_attention_heads=20, num_key_value_heads=5,
                          head_dim=128, max_position_embeddings=4096)
# The position of the priced token: attention reads this many cached keys and values.
CONTEXT = 512


def add_subtract_row(x_q: np.ndarray, w_row: np.ndarray) -> tuple[int, int, int]:
    """One output of the integer product the slow, explicit way.

    x_q:   (in,) int8 activations of one token
    w_row: (in,) int8 ternary weights of one output
    returns: (sum, adds, subtracts)
    """
    total, adds, subtracts = 0, 0, 0
    for x, w in zip(x_q.tolist(), w_row.tolist()):
        if w == 1:
            total += x
            adds += 1
        elif w == -1:
            total -= x
            subtracts += 1
    return total, adds, subtracts


def main() -> None:
    parser = argparse.ArgumentParser(description="BitLinear and its operation count.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    # A layer (out=256, in=512) built as a checkpoint stores it: packed codes + one scale.
    rng = np.random.default_rng(3)
    latent = rng.normal(0.0, 0.02, size=(256, 512)).astype(np.float32)  # (out, in)
    w_ternary, weight_scale = ternarize_weights(latent)  # (out, in) int8, w ≈ w_t / scale
    layer = BitLinear(TernaryWeight(pack_ternary(w_ternary), weight_scale),
                      get_backend("reference"))
    x = rng.standard_normal((4, 512)).astype(np.float32)  # (T, in) four tokens

    # 1. the float product with the dequantised weights
    y_float = x @ (w_ternary.astype(np.float32) / weight_scale).T  # (T, out)
    # 2. the BitLinear layer: int8 x ternary in int32, one rescale
    y_bitlinear = layer(x)  # (T, out)
    # 3. the same integer sums by hand, for token 0 and output 0
    x_q, act_scale = quantize_activations(x)  # (T, in) int8, (T, 1) float32
    acc = ternary_matmul(x_q, w_ternary)  # (T, out) int32
    by_hand, adds, subtracts = add_subtract_row(x_q[0], w_ternary[0])
    print(f"output 0 of token 0: {adds} adds + {subtracts} subtracts, "
          f"{512 - adds - subtracts} weights skipped (zero), 0 multiplies")
    print(f"  integer sum by hand {by_hand}, ternary_matmul {acc[0, 0]}: "
          f"{'equal' if by_hand == acc[0, 0] else 'DIFFERENT'}")
    print(f"  rescale once: {acc[0, 0]} / ({act_scale[0, 0]:.3f} * {weight_scale:.3f}) = "
          f"{acc[0, 0] / (act_scale[0, 0] * weight_scale):.5f}; BitLinear gave "
          f"{y_bitlinear[0, 0]:.5f}")
    difference = np.abs(y_bitlinear - y_float).max() / np.abs(y_float).max()
    print(f"BitLinear vs float matmul on the same ternary weights: largest difference "
          f"{difference:.2%} of the largest output (the int8 rounding of the input, tutorial 2)")

    # The whole-model count, through the command line: a small random model written here.
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_checkpoint(Path(tmp) / "model", tiny_config(), seed=0)
        print("\n$ minibitnet ops --model MODEL --context 64")
        minibitnet_cli(["ops", "--model", str(model_dir), "--context", "64"])

    # The 2B4T shape, priced without a checkpoint: assume the zero share of absmean
    # ternarisation of Gaussian latent weights, as measured on the layer above.
    zero_share = float(np.mean(w_ternary == 0))
    shapes_total = sum(o * i for o, i in [(2560, 2560), (640, 2560), (640, 2560), (2560, 2560),
                                          (6912, 2560), (6912, 2560), (2560, 6912)]) * 30
    ternary = ternary_cost(BITNET_2B4T, round(shapes_total * (1 - zero_share)), context=CONTEXT)
    fp16 = fp16_cost(BITNET_2B4T, context=CONTEXT)
    t_proj = ternary.parts["ternary projections"]
    f_proj = fp16.parts["FP16 projections"]
    print(f"\n2B4T shape, one token at position {CONTEXT - 1}, assuming {zero_share:.0%} zero "
          "weights:")
    print(f"  linear layers, ternary: {t_proj.int_add / 1e9:.2f} G integer adds, "
          f"{t_proj.float_mult / 1e6:.2f} M float multiplies; "
          f"{t_proj.arithmetic_pj() / 1e6:.0f} uJ")
    print(f"  linear layers, FP16:    {f_proj.float_add / 1e9:.2f} G float adds, "
          f"{f_proj.float_mult / 1e9:.2f} G float multiplies; "
          f"{f_proj.arithmetic_pj() / 1e6:.0f} uJ "
          f"({f_proj.arithmetic_pj() / t_proj.arithmetic_pj():.0f}x the ternary energy)")
    print(f"  attention over {CONTEXT} positions: ternary "
          f"{ternary.parts['attention'].arithmetic_pj() / 1e6:.0f} uJ, FP16 "
          f"{fp16.parts['attention'].arithmetic_pj() / 1e6:.0f} uJ")
    print(f"  weights read: ternary {ternary.total.weight_bytes / 1e9:.2f} GB, "
          f"FP16 {fp16.total.weight_bytes / 1e9:.2f} GB per token")
    print(f"  energy figures: {ENERGY_SOURCE}")

    # Figure: energy per token by part, both models, 2B4T shape.
    parts = [("linear layers", t_proj.arithmetic_pj(), f_proj.arithmetic_pj()),
             ("attention", ternary.parts["attention"].arithmetic_pj(),
              fp16.parts["attention"].arithmetic_pj()),
             ("output head", ternary.parts["output head"].arithmetic_pj(),
              fp16.parts["output head"].arithmetic_pj()),
             ("weights read\nfrom DRAM", ternary.total.weight_bytes * DRAM_PJ_PER_BYTE,
              fp16.total.weight_bytes * DRAM_PJ_PER_BYTE)]
    labels = [p[0] for p in parts]
    positions = np.arange(len(parts))
    fig, ax = plt.subplots(figsize=(8.5, 4))
    bars_t = ax.bar(positions - 0.2, [p[1] / 1e6 for p in parts], 0.4, label="ternary (BitNet b1.58)",
                    color="#2e86de")
    bars_f = ax.bar(positions + 0.2, [p[2] / 1e6 for p in parts], 0.4, label="FP16, same shape",
                    color="#c0392b")
    ax.bar_label(bars_t, fmt="{:,.0f}", fontsize=8)
    ax.bar_label(bars_f, fmt="{:,.0f}", fontsize=8)
    ax.set_yscale("log")
    ax.set_xticks(positions, labels)
    ax.set_ylabel("energy per token (µJ, log scale)")
    ax.set_title("Tutorial 3: energy of one token, 2B4T shape (Horowitz 2014, 45 nm)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "03_energy_per_token.png", dpi=90)
    plt.close(fig)
    print(f"\nfigure: {out / '03_energy_per_token.png'}")


if __name__ == "__main__":
    main()
