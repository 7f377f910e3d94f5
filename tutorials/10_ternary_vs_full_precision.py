"""Tutorial 10: ternary vs full precision at toy scale, over several seeds.

The BitNet b1.58 claim is that a model trained ternary from scratch matches a full-precision
model of the same shape and training budget, from about 3B parameters on (arXiv 2402.17764,
Table 1; smaller ternary models there score a higher perplexity). This tutorial tests it at the
smallest scale: two tiny models, one ternary (absmean weights, int8 activations,
straight-through estimator) and its full-precision twin, trained by the same code
(``minibitnet.train``, ``quantize`` on and off) on the same two sonnets with the same steps and
schedule, once for each of a few seeds, and scored on a third sonnet neither has seen. Each
model trains at the peak learning rate ``minibitnet train`` gives it by default (6e-3 ternary,
3e-3 full precision), as the built-in model and its twin did. It then shows the built-in model,
whose comparison rests on one training run of each.

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

# Each seed sets both models' initial weights and batch order; one seed alone cannot tell a gap
# between the models from the luck of the draw.
SEEDS = (0, 1, 2)
# Peak learning rates: `minibitnet train`'s defaults (a ternary run, and one with --no-quant).
TERNARY_LR = 6e-3
FULL_PRECISION_LR = 3e-3

# The built-in model and its twin, as its model card (README.md beside the weights) records
# them: one run each, seed 0, everything else equal but the peak learning rate.
BUILTIN_LR = {"ternary": 6e-3, "full precision": 3e-3}
BUILTIN_RUN_SECONDS = {"ternary": 4089, "full precision": 3952}  # 2 cores, 1,600 steps

COLOURS = {"ternary": "#2e86de", "full precision": "#c0392b"}


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


def train_and_score(folder: Path, corpus: Path, held_out: Path, quantize: bool, lr: float,
                    seed: int) -> dict:
    """Train one toy model in ``folder`` and score it on the held-out sonnet.

    returns: {"steps", "val_loss": (N,) float arrays, the held-out loss during training;
              "score": Score of the whole held-out sonnet; "params", "config", "tokenizer"}
    """
    settings = Settings(data=(str(corpus),), steps=120, batch_size=8, context=32, lr=lr,
                        warmup=10, weight_decay=0.05, seed=seed, quantize=quantize,
                        bpe_vocab=320, checkpoint_every=1000, val=str(held_out), val_every=20,
                        val_windows=4)
    params = train(folder, settings, SHAPE, log=io.StringIO())
    with open(folder / "loss.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["val_loss"] not in ("", "nan")]
    config = load_config(folder / "model") if quantize else load_config(folder)
    tok = tokenizer.load(folder)

    def logits_of(window: list[int]) -> np.ndarray:
        return forward_logits(params, config, np.array([list(window)]), quantize)[0]  # (L, V)

    nats, scored = sliding_window_nats(logits_of, tok.encode(HELD_OUT, bos=True),
                                       config.max_position_embeddings, 16)
    return {"steps": np.array([float(r["step"]) for r in rows]),
            "val_loss": np.array([float(r["val_loss"]) for r in rows]),
            "score": Score(nats, scored, len(HELD_OUT)), "params": params, "config": config,
            "tokenizer": tok}


def mean_and_spread(values: list[float], sign: str = "") -> str:
    """"4.214 ± 0.110": the mean and the sample standard deviation over the seeds
    (``sign="+"`` writes the sign of a positive mean too)."""
    return f"{np.mean(values):{sign}.3f} ± {np.std(values, ddof=1):.3f}"


def rate(lr: float) -> str:
    """A learning rate as the paper and the command line write it: 6e-3."""
    return np.format_float_scientific(lr, trim="-", exp_digits=1)


def main() -> None:
    parser = argparse.ArgumentParser(description="Ternary vs full precision at toy scale.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    learning_rates = {"ternary": TERNARY_LR, "full precision": FULL_PRECISION_LR}
    runs: dict[str, list[dict]] = {"ternary": [], "full precision": []}  # one run per seed
    with tempfile.TemporaryDirectory() as tmp:
        corpus, held_out = Path(tmp) / "train.txt", Path(tmp) / "held_out.txt"
        corpus.write_text(TEXT, encoding="utf-8")
        held_out.write_text(HELD_OUT, encoding="utf-8")
        for seed in SEEDS:
            for label in runs:
                folder = Path(tmp) / f"{label.replace(' ', '-')}-{seed}"
                runs[label].append(train_and_score(folder, corpus, held_out, label == "ternary",
                                                   learning_rates[label], seed))
        print(f"two models of one shape (hidden {SHAPE['hidden_size']}, "
              f"{SHAPE['num_hidden_layers']} layers), the same data, steps and schedule, "
              f"{len(SEEDS)} seeds;")
        print(f"peak learning rate {rate(TERNARY_LR)} ternary, "
              f"{rate(FULL_PRECISION_LR)} full precision")
        print("held-out Sonnet 73, bits per character:")
        print(f"  {'seed':>6}  {'ternary':>15}  {'full precision':>15}  {'difference':>15}")
        bits = {label: [run["score"].bits_per_char for run in runs[label]] for label in runs}
        differences = [t - f for t, f in zip(bits["ternary"], bits["full precision"])]
        for seed, ternary, full, difference in zip(SEEDS, bits["ternary"],
                                                   bits["full precision"], differences):
            print(f"  {seed:>6}  {ternary:>15.3f}  {full:>15.3f}  {difference:>+15.3f}")
        print(f"  {'mean':>6}  {mean_and_spread(bits['ternary']):>15}  "
              f"{mean_and_spread(bits['full precision']):>15}  "
              f"{mean_and_spread(differences, sign='+'):>15}")
        print("  (± is the standard deviation over the seeds; difference = ternary - full "
              "precision, seed by seed)")
        if all(d > 0 for d in differences) or all(d < 0 for d in differences):
            better = "full precision" if differences[0] > 0 else "ternary"
            magnitudes = [abs(d) for d in differences]
            print(f"{better} scored better with every seed, by {min(magnitudes):.3f} to "
                  f"{max(magnitudes):.3f} bits/char.")
        else:
            print("which model scores better changes from seed to seed.")
        for label in runs:  # one sample each, from the first seed's models
            first = runs[label][0]
            tok = first["tokenizer"]
            text = tok.decode(sample(first["params"], first["config"], label == "ternary",
                                     tok.encode("Love", bos=True), 24, seed=1)[1:])
            print(f"  {label:15s} sample (seed {SEEDS[0]}): {text!r}")

    # The built-in model: one training run of it and one of its twin, at a larger scale.
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
        print(f"  one run each, seed 0, peak learning rate {rate(BUILTIN_LR['ternary'])} ternary "
              f"and {rate(BUILTIN_LR['full precision'])} full precision; "
              f"{BUILTIN_RUN_SECONDS['ternary'] / 60:.0f} and "
              f"{BUILTIN_RUN_SECONDS['full precision'] / 60:.0f} minutes on two cores")
    except minibitnet.MinibitnetError as exc:
        print(f"the built-in model is not installed here, so only the toy twins are shown ({exc})")

    # Figure: the toy twins' held-out loss during training (one line per seed), their final
    # scores seed by seed with the mean and spread, and (when installed) the built-in model
    # with its twin, from the training record that ships beside the built-in model.
    full_scale = read_builtin_curves()
    panels = 3 if full_scale else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.2), squeeze=False)
    curves, scores = axes[0, 0], axes[0, 1]
    for label, label_runs in runs.items():
        for i, run in enumerate(label_runs):
            curves.plot(run["steps"], run["val_loss"], "o-", color=COLOURS[label], markersize=3,
                        linewidth=1, alpha=0.7, label=label if i == 0 else None)
    curves.set_xlabel("optimiser step")
    curves.set_ylabel("held-out loss (nats per token)")
    curves.set_title(f"Toy twins, {len(SEEDS)} seeds: held-out Sonnet 73", fontsize=10)
    curves.legend()
    for x, (label, values) in enumerate(bits.items()):
        scores.plot([x] * len(values), values, "o", color=COLOURS[label], alpha=0.6)
        scores.errorbar(x + 0.15, np.mean(values), yerr=np.std(values, ddof=1), fmt="s",
                        color=COLOURS[label], capsize=5)
    for pair in zip(bits["ternary"], bits["full precision"]):
        scores.plot([0, 1], pair, color="grey", linewidth=0.6, alpha=0.6)  # the same seed
    scores.set_xticks([0, 1], [f"ternary\npeak LR {rate(TERNARY_LR)}",
                               f"full precision\npeak LR {rate(FULL_PRECISION_LR)}"])
    scores.set_xlim(-0.5, 1.5)
    scores.set_ylabel("held-out bits per character")
    scores.set_title("Each seed (dots, same seed joined), mean ± std", fontsize=10)
    if full_scale:
        plays = axes[0, 2]
        for label, (steps, loss, val_steps, val_loss) in full_scale.items():
            plays.plot(steps, loss, color=COLOURS[label], alpha=0.35, linewidth=0.8,
                       label=f"{label}, training batches")
            plays.plot(val_steps, val_loss, "o-", color=COLOURS[label],
                       label=f"{label}, held-out Hamlet")
        plays.set_xlabel("optimiser step")
        plays.set_ylabel("loss (nats per token)")
        plays.set_ylim(top=6.5)
        plays.set_title(f"Built-in model and its twin: one run each, LR "
                        f"{rate(BUILTIN_LR['ternary'])} / {rate(BUILTIN_LR['full precision'])}",
                        fontsize=10)
        plays.legend(fontsize=8)
    fig.suptitle("Tutorial 10: ternary vs full precision, same shape, data, steps and schedule; "
                 "peak learning rates differ")
    fig.tight_layout()
    fig.savefig(out / "10_twins.png", dpi=90)
    plt.close(fig)
    print(f"figure: {out / '10_twins.png'}")


if __name__ == "__main__":
    main()
