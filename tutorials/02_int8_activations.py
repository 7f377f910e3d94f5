"""Tutorial 2: int8 activations with one absmax scale per token.

Before every ternary layer, BitNet b1.58 quantises the input activations to int8: each token's
vector is multiplied by 127 / max|x| and rounded, so the largest entry becomes ±127. The scale is
per token because tokens differ a lot in magnitude: one shared scale would be set by the loudest
token and crush the quiet ones into a few integer levels. This tutorial measures that.

    python tutorials/02_int8_activations.py --out docs/tutorials/figures
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from minibitnet.core.quant import quantize_activations  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"
ACTIVATION_BITS = 8  # BitNet b1.58 quantises activations to 8 bits; BitNet a4.8 to 4
OUTLIER_GAIN = 6.0  # how much louder the few outlier channels are than the rest


def absmax_quantize(x: np.ndarray, per_token: bool) -> tuple[np.ndarray, np.ndarray]:
    """Absmax quantisation to ACTIVATION_BITS-bit integers, one scale per token or per tensor.

    x:       (T, D) float32
    returns: x_q (T, D) int8 holding integers in [-2^(bits-1), 2^(bits-1) - 1]
             scale (T, 1) per token or (1, 1) per tensor, float32, so that x ≈ x_q / scale
    """
    top = 2 ** (ACTIVATION_BITS - 1) - 1  # 127 for 8 bits, 7 for 4
    peak = np.abs(x).max(axis=-1, keepdims=True) if per_token else np.abs(x).max(keepdims=True)
    scale = (top / np.maximum(peak, 1e-5)).astype(np.float32)  # (T, 1) or (1, 1)
    return np.clip(np.rint(x * scale), -top - 1, top).astype(np.int8), scale


def main() -> None:
    parser = argparse.ArgumentParser(description="Int8 activations with per-token absmax.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    # One token, by hand.
    x = np.array([[0.5, -2.0, 0.01, 1.27]], dtype=np.float32)  # (T=1, D=4)
    x_q, scale = quantize_activations(x)
    print("one token x            ", x[0])
    print(f"scale = 127 / max|x|   = 127 / {np.abs(x).max():.2f} = {scale[0, 0]:.2f}")
    print("x_q = round(x * scale) ", x_q[0], "(int8)")
    print("x_q / scale            ", np.round(x_q[0] / scale[0, 0], 4))

    # 64 tokens of a hidden state: magnitudes spread over two orders of magnitude from token to
    # token (the first token of a sequence, and some punctuation tokens, are far louder), and a
    # few outlier channels, as measured in transformer activations.
    rng = np.random.default_rng(1)
    tokens, width = 64, 512
    loudness = np.exp(rng.normal(0.0, 1.0, size=(tokens, 1)))  # (T, 1) log-normal per token
    loudness[0] = 40.0  # a loud first token
    x = rng.standard_normal((tokens, width)) * loudness  # (T, D)
    x[:, :4] *= OUTLIER_GAIN  # outlier channels
    x = x.astype(np.float32)

    x_q, scale = absmax_quantize(x, per_token=True)  # (T, D) int8, (T, 1) float32
    if ACTIVATION_BITS == 8:  # the same codes as the package's quantiser, which the model uses
        assert np.array_equal(x_q, quantize_activations(x)[0])
    per_token_error = np.linalg.norm(x - x_q / scale, axis=1) / np.linalg.norm(x, axis=1)  # (T,)
    xt_q, tensor_scale = absmax_quantize(x, per_token=False)  # (T, D), (1, 1)
    per_tensor_error = np.linalg.norm(x - xt_q / tensor_scale, axis=1) / np.linalg.norm(x, axis=1)
    levels_token = np.array([np.unique(row).size for row in x_q])  # distinct int8 values used
    levels_tensor = np.array([np.unique(row).size for row in xt_q])
    print(f"\n{tokens} tokens × {width} features, {ACTIVATION_BITS}-bit codes "
          f"({2 ** ACTIVATION_BITS} levels); per-token max|x| from "
          f"{np.abs(x).max(axis=1).min():.2f} to {np.abs(x).max(axis=1).max():.1f}")
    print(f"{'':24s} {'median error':>13s} {'worst error':>12s} {'median levels used':>19s}")
    print(f"{'per-token scale':24s} {np.median(per_token_error):>13.2%} "
          f"{per_token_error.max():>12.2%} {np.median(levels_token):>19.0f}")
    print(f"{'one scale per tensor':24s} {np.median(per_tensor_error):>13.2%} "
          f"{per_tensor_error.max():>12.2%} {np.median(levels_tensor):>19.0f}")
    silent = int(np.sum(per_tensor_error == 1.0))  # tokens whose every code rounded to 0
    print(f"With one scale for the tensor, the median token uses {np.median(levels_tensor):.0f} "
          f"of the {2 ** ACTIVATION_BITS} levels and is reconstructed with a "
          f"{np.median(per_tensor_error):.0%} error; {silent} of {tokens} tokens round to all "
          "zeros. Per token, every token's largest entry gets the top code.")
    print("The price: one float scale per token, applied once per output after the integer sum "
          "(tutorial 3).")

    # Figure: error by token for both choices, against token loudness.
    order = np.argsort(np.abs(x).max(axis=1))  # quietest token first
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.8))
    ax1.semilogy(per_tensor_error[order] * 100, "o-", markersize=3, label="one scale per tensor",
                 color="#c0392b")
    ax1.semilogy(per_token_error[order] * 100, "o-", markersize=3, label="one scale per token",
                 color="#2e86de")
    ax1.set_xlabel("token, sorted from quietest to loudest")
    ax1.set_ylabel("relative quantisation error (%)")
    ax1.set_title("Error of x_q / scale, by token")
    ax1.legend()
    ax2.plot(levels_tensor[order], "o-", markersize=3, color="#c0392b",
             label="one scale per tensor")
    ax2.plot(levels_token[order], "o-", markersize=3, color="#2e86de", label="one scale per token")
    ax2.set_xlabel("token, sorted from quietest to loudest")
    ax2.set_ylabel(f"distinct codes used (of {2 ** ACTIVATION_BITS})")
    ax2.set_title("Resolution left for each token")
    ax2.legend()
    fig.suptitle(f"Tutorial 2: absmax {ACTIVATION_BITS}-bit quantisation of {tokens} tokens × "
                 f"{width} features")
    fig.tight_layout()
    fig.savefig(out / "02_activation_error.png", dpi=90)
    plt.close(fig)
    print(f"\nfigure: {out / '02_activation_error.png'}")


if __name__ == "__main__":
    main()
