"""Tutorial 10: ternary vs full precision at toy scale.

The BitNet b1.58 claim is that a model trained ternary from scratch matches a full-precision
model of the same shape and training budget. This tutorial tests that at the smallest scale:
two tiny models, one ternary (absmean weights, int8 activations, straight-through estimator)
and its full-precision twin, trained by the same code (``minibitnet.train``, ``quantize`` on and
off) on the same two sonnets with the same seed and steps, scored on a third sonnet neither has
seen. It then shows the package's built-in model, trained the same way on Shakespeare's plays.

    python tutorials/10_ternary_vs_full_precision.py --out docs/tutorials/figures
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

import minibitnet  # noqa: E402
from minibitnet import tokenizer  # noqa: E402
from minibitnet.config import load_config  # noqa: E402
from minibitnet.tools.evaluate import Score, sliding_window_nats  # noqa: E402
from minibitnet.loader import builtin_model_dir  # noqa: E402
from minibitnet.core.sample import sample_next_token  # noqa: E402
from minibitnet.train.loop import Settings, train  # noqa: E402
from minibitnet.train.model import forward_logits  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"
DATA = Path(__file__).resolve().parent / "data"

# Shakespeare, Sonnets 18 and 116 (public domain): the training text.
TEXT = (DATA / "sonnets_18_116.txt").read_text(encoding="utf-8")

# Sonnet 73, held out: neither model trains on it.
HELD_OUT = (DATA / "sonnet_73.txt").read_text(encoding="utf-8")
SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2}


COLOURS = ("#2e86de", "#c0392b")  # ternary, full precision


def read_builtin_curves() -> dict[str, tuple[np.ndarray, ...]]:
    """Training and held-out loss of the built-in model and its twin, by step; {} if absent.

    returns: label -> (steps, training loss, validation steps, validation loss), float arrays
    """
    try:
        record = builtin_model_dir() / "training.csv"
    except minibitnet.MinibitnetError:
        return {}
    if not record.is_file():
        return {}
    with open(record, newline="") as handle:
        rows = list(csv.DictReader(handle))
    curves = {}
    for label, prefix in (("ternary", "ternary"), ("full precision", "float")):
        steps = np.array([float(r["step"]) for r in rows])
        loss = np.array([float(r[f"{prefix}_loss"]) for r in rows])
        validated = [r for r in rows if r[f"{prefix}_val_loss"]]
        curves[label] = (steps, loss, np.array([float(r["step"]) for r in validated]),
                         np.array([float(r[f"{prefix}_val_loss"]) for r in validated]))
    return curves


def sample(params: dict[str, np.ndarray], config: object, quantize: bool, ids: list[int],
           count: int, seed: int) -> list[int]:
    """``count`` tokens sampled at temperature 0.8 with the training forward pass (no cache)."""
    rng = np.random.default_rng(seed)
    ids = list(ids)
    for _ in range(count):
        window = ids[-config.max_position_embeddings:]  # type: ignore[attr-defined]
        logits = forward_logits(params, config, np.array([window]), quantize)[0, -1]  # (V,)
        ids.append(sample_next_token(logits.astype(np.float32), 0.8, None, None, rng))
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description="Ternary vs full precision at toy scale.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        corpus, held_out = Path(tmp) / "train.txt", Path(tmp) / "held_out.txt"
        corpus.write_text(TEXT, encoding="utf-8")
        held_out.write_text(HELD_OUT, encoding="utf-8")
        print(f"two models of one shape (hidden {SHAPE['hidden_size']}, "
              f"{SHAPE['num_hidden_layers']} layers), the same data, seed and steps:")
        for label, quantize in (("ternary", True), ("full precision", False)):
            run = Path(tmp) / label.replace(" ", "-")
            settings = Settings(data=(str(corpus),), steps=120, batch_size=8, context=32,
                                lr=6e-3, warmup=10, weight_decay=0.05, seed=0, quantize=quantize,
                                bpe_vocab=320, checkpoint_every=1000, val=str(held_out),
                                val_every=20, val_windows=4)
            params = train(run, settings, SHAPE, log=io.StringIO())
            with open(run / "loss.csv", newline="") as handle:
                rows = [r for r in csv.DictReader(handle) if r["val_loss"] not in ("", "nan")]
            curves[label] = (np.array([float(r["step"]) for r in rows]),
                             np.array([float(r["val_loss"]) for r in rows]))
            config = load_config(run / "model") if quantize else load_config(run)
            tok = tokenizer.load(run)
            ids = tok.encode(HELD_OUT, bos=True)

            def logits_of(window: list[int], params=params, config=config,
                          quantize=quantize) -> np.ndarray:
                return forward_logits(params, config, np.array([list(window)]), quantize)[0]

            nats, scored = sliding_window_nats(logits_of, ids, config.max_position_embeddings, 16)
            score = Score(nats, scored, len(HELD_OUT))
            text = tok.decode(sample(params, config, quantize, tok.encode("Love", bos=True), 24,
                                     seed=1)[1:])
            print(f"  {label:15s} held-out sonnet: {score.bits_per_char:.3f} bits/char, "
                  f"perplexity {score.perplexity:.1f}")
            print(f"  {'':15s} sample: {text!r}")
    print("At this scale (28 lines of training text) neither model generalises much and the gap "
          "between them is within noise; the point is the method: same code, same budget, one "
          "switch.")

    # The built-in model: trained the same way, at a scale where the comparison means more.
    print()
    try:
        folder = builtin_model_dir()
        model = minibitnet.load()
        tok = tokenizer.load(folder)
        ids = tok.encode("ROMEO:", bos=True)
        text = tok.decode(model.generate(ids, 40, temperature=0.8, seed=1, stop_ids=[]))
        print(f"the built-in model ({folder.name}): {model.config.hidden_size} wide, "
              f"{model.config.num_hidden_layers} layers, vocabulary {model.config.vocab_size}")
        print(f"  sample: {text!r}")
        card = folder / "README.md"
        if card.is_file():  # the score table: ternary vs its twin on all of held-out Hamlet
            print("  from its model card (README.md beside the weights):")
            for line in card.read_text(encoding="utf-8").splitlines():
                if line.startswith(("| text | ternary (this model) | full", "| *Hamlet*")):
                    print("   ", line.strip())
    except minibitnet.MinibitnetError as exc:
        print(f"the built-in model is not installed here, so only the toy twins are shown ({exc})")

    # Figure: held-out loss during training, the toy twins and (when installed) the built-in
    # model with its twin, from the training record that ships beside the built-in model.
    full_scale = read_builtin_curves()
    fig, axes = plt.subplots(1, 2 if full_scale else 1, figsize=(11 if full_scale else 8, 4),
                             squeeze=False)
    toy = axes[0, 0]
    for (label, (steps, loss)), colour in zip(curves.items(), COLOURS):
        toy.plot(steps, loss, "o-", color=colour, label=label)
    toy.set_xlabel("optimiser step")
    toy.set_ylabel("held-out loss (nats per token)")
    toy.set_title("Toy twins: 2 sonnets, held-out Sonnet 73")
    toy.legend()
    if full_scale:
        plays = axes[0, 1]
        for (label, (steps, loss, val_steps, val_loss)), colour in zip(full_scale.items(),
                                                                        COLOURS):
            plays.plot(steps, loss, color=colour, alpha=0.35, linewidth=0.8,
                       label=f"{label}, training batches")
            plays.plot(val_steps, val_loss, "o-", color=colour, label=f"{label}, held-out Hamlet")
        plays.set_xlabel("optimiser step")
        plays.set_ylabel("loss (nats per token)")
        plays.set_ylim(top=6.5)
        plays.set_title("Built-in model and its twin: 41 plays and poems")
        plays.legend(fontsize=8)
    fig.suptitle("Tutorial 10: ternary vs full precision, same shape, data, seed and steps")
    fig.tight_layout()
    fig.savefig(out / "10_twins.png", dpi=90)
    plt.close(fig)
    print(f"figure: {out / '10_twins.png'}")


if __name__ == "__main__":
    main()
