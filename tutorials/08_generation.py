"""Tutorial 8: generation with a KV cache, temperature, top-k and top-p.

Generating text is a loop: run the prompt through the model once (prefill), then repeatedly
choose a token from the last position's logits and run only that token (decode). The KV cache
keeps every earlier position's keys and values, so a decode step costs one token, not the whole
sequence. How the token is chosen is set by three knobs, applied in this order (as Hugging Face
``generate`` does): divide the logits by the temperature, keep the k most likely tokens, keep the
smallest set whose probability reaches p.

    python tutorials/08_generation.py --out docs/tutorials/figures
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minibitnet  # noqa: E402
from minibitnet import tokenizer  # noqa: E402
from minibitnet.loader import builtin_model_dir  # noqa: E402
from minibitnet.core.sample import next_token_probs  # noqa: E402
from minibitnet.tools.synthetic import tiny_config, write_checkpoint  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"
PROMPT = "ROMEO:\nBut soft, what light through yonder window"


def load_model(tmp: Path) -> tuple[minibitnet.Model, list[int], object]:
    """The built-in model, its tokenizer and the prompt; a random model and ids if absent."""
    try:
        model = minibitnet.load()
        tok = tokenizer.load(builtin_model_dir())
        print(f"model: the built-in model, {builtin_model_dir().name}")
        return model, tok.encode(PROMPT), tok
    except minibitnet.MinibitnetError:
        model = minibitnet.load(write_checkpoint(tmp / "model", tiny_config(
            vocab_size=512, hidden_size=128, intermediate_size=256, max_position_embeddings=256),
            seed=8))
        print("model: the built-in model is not installed here, so this run uses a random "
              "synthetic model and shows token ids instead of text")
        return model, [int(i) for i in np.random.default_rng(8).integers(3, 512, size=12)], None


def main() -> None:
    parser = argparse.ArgumentParser(description="Generation: KV cache and sampling.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        model, ids, tok = load_model(Path(tmp))

        def show(token_ids: list[int]) -> str:
            return repr(tok.decode(token_ids)) if tok is not None else str(token_ids)  # type: ignore[attr-defined]

        # ---- the KV cache: same logits, a fraction of the work ----
        new_tokens = 24
        greedy = model.generate(ids, new_tokens, temperature=0.0, stop_ids=[])
        sequence = ids + greedy
        full = model.logits(sequence)  # (T, V) every position from scratch
        cache = model.new_cache()
        stepwise = [model.forward(ids, cache)]  # prefill: (len(ids), V)
        for token in greedy[:-1]:
            stepwise.append(model.forward([token], cache))  # decode: (1, V) each
        cached = np.concatenate(stepwise)  # (T - 1, V)
        difference = float(np.abs(cached - full[:-1]).max())
        print(f"prompt {show(ids)} ({len(ids)} tokens)")
        print(f"greedy continuation: {show(greedy)}")
        print(f"logits with the KV cache vs recomputed from scratch: largest difference "
              f"{difference:.1e}")
        print("  (float32 sums in a different order round differently in the last bit; where a "
              "value sits on an int8 rounding boundary the next layer sees a different integer)")

        start = time.perf_counter()
        model.generate(ids, new_tokens, temperature=0.0, stop_ids=[])
        with_cache = time.perf_counter() - start
        start = time.perf_counter()
        prefix = list(ids)
        for _ in range(new_tokens):  # no cache: every step reruns the whole prefix
            prefix.append(int(np.argmax(model.logits(prefix)[-1])))
        without_cache = time.perf_counter() - start
        print(f"{new_tokens} tokens: {with_cache:.2f} s with the cache, {without_cache:.2f} s "
              f"recomputing every prefix (same tokens: {prefix[len(ids):] == greedy})")

        # ---- the next-token distribution under each setting ----
        logits = model.logits(ids)[-1]  # (V,) float32
        settings = [("temperature 0.7", 0.7, None, None), ("temperature 1.0", 1.0, None, None),
                    ("temperature 1.5", 1.5, None, None), ("T 1.0, top-k 5", 1.0, 5, None),
                    ("T 1.0, top-p 0.5", 1.0, None, 0.5)]
        order = np.argsort(-logits, kind="stable")[:12]  # the 12 most likely tokens
        names = [tok.decode([int(i)]) if tok is not None else str(int(i)) for i in order]  # type: ignore[attr-defined]
        print("\nnext-token probabilities of the 5 most likely tokens:")
        print(f"  {'':18s}" + "".join(f"{name!r:>10s}" for name in names[:5]))
        fig, ax = plt.subplots(figsize=(10, 4))
        width = 0.16
        for n, (label, temperature, top_k, top_p) in enumerate(settings):
            probs = next_token_probs(logits, temperature, top_k, top_p)  # (V,)
            kept = int(np.count_nonzero(probs))
            print(f"  {label:18s}" + "".join(f"{probs[i]:10.3f}" for i in order[:5])
                  + f"   ({kept} token{'s' if kept != 1 else ''} can be drawn)")
            ax.bar(np.arange(12) + (n - 2) * width, probs[order], width, label=label)
        ax.set_xticks(np.arange(12), [repr(name)[1:-1] or "?" for name in names], rotation=30,
                      fontsize=8)
        ax.set_xlabel("next token (the 12 most likely, by logit)")
        ax.set_ylabel("probability of being drawn")
        ax.set_title("Tutorial 8: the next-token distribution under each sampling setting")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "08_next_token.png", dpi=90)
        plt.close(fig)

        # ---- samples ----
        print("\nsamples (seed 0):")
        for label, temperature, top_k, top_p in settings:
            sample = model.generate(ids, 16, temperature=temperature, top_k=top_k, top_p=top_p,
                                    seed=0, stop_ids=[])
            print(f"  {label:18s} {show(sample)}")
        print(f"figure: {out / '08_next_token.png'}")


if __name__ == "__main__":
    main()
