"""Tutorial 12: a 2B4T-shaped model on a CPU: memory map, and where the time of a token goes.

BitNet b1.58 2B4T has 30 blocks of width 2560 (feed-forward 6912) and a 128,256-token vocabulary.
This tutorial builds a slice of it that runs in seconds -- the real block shapes, but 2 blocks
instead of 30 and a 4,096-token vocabulary -- and measures: what memory-mapping costs at load,
what each backend holds in memory, and how one decode step's time splits between the ternary
matmuls, quantisation, attention, norms and the output head. From the per-block times it
extrapolates to the full model; the measured full-size figures are in docs/benchmarks.md.

The times are read from the model's own forward pass: minibitnet.tools.step_timing hands
Model.forward a clock as its ``timer``, and the forward wraps each of its steps in
``with timer(step):``. Nothing here re-implements the forward, so --family runs the same
measurement on the LLaMA-architecture families too (SiLU gate, no sub-norms; Falcon-E's RMSNorm
inside every BitLinear).

    python tutorials/12_full_size_on_cpu.py --out docs/tutorials/figures
    python tutorials/12_full_size_on_cpu.py --out /tmp/figures --family falcon-e
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minibitnet  # noqa: E402
from minibitnet.families import BITNET, LLAMA_BITNET  # noqa: E402
from minibitnet.kernels.registry import available_backends  # noqa: E402
from minibitnet.tools.shapes import SHAPES  # noqa: E402
from minibitnet.tools.step_timing import PARTS, timed_forward  # noqa: E402
from minibitnet.tools.synthetic import write_checkpoint  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"
FULL = SHAPES["2b4t"]
SLICE = dataclasses.replace(FULL, num_hidden_layers=2, vocab_size=4096, bos_token_id=1,
                            eos_token_ids=(2,))
# --family: the config fields that set each family apart (families.py), on the same 2B4T shape
FAMILIES = {
    BITNET: ({}, "squared ReLU gate, attention and ffn sub-norms (2B4T itself)"),
    LLAMA_BITNET: (dict(family=LLAMA_BITNET, hidden_act="silu", has_sub_norms=False),
                   "SiLU gate, no sub-norms (Falcon3-1.58bit)"),
    "falcon-e": (dict(family=LLAMA_BITNET, hidden_act="silu", has_sub_norms=False,
                      use_rms_norm=True, quant_rms_norm_eps=1e-5),
                 "SiLU gate, no sub-norms, an RMSNorm inside every BitLinear (Falcon-E)"),
}


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


def main() -> None:
    parser = argparse.ArgumentParser(description="A 2B4T-shaped model on a CPU.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    parser.add_argument("--family", choices=list(FAMILIES), default=BITNET,
                        help="the checkpoint family of the slice (default: bitnet, as 2B4T)")
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    fields, described = FAMILIES[args.family]
    config = dataclasses.replace(SLICE, **fields)

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
        folder = write_checkpoint(Path(tmp) / "slice", config, seed=12)
        size = (folder / "model.safetensors").stat().st_size
        print(f"the 2B4T block shape (D={config.hidden_size}, F={config.intermediate_size}, "
              f"H={config.num_attention_heads}, K={config.num_key_value_heads}), "
              f"{config.num_hidden_layers} block{'s' if config.num_hidden_layers != 1 else ''}, "
              f"vocabulary {config.vocab_size}: "
              f"{size / 1e6:.0f} MB written in {time.perf_counter() - start:.1f} s")
        print(f"family {args.family}: {described}")

        per_token: dict[str, dict[str, float]] = {}
        for name in shown:
            before = rss_mb()
            start = time.perf_counter()
            model = minibitnet.load(folder, backend=name)
            load_s = time.perf_counter() - start
            after_load = rss_mb()
            prompt = [int(i) for i in np.random.default_rng(0).integers(3, config.vocab_size, 16)]
            cache = model.new_cache()
            token = int(np.argmax(model.forward(prompt, cache)[-1]))  # prefill
            totals = dict.fromkeys(PARTS, 0.0)
            for _ in range(steps):
                # model.forward([token], cache) itself, with a clock around each of its steps
                logits, seconds = timed_forward(model, [token], cache)  # (1, V), s by part
                for part in PARTS:
                    totals[part] += seconds[part]
                token = int(np.argmax(logits[-1]))
            per_token[name] = {part: totals[part] / steps for part in PARTS}
            total_ms = 1e3 * sum(per_token[name].values())
            print(f"\nbackend {name!r}: load {load_s:.2f} s, resident memory "
                  f"+{after_load - before:.0f} MB at load (file {size / 1e6:.0f} MB, mapped, "
                  f"read on demand)")
            print(f"  decode step: {total_ms:.1f} ms per token; by part:")
            for part in PARTS:
                ms = 1e3 * per_token[name][part]
                print(f"    {part:20s} {ms:8.2f} ms  {ms / total_ms:6.1%}")
            del model

    # Extrapolate to 30 blocks and the 128,256-token vocabulary: the head scales with the
    # vocabulary, every other part with the number of blocks (nearly all of "other" is per block).
    blocks = FULL.num_hidden_layers / SLICE.num_hidden_layers
    vocab = FULL.vocab_size / SLICE.vocab_size
    full: dict[str, dict[str, float]] = {}
    print("\nextrapolated to the full 2B4T shape (30 blocks, 128,256 tokens):")
    for name, parts in per_token.items():
        full[name] = {part: seconds * (vocab if part == "head" else blocks)
                      for part, seconds in parts.items()}
        total = sum(full[name].values())
        print(f"  {name:14s} {total:7.2f} s per token ({1 / total:6.2f} tokens/s); "
              f"ternary matmuls {full[name]['ternary matmuls'] / total:.0%}, output head "
              f"{full[name]['head'] / total:.0%}")
    print("(an estimate from a slice; docs/benchmarks.md has measured full-size figures)")

    # Figure: ms per token by part, for each backend, slice and extrapolated.
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 2.6 + 0.5 * len(per_token)))
    colours = ["#2e86de", "#f39c12", "#27ae60", "#8e44ad", "#c0392b", "#95a5a6"]  # PARTS
    for ax, data, title, unit, scale in (
            (axes[0], per_token, f"measured: 2B4T blocks × {config.num_hidden_layers}, "
             f"vocabulary {config.vocab_size}", "ms per token", 1e3),
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
    fig.suptitle(f"Tutorial 12: where the time of one decode step goes (family {args.family})")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(out / "12_decode_profile.png", dpi=90)
    plt.close(fig)
    print(f"figure: {out / '12_decode_profile.png'}")


if __name__ == "__main__":
    main()
