"""Tutorial 1: ternary weights by absmean quantisation.

BitNet b1.58 keeps a float "latent" copy of every linear layer during training, and the forward
pass uses its ternarisation: divide by the mean absolute value, round, clip to {-1, 0, +1}. After
training only the ternary values and one float scale per tensor remain; that is what a checkpoint
holds. This tutorial ternarises a layer-shaped synthetic matrix, shows how many weights become 0,
what the one scale reconstructs and how much the layer's output changes, and compares the share
of zeros with the trained layers of the built-in model.

    python tutorials/01_ternary_weights.py --out docs/tutorials/figures
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minibitnet  # noqa: E402
from minibitnet.core.quant import ternarize_weights  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"
SCALE_RULE = "absmean"  # the scale is 1 / this statistic of |w|: "absmean", "rms" or "absmax"
ZERO_THRESHOLD = 0.5  # a weight becomes 0 when |w| * scale is at most this (rounding: 0.5)


def ternarize(w: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """ternarize_weights with SCALE_RULE and ZERO_THRESHOLD as parameters to experiment with.

    w:       (out, in) float32
    returns: w_ternary (out, in) int8 in {-1, 0, +1}, scale float32 with w ≈ w_ternary / scale
    """
    magnitude = {"absmean": np.abs(w).mean(dtype=np.float64),
                 "rms": np.sqrt(np.mean(np.square(w, dtype=np.float64))),
                 "absmax": np.abs(w).max()}[SCALE_RULE]
    scale = np.float32(1.0 / max(float(magnitude), 1e-5))
    w_ternary = np.where(np.abs(w * scale) > ZERO_THRESHOLD, np.sign(w), 0).astype(np.int8)
    return w_ternary, scale


def trained_ternary_shares() -> dict[str, np.ndarray] | None:
    """Share of -1, 0 and +1 in each ternary matrix of the built-in model, by projection name
    (each a (layers, 3) array); None where the built-in model is not installed."""
    try:
        model = minibitnet.load(backend="reference")  # this kernel keeps the codes as int8
    except minibitnet.MinibitnetError:
        return None
    shares: dict[str, list[np.ndarray]] = {}
    for block in model.blocks:
        for part, names in ((block.attention, ("q_proj", "k_proj", "v_proj", "o_proj")),
                            (block.feed_forward, ("gate_proj", "up_proj", "down_proj"))):
            for name in names:
                codes = getattr(part, name).prepared  # (out, in) int8 in {-1, 0, +1}
                counts = np.bincount(codes.ravel() + 1, minlength=3)  # (3,) of -1, 0, +1
                shares.setdefault(name, []).append(counts / codes.size)
    return {name: np.array(values) for name, values in shares.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description="Ternary weights by absmean quantisation.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    # The worked example of minibitnet/core/quant.py: four weights.
    w = np.array([[0.3, -0.05, -0.4, 0.1]], dtype=np.float32)
    w_ternary, scale = ternarize_weights(w)
    print("four latent weights:     ", w[0])
    print(f"scale = 1 / mean|w|      = 1 / {np.abs(w).mean():.4f} = {scale:.3f}")
    print("w * scale                ", np.round(w[0] * scale, 2))
    print("round, clip to [-1, 1]   ", w_ternary[0])
    print("reconstruction w_t/scale ", np.round(w_ternary[0] / scale, 3))

    # A layer-shaped matrix, synthetic: released checkpoints keep only the ternary values, not
    # the float latent weights they were trained from. Trained weights have heavier tails than
    # a Gaussian, so a Student-t with 5 degrees of freedom stands in for them.
    rng = np.random.default_rng(0)
    latent = (0.02 * rng.standard_t(df=5, size=(1024, 1024))).astype(np.float32)  # (out, in)
    w_ternary, scale = ternarize(latent)
    if SCALE_RULE == "absmean" and ZERO_THRESHOLD == 0.5:  # the package's rule, exactly
        assert np.array_equal(w_ternary, ternarize_weights(latent)[0])
    values, counts = np.unique(w_ternary, return_counts=True)
    threshold = ZERO_THRESHOLD / scale
    print(f"\nsynthetic layer (1024, 1024), latent std {latent.std():.4f}: {SCALE_RULE} scale "
          f"{scale:.2f}, so a weight becomes 0 when |w| <= {ZERO_THRESHOLD}/scale = "
          f"{threshold:.4f}")
    for value, count in zip(values, counts):
        print(f"  {int(value):>2d}: {count / latent.size:6.1%} of the weights")
    print(f"  information: log2(3) = {np.log2(3):.2f} bits per weight "
          "(stored as 2 bits in the Hugging Face layout)")

    # How well does one scale reconstruct the matrix, and the layer's output?
    reconstructed = w_ternary.astype(np.float32) / scale  # (out, in)
    weight_error = np.linalg.norm(latent - reconstructed) / np.linalg.norm(latent)
    x = rng.standard_normal((16, 1024)).astype(np.float32)  # (T, in) a few tokens
    y_float, y_ternary = x @ latent.T, x @ reconstructed.T  # (T, out)
    output_error = np.linalg.norm(y_float - y_ternary) / np.linalg.norm(y_float)
    cosine = np.sum(y_float * y_ternary) / (np.linalg.norm(y_float) * np.linalg.norm(y_ternary))
    print(f"relative error of the weights: {weight_error:.1%}")
    print(f"relative error of the layer output: {output_error:.1%} "
          f"(cosine similarity {cosine:.3f})")
    print("That is the cost of ternarising float weights after the fact, on this synthetic "
          "matrix; BitNet trains with the ternary forward pass from the start, so the latent "
          "weights learn to work through it (tutorial 9).")

    # The trained layers of the built-in model: their ternary codes are all a checkpoint keeps.
    trained = trained_ternary_shares()
    if trained is None:
        print("\nthe built-in model is not installed here: no trained layers to compare")
    else:
        print("\ntrained ternary layers of the built-in model (4 layers each), share of each "
              "value, min..max over the layers:")
        for name, shares in trained.items():  # shares: (layers, 3)
            print(f"  {name:9s} " + "  ".join(
                f"{label}: {shares[:, index].min():5.1%}..{shares[:, index].max():5.1%}"
                for index, label in enumerate(("-1", " 0", "+1"))))

    # Figure 1: the latent histogram with the thresholds, and the ternary shares beside the
    # trained layers'.
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), width_ratios=[2.0, 1.2])
    bins = np.linspace(-0.12, 0.12, 121)
    ax1.hist(latent.ravel(), bins=bins, color="#9aa5c9")
    for edge in (-threshold, threshold):
        ax1.axvline(edge, color="#c0392b", linestyle="--", linewidth=1)
    ax1.axvspan(-threshold, threshold, color="#f5d76e", alpha=0.35, label="becomes 0")
    ax1.set_yscale("log")
    ax1.set_xlabel("latent weight value (float32)")
    ax1.set_ylabel("number of weights (log scale)")
    ax1.set_title(f"Synthetic latent weights; dashed: ±{ZERO_THRESHOLD} / scale")
    ax1.legend(loc="upper right")
    synthetic = [float(np.mean(w_ternary == v)) * 100 for v in (-1, 0, 1)]
    positions = np.arange(3)
    ax2.bar(positions - 0.2, synthetic, width=0.4, color="#9aa5c9", label="synthetic, above")
    if trained is not None:
        pooled = np.mean([shares.mean(axis=0) for shares in trained.values()], axis=0) * 100
        ax2.bar(positions + 0.2, pooled, width=0.4, color="#2e86de",
                label="built-in model, trained\n(mean of its 7 projections)")
    ax2.set_xticks(positions, ["-1", "0", "+1"])
    ax2.set_xlabel("ternary value")
    ax2.set_ylabel("share of weights (%)")
    ax2.set_title(f"After {SCALE_RULE} ternarisation")
    ax2.set_ylim(0, 1.45 * max(synthetic))  # room for the legend above the bars
    ax2.legend(fontsize=7, loc="upper center")
    fig.suptitle("Tutorial 1: one synthetic 1024×1024 layer, float32 → {-1, 0, +1}")
    fig.tight_layout()
    fig.savefig(out / "01_ternary_histogram.png", dpi=90)
    plt.close(fig)

    # Figure 2: a corner of the matrix before and after (also the picture on the home page).
    corner = latent[:16, :16]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.8))
    limit = float(np.abs(corner).max())
    image = ax1.imshow(corner, cmap="coolwarm", vmin=-limit, vmax=limit)
    ax1.set_title("latent float32 weights")
    fig.colorbar(image, ax=ax1, fraction=0.046, label="weight value")
    image = ax2.imshow(w_ternary[:16, :16], cmap="coolwarm", vmin=-1, vmax=1)
    ax2.set_title(f"ternary: round(w × {scale:.1f}), clipped")
    fig.colorbar(image, ax=ax2, fraction=0.046, ticks=[-1, 0, 1], label="ternary value")
    for ax in (ax1, ax2):
        ax.set_xlabel("input feature (column)")
        ax.set_ylabel("output feature (row)")
    fig.suptitle("A 16×16 corner of a layer, before and after ternarisation")
    fig.tight_layout()
    fig.savefig(out / "01_ternary_matrix.png", dpi=90)
    plt.close(fig)
    print(f"\nfigures: {out / '01_ternary_histogram.png'}, {out / '01_ternary_matrix.png'}")


if __name__ == "__main__":
    main()
