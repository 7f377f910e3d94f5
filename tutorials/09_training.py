"""Tutorial 9: training with the straight-through estimator.

BitNet b1.58 is trained ternary from the first step. The optimiser updates float "latent"
weights; the forward pass uses their ternarisation (and int8 activations), exactly as the
exported model will. But round() has a zero derivative almost everywhere, so a true gradient
would never move a latent weight. The straight-through estimator (STE) passes the gradient
through round() and clip() as if they were the identity -- in PyTorch, ``w + (q(w) - w).detach()``.
The latent weights keep learning, and every step the ternary weights they round to change a
little. This tutorial shows the STE on one layer, then trains a tiny model on a few sonnets with
``minibitnet.train`` and draws its loss curve.

    python tutorials/09_training.py --out docs/tutorials/figures
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from minibitnet.train.layers import bitlinear_backward, bitlinear_forward, ternarize_latent  # noqa: E402
from minibitnet.train.loop import Settings, train  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"
DATA = Path(__file__).resolve().parent / "data"

# Shakespeare, Sonnets 18 and 116 (public domain): a corpus small enough to learn in seconds.
TEXT = (DATA / "sonnets_18_116.txt").read_text(encoding="utf-8")
SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2}
# The size of one plain gradient step on the layer of part 1: how far it moves the latent weights.
STEP_SIZE = 1e-3


def main() -> None:
    parser = argparse.ArgumentParser(description="Training with the straight-through estimator.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    # 1. one layer: the forward pass is ternary, the backward pass is straight through
    rng = np.random.default_rng(9)
    w = rng.normal(0, 0.02, size=(6, 8))  # (out, in) latent weights, float64 here
    x = rng.normal(0, 1, size=(3, 8))  # (N, in)
    y, cache = bitlinear_forward(x, w, quantize=True)  # ternary weights, int8 activations
    dy = rng.normal(0, 1, size=y.shape)  # some gradient arriving from the loss
    dx, dw = bitlinear_backward(dy, cache)
    w_ternary, scale = ternarize_latent(w)
    print("latent row 0:  ", np.round(w[0], 4))
    print("ternary row 0: ", w_ternary[0].astype(int), f"(scale {scale:.1f})")
    print("STE gradient dL/dw row 0:", np.round(dw[0], 3))
    print("The true derivative of round() is 0, which would give dL/dw = 0 everywhere; the STE "
          "uses dL/dw = dy^T x_dequantised instead:")
    x_dequantised = cache[0]
    print(f"  equal to dy^T @ x_dequantised: {np.allclose(dw, dy.T @ x_dequantised)}")
    print("A small step moves a latent weight; once it crosses ±0.5/scale its ternary value "
          "flips. That is how a ternary network learns.")
    w_stepped = w - STEP_SIZE * dw  # (out, in) one plain gradient step
    flipped = int(np.count_nonzero(ternarize_latent(w_stepped)[0] != w_ternary))
    print(f"  one step of size {STEP_SIZE:g} flips {flipped} of the {w.size} ternary weights: "
          f"latent moves of up to {np.abs(STEP_SIZE * dw).max():.4f}, and those that sat near "
          f"±0.5/scale = ±{0.5 / scale:.4f} cross it (the scale moves too)")

    # 2. a tiny model trained on two sonnets, ternary forward + STE, with minibitnet.train
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "sonnets.txt"
        corpus.write_text(TEXT, encoding="utf-8")
        settings = Settings(data=(str(corpus),), steps=120, batch_size=8, context=32, lr=6e-3,
                            warmup=10, weight_decay=0.05, seed=0, quantize=True, bpe_vocab=320,
                            checkpoint_every=1000)
        log = io.StringIO()  # the progress bar would go to stderr; keep it quiet here
        train(Path(tmp) / "run", settings, SHAPE, log=log)
        with open(Path(tmp) / "run" / "loss.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        exported = sorted(p.name for p in (Path(tmp) / "run" / "model").iterdir())
    steps = np.array([float(r["step"]) for r in rows])
    loss = np.array([float(r["loss"]) for r in rows])
    print(f"\ntiny ternary model ({SHAPE['hidden_size']} wide, {SHAPE['num_hidden_layers']} "
          f"layers), {settings.steps} steps of {settings.batch_size} x {settings.context} tokens:")
    print(f"  loss {loss[0]:.2f} nats at step 1 (uniform over {settings.bpe_vocab}+ tokens is "
          f"{np.log(settings.bpe_vocab):.2f}) -> {loss[-10:].mean():.2f} over the last 10 steps")
    print(f"  exported model folder: {', '.join(exported)}")

    # Figure: the STE picture and the loss curve.
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 3.9))
    latent = np.linspace(-0.06, 0.06, 601)
    mean_abs = 0.02  # a layer whose mean |w| is 0.02: weights round at ±0.01
    forward = np.clip(np.rint(latent / mean_abs), -1, 1) * mean_abs
    ax1.plot(latent, forward, color="#2e86de", linewidth=2, label="forward: ternary(w) / scale")
    ax1.plot(latent, latent, color="#c0392b", linestyle="--", label="backward (STE): identity")
    ax1.set_xlabel("latent weight w")
    ax1.set_ylabel("weight used in the forward pass")
    ax1.set_title("Straight-through: round in the forward pass only", fontsize=10)
    ax1.legend(fontsize=8)
    ax2.plot(steps, loss, color="#8e44ad", linewidth=1, alpha=0.5, label="loss per step")
    window = 10
    smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
    ax2.plot(steps[window - 1:], smooth, color="#8e44ad", linewidth=2, label=f"mean of {window}")
    ax2.set_xlabel("optimiser step")
    ax2.set_ylabel("training loss (nats per token)")
    ax2.set_title("A tiny ternary model learning two sonnets", fontsize=10)
    ax2.legend(fontsize=8)
    fig.suptitle("Tutorial 9: training ternary weights with the straight-through estimator")
    fig.tight_layout()
    fig.savefig(out / "09_training.png", dpi=90)
    plt.close(fig)
    print(f"figure: {out / '09_training.png'}")


if __name__ == "__main__":
    main()
