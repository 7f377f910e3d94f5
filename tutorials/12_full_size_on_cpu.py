"""Tutorial 12: a 2B4T-shaped model on a CPU: memory map, and where the time of a token goes.

BitNet b1.58 2B4T has 30 blocks of width 2560 (feed-forward 6912) and a 128,256-token vocabulary.
This tutorial builds a slice of it that runs in seconds -- the real block shapes, but 2 blocks
instead of 30 and a 4,096-token vocabulary -- and measures: what memory-mapping costs at load,
what each backend holds in memory, and how one decode step's time splits between the ternary
matmuls, quantisation, attention, norms and the output head. From the per-block times it
extrapolates to the full model; the measured full-size figures are in docs/benchmarks.md.

    python tutorials/12_full_size_on_cpu.py --out docs/tutorials/figures
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minibitnet  # noqa: E402
from minibitnet.core.attention import grouped_query_attention  # noqa: E402
from minibitnet.kernels.registry import available_backends  # noqa: E402
from minibitnet.core.norm import rms_norm  # noqa: E402
from minibitnet.core.quant import quantize_activations  # noqa: E402
from minibitnet.core.rope import apply_rope, rope_tables  # noqa: E402
from minibitnet.core.bfloat16 import bf16_to_float32  # noqa: E402
from minibitnet.tools.shapes import SHAPES  # noqa: E402
from minibitnet.tools.synthetic import write_checkpoint  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"
FULL = SHAPES["2b4t"]
SLICE = dataclasses.replace(FULL, num_hidden_layers=2, vocab_size=4096, bos_token_id=1,
                            eos_token_ids=(2,))
PARTS = ["ternary matmuls", "quantise + rescale", "attention", "norms + RoPE", "output head"]


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def compiled_fast_path() -> bool:
    """True when minibitnet.kernels.mypyc is the mypyc-compiled build."""
    try:
        import minibitnet.kernels.mypyc as fast  # noqa: PLC0415
    except ImportError:
        return False
    is_compiled = getattr(fast, "is_compiled", None)
    return bool(is_compiled()) if is_compiled is not None else False


class Timer:
    """Adds the time of each ``with timer(part):`` block to ``totals[part]``."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.part = ""

    def __call__(self, part: str) -> Timer:
        self.part = part
        return self

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.totals[self.part] += time.perf_counter() - self.start


def timed_bitlinear(layer: object, x: np.ndarray, timer: Timer) -> np.ndarray:
    """BitLinear.__call__ split into its parts (same arithmetic, same result)."""
    with timer("quantise + rescale"):
        x_q, act_scale = quantize_activations(x)  # (T, in) int8, (T, 1)
    with timer("ternary matmuls"):
        acc = layer.kernel.matmul(layer.prepared, x_q)  # type: ignore[attr-defined]
    with timer("quantise + rescale"):
        return acc.astype(np.float32) / (act_scale * layer.weight_scale)  # type: ignore[attr-defined]


def timed_decode_step(model: minibitnet.Model, token: int, cache: object, timer: Timer) -> np.ndarray:
    """One decode step (model.forward for one token), with each part timed."""
    c = model.config
    start = cache.length  # type: ignore[attr-defined]
    h = bf16_to_float32(model.embed_tokens[np.array([token])])  # (1, D)
    with timer("norms + RoPE"):
        cos, sin = rope_tables(np.array([start]), c.head_dim, c.rope_theta)  # (1, Hd)
    for index, block in enumerate(model.blocks):
        attn, ffn = block.attention, block.feed_forward
        with timer("norms + RoPE"):
            x = rms_norm(h, block.input_layernorm, c.rms_norm_eps)
        q = timed_bitlinear(attn.q_proj, x, timer).reshape(1, c.num_attention_heads, c.head_dim)
        k = timed_bitlinear(attn.k_proj, x, timer).reshape(1, c.num_key_value_heads, c.head_dim)
        v = timed_bitlinear(attn.v_proj, x, timer).reshape(1, c.num_key_value_heads, c.head_dim)
        with timer("norms + RoPE"):
            q = apply_rope(q.transpose(1, 0, 2), cos, sin)  # (H, 1, Hd)
            k = apply_rope(k.transpose(1, 0, 2), cos, sin)  # (K, 1, Hd)
        with timer("attention"):
            keys, values = cache.append(index, k, v.transpose(1, 0, 2))  # type: ignore[attr-defined]
            out = grouped_query_attention(q, keys, values, start)  # (1, H*Hd)
        with timer("norms + RoPE"):
            out = rms_norm(out, attn.attn_sub_norm, c.rms_norm_eps)
        h = h + timed_bitlinear(attn.o_proj, out, timer)
        with timer("norms + RoPE"):
            x = rms_norm(h, block.post_attention_layernorm, c.rms_norm_eps)
        gate = timed_bitlinear(ffn.gate_proj, x, timer)
        up = timed_bitlinear(ffn.up_proj, x, timer)
        with timer("norms + RoPE"):
            hidden = np.square(np.maximum(gate, np.float32(0))) * up  # squared ReLU gate
            hidden = rms_norm(hidden, ffn.ffn_sub_norm, c.rms_norm_eps)
        h = h + timed_bitlinear(ffn.down_proj, hidden, timer)
    cache.advance(1)  # type: ignore[attr-defined]
    with timer("output head"):
        h = rms_norm(h, model.norm, c.rms_norm_eps)
        return model.head(h)  # (1, V)


def main() -> None:
    parser = argparse.ArgumentParser(description="A 2B4T-shaped model on a CPU.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    backends = [info.name for info in available_backends()]
    shown = [name for name in ("reference", "fast", "fast:bitplane", "fast:lut") if name in backends]
    if not compiled_fast_path():
        # interpreted kernels are one to two orders of magnitude slower: minutes, not seconds
        shown = ["reference"]
        print("the fast kernels are not compiled in this installation (pip install . compiles "
              "them), so only the reference backend is measured")
    steps = 4
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder = write_checkpoint(Path(tmp) / "slice", SLICE, seed=12)
        size = (folder / "model.safetensors").stat().st_size
        print(f"the 2B4T block shape (D={SLICE.hidden_size}, F={SLICE.intermediate_size}, "
              f"H={SLICE.num_attention_heads}, K={SLICE.num_key_value_heads}), "
              f"{SLICE.num_hidden_layers} blocks, vocabulary {SLICE.vocab_size}: "
              f"{size / 1e6:.0f} MB written in {time.perf_counter() - start:.1f} s")

        per_token: dict[str, dict[str, float]] = {}
        for name in shown:
            before = rss_mb()
            start = time.perf_counter()
            model = minibitnet.load(folder, backend=name)
            load_s = time.perf_counter() - start
            after_load = rss_mb()
            prompt = [int(i) for i in np.random.default_rng(0).integers(3, SLICE.vocab_size, 16)]
            cache = model.new_cache()
            logits = model.forward(prompt, cache)[-1]  # prefill
            timer = Timer()
            token = int(np.argmax(logits))
            reference_cache = model.new_cache()
            model.forward(prompt, reference_cache)
            for _ in range(steps):
                logits = timed_decode_step(model, token, cache, timer)[-1]
                expected = model.forward([token], reference_cache)[-1]
                assert np.array_equal(logits, expected), "the timed step must be the real step"
                token = int(np.argmax(logits))
            per_token[name] = {part: timer.totals[part] / steps for part in PARTS}
            total_ms = 1e3 * sum(per_token[name].values())
            print(f"\nbackend {name!r}: load {load_s:.2f} s, resident memory "
                  f"+{after_load - before:.0f} MB at load (file {size / 1e6:.0f} MB, mapped, "
                  f"read on demand)")
            print(f"  decode step: {total_ms:.1f} ms per token; by part:")
            for part in PARTS:
                ms = 1e3 * per_token[name][part]
                print(f"    {part:20s} {ms:8.2f} ms  {ms / total_ms:6.1%}")
            del model

    # Extrapolate to 30 blocks and the 128,256-token vocabulary: block parts scale with the
    # number of blocks, the head with the vocabulary.
    blocks = FULL.num_hidden_layers / SLICE.num_hidden_layers
    vocab = FULL.vocab_size / SLICE.vocab_size
    full: dict[str, dict[str, float]] = {}
    print("\nextrapolated to the full 2B4T shape (30 blocks, 128,256 tokens):")
    for name, parts in per_token.items():
        full[name] = {part: seconds * (vocab if part == "output head" else blocks)
                      for part, seconds in parts.items()}
        total = sum(full[name].values())
        print(f"  {name:14s} {total:7.2f} s per token ({1 / total:6.2f} tokens/s); "
              f"ternary matmuls {full[name]['ternary matmuls'] / total:.0%}, output head "
              f"{full[name]['output head'] / total:.0%}")
    print("(an estimate from a slice; docs/benchmarks.md has measured full-size figures)")

    # Figure: ms per token by part, for each backend, slice and extrapolated.
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 2.6 + 0.5 * len(per_token)))
    colours = ["#2e86de", "#f39c12", "#27ae60", "#8e44ad", "#c0392b"]
    for ax, data, title, unit, scale in (
            (axes[0], per_token, f"measured: 2B4T blocks × {SLICE.num_hidden_layers}, "
             f"vocabulary {SLICE.vocab_size}", "ms per token", 1e3),
            (axes[1], full, "extrapolated: 30 blocks, vocabulary 128,256", "s per token", 1.0)):
        names = list(data)
        left = np.zeros(len(names))
        for part, colour in zip(PARTS, colours):
            widths = np.array([data[n][part] * scale for n in names])
            ax.barh(names, widths, left=left, color=colour, label=part)
            left += widths
        ax.set_xlabel(unit)
        ax.set_title(title, fontsize=10)
        ax.invert_yaxis()
    axes[0].set_ylabel("backend")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(PARTS), fontsize=8)
    fig.suptitle("Tutorial 12: where the time of one decode step goes")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(out / "12_decode_profile.png", dpi=90)
    plt.close(fig)
    print(f"figure: {out / '12_decode_profile.png'}")


if __name__ == "__main__":
    main()
